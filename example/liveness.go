package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/seed-c7906467/smudge"
	"github.com/seed-c7906467/smudge/liveness"
)

// Environment variables of the liveness flags.
const (
	envLivenessID    = "SMUDGE_LIVENESS_ID"
	envLivenessHTTP  = "SMUDGE_LIVENESS_HTTP"
	envLivenessToken = "SMUDGE_LIVENESS_TOKEN"
)

// defaultHTTPPort is the liveness API's port when -http does not say.
const defaultHTTPPort = "8080"

// livenessOptions are the agent's liveness store settings (-id, -http,
// -liveness-token, -state-dir) and, once started, the store.
type livenessOptions struct {
	fs       *flag.FlagSet
	id       string
	http     string
	token    string
	stateDir string

	store *liveness.Store
}

// register adds the liveness flags to fs, and -join, another name for
// -node, when fs has -node.
func (o *livenessOptions) register(fs *flag.FlagSet) {
	o.fs = fs
	fs.StringVar(&o.id, "id", os.Getenv(envLivenessID),
		"this node's `id` in the liveness store (1-64 printable characters, no spaces): turns on the\n"+
			"liveness HTTP API and decommissioning ($"+envLivenessID+")")
	fs.StringVar(&o.http, "http", os.Getenv(envLivenessHTTP),
		"`address` of the liveness HTTP API (with -id): host:port, :port (every interface), a port\n"+
			"alone (on the -listen-ip address), or off; default port "+defaultHTTPPort+" on the -listen-ip\n"+
			"address, so 127.0.0.1:"+defaultHTTPPort+" unless the node listens beyond loopback ($"+envLivenessHTTP+")")
	fs.StringVar(&o.token, "liveness-token", "",
		"`token` shared by the nodes, needed to decommission (POST /bye); at least 16 characters;\n"+
			"prefer $"+envLivenessToken+", since other users can see a process's flags")
	if fs.Lookup("state-dir") == nil { // the check agent may define it first
		fs.StringVar(&o.stateDir, "state-dir", os.Getenv(smudge.EnvVarStateDir),
			"`directory` where the node keeps state across restarts ($"+smudge.EnvVarStateDir+")")
	}
	if node := fs.Lookup("node"); node != nil && fs.Lookup("join") == nil {
		fs.Var(aliasFlag{fs: fs, name: "node"}, "join", "`ADDR` of a member to join: another name for -node")
	}
}

// aliasFlag is a flag that sets another flag.
type aliasFlag struct {
	fs   *flag.FlagSet
	name string
}

func (a aliasFlag) String() string {
	if a.fs == nil {
		return ""
	}
	return a.fs.Lookup(a.name).Value.String()
}

func (a aliasFlag) Set(s string) error { return a.fs.Set(a.name, s) }

// start creates the liveness store for c (before c starts: a node whose id
// is decommissioned must not join) and serves its HTTP API. Without -id it
// does nothing. The returned function stops the server.
func (o *livenessOptions) start(c *smudge.Cluster, stderr io.Writer) (stop func(), err error) {
	if o.id == "" {
		if o.http != "" && o.http != "off" {
			return nil, fmt.Errorf("-http %s: the liveness API needs this node's -id", o.http)
		}
		return func() {}, nil
	}
	token := o.token
	if token == "" {
		token = os.Getenv(envLivenessToken)
	}
	cfg := c.Config()
	stateDir := cfg.StateDir // $SMUDGE_STATE_DIR: one directory for all of the node's state
	if f := o.fs.Lookup("state-dir"); f != nil && f.Value.String() != "" {
		stateDir = f.Value.String() // whoever defined the flag
	}
	o.store, err = liveness.New(c, liveness.Config{
		ID:       o.id,
		Token:    token,
		StateDir: stateDir,
		Logger:   slog.New(&lineHandler{w: stderr, level: slogLevel(cfg.LogThreshold), mu: new(sync.Mutex)}),
	})
	if err != nil {
		return nil, err
	}
	if token == "" {
		fmt.Fprintf(stderr, "smudge: liveness: decommissioning is off: no token (set %s, the same on every node)\n", envLivenessToken)
	}
	addr, err := httpAddress(o.http, cfg.ListenIP)
	if err != nil {
		o.store.Close()
		return nil, err
	}
	if addr == "" {
		return o.store.Close, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		o.store.Close()
		return nil, fmt.Errorf("-http %s: %w (give each node on a host its own -http port)", addr, err)
	}
	srv := &http.Server{
		Handler:           o.store.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	go srv.Serve(ln)
	bound := ln.Addr().(*net.TCPAddr)
	fmt.Fprintf(stderr, "smudge: liveness: node %s, API on http://%s/\n", o.id, bound)
	if !bound.IP.IsLoopback() {
		fmt.Fprintf(stderr, "smudge: WARNING: the liveness API listens on %v in plain HTTP: whoever can reach it sees the members, and the token of POST /bye crosses the network in clear\n", bound)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		o.store.Close()
	}, nil
}

// decommissioned reports, once the cluster has stopped, whether it stopped
// because this node's id was decommissioned; then it waits for the leave to
// finish and says so on stderr.
func (o *livenessOptions) decommissioned(stderr io.Writer) bool {
	if o.store == nil || !o.store.Leaving() {
		return false
	}
	select {
	case <-o.store.Gone():
	case <-time.After(10 * time.Second):
	}
	fmt.Fprintf(stderr, "smudge: this node's id %s was decommissioned: it left the cluster\n", o.id)
	return true
}

// httpAddress is the address to serve the API on ("" for none): flag as
// given, a port alone on listenIP, or the default port on listenIP.
func httpAddress(flagValue string, listenIP net.IP) (string, error) {
	host := "127.0.0.1"
	if listenIP != nil {
		host = listenIP.String()
		if listenIP.IsUnspecified() {
			host = ""
		}
	}
	switch v := strings.TrimSpace(flagValue); {
	case v == "off":
		return "", nil
	case v == "":
		return net.JoinHostPort(host, defaultHTTPPort), nil
	case strings.Trim(v, "0123456789") == "":
		if p, err := strconv.Atoi(v); err != nil || p > 65535 {
			return "", fmt.Errorf("-http %s: not a port number (1-65535)", v)
		}
		return net.JoinHostPort(host, v), nil
	default:
		h, p, err := net.SplitHostPort(v)
		if err != nil {
			return "", fmt.Errorf("-http %s: want host:port, :port, a port, or off", v)
		}
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
			return "", fmt.Errorf("-http %s: %q is not a port number", v, p)
		}
		if h != "" && net.ParseIP(strings.Trim(h, "[]")) == nil {
			if _, err := net.LookupHost(h); err != nil {
				return "", fmt.Errorf("-http %s: %w", v, err)
			}
		}
		return v, nil
	}
}

// slogLevel maps smudge's log threshold to slog's.
func slogLevel(l smudge.LogLevel) slog.Level {
	switch {
	case l <= smudge.LogDebug:
		return slog.LevelDebug
	case l == smudge.LogInfo:
		return slog.LevelInfo
	case l == smudge.LogWarn:
		return slog.LevelWarn
	case l == smudge.LogOff:
		return slog.LevelError + 100
	}
	return slog.LevelError
}

// lineHandler writes the store's log records as the agent's other messages:
// "smudge: liveness: ... key=value ...", one line each, WARNING: before
// warnings and errors.
type lineHandler struct {
	w     io.Writer
	level slog.Level
	attrs []slog.Attr
	mu    *sync.Mutex
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("smudge: ")
	if r.Level >= slog.LevelWarn {
		b.WriteString("WARNING: ")
	}
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		v := a.Value.Resolve().String()
		if v == "" || strings.ContainsAny(v, " \t\n\"=") {
			v = strconv.Quote(v)
		}
		b.WriteString(" " + a.Key + "=" + v)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	b.WriteString("\n")
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *lineHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &c
}

func (h *lineHandler) WithGroup(string) slog.Handler { return h }
