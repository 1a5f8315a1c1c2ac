package liveness

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// do serves one request with the handler of node and returns the response
// and its body.
func do(t *testing.T, h http.Handler, method, target string, header http.Header, body string) (*http.Response, string) {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := w.Result()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(b)
}

func handlerOf(net *fakeNet, n *fakeNode) http.Handler {
	return &handler{s: n.store, now: net.clock.Now}
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

func TestHello(t *testing.T) {
	net := newFakeNet(t)
	nodes := startN(t, net, 4)
	h := handlerOf(net, nodes[1])
	res, body := do(t, h, "GET", "/hello", nil, "")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/plain; charset=utf-8", res.Header.Get("Content-Type"))
	assert.Equal(t, "hello 2\n2 1 3 4\n\n10.0.0.2:9999\n10.0.0.1:9999\n10.0.0.3:9999\n10.0.0.4:9999\n", body)

	require.NoError(t, nodes[0].store.Decommission("4"))
	net.settle()
	net.waitGone(nodes[3])
	net.crash(nodes[2])
	net.settle()
	unknown := net.add(9, tokenCfg()) // its metadata is not delivered yet
	_ = unknown
	_, body = do(t, h, "GET", "/hello", nil, "")
	assert.Equal(t, "hello 2\n2 1\n4\n10.0.0.2:9999\n10.0.0.1:9999\n10.0.0.9:9999\n", body,
		"dead and decommissioned members are not listed; a member whose id is not known yet is listed by address only")
	res, body = do(t, h, "HEAD", "/hello", nil, "")
	assert.Equal(t, http.StatusOK, res.StatusCode)
}

func TestPageListsMembersAndEscapesEverything(t *testing.T) {
	net := newFakeNet(t)
	hostile := `<script>alert(1)</script>`
	hostile2 := `"><img/src/onerror=alert(2)>`
	a := net.add(1, Config{ID: hostile, Token: testToken})
	net.add(2, Config{ID: hostile2, Token: testToken})
	c := net.add(3, tokenCfg())
	net.settle()
	h := handlerOf(net, a)
	res, body := do(t, h, "GET", "/", nil, "")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "default-src 'none'")
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	assert.NotContains(t, body, "<script")
	assert.NotContains(t, body, "<img")
	assert.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;")
	assert.Contains(t, body, "&#34;&gt;&lt;img/src/onerror=alert(2)&gt;")
	assert.Contains(t, body, `<meta http-equiv="refresh" content="2">`)
	assert.Contains(t, body, "1.2 s ago")
	assert.Contains(t, body, "(this node)")
	assert.Contains(t, body, "10.0.0.3:9999")
	assert.Equal(t, 3, strings.Count(body, `<td class="id">`))
	assert.Contains(t, body, `<p id="decommissioned">none</p>`)

	require.NoError(t, a.store.Decommission("3"))
	net.settle()
	net.waitGone(c)
	_, body = do(t, h, "GET", "/", nil, "")
	assert.Contains(t, body, `<ul id="decommissioned"><li>3</li></ul>`)
	assert.Contains(t, body, `<tr class="LEFT decommissioned">`)
	res, _ = do(t, h, "HEAD", "/", nil, "")
	assert.Equal(t, http.StatusOK, res.StatusCode)
}

func TestHeardAgo(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:            "0.0 s ago",
		1234 * time.Millisecond: "1.2 s ago",
		42 * time.Second:        "42 s ago",
		5 * time.Minute:         "5 min ago",
		50 * time.Hour:          "50 h ago",
	} {
		assert.Equal(t, want, heardAgo(d))
	}
}

func TestMembersAndHealthJSON(t *testing.T) {
	net := newFakeNet(t)
	nodes := startN(t, net, 3)
	require.NoError(t, nodes[0].store.Decommission("3"))
	net.settle()
	net.waitGone(nodes[2])
	net.add(4, tokenCfg()) // metadata not delivered yet
	h := handlerOf(net, nodes[0])

	res, body := do(t, h, "GET", "/v1/members", nil, "")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
	var got membersJSON
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	assert.Equal(t, "1", got.ID)
	assert.Equal(t, "10.0.0.1:9999", got.Address)
	assert.Equal(t, []string{"3"}, got.Decommissioned)
	require.Len(t, got.Members, 4)
	m := got.Members[2]
	assert.Equal(t, "3", *m.ID)
	assert.Equal(t, "LEFT", m.Status)
	assert.True(t, m.Decommissioned)
	assert.Equal(t, 1.2, m.LastHeardSecondsAgo)
	assert.Nil(t, got.Members[3].ID, "null until the metadata arrives")
	assert.Contains(t, body, `"id": null`)
	assert.True(t, got.Members[0].Local)

	res, body = do(t, h, "GET", "/v1/health", nil, "")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	var health healthJSON
	require.NoError(t, json.Unmarshal([]byte(body), &health))
	assert.Equal(t, healthJSON{Status: "ok", ID: "1", Address: "10.0.0.1:9999", Alive: 3, Dead: 1, Decommissioned: 1}, health)

	res, body = do(t, handlerOf(net, nodes[2]), "GET", "/v1/health", nil, "")
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Contains(t, body, `"status": "leaving"`)
	net.crash(nodes[1])
	res, body = do(t, handlerOf(net, nodes[1]), "GET", "/v1/health", nil, "")
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Contains(t, body, `"status": "not running"`)
}

func TestBye(t *testing.T) {
	net := newFakeNet(t)
	nodes := startN(t, net, 3)
	noToken := net.add(4, Config{})
	net.settle()
	h := handlerOf(net, nodes[0])
	auth := bearer(testToken)
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {"Bearer " + testToken}}

	for _, tc := range []struct {
		name, method, target string
		header               http.Header
		body                 string
		code                 int
		want                 string
	}{
		{"GET", "GET", "/bye?id=2", auth, "", 405, "method GET not allowed on /bye: decommission with POST /bye?id=ID"},
		{"no token here", "POST", "/bye?id=2", auth, "", 403, "decommissioning is disabled on this node"},
		{"no Authorization", "POST", "/bye?id=2", nil, "", 401, `missing token: send the header "Authorization: Bearer TOKEN"`},
		{"wrong token", "POST", "/bye?id=2", bearer("wrong-token-wrong-token"), "", 401, "wrong token"},
		{"basic auth", "POST", "/bye?id=2", http.Header{"Authorization": {"Basic " + testToken}}, "", 401, "wrong token"},
		{"token in the query", "POST", "/bye?id=2&token=" + testToken, nil, "", 401, "missing token"},
		{"no id", "POST", "/bye", auth, "", 400, "missing parameter id: POST /bye?id=ID"},
		{"empty id", "POST", "/bye?id=", auth, "", 400, "bad parameter id: invalid id: empty"},
		{"two ids", "POST", "/bye?id=2&id=3", auth, "", 400, "more than one id"},
		{"bad id", "POST", "/bye?id=" + url.QueryEscape("a b"), auth, "", 400, `bad parameter id: invalid id "a b": U+0020 is a space`},
		{"bad query", "POST", "/bye?id=%zz", auth, "", 400, "cannot read the request's parameters"},
		{"huge body", "POST", "/bye", form, "id=" + strings.Repeat("x", 5000), 400, "cannot read the request's parameters"},
		{"unknown id", "POST", "/bye?id=99", auth, "", 404, `unknown id "99": no member known to this node has it`},
		{"ok", "POST", "/bye?id=2", auth, "", 202, "decommissioning 2 (10.0.0.2:9999): every member learns it, and that node leaves the cluster"},
		{"again", "POST", "/bye?id=2", auth, "", 409, `id "2" is already decommissioned`},
		{"form body", "POST", "/bye", form, "id=3", 202, "decommissioning 3 (10.0.0.3:9999)"},
		{"itself", "POST", "/bye?id=1", auth, "", 202, "decommissioning 1 (this node, 10.0.0.1:9999): every member learns it, and this node leaves the cluster"},
		{"after leaving", "POST", "/bye?id=4", auth, "", 503, "this node's id \"1\" is decommissioned and it is leaving"},
	} {
		hh := h
		if tc.name == "no token here" {
			hh = handlerOf(net, noToken)
		}
		res, body := do(t, hh, tc.method, tc.target, tc.header, tc.body)
		assert.Equal(t, tc.code, res.StatusCode, "%s: %s", tc.name, body)
		assert.Contains(t, body, tc.want, tc.name)
		assert.True(t, strings.HasSuffix(body, "\n"), tc.name)
		switch tc.code {
		case 401:
			assert.Contains(t, res.Header.Get("WWW-Authenticate"), "Bearer", tc.name)
		case 405:
			assert.Equal(t, "POST", res.Header.Get("Allow"))
		}
	}
	net.settle()
	for _, n := range nodes {
		assert.True(t, n.store.Leaving(), "node %s", n.store.ID())
	}
}

func TestWrongMethodsAndUnknownPaths(t *testing.T) {
	net := newFakeNet(t)
	nodes := startN(t, net, 1)
	h := handlerOf(net, nodes[0])
	for _, target := range []string{"/", "/hello", "/v1/members", "/v1/health"} {
		res, body := do(t, h, "POST", target, nil, "")
		assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode, target)
		assert.Equal(t, "GET, HEAD", res.Header.Get("Allow"), target)
		assert.Equal(t, "method POST not allowed on "+target+": use GET\n", body)
	}
	res, body := do(t, h, "GET", "/nope", nil, "")
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	assert.Equal(t, "no such page \"/nope\": this node serves / (the page), /hello, /bye (POST), /v1/members and /v1/health\n", body)
}

func TestHandlerMountedUnderAPrefix(t *testing.T) {
	net := newFakeNet(t)
	nodes := startN(t, net, 2)
	mux := http.NewServeMux()
	mux.Handle("/liveness/", http.StripPrefix("/liveness", handlerOf(net, nodes[0])))
	res, body := do(t, mux, "GET", "/liveness/hello", nil, "")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.True(t, strings.HasPrefix(body, "hello 1\n1 2\n"))
	_, body = do(t, mux, "GET", "/liveness/", nil, "")
	assert.Contains(t, body, `<a href="v1/members">`, "relative links work under a prefix")
}
