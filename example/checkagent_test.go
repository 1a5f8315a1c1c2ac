package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seed-c7906467/smudge"
	"github.com/seed-c7906467/smudge/checks"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckAgentFlags(t *testing.T) {
	parse := func(args ...string) (smudge.Config, error) {
		t.Helper()
		var agent agentOptions
		cfg, err := parseConfig(args, io.Discard, &agent)
		if err != nil {
			return cfg, err
		}
		return cfg, agent.checks.apply(&cfg)
	}
	cfg, err := parse("-bind", "127.0.0.2:7000", "-peers", "127.0.0.1:7001,127.0.0.1:7002", "-gossip-group", "3", "-state-dir", "/tmp/x")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.2", cfg.ListenIP.String())
	assert.Equal(t, 7000, cfg.ListenPort)
	assert.Equal(t, []string{"127.0.0.1:7001", "127.0.0.1:7002"}, cfg.InitialHosts)
	assert.Equal(t, 3, cfg.GossipGroup)
	assert.Equal(t, "/tmp/x", cfg.StateDir)

	cfg, err = parse("-node", "127.0.0.1:1", "-peers", "127.0.0.1:2", "-bind", "[::1]:7000")
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:1", "127.0.0.1:2"}, cfg.InitialHosts)
	assert.Equal(t, "::1", cfg.ListenIP.String())

	cfg, err = parse()
	require.NoError(t, err)
	assert.Equal(t, smudge.DefaultGossipGroup, cfg.GossipGroup)

	for _, bad := range [][]string{
		{"-bind", "127.0.0.1"},
		{"-bind", "127.0.0.1:1", "-port", "2"},
		{"-gossip-group", "0"},
		{"-gossip-group", "100"},
		{"-cli-bind", "0.0.0.0:5924"},
		{"-cli-bind", "10.1.2.3:5924"},
		{"-cli-bind", "localhost"},
	} {
		_, err := parse(bad...)
		assert.Error(t, err, "%v", bad)
	}
	_, err = parse("-cli-bind", "0.0.0.0:5924", "-no-cli")
	assert.NoError(t, err, "-no-cli: the address does not matter")
}

// agentFor starts a node and its check agent with the given options.
func agentFor(t *testing.T, keys [][]byte, opts checkOptions) (*smudge.Cluster, *checkAgent, *bytes.Buffer) {
	t.Helper()
	cfg := smudge.DefaultConfig()
	cfg.ListenIP = net.ParseIP("127.0.0.1")
	cfg.ListenPort = 0
	cfg.MulticastEnabled = false
	cfg.Keys = keys
	cfg.LogThreshold = smudge.LogWarn
	cfg.ClusterName = "checks-" + t.Name()
	c, err := smudge.New(cfg)
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() { c.Shutdown() })
	var out, errs bytes.Buffer
	opts.noCLI = true
	opts.start(c, cfg, newLineWriter(&out), &errs)
	a := &checkAgent{c: c, out: newLineWriter(&out), stderr: &errs, batches: map[string]*collector{},
		running: make(chan struct{}, 1), waiting: make(chan struct{}, 1)}
	return c, a, &errs
}

func TestActionsNeedTheFlagTheVariableAndAKey(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	for _, tc := range []struct {
		flag, env, key bool
		want           string
	}{
		{true, true, true, "actions of failing checks will run"},
		{false, true, true, ""},
		{true, false, true, "needs SMUDGE_ALLOW_ACTIONS=true"},
		{true, true, false, "the cluster has no key"},
	} {
		t.Run(fmt.Sprintf("flag=%v,env=%v,key=%v", tc.flag, tc.env, tc.key), func(t *testing.T) {
			t.Setenv(envAllowActions, fmt.Sprint(tc.env))
			var keys [][]byte
			if tc.key {
				keys = [][]byte{key}
			}
			cfg := smudge.DefaultConfig()
			cfg.Keys = keys
			var out, errs bytes.Buffer
			c, err := smudge.New(cfg)
			require.NoError(t, err)
			o := checkOptions{allowActions: tc.flag, noCLI: true}
			o.start(c, cfg, newLineWriter(&out), &errs)
			if tc.want == "" {
				assert.Empty(t, errs.String())
			} else {
				assert.Contains(t, errs.String(), tc.want)
			}
		})
	}
}

func TestCheckBatchRunsWithoutActionsWhenDisabled(t *testing.T) {
	dir := t.TempDir()
	file := fmt.Sprintf(`{"marker": {"type": "file_exists", "path": %q, "action": "touch %s"}}`,
		filepath.Join(dir, "marker"), filepath.Join(dir, "marker"))
	_, a, _ := agentFor(t, nil, checkOptions{})
	res := a.run(checkBatch{Kind: kindBatch, Version: batchVersion, Batch: "b1", Checks: json.RawMessage(file)}, time.Now().Add(10*time.Second))
	require.NotNil(t, res.Report)
	require.Len(t, res.Report.Results, 1)
	assert.False(t, res.Report.Results[0].ActionRan)
	assert.Equal(t, checks.NoteActionsDisabled, res.Report.Results[0].ActionNote)
	assert.False(t, res.ActionsEnabled)
	_, err := os.Stat(filepath.Join(dir, "marker"))
	assert.True(t, os.IsNotExist(err))

	bad := a.run(checkBatch{Checks: json.RawMessage(`{"x": {"type": "nope"}}`)}, time.Now().Add(time.Second))
	assert.Contains(t, bad.Error, "bad checks file")
}

func TestCLIEndpointNeedsAToken(t *testing.T) {
	key := bytes.Repeat([]byte{2}, 32)
	c, a, _ := agentFor(t, [][]byte{key}, checkOptions{})
	srv := httptest.NewServer(a.handler())
	defer srv.Close()
	post := func(token, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/checks?timeout=2s", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	file := `{"ok": {"type": "file_exists", "path": "/"}}`
	code, _ := post("", file)
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = post(cliToken(bytes.Repeat([]byte{3}, 32)), file)
	assert.Equal(t, http.StatusUnauthorized, code, "another key's token")
	code, body := post(cliToken(key), `{"x": {"type": "file_exists"}}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, `check "x": field "path"`)
	code, body = post(cliToken(key), file)
	require.Equal(t, http.StatusOK, code, body)
	var resp checkResponse
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	assert.Equal(t, []string{c.LocalNode().Address()}, resp.Expected)
	require.Len(t, resp.Nodes, 1)
	assert.Equal(t, 1, resp.Nodes[0].Report.Passed)
	assert.Empty(t, resp.Missing)

	// Rotation: a new key's token works once the key is installed.
	newKey := bytes.Repeat([]byte{4}, 32)
	code, _ = post(cliToken(newKey), file)
	assert.Equal(t, http.StatusUnauthorized, code)
	require.NoError(t, c.InstallKey(newKey))
	code, _ = post(cliToken(newKey), file)
	assert.Equal(t, http.StatusOK, code)

	// An explicit token.
	a.cliToken = "a-long-enough-explicit-token"
	code, _ = post("a-long-enough-explicit-token", file)
	assert.Equal(t, http.StatusOK, code)
}

func TestCheckCommandOutputAndExitStatus(t *testing.T) {
	report := checks.NewReport([]checks.Result{{Name: "a", Type: "file_exists", Passed: true, Reason: "/a exists"}})
	failing := checks.NewReport([]checks.Result{{Name: "a", Type: "file_exists", Reason: "/a does not exist",
		ActionRan: true, RecheckReason: "/a exists", Fixed: true}})
	resp := checkResponse{
		Version: 1, Batch: "b", Expected: []string{"10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"},
		Nodes: []checkResult{
			{Node: "10.0.0.1:1", ActionsEnabled: true, Report: &failing},
			{Node: "10.0.0.2:1", Report: &report},
		},
		Missing: []string{"10.0.0.3:1"},
	}
	var out bytes.Buffer
	require.NoError(t, writeCheckResponse(&out, resp))
	s := out.String()
	assert.Contains(t, s, "== 10.0.0.1:1 (actions enabled)\n")
	assert.Contains(t, s, "ran, exit 0, fixed")
	assert.Contains(t, s, "== 10.0.0.2:1 (actions disabled)\n")
	assert.Contains(t, s, "NO ANSWER from 1 node: 10.0.0.3:1\n")
	assert.Contains(t, s, "2 of 3 nodes answered, 1 with failures; 2 checks, 1 passed, 1 failed\n")
	assert.False(t, resp.allPassed())
	resp.Missing = nil
	resp.Nodes[0].Report = &report
	assert.True(t, resp.allPassed())
	resp.Nodes[0].Error = "bad"
	assert.False(t, resp.allPassed())
}

func TestCheckCommandErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	require.NoError(t, os.WriteFile(good, []byte(`{"ok": {"type": "file_exists", "path": "/"}}`), 0o600))
	badFile := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(badFile, []byte(`{"nginx": {"type": "process_running", "acton": "x"}}`), 0o600))
	run := func(env map[string]string, args ...string) (int, string) {
		for _, k := range []string{smudge.EnvVarEncryptionKeys, envCLIToken} {
			t.Setenv(k, env[k])
		}
		var out, errs bytes.Buffer
		code := runCheck(args, &out, &errs)
		return code, out.String() + errs.String()
	}
	key := map[string]string{smudge.EnvVarEncryptionKeys: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))}
	code, msg := run(key)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, msg, "-file is required")
	code, msg = run(key, "-file", badFile)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, msg, `check "nginx": field "acton": unknown field`)
	code, msg = run(nil, "-file", good)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, msg, "no credentials")
	code, _ = run(key, "-file", good, "-server", "10.0.0.1:5924")
	assert.Equal(t, exitUsage, code)
	code, _ = run(key, "-file", good, "-timeout", "1ms")
	assert.Equal(t, exitUsage, code)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	code, msg = run(key, "-file", good, "-server", addr)
	assert.Equal(t, exitError, code)
	assert.Contains(t, msg, "is it running")
	code, _ = run(nil, "-h")
	assert.Equal(t, exitOK, code)
}

// startAgentProc is startProc with environment variables added.
func startAgentProc(t *testing.T, bin, name, addr string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, addr: addr, changed: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = cleanEnv(env...)
	p.cmd.Stderr = &p.errs
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start(), name)
	go p.collect(stdout)
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			p.mu.Lock()
			t.Logf("%s (%s) stdout:\n%s\n%s stderr:\n%s", name, addr, strings.Join(p.lines, "\n"), name, p.errs.String())
			p.mu.Unlock()
		}
	})
	return p
}

// freeTCPUDPPort returns a port free for both TCP and UDP on 127.0.0.1 a
// moment ago.
func freeTCPUDPPort(t *testing.T) int {
	t.Helper()
	for {
		port := freePort(t)
		ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			ln.Close()
			return port
		}
	}
}

// startAgents starts n agents that join the first; agent 0 serves the CLI.
func startAgents(t *testing.T, bin string, n int, env []string, extra ...string) (agents []*proc, cliAddr string) {
	t.Helper()
	cliAddr = fmt.Sprintf("127.0.0.1:%d", freeTCPUDPPort(t))
	for i := range n {
		port := freeTCPUDPPort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		args := append([]string{"-bind", addr, "-log-level", "warn"}, extra...)
		if i == 0 {
			args = append(args, "-cli-bind", cliAddr)
		} else {
			args = append(args, "-no-cli", "-peers", agents[0].addr)
		}
		agents = append(agents, startAgentProc(t, bin, fmt.Sprintf("agent%d", i+1), addr, env, args...))
	}
	deadline := time.Now().Add(joinTimeout)
	for _, a := range agents {
		for _, b := range agents {
			a.mustSee(time.Until(deadline), b.addr+" ALIVE", func(lines []string) bool { return hasEvent(lines, b.addr, "ALIVE") })
		}
	}
	return agents, cliAddr
}

// TestCheckEndToEnd: five real agents on loopback with a key, actions
// allowed; smudge check prints five nodes' results, the failing check's
// action ran on each, and it exits 1. Then one agent is killed: the next
// smudge check names it as not answering.
func TestCheckEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	env := []string{smudge.EnvVarEncryptionKeys + "=" + key, envAllowActions + "=true"}
	agents, cliAddr := startAgents(t, bin, 5, env, "-allow-actions")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver 8.8.8.8\n"), 0o600))
	log := filepath.Join(dir, "actions.log")
	file := filepath.Join(dir, "checks.json")
	require.NoError(t, os.WriteFile(file, fmt.Appendf(nil, `{
		"resolv_has_8888": {"type": "file_contains", "path": %q, "check": "8.8.8.8"},
		"marker_exists": {"type": "file_exists", "path": %q, "action": "echo ran >> %s"}
	}`, filepath.Join(dir, "resolv.conf"), filepath.Join(dir, "marker"), log), 0o600))

	check := func(args ...string) (int, string, time.Duration) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"check", "-server", cliAddr, "-file", file}, args...)...)
		cmd.Env = cleanEnv(smudge.EnvVarEncryptionKeys + "=" + key)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		took := time.Since(start)
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		return code, out.String(), took
	}

	code, out, took := check("-timeout", "20s")
	t.Logf("smudge check took %v:\n%s", took, out)
	assert.Equal(t, exitError, code, "a check failed")
	for _, a := range agents {
		assert.Contains(t, out, "== "+a.addr+" (actions enabled)\n")
	}
	assert.Equal(t, 5, strings.Count(out, "resolv_has_8888  file_contains  PASS"))
	assert.Equal(t, 5, strings.Count(out, "ran, exit 0, still failing"))
	assert.Contains(t, out, "5 of 5 nodes answered, 5 with failures; 10 checks, 5 passed, 5 failed\n")
	ran, err := os.ReadFile(log)
	require.NoError(t, err)
	assert.Equal(t, strings.Repeat("ran\n", 5), string(ran), "the action ran once on each node")
	for _, a := range agents {
		a.mustSee(eventTimeout, "its CHECKS line", func(lines []string) bool {
			for _, l := range lines {
				if addr, rest, ok := event(l); ok && addr == a.addr && strings.HasPrefix(rest, "CHECKS batch ") {
					return true
				}
			}
			return false
		})
	}

	// JSON, and a node that does not answer.
	agents[4].cmd.Process.Kill()
	<-agents[4].done
	code, out, _ = check("-json", "-timeout", "3s")
	assert.Equal(t, exitError, code)
	var resp checkResponse
	require.NoError(t, json.Unmarshal([]byte(out), &resp), out)
	if assert.Len(t, resp.Missing, 1) {
		assert.Equal(t, agents[4].addr, resp.Missing[0])
	}
	assert.Len(t, resp.Nodes, 4)
	ran, _ = os.ReadFile(log)
	assert.Equal(t, 9, strings.Count(string(ran), "ran"))
}
