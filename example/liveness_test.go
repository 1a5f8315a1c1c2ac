package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHTTPAddress(t *testing.T) {
	lo, all := net.ParseIP("127.0.0.1"), net.ParseIP("0.0.0.0")
	for _, tc := range []struct {
		flag string
		ip   net.IP
		want string
	}{
		{"", lo, "127.0.0.1:8080"},
		{"", all, ":8080"},
		{"", net.ParseIP("::"), ":8080"},
		{"", net.ParseIP("::1"), "[::1]:8080"},
		{"", net.ParseIP("10.1.2.3"), "10.1.2.3:8080"},
		{"8081", lo, "127.0.0.1:8081"},
		{"8081", all, ":8081"},
		{":8081", lo, ":8081"},
		{"127.0.0.1:0", lo, "127.0.0.1:0"},
		{"[::1]:8081", lo, "[::1]:8081"},
		{"localhost:8081", lo, "localhost:8081"},
		{"off", lo, ""},
	} {
		got, err := httpAddress(tc.flag, tc.ip)
		if err != nil || got != tc.want {
			t.Errorf("httpAddress(%q, %v) = %q, %v; want %q", tc.flag, tc.ip, got, err, tc.want)
		}
	}
	for flag, want := range map[string]string{
		"99999":             "not a port number",
		"host":              "want host:port, :port, a port, or off",
		"1.2.3.4:x":         `"x" is not a port number`,
		"nohost.invalid:80": "nohost.invalid",
	} {
		if _, err := httpAddress(flag, lo); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("httpAddress(%q): %v, want an error saying %q", flag, err, want)
		}
	}
}

// freeTCPPort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free TCP port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

const testLivenessToken = "a-token-of-24-characters"

// startLivenessNode starts a node with the liveness API on a free port, the
// test token in its environment, and waits until its API answers.
func startLivenessNode(t *testing.T, bin, name string, args ...string) (p *proc, api string) {
	t.Helper()
	port, httpPort := freePort(t), freeTCPPort(t)
	api = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	p = &proc{t: t, name: name, addr: fmt.Sprintf("127.0.0.1:%d", port), changed: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"-port", fmt.Sprint(port), "-http", fmt.Sprintf("127.0.0.1:%d", httpPort)}, args...)...)
	p.cmd.Env = cleanEnv(envLivenessToken + "=" + testLivenessToken)
	p.cmd.Stderr = &p.errs
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: start: %v", name, err)
	}
	go p.collect(stdout)
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			p.mu.Lock()
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", name, strings.Join(p.lines, "\n"), name, p.errs.String())
			p.mu.Unlock()
		}
	})
	p.mustSee(eventTimeout, "its own ALIVE line", func(lines []string) bool { return hasEvent(lines, p.addr, "ALIVE") })
	return p, api
}

// call makes one HTTP request and returns the status and body.
func call(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// waitHello waits until line i of GET /hello is want.
func waitHello(t *testing.T, api string, i int, want string) {
	t.Helper()
	deadline := time.Now().Add(joinTimeout)
	for {
		_, body := call(t, "GET", api+"/hello", "")
		lines := strings.Split(body, "\n")
		if len(lines) > i && lines[i] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/hello line %d is not %q within %v:\n%s", api, i+1, want, joinTimeout, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLivenessEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	n1, api1 := startLivenessNode(t, bin, "node1", "-id", "1", "-state-dir", filepath.Join(dir, "1"))
	n2, api2 := startLivenessNode(t, bin, "node2", "-id", "2", "-join", n1.addr)
	n3, api3 := startLivenessNode(t, bin, "node3", "-id", "3", "-join", n1.addr, "-state-dir", filepath.Join(dir, "3"))
	waitHello(t, api1, 1, "1 2 3")
	waitHello(t, api2, 1, "2 1 3")
	waitHello(t, api3, 1, "3 1 2")

	for _, tc := range []struct {
		method, path, token string
		code                int
		want                string
	}{
		{"POST", "/bye?id=3", "", 401, "missing token"},
		{"POST", "/bye?id=3", "wrong-token-wrong-token", 401, "wrong token"},
		{"GET", "/bye?id=3", testLivenessToken, 405, "decommission with POST /bye?id=ID"},
		{"POST", "/bye", testLivenessToken, 400, "missing parameter id"},
		{"POST", "/bye?id=9", testLivenessToken, 404, `unknown id "9"`},
		{"GET", "/nope", "", 404, "no such page"},
	} {
		code, body := call(t, tc.method, api1+tc.path, tc.token)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s: %d %q, want %d and %q", tc.method, tc.path, code, body, tc.code, tc.want)
		}
	}

	// Decommission node 3 through node 1: node 3 leaves and exits 0.
	code, body := call(t, "POST", api1+"/bye?id=3", testLivenessToken)
	if code != http.StatusAccepted {
		t.Fatalf("POST /bye?id=3: %d %s", code, body)
	}
	select {
	case <-n3.done:
	case <-time.After(20 * time.Second):
		t.Fatal("node 3 did not exit within 20 s of its decommission")
	}
	if n3.exitErr != nil {
		t.Errorf("node 3: %v, want exit status 0", n3.exitErr)
	}
	if want := "this node's id 3 was decommissioned: it left the cluster"; !strings.Contains(n3.errs.String(), want) {
		t.Errorf("node 3's stderr does not say %q:\n%s", want, n3.errs.String())
	}
	for _, n := range []*proc{n1, n2} {
		n.mustSee(eventTimeout, n3.addr+" DEAD (left)", func(lines []string) bool { return hasEvent(lines, n3.addr, "DEAD (left)") })
	}
	waitHello(t, api1, 1, "1 2")
	waitHello(t, api1, 2, "3")
	waitHello(t, api2, 2, "3")
	code, body = call(t, "GET", api1+"/", "")
	if code != 200 || !strings.Contains(body, "<td class=\"id\">2</td>") || !strings.Contains(body, `<ul id="decommissioned"><li>3</li></ul>`) {
		t.Errorf("GET /: %d\n%s", code, body)
	}

	// Started again with its state directory, node 3 stops at once.
	ctx, cancel := context.WithTimeout(context.Background(), exitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-port", "0", "-id", "3", "-http", "off", "-join", n1.addr, "-state-dir", filepath.Join(dir, "3"))
	cmd.Env = cleanEnv(envLivenessToken + "=" + testLivenessToken)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("node 3 restarted: %v, want exit status 1; stderr:\n%s", err, stderr.String())
	}
	if want := `this node's id "3" is decommissioned`; !strings.Contains(stderr.String(), want) {
		t.Errorf("node 3 restarted: stderr does not say %q:\n%s", want, stderr.String())
	}

	// Decommissioned through itself, node 2 leaves too.
	code, body = call(t, "POST", api2+"/bye?id=2", testLivenessToken)
	if code != http.StatusAccepted || !strings.Contains(body, "this node") {
		t.Fatalf("POST /bye?id=2 to node 2: %d %s", code, body)
	}
	select {
	case <-n2.done:
	case <-time.After(20 * time.Second):
		t.Fatal("node 2 did not exit within 20 s of its decommission")
	}
	if n2.exitErr != nil {
		t.Errorf("node 2: %v, want exit status 0", n2.exitErr)
	}
	waitHello(t, api1, 2, "2 3")
}

// TestLivenessHTTPNeedsID: -http without -id is refused, saying why.
func TestLivenessHTTPNeedsID(t *testing.T) {
	bin := buildBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), exitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-port", "0", "-http", "127.0.0.1:0")
	cmd.Env = cleanEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want exit status 1; stderr:\n%s", err, stderr.String())
	}
	if want := "-http 127.0.0.1:0: the liveness API needs this node's -id"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
	}
}

func TestLineHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(&lineHandler{w: &buf, level: slog.LevelInfo, mu: new(sync.Mutex)})
	log.Debug("hidden")
	log.Info("liveness: ids decommissioned", "ids", []string{"3"}, "new", 1)
	log.With("id", "a b").Warn("liveness: leaving", "why", "")
	want := "smudge: liveness: ids decommissioned ids=[3] new=1\n" +
		"smudge: WARNING: liveness: leaving id=\"a b\" why=\"\"\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}
