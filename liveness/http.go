package liveness

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/seed-c7906467/smudge"
)

// maxFormBytes bounds the body of a /bye request.
const maxFormBytes = 4 << 10

// RefreshSeconds is how often the HTML page reloads itself.
const RefreshSeconds = 2

// Handler returns the store's HTTP API, to serve or to mount in a server of
// one's own (with http.StripPrefix under a path prefix; the page's links
// are relative):
//
//	GET  /            an HTML page: this node, a table of the members (id,
//	                  address, status, last heard) and the decommissioned ids;
//	                  it refreshes itself every RefreshSeconds
//	GET  /hello       text/plain: "hello <id>" (this node); the ids of the
//	                  live members that are not decommissioned, space-separated;
//	                  the decommissioned ids; then the address of each of
//	                  those live members, one per line
//	POST /bye?id=ID   decommission ID (202 Accepted); needs the header
//	                  "Authorization: Bearer TOKEN" with the store's token
//	GET  /v1/members  JSON: this node, every member, the decommissioned ids
//	GET  /v1/health   JSON: this node's state; 200 when it runs, else 503
//
// Live means ALIVE or SUSPECTED. Wrong methods get 405, unknown paths 404,
// missing or bad parameters 400, a missing or wrong token 401, /bye on a
// node without a token 403, an unknown id 404 and an id decommissioned
// already 409, each with a message that says what to do.
func (s *Store) Handler() http.Handler {
	return &handler{s: s, now: time.Now}
}

type handler struct {
	s   *Store
	now func() time.Time
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	switch path {
	case "/":
		if h.method(w, r, "GET") {
			h.page(w, r)
		}
	case "/hello":
		if h.method(w, r, "GET") {
			h.hello(w)
		}
	case "/bye":
		if h.method(w, r, "POST") {
			h.bye(w, r)
		}
	case "/v1/members":
		if h.method(w, r, "GET") {
			h.members(w)
		}
	case "/v1/health":
		if h.method(w, r, "GET") {
			h.health(w)
		}
	default:
		textError(w, http.StatusNotFound, fmt.Sprintf("no such page %q: this node serves / (the page), /hello, /bye (POST), /v1/members and /v1/health", path))
	}
}

// method checks the request's method; GET allows HEAD too.
func (h *handler) method(w http.ResponseWriter, r *http.Request, want string) bool {
	if r.Method == want || (want == "GET" && r.Method == "HEAD") {
		return true
	}
	allow := want
	if want == "GET" {
		allow = "GET, HEAD"
	}
	w.Header().Set("Allow", allow)
	msg := fmt.Sprintf("method %s not allowed on %s: use %s", r.Method, r.URL.Path, want)
	if want == "POST" {
		msg = fmt.Sprintf("method %s not allowed on /bye: decommission with POST /bye?id=ID and the header \"Authorization: Bearer TOKEN\"", r.Method)
	}
	textError(w, http.StatusMethodNotAllowed, msg)
	return false
}

// textError writes a one-line text/plain error.
func textError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

func (h *handler) hello(w http.ResponseWriter) {
	ms := h.s.Members()
	var ids, addrs []string
	var unknown []string
	for _, m := range ms {
		if !m.Live() || m.Decommissioned {
			continue
		}
		if m.ID == "" {
			unknown = append(unknown, m.Address)
			continue
		}
		ids = append(ids, m.ID)
		addrs = append(addrs, m.Address)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "hello %s\n%s\n%s\n", h.s.ID(), strings.Join(ids, " "), strings.Join(h.s.Decommissioned(), " "))
	for _, a := range append(addrs, unknown...) {
		b.WriteString(a + "\n")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, b.String())
}

func (h *handler) bye(w http.ResponseWriter, r *http.Request) {
	s := h.s
	if s.sig.key == nil {
		textError(w, http.StatusForbidden, "decommissioning is disabled on this node: it was started without a liveness token; start every node with the same token to allow it")
		return
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="smudge liveness"`)
		textError(w, http.StatusUnauthorized, "missing token: send the header \"Authorization: Bearer TOKEN\"")
		return
	}
	scheme, token, _ := strings.Cut(auth, " ")
	if !strings.EqualFold(scheme, "Bearer") || !tokenEqual(strings.TrimSpace(token), s.cfg.Token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="smudge liveness", error="invalid_token"`)
		textError(w, http.StatusUnauthorized, "wrong token: send the header \"Authorization: Bearer TOKEN\" with this cluster's liveness token")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		textError(w, http.StatusBadRequest, "cannot read the request's parameters: "+err.Error())
		return
	}
	vals := r.Form["id"]
	switch {
	case len(vals) == 0:
		textError(w, http.StatusBadRequest, "missing parameter id: POST /bye?id=ID")
		return
	case len(vals) > 1:
		textError(w, http.StatusBadRequest, "more than one id: decommission one id per request")
		return
	}
	id := vals[0]
	if err := ValidateID(id); err != nil {
		textError(w, http.StatusBadRequest, "bad parameter id: "+strings.TrimPrefix(err.Error(), "liveness: "))
		return
	}
	addr := ""
	for _, m := range s.Members() {
		if m.ID == id {
			addr = m.Address
			break
		}
	}
	err := s.Decommission(id)
	switch {
	case errors.Is(err, ErrUnknownID):
		textError(w, http.StatusNotFound, fmt.Sprintf("unknown id %q: no member known to this node has it (GET /hello lists the ids)", id))
	case errors.Is(err, ErrAlreadyDecommissioned):
		textError(w, http.StatusConflict, fmt.Sprintf("id %q is already decommissioned", id))
	case errors.Is(err, ErrTooMany):
		textError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrNotRunning):
		textError(w, http.StatusServiceUnavailable, err.Error())
	case err != nil:
		textError(w, http.StatusInternalServerError, err.Error())
	case id == s.ID():
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, "decommissioning %s (this node, %s): every member learns it, and this node leaves the cluster\n", id, addr)
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, "decommissioning %s (%s): every member learns it, and that node leaves the cluster\n", id, addr)
	}
}

// tokenEqual compares tokens in constant time, whatever their lengths.
func tokenEqual(got, want string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// memberJSON is a member in /v1/members.
type memberJSON struct {
	ID                  *string `json:"id"` // null until known
	Address             string  `json:"address"`
	Status              string  `json:"status"` // ALIVE, SUSPECTED, DEAD or LEFT
	Local               bool    `json:"local"`
	Decommissioned      bool    `json:"decommissioned"`
	LastHeard           *string `json:"last_heard"` // RFC 3339; null if never heard from
	LastHeardSecondsAgo float64 `json:"last_heard_seconds_ago"`
}

type membersJSON struct {
	ID             string       `json:"id"`
	Address        string       `json:"address"`
	Members        []memberJSON `json:"members"`
	Decommissioned []string     `json:"decommissioned"`
}

func (h *handler) members(w http.ResponseWriter) {
	now := h.now()
	ms := h.s.Members()
	out := membersJSON{ID: h.s.ID(), Members: make([]memberJSON, 0, len(ms)), Decommissioned: h.s.Decommissioned()}
	for _, m := range ms {
		if m.Local {
			out.Address = m.Address
		}
		j := memberJSON{Address: m.Address, Status: m.StatusText(), Local: m.Local, Decommissioned: m.Decommissioned}
		if m.ID != "" {
			id := m.ID
			j.ID = &id
		}
		if !m.LastHeard.IsZero() {
			t := m.LastHeard.UTC().Format(time.RFC3339Nano)
			j.LastHeard = &t
			j.LastHeardSecondsAgo = max(0, float64(now.Sub(m.LastHeard).Milliseconds())/1000)
		}
		out.Members = append(out.Members, j)
	}
	writeJSON(w, http.StatusOK, out)
}

type healthJSON struct {
	Status         string `json:"status"` // ok, leaving or not running
	ID             string `json:"id"`
	Address        string `json:"address"`
	Alive          int    `json:"alive"`     // ALIVE members, this node included
	Suspected      int    `json:"suspected"` // SUSPECTED members
	Dead           int    `json:"dead"`      // DEAD members (left ones included), until forgotten
	Decommissioned int    `json:"decommissioned"`
}

func (h *handler) health(w http.ResponseWriter) {
	ms := h.s.Members()
	out := healthJSON{Status: "ok", ID: h.s.ID(), Decommissioned: len(h.s.Decommissioned())}
	for _, m := range ms {
		if m.Local {
			out.Address = m.Address
		}
		switch m.Status {
		case smudge.StatusAlive:
			out.Alive++
		case smudge.StatusSuspected:
			out.Suspected++
		default:
			out.Dead++
		}
	}
	code := http.StatusOK
	switch {
	case h.s.Leaving():
		out.Status, code = "leaving", http.StatusServiceUnavailable
	case !h.s.c.running():
		out.Status, code = "not running", http.StatusServiceUnavailable
	}
	writeJSON(w, code, out)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
