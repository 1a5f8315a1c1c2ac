package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// End-to-end tests: they build the smudge binary and run it as separate
// processes on loopback. Every wait is on the processes' output, bounded.

const (
	buildTimeout = 3 * time.Minute
	joinTimeout  = 20 * time.Second // every node sees every node ALIVE
	eventTimeout = 10 * time.Second // a broadcast or a leave is seen
	exitTimeout  = 10 * time.Second // a process exits after SIGTERM
)

// buildBinary builds the demo binary into a temporary directory, with the
// race detector when the tests run with it. It skips the test if the go
// command is not on PATH.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped in -short mode")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not on PATH: cannot build the binary")
	}
	bin := filepath.Join(t.TempDir(), "smudge")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, append(args, ".")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// cleanEnv is the test's environment without SMUDGE_* variables, plus extra.
// Multicast discovery is off: the nodes join with -node, and must not find
// the nodes of other tests running on this host at the same time.
func cleanEnv(extra ...string) []string {
	env := []string{"SMUDGE_MULTICAST_ENABLED=false"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SMUDGE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is one running smudge process whose stdout is collected line by line.
type proc struct {
	t     *testing.T
	name  string
	addr  string // 127.0.0.1:port
	cmd   *exec.Cmd
	stdin io.WriteCloser
	errs  syncBuffer // stderr

	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced when a line arrives or the process exits
	exited  bool
	exitErr error
	done    chan struct{} // closed when the process has exited
}

// freePort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free UDP port: %v", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// startNode starts a node on a free port and waits until it prints its own
// ALIVE line. If the port was taken meanwhile it tries another.
func startNode(t *testing.T, bin, name string, args ...string) *proc {
	t.Helper()
	for try := 0; ; try++ {
		port := freePort(t)
		p := startProc(t, bin, name, fmt.Sprintf("127.0.0.1:%d", port),
			append([]string{"-port", fmt.Sprint(port)}, args...)...)
		err := p.waitFor(eventTimeout, "its own ALIVE line", func(lines []string) bool {
			return hasEvent(lines, p.addr, "ALIVE")
		})
		if err == nil {
			return p
		}
		if p.hasExited() && strings.Contains(p.errs.String(), "address already in use") && try < 5 {
			t.Logf("%s: port %d was taken; trying another", name, port)
			continue
		}
		t.Fatalf("%s: %v", name, err)
	}
}

// startProc starts bin with args and collects its output. The process is
// killed when the test ends.
func startProc(t *testing.T, bin, name, addr string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, addr: addr, changed: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = cleanEnv()
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
		select {
		case <-p.done:
		case <-time.After(exitTimeout):
			t.Errorf("%s: still running %v after SIGKILL", name, exitTimeout)
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("%s (%s) stdout:\n%s\n%s stderr:\n%s", name, addr, strings.Join(p.lines, "\n"), name, p.errs.String())
			p.mu.Unlock()
		}
	})
	return p
}

// collect reads stdout to the end, then reaps the process.
func (p *proc) collect(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
	io.Copy(io.Discard, stdout)
	err := p.cmd.Wait()
	p.mu.Lock()
	p.exited, p.exitErr = true, err
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	close(p.done)
}

func (p *proc) hasExited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// waitFor waits until cond holds for the lines printed so far. It fails
// when timeout passes or the process exits first.
func (p *proc) waitFor(timeout time.Duration, what string, cond func(lines []string) bool) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		ok, exited, exitErr, changed := cond(p.lines), p.exited, p.exitErr, p.changed
		p.mu.Unlock()
		switch {
		case ok:
			return nil
		case exited:
			return fmt.Errorf("exited (%v) before printing %s; stderr:\n%s", exitErr, what, p.errs.String())
		}
		select {
		case <-changed:
		case <-timer.C:
			return fmt.Errorf("no %s within %v", what, timeout)
		}
	}
}

// mustSee is waitFor that fails the test.
func (p *proc) mustSee(timeout time.Duration, what string, cond func(lines []string) bool) {
	p.t.Helper()
	if err := p.waitFor(timeout, what, cond); err != nil {
		p.t.Fatalf("%s (%s): %v", p.name, p.addr, err)
	}
}

// event splits an output line "<15:04:05.000> <address> <rest>". ok is
// false if the line does not have that shape.
func event(line string) (addr, rest string, ok bool) {
	ts, after, ok1 := strings.Cut(line, " ")
	addr, rest, ok2 := strings.Cut(after, " ")
	if !ok1 || !ok2 {
		return "", "", false
	}
	if _, err := time.Parse(timeFormat, ts); err != nil {
		return "", "", false
	}
	return addr, rest, true
}

// hasEvent reports whether some line is "<time> addr rest".
func hasEvent(lines []string, addr, rest string) bool {
	for _, l := range lines {
		if a, r, ok := event(l); ok && a == addr && r == rest {
			return true
		}
	}
	return false
}

func TestEndToEnd(t *testing.T) {
	bin := buildBinary(t)

	n1 := startNode(t, bin, "node1")
	n2 := startNode(t, bin, "node2", "-node", n1.addr)
	n3 := startNode(t, bin, "node3", "-node", n1.addr)
	nodes := []*proc{n1, n2, n3}

	// Every node sees all three ALIVE, within one overall deadline.
	deadline := time.Now().Add(joinTimeout)
	for _, n := range nodes {
		for _, m := range nodes {
			n.mustSee(time.Until(deadline), m.addr+" ALIVE", func(lines []string) bool {
				return hasEvent(lines, m.addr, "ALIVE")
			})
		}
	}
	for _, n := range nodes {
		n.mu.Lock()
		for _, l := range n.lines {
			if _, _, ok := event(l); !ok {
				t.Errorf("%s: malformed output line %q", n.name, l)
			}
		}
		n.mu.Unlock()
	}

	// End of input on node 2 only stops its reading: it must keep running
	// (it has to see node 3 leave below).
	n2.stdin.Close()

	// An over-long line is reported on stderr and not sent; the node goes
	// on and broadcasts the next line.
	long := strings.Repeat("x", 300)
	msg := "hello from node1"
	if _, err := io.WriteString(n1.stdin, long+"\n"+msg+"\n"); err != nil {
		t.Fatalf("writing to node1: %v", err)
	}
	for _, n := range []*proc{n2, n3} {
		n.mustSee(eventTimeout, "the broadcast", func(lines []string) bool {
			return hasEvent(lines, n1.addr, "BROADCAST "+msg)
		})
	}
	if !strings.Contains(n1.errs.String(), "line not broadcast: 300 bytes") {
		t.Errorf("node1: no error for the over-long line on stderr:\n%s", n1.errs.String())
	}
	for _, n := range []*proc{n2, n3} {
		n.mu.Lock()
		for _, l := range n.lines {
			if strings.Contains(l, long[:100]) {
				t.Errorf("%s received the over-long line: %q", n.name, l)
			}
		}
		n.mu.Unlock()
	}

	// SIGTERM: node 3 leaves gracefully and exits 0; the others see it
	// DEAD (left).
	if err := n3.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM node3: %v", err)
	}
	select {
	case <-n3.done:
	case <-time.After(exitTimeout):
		t.Fatalf("node3 still running %v after SIGTERM", exitTimeout)
	}
	if err := n3.exitErr; err != nil {
		t.Errorf("node3 after SIGTERM: %v, want exit status 0; stderr:\n%s", err, n3.errs.String())
	}
	for _, n := range []*proc{n1, n2} {
		n.mustSee(eventTimeout, n3.addr+" DEAD (left)", func(lines []string) bool {
			return hasEvent(lines, n3.addr, "DEAD (left)")
		})
	}
}

func TestBadConfigExits2(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want []string // in stderr
	}{
		{"bad env", []string{"SMUDGE_HEARTBEAT_MILLIS=abc"}, nil, []string{"SMUDGE_HEARTBEAT_MILLIS", "abc"}},
		{"bad env port", []string{"SMUDGE_LISTEN_PORT=70000"}, nil, []string{"SMUDGE_LISTEN_PORT", "70000"}},
		{"bad flag value", nil, []string{"-hbf", "abc"}, []string{"-hbf", "abc"}},
		{"negative heartbeat", nil, []string{"-hbf", "-5"}, []string{"-hbf", "-5"}},
		{"bad listen ip", nil, []string{"-listen-ip", "nope"}, []string{"-listen-ip", "nope"}},
		{"bad log level", nil, []string{"-log-level", "loud"}, []string{"-log-level", "loud"}},
		{"unknown flag", nil, []string{"-bogus"}, []string{"bogus"}},
		{"extra argument", nil, []string{"extra"}, []string{"extra"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), exitTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, append([]string{"-port", "0"}, tc.args...)...)
			cmd.Env = cleanEnv(tc.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit: %v, want exit status 2; stderr:\n%s", err, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not mention %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}
