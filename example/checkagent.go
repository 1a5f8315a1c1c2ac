package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/seed-c7906467/smudge"
	"github.com/seed-c7906467/smudge/checks"
)

// The check agent: every node runs the checks batches published in the
// cluster and sends its results back to the batch's origin; a node with
// the CLI endpoint takes batches from `smudge check` (checkcmd.go),
// publishes them, runs them itself too, and answers with every node's
// results.
//
// Flags (registered by agentOptions.register):
//
//	-bind ADDR          ip:port to listen on (instead of -listen-ip and -port)
//	-peers ADDRS        members to join (another name for -node)
//	-gossip-group N     Publish's burst fanout (default 5; SMUDGE_GOSSIP_GROUP)
//	-cli-bind ADDR      the CLI endpoint, a loopback address (default 127.0.0.1:5924)
//	-no-cli             no CLI endpoint
//	-allow-actions      run the actions of failing checks (with SMUDGE_ALLOW_ACTIONS=true, and a key)
//
// Safety rules:
//
//   - Actions run only when this node opted in twice, with -allow-actions
//     AND SMUDGE_ALLOW_ACTIONS=true, AND the cluster has a key
//     (SMUDGE_ENCRYPTION_KEYS): only key holders can then publish a batch.
//     Otherwise a failing check's action is not run and its result says
//     "actions disabled on this node".
//   - The CLI endpoint listens on loopback only, and every request must
//     carry a token: HMAC-SHA256 of a fixed label under one of the
//     cluster's keys (so whoever holds the key, and only them, can use it;
//     key rotation is followed), or SMUDGE_CLI_TOKEN when set on both
//     sides. With neither a key nor SMUDGE_CLI_TOKEN the endpoint is off.
const (
	defaultCLIBind     = "127.0.0.1:5924"
	envAllowActions    = "SMUDGE_ALLOW_ACTIONS"
	envCLIToken        = "SMUDGE_CLI_TOKEN"
	envCLIBind         = "SMUDGE_CLI_BIND"
	cliTokenLabel      = "smudge/check-cli/1"
	defaultCheckWait   = 30 * time.Second
	maxCheckWait       = 10 * time.Minute
	batchVersion       = 1
	maxBatchesRunning  = 2  // batches running at once on a node
	maxBatchesWaiting  = 16 // more are answered with an error
	resultSendAttempts = 4
)

// checkOptions are the check agent's flags.
type checkOptions struct {
	fs           *flag.FlagSet
	bind         string
	peers        hostList
	gossipGroup  int
	cliBind      string
	noCLI        bool
	allowActions bool
	stateDir     string
}

func (o *checkOptions) register(fs *flag.FlagSet) {
	o.fs = fs
	fs.StringVar(&o.bind, "bind", "", "`ADDR` (ip:port) to listen on, UDP and TCP: instead of -listen-ip and -port")
	fs.Var(&o.peers, "peers", "`ADDRS` of members to join, comma-separated: another name for -node")
	fs.IntVar(&o.gossipGroup, "gossip-group", smudge.DefaultGossipGroup,
		"how many members a checks batch is sent to at once, and passed on to by each ($"+smudge.EnvVarGossipGroup+")")
	cliBind := os.Getenv(envCLIBind)
	if cliBind == "" {
		cliBind = defaultCLIBind
	}
	fs.StringVar(&o.cliBind, "cli-bind", cliBind, "loopback `ADDR` where smudge check reaches this node ($"+envCLIBind+")")
	fs.BoolVar(&o.noCLI, "no-cli", false, "no endpoint for smudge check (the node still runs the checks batches it receives)")
	fs.BoolVar(&o.allowActions, "allow-actions", false,
		"run the actions of failing checks; needs "+envAllowActions+"=true too, and an encrypted cluster ($"+smudge.EnvVarEncryptionKeys+")")
	if fs.Lookup("state-dir") == nil {
		fs.StringVar(&o.stateDir, "state-dir", os.Getenv(smudge.EnvVarStateDir),
			"`directory` where the node keeps state across restarts ($"+smudge.EnvVarStateDir+")")
	}
}

// apply copies the flags that were given into cfg.
func (o *checkOptions) apply(cfg *smudge.Config) error {
	if o.fs == nil {
		return nil
	}
	set := map[string]bool{}
	o.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	if set["bind"] {
		if set["port"] || set["listen-ip"] {
			errs = append(errs, errors.New("-bind: give -bind, or -listen-ip and -port, not both"))
		}
		ap, err := netip.ParseAddrPort(o.bind)
		if err != nil {
			errs = append(errs, fmt.Errorf("-bind %q: not an ip:port ([v6]:port for IPv6)", o.bind))
		} else {
			cfg.ListenIP = net.IP(ap.Addr().Unmap().AsSlice())
			cfg.ListenPort = int(ap.Port())
		}
	}
	if set["peers"] {
		if set["node"] {
			cfg.InitialHosts = append(cfg.InitialHosts, o.peers...)
		} else {
			cfg.InitialHosts = append([]string(nil), o.peers...)
		}
	}
	if set["gossip-group"] {
		if o.gossipGroup < 1 {
			errs = append(errs, fmt.Errorf("-gossip-group %d: must be at least 1", o.gossipGroup))
		}
		cfg.GossipGroup = o.gossipGroup
	}
	if set["state-dir"] {
		cfg.StateDir = o.fs.Lookup("state-dir").Value.String()
	}
	if !o.noCLI {
		if _, err := loopbackAddr(o.cliBind); err != nil {
			errs = append(errs, fmt.Errorf("-cli-bind %q: %v", o.cliBind, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("bad flag: %w", errors.Join(errs...))
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("bad configuration: %w", err)
	}
	return nil
}

// loopbackAddr parses a CLI address, which must be a loopback ip:port.
func loopbackAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, errors.New("not an ip:port")
	}
	if !ap.Addr().Unmap().IsLoopback() {
		return ap, errors.New("not a loopback address: the CLI endpoint is for this host only (run smudge check on a member, over ssh for instance)")
	}
	return ap, nil
}

// envTrue reports whether the variable holds a true boolean.
func envTrue(name string) bool {
	b, err := strconv.ParseBool(strings.TrimSpace(os.Getenv(name)))
	return err == nil && b
}

// cliToken derives the CLI token from a cluster key.
func cliToken(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(cliTokenLabel))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkBatch is what a checks batch publication holds.
type checkBatch struct {
	Kind      string          `json:"kind"` // "smudge-checks"
	Version   int             `json:"version"`
	Batch     string          `json:"batch"`      // random id, hex; results name it
	TimeoutMS int64           `json:"timeout_ms"` // how long the origin waits for results
	Checks    json.RawMessage `json:"checks"`     // the checks file, as given
}

// checkResult is what a node sends back to a batch's origin.
type checkResult struct {
	Kind           string         `json:"kind"` // "smudge-check-results"
	Version        int            `json:"version"`
	Batch          string         `json:"batch"`
	Node           string         `json:"node"`
	ActionsEnabled bool           `json:"actions_enabled"`
	Report         *checks.Report `json:"report,omitempty"`
	Error          string         `json:"error,omitempty"`
}

const (
	kindBatch   = "smudge-checks"
	kindResults = "smudge-check-results"
)

// checkAgent runs the batches it receives and collects the results of the
// batches it publishes.
type checkAgent struct {
	c            *smudge.Cluster
	out          *lineWriter
	stderr       io.Writer
	allowActions bool
	cliToken     string // SMUDGE_CLI_TOKEN, or ""
	running      chan struct{}
	waiting      chan struct{}

	mu      sync.Mutex
	batches map[string]*collector
}

// collector gathers the results of one batch published here.
type collector struct {
	mu      sync.Mutex
	results map[string]checkResult
	changed chan struct{} // closed and replaced at every new result
}

func (col *collector) add(r checkResult) {
	col.mu.Lock()
	defer col.mu.Unlock()
	if _, ok := col.results[r.Node]; ok {
		return // the first answer counts
	}
	col.results[r.Node] = r
	close(col.changed)
	col.changed = make(chan struct{})
}

// start runs the agent on a started cluster: it runs the batches it
// receives, and serves `smudge check` unless -no-cli.
func (o *checkOptions) start(c *smudge.Cluster, cfg smudge.Config, out *lineWriter, stderr io.Writer) (stop func()) {
	a := &checkAgent{
		c: c, out: out, stderr: stderr,
		cliToken: strings.TrimSpace(os.Getenv(envCLIToken)),
		running:  make(chan struct{}, maxBatchesRunning),
		waiting:  make(chan struct{}, maxBatchesWaiting),
		batches:  map[string]*collector{},
	}
	switch {
	case !o.allowActions:
	case !envTrue(envAllowActions):
		fmt.Fprintf(stderr, "smudge: checks: actions stay off: -allow-actions needs %s=true too\n", envAllowActions)
	case len(cfg.Keys) == 0:
		fmt.Fprintf(stderr, "smudge: checks: actions stay off: the cluster has no key (%s), so anyone who reaches it could publish a batch\n", smudge.EnvVarEncryptionKeys)
	default:
		a.allowActions = true
		fmt.Fprintln(stderr, "smudge: checks: actions of failing checks will run on this node")
	}
	c.AddPublishListener(a)
	c.AddMessageListener(a)
	if o.noCLI {
		return func() {}
	}
	if len(cfg.Keys) == 0 && a.cliToken == "" {
		fmt.Fprintf(stderr, "smudge: checks: no endpoint for `smudge check` on %s: it needs %s (the cluster's key) or %s, the same for smudge check, so that only you can use it (-no-cli silences this)\n",
			o.cliBind, smudge.EnvVarEncryptionKeys, envCLIToken)
		return func() {}
	}
	ln, err := net.Listen("tcp", o.cliBind)
	if err != nil {
		// Not fatal: the node still runs the batches it receives (several
		// agents on one host share the default address).
		fmt.Fprintf(stderr, "smudge: checks: no endpoint for `smudge check`: %v (use -cli-bind, or -no-cli)\n", err)
		return func() {}
	}
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}
}

// OnPublish runs a checks batch published by another node.
func (a *checkAgent) OnPublish(p *smudge.Publication) {
	var b checkBatch
	if json.Unmarshal(p.Bytes(), &b) != nil || b.Kind != kindBatch {
		return // not a checks batch
	}
	origin := p.Origin()
	res := checkResult{Kind: kindResults, Version: batchVersion, Batch: b.Batch, Node: a.self(), ActionsEnabled: a.allowActions}
	if b.Version != batchVersion {
		res.Error = fmt.Sprintf("batch version %d not understood by this node (version %d)", b.Version, batchVersion)
		go a.sendResult(origin, res, time.Now().Add(time.Minute))
		return
	}
	deadline := time.Now().Add(time.Duration(b.TimeoutMS)*time.Millisecond - p.Age())
	select {
	case a.waiting <- struct{}{}:
	default:
		res.Error = "this node is busy with other batches"
		go a.sendResult(origin, res, deadline)
		return
	}
	go func() {
		defer func() { <-a.waiting }()
		a.running <- struct{}{}
		defer func() { <-a.running }()
		res := a.run(b, deadline)
		a.printRun(origin.Address(), b.Batch, res)
		a.sendResult(origin, res, deadline)
	}()
}

// run runs a batch here and returns its result.
func (a *checkAgent) run(b checkBatch, deadline time.Time) checkResult {
	res := checkResult{Kind: kindResults, Version: batchVersion, Batch: b.Batch, Node: a.self(), ActionsEnabled: a.allowActions}
	list, err := checks.Parse(b.Checks)
	if err != nil {
		res.Error = "bad checks file: " + err.Error()
		return res
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	runner := &checks.Runner{AllowActions: a.allowActions}
	report := checks.NewReport(runner.Run(ctx, list))
	res.Report = &report
	return res
}

// printRun prints one line about a batch run here.
func (a *checkAgent) printRun(origin, batch string, res checkResult) {
	what := res.Error
	if res.Report != nil {
		what = res.Report.Summary()
	}
	actions := "actions disabled"
	if res.ActionsEnabled {
		actions = "actions enabled"
	}
	a.out.printLine(fmt.Sprintf("%s CHECKS batch %.8s from %s: %s (%s)", a.self(), batch, origin, what, actions))
}

func (a *checkAgent) self() string {
	if n := a.c.LocalNode(); n != nil {
		return n.Address()
	}
	return a.c.LocalAddr().String()
}

// sendResult sends a result to the batch's origin, retrying a few times
// until a little after the deadline.
func (a *checkAgent) sendResult(origin *smudge.Node, res checkResult, deadline time.Time) {
	data, err := json.Marshal(res)
	if err == nil && len(data) > a.c.Config().MaxMessageBytes && res.Report != nil {
		// Too big to send: keep the verdicts, drop the outputs.
		for i := range res.Report.Results {
			r := &res.Report.Results[i]
			if len(r.ActionOutput) > 256 {
				r.ActionOutput, r.ActionOutputTruncated = r.ActionOutput[:256]+"\n[output truncated to fit the results message]", true
			}
		}
		data, err = json.Marshal(res)
	}
	if err != nil {
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(5*time.Second))
	defer cancel()
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err = a.c.Send(ctx, origin, data)
		if err == nil || attempt == resultSendAttempts || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	if err != nil {
		fmt.Fprint(a.stderr, errorLine(fmt.Errorf("checks: results of batch %.8s not delivered to %s: %w", res.Batch, origin.Address(), err)))
	}
}

// OnMessage takes the results of a batch published here.
func (a *checkAgent) OnMessage(m *smudge.Message) {
	var r checkResult
	if json.Unmarshal(m.Bytes(), &r) != nil || r.Kind != kindResults {
		return
	}
	r.Node = m.From().Address() // who sent it, not who it says it is
	a.mu.Lock()
	col := a.batches[r.Batch]
	a.mu.Unlock()
	if col != nil {
		col.add(r)
	}
}

// checkResponse is the CLI endpoint's answer: every node's results.
type checkResponse struct {
	Version  int           `json:"version"`
	Batch    string        `json:"batch"`
	Expected []string      `json:"expected"` // the live members when the batch was published
	Nodes    []checkResult `json:"nodes"`    // the answers, by node address
	Missing  []string      `json:"missing"`  // expected nodes that did not answer in time
}

// handler is the CLI endpoint:
//
//	POST /v1/checks?timeout=30s   body: a checks file; answer: a checkResponse
func (a *checkAgent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/checks", func(w http.ResponseWriter, r *http.Request) {
		if !a.authorized(r) {
			http.Error(w, "bad or missing token: smudge check derives it from "+smudge.EnvVarEncryptionKeys+
				" (the cluster's key), or sends "+envCLIToken+" if the agent has one", http.StatusUnauthorized)
			return
		}
		wait := defaultCheckWait
		if s := r.URL.Query().Get("timeout"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d < time.Second || d > maxCheckWait {
				http.Error(w, fmt.Sprintf("timeout %q: a duration from 1s to %v", s, maxCheckWait), http.StatusBadRequest)
				return
			}
			wait = d
		}
		file, err := io.ReadAll(http.MaxBytesReader(w, r.Body, checks.MaxFileBytes))
		if err != nil {
			http.Error(w, "checks file: "+err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		if _, err := checks.Parse(file); err != nil {
			http.Error(w, "checks file: "+err.Error(), http.StatusBadRequest)
			return
		}
		resp, status, err := a.publish(r.Context(), file, wait)
		if err != nil {
			http.Error(w, err.Error(), status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	})
	return mux
}

// authorized checks a request's bearer token against the explicit token
// and the tokens of every key in the ring (so rotation is followed).
func (a *checkAgent) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || got == "" {
		return false
	}
	valid := false
	if a.cliToken != "" && subtle.ConstantTimeCompare([]byte(got), []byte(a.cliToken)) == 1 {
		valid = true
	}
	for _, k := range a.c.Keys() {
		if subtle.ConstantTimeCompare([]byte(got), []byte(cliToken(k))) == 1 {
			valid = true
		}
	}
	return valid
}

// publish publishes a batch, runs it here too, and collects the results
// of the live members until all answered or wait passed.
func (a *checkAgent) publish(ctx context.Context, file []byte, wait time.Duration) (*checkResponse, int, error) {
	var raw [16]byte
	rand.Read(raw[:])
	batch := checkBatch{Kind: kindBatch, Version: batchVersion, Batch: hex.EncodeToString(raw[:]), TimeoutMS: wait.Milliseconds(), Checks: file}
	data, err := json.Marshal(batch)
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	var expected []string
	for _, n := range a.c.HealthyMembers() {
		expected = append(expected, n.Address())
	}
	sort.Strings(expected)
	col := &collector{results: map[string]checkResult{}, changed: make(chan struct{})}
	a.mu.Lock()
	a.batches[batch.Batch] = col
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.batches, batch.Batch)
		a.mu.Unlock()
	}()
	if _, err := a.c.Publish(data); err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, smudge.ErrMessageTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		return nil, status, fmt.Errorf("publishing the batch: %w", err)
	}
	deadline := time.Now().Add(wait)
	go func() {
		a.running <- struct{}{}
		defer func() { <-a.running }()
		res := a.run(batch, deadline)
		a.printRun(a.self(), batch.Batch, res)
		col.add(res)
	}()

	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		col.mu.Lock()
		answered := 0
		for _, e := range expected {
			if _, ok := col.results[e]; ok {
				answered++
			}
		}
		changed := col.changed
		col.mu.Unlock()
		if answered == len(expected) {
			break
		}
		select {
		case <-changed:
			continue
		case <-timer.C:
		case <-ctx.Done():
			return nil, http.StatusRequestTimeout, ctx.Err()
		}
		break
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	resp := &checkResponse{Version: batchVersion, Batch: batch.Batch, Expected: expected, Nodes: []checkResult{}, Missing: []string{}}
	for _, r := range col.results {
		resp.Nodes = append(resp.Nodes, r)
	}
	sort.Slice(resp.Nodes, func(i, j int) bool { return resp.Nodes[i].Node < resp.Nodes[j].Node })
	for _, e := range expected {
		if _, ok := col.results[e]; !ok {
			resp.Missing = append(resp.Missing, e)
		}
	}
	return resp, http.StatusOK, nil
}
