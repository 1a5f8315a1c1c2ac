package liveness

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/seed-c7906467/smudge"
)

// pageCSP forbids everything the page does not need: no script runs, even
// if something slipped past the template's escaping.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{{.Refresh}}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Self.ID}} · smudge liveness</title>
<style>
body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5em 2em; color: #1d2433; background: #fff; }
h1 { font-size: 1.35em; margin: 0 0 .2em; }
h1 small { font-weight: normal; color: #5b6577; font-size: .75em; margin-left: .5em; }
h2 { font-size: 1.05em; margin: 1.4em 0 .4em; }
.summary { color: #5b6577; margin: 0 0 1em; }
.banner { background: #fdecea; color: #8a1c12; padding: .5em .8em; border-radius: 4px; }
table { border-collapse: collapse; min-width: 34em; }
th, td { text-align: left; padding: .35em .9em .35em 0; border-bottom: 1px solid #e3e6ec; }
th { font-size: .8em; text-transform: uppercase; letter-spacing: .04em; color: #5b6577; }
td.addr, td.heard { font-family: ui-monospace, monospace; font-size: .92em; }
.st { font-size: .8em; font-weight: 600; padding: .1em .5em; border-radius: 3px; }
.ALIVE .st { background: #e3f5e8; color: #17692f; }
.SUSPECTED .st { background: #fff4d6; color: #7a5800; }
.DEAD .st, .LEFT .st { background: #eceef2; color: #5b6577; }
.dec { font-size: .8em; color: #8a1c12; margin-left: .4em; }
.unknown { color: #8a93a3; font-style: italic; }
tr.decommissioned td { color: #8a93a3; }
footer { margin-top: 1.6em; font-size: .85em; color: #8a93a3; }
footer a { color: #3c64b1; }
</style>
</head>
<body>
<h1>Node <span id="self">{{.Self.ID}}</span><small>{{.Self.Address}}</small></h1>
<p class="summary">{{.Alive}} alive · {{.Suspected}} suspected · {{.Dead}} dead or left · {{len .Decommissioned}} decommissioned</p>
{{if .Banner}}<p class="banner">{{.Banner}}</p>{{end}}
<table id="members">
<thead><tr><th>id</th><th>address</th><th>status</th><th>last heard</th></tr></thead>
<tbody>
{{range .Members}}<tr class="{{.Status}}{{if .Decommissioned}} decommissioned{{end}}">
<td class="id">{{if .ID}}{{.ID}}{{else}}<span class="unknown">not known yet</span>{{end}}{{if .Local}} <em>(this node)</em>{{end}}</td>
<td class="addr">{{.Address}}</td>
<td class="status"><span class="st">{{.Status}}</span>{{if .Decommissioned}} <span class="dec">decommissioned</span>{{end}}</td>
<td class="heard">{{.Heard}}</td>
</tr>
{{end}}</tbody>
</table>
<h2>Decommissioned ids</h2>
{{if .Decommissioned}}<ul id="decommissioned">{{range .Decommissioned}}<li>{{.}}</li>{{end}}</ul>{{else}}<p id="decommissioned">none</p>{{end}}
<footer>As of {{.Now}} · refreshes every {{.Refresh}} s · <a href="hello">hello</a> · <a href="v1/members">v1/members</a> · <a href="v1/health">v1/health</a></footer>
</body>
</html>
`))

type pageRow struct {
	ID             string
	Address        string
	Status         string
	Local          bool
	Decommissioned bool
	Heard          string
}

type pageData struct {
	Refresh                int
	Self                   pageRow
	Members                []pageRow
	Decommissioned         []string
	Alive, Suspected, Dead int
	Banner                 string
	Now                    string
}

func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	now := h.now()
	d := pageData{Refresh: RefreshSeconds, Decommissioned: h.s.Decommissioned(), Now: now.Format("15:04:05")}
	d.Self = pageRow{ID: h.s.ID()}
	for _, m := range h.s.Members() {
		row := pageRow{ID: m.ID, Address: m.Address, Status: m.StatusText(), Local: m.Local, Decommissioned: m.Decommissioned}
		switch {
		case m.Local:
			row.Heard = "this node"
			d.Self = row
		case m.LastHeard.IsZero():
			row.Heard = "never"
		default:
			row.Heard = heardAgo(now.Sub(m.LastHeard))
		}
		switch m.Status {
		case smudge.StatusAlive:
			d.Alive++
		case smudge.StatusSuspected:
			d.Suspected++
		default:
			d.Dead++
		}
		d.Members = append(d.Members, row)
	}
	switch {
	case h.s.Leaving():
		d.Banner = "This node's id is decommissioned: it is leaving the cluster."
	case !h.s.c.running():
		d.Banner = "This node is not running."
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, d); err != nil {
		textError(w, http.StatusInternalServerError, "rendering the page: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", pageCSP)
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Write(buf.Bytes())
}

// heardAgo says how long ago: "0.4 s ago", "12 s ago", "3 min ago", "2 h ago".
func heardAgo(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
		fallthrough
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f s ago", d.Seconds())
	case d < 2*time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	}
	return fmt.Sprintf("%d h ago", int(d.Hours()))
}
