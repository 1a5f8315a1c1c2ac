package checks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every wait in these tests is bounded by waitBound.
const waitBound = 20 * time.Second

// failing is a check that always fails, with action.
func failing(name, action string) Check {
	return Check{Spec: Spec{Name: name, Type: "always", Action: action}, Checker: constChecker{passed: false}}
}

// markerCheck is a file_exists check of marker whose action creates it.
func markerCheck(t *testing.T, name, marker string) Check {
	t.Helper()
	c, err := DefaultRegistry.build(Spec{Name: name, Type: TypeFileExists, Path: marker, Action: "touch " + marker})
	require.NoError(t, err)
	return c
}

func runOne(t *testing.T, r *Runner, c Check) Result {
	t.Helper()
	results := r.Run(context.Background(), []Check{c})
	require.Len(t, results, 1)
	return results[0]
}

func TestActionRunsOnlyWhenTheCheckFails(t *testing.T) {
	dir := t.TempDir()
	r := &Runner{AllowActions: true}

	// Passing: the action does not run.
	present := filepath.Join(dir, "present")
	require.NoError(t, os.WriteFile(present, nil, 0o644))
	sideEffect := filepath.Join(dir, "side-effect")
	pass := markerCheck(t, "pass", present)
	pass.Action = "touch " + sideEffect
	res := runOne(t, r, pass)
	assert.True(t, res.Passed)
	assert.False(t, res.ActionRan)
	assert.Empty(t, res.ActionNote)
	assert.NoFileExists(t, sideEffect)

	// Failing: the action runs, and the check runs again.
	marker := filepath.Join(dir, "marker")
	res = runOne(t, r, markerCheck(t, "fail", marker))
	assert.False(t, res.Passed)
	assert.Equal(t, marker+" does not exist", res.Reason)
	assert.True(t, res.ActionRan)
	assert.Equal(t, 0, res.ActionExitCode)
	assert.Empty(t, res.ActionNote)
	assert.FileExists(t, marker)
	assert.True(t, res.Fixed)
	assert.Equal(t, marker+" exists (regular file, 0 bytes)", res.RecheckReason)
	assert.Positive(t, res.Duration)
}

func TestActionsAreOffByDefault(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "marker")
	res := runOne(t, &Runner{}, markerCheck(t, "fail", marker))
	assert.False(t, res.Passed)
	assert.False(t, res.ActionRan)
	assert.Equal(t, NoteActionsDisabled, res.ActionNote)
	assert.Equal(t, "actions disabled on this node", res.ActionNote)
	assert.NoFileExists(t, marker)

	// A failing check without an action gets no note.
	res = runOne(t, &Runner{}, failing("no_action", ""))
	assert.False(t, res.Passed)
	assert.Empty(t, res.ActionNote)
}

func TestDryRunRunsNoAction(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "marker")
	res := runOne(t, &Runner{AllowActions: true, DryRun: true}, markerCheck(t, "fail", marker))
	assert.False(t, res.ActionRan)
	assert.Equal(t, NoteDryRun, res.ActionNote)
	assert.NoFileExists(t, marker)
}

func TestActionExitCodeOutputAndDirectory(t *testing.T) {
	r := &Runner{AllowActions: true}
	res := runOne(t, r, failing("f", "pwd; echo out; echo err >&2; exit 3"))
	assert.True(t, res.ActionRan)
	assert.Equal(t, 3, res.ActionExitCode)
	assert.Equal(t, "/\nout\nerr\n", res.ActionOutput, "stdout and stderr, interleaved, run in /")
	assert.False(t, res.ActionOutputTruncated)
	assert.Empty(t, res.ActionNote)
	assert.False(t, res.Fixed)
	assert.Equal(t, "always fails", res.RecheckReason)

	res = runOne(t, r, failing("f", "kill -TERM $$"))
	assert.True(t, res.ActionRan)
	assert.Equal(t, -1, res.ActionExitCode)
	assert.Equal(t, "killed by signal: terminated", res.ActionNote)
}

func TestActionOutputIsCapped(t *testing.T) {
	action := `head -c 10000 /dev/zero | tr '\0' a`
	res := runOne(t, &Runner{AllowActions: true}, failing("f", action))
	assert.Equal(t, 0, res.ActionExitCode)
	assert.True(t, res.ActionOutputTruncated)
	assert.Equal(t, strings.Repeat("a", DefaultMaxOutputBytes)+"\n[output truncated: 5904 more bytes]\n", res.ActionOutput)

	res = runOne(t, &Runner{AllowActions: true, MaxOutputBytes: 10}, failing("f", "seq 1 100"))
	assert.True(t, res.ActionOutputTruncated)
	assert.Equal(t, "1\n2\n3\n4\n5\n[output truncated: 282 more bytes]\n", res.ActionOutput)

	res = runOne(t, &Runner{AllowActions: true, MaxOutputBytes: 10}, failing("f", "printf 0123456789"))
	assert.False(t, res.ActionOutputTruncated, "exactly the cap")
	assert.Equal(t, "0123456789", res.ActionOutput)
}

func TestCapWriterCutsAtACharacterBoundary(t *testing.T) {
	w := &capWriter{limit: 5}
	w.Write([]byte("abcd\u00e9xyz")) // é is 2 bytes: the cap falls inside it
	out, truncated := w.result()
	assert.True(t, truncated)
	assert.Equal(t, "abcd\n[output truncated: 5 more bytes]\n", out)

	w = &capWriter{limit: 4}
	for _, b := range []byte("ab\ncd") {
		n, err := w.Write([]byte{b})
		require.NoError(t, err)
		require.Equal(t, 1, n, "writes past the cap still succeed")
	}
	out, _ = w.result()
	assert.Equal(t, "ab\nc\n[output truncated: 1 more bytes]\n", out)
}

// readPID waits until the action wrote a PID into file.
func readPID(t *testing.T, file string) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(file)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	}, waitBound, 5*time.Millisecond, "the action did not write its PID")
	return pid
}

// processGone reports whether process pid has exited (a zombie has).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return os.IsNotExist(err)
	}
	// pid (comm) STATE ...
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}

func TestActionTimeoutKillsItsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The shell starts a grandchild that would outlive it, then waits for
	// it. Killing only the shell would leave the grandchild running, and
	// holding the output pipe.
	action := fmt.Sprintf("sleep 3600 & echo $! > %s; wait", pidFile)
	r := &Runner{AllowActions: true, ActionTimeout: 2 * time.Second}
	start := time.Now()
	res := runOne(t, r, failing("slow", action))
	elapsed := time.Since(start)

	assert.True(t, res.ActionRan)
	assert.Equal(t, -1, res.ActionExitCode)
	assert.Equal(t, "timed out after 2s; its process group was killed", res.ActionNote)
	assert.Less(t, elapsed, 2*time.Second+actionWaitDelay, "the action's pipes were closed by the kill, not by the wait delay")
	grandchild := readPID(t, pidFile)
	require.Eventually(t, func() bool { return processGone(grandchild) }, waitBound, 5*time.Millisecond,
		"the action's grandchild %d survived the timeout", grandchild)
}

func TestCancellationKillsTheActionsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	action := fmt.Sprintf("sleep 3600 & echo $! > %s; wait", pidFile)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan []Result, 1)
	go func() {
		done <- (&Runner{AllowActions: true, ActionTimeout: time.Hour}).Run(ctx, []Check{failing("slow", action)})
	}()
	grandchild := readPID(t, pidFile) // the action runs
	cancel()
	var results []Result
	select {
	case results = <-done:
	case <-time.After(waitBound):
		t.Fatal("Run did not return after its context was canceled")
	}
	require.Len(t, results, 1)
	assert.True(t, results[0].ActionRan)
	assert.Equal(t, -1, results[0].ActionExitCode)
	assert.Equal(t, "stopped (context canceled); its process group was killed", results[0].ActionNote)
	assert.Empty(t, results[0].RecheckReason, "no second run after cancellation")
	require.Eventually(t, func() bool { return processGone(grandchild) }, waitBound, 5*time.Millisecond,
		"the action's grandchild %d survived the cancellation", grandchild)
}

func TestActionMayLeaveABackgroundProcess(t *testing.T) {
	// An action may start a daemon. If the daemon keeps the action's
	// output open, the output is read for actionWaitDelay after the
	// action exits, then given up; the daemon keeps running.
	pidFile := filepath.Join(t.TempDir(), "pid")
	action := fmt.Sprintf("sleep 3600 & echo $! > %s; echo started", pidFile)
	res := runOne(t, &Runner{AllowActions: true}, failing("daemon", action))
	daemon := readPID(t, pidFile)
	t.Cleanup(func() { syscall.Kill(daemon, syscall.SIGKILL) })
	assert.True(t, res.ActionRan)
	assert.Equal(t, 0, res.ActionExitCode)
	assert.Equal(t, "started\n", res.ActionOutput)
	assert.Contains(t, res.ActionNote, "processes it started in the background still held its output 2s after it exited")
	assert.False(t, processGone(daemon), "the daemon was killed")
}

// gate is a Checker that records how many of its checks run at once and
// blocks each until released.
type gate struct {
	running, maxRunning atomic.Int32
	started             chan string
	release             chan struct{}
}

func newGate(n int) *gate {
	return &gate{started: make(chan string, n), release: make(chan struct{})}
}

func (g *gate) Check(ctx context.Context, env Env) (bool, string) {
	n := g.running.Add(1)
	for {
		m := g.maxRunning.Load()
		if n <= m || g.maxRunning.CompareAndSwap(m, n) {
			break
		}
	}
	g.started <- "started"
	defer g.running.Add(-1)
	select {
	case <-g.release:
		return true, "released"
	case <-ctx.Done():
		return false, ctx.Err().Error()
	}
}

func (g *gate) awaitStart(t *testing.T) {
	t.Helper()
	select {
	case <-g.started:
	case <-time.After(waitBound):
		t.Fatal("no check started")
	}
}

func TestConcurrencyIsBounded(t *testing.T) {
	for _, k := range []int{1, 3} {
		t.Run(fmt.Sprintf("at most %d", k), func(t *testing.T) {
			const n = 10
			g := newGate(n)
			var checks []Check
			for i := range n {
				checks = append(checks, Check{Spec: Spec{Name: fmt.Sprintf("c%02d", i), Type: "gate"}, Checker: g})
			}
			done := make(chan []Result, 1)
			go func() { done <- (&Runner{Concurrency: k}).Run(context.Background(), checks) }()

			// k checks start; each release lets exactly one more start.
			for range k {
				g.awaitStart(t)
			}
			for range n - k {
				assert.LessOrEqual(t, g.running.Load(), int32(k))
				g.release <- struct{}{}
				g.awaitStart(t)
			}
			for range k {
				g.release <- struct{}{}
			}
			select {
			case results := <-done:
				require.Len(t, results, n)
			case <-time.After(waitBound):
				t.Fatal("Run did not return")
			}
			assert.Equal(t, int32(k), g.maxRunning.Load(), "most checks running at once")
		})
	}
}

func TestDefaultConcurrency(t *testing.T) {
	const n = DefaultConcurrency + 3
	g := newGate(n)
	var checks []Check
	for i := range n {
		checks = append(checks, Check{Spec: Spec{Name: strconv.Itoa(i), Type: "gate"}, Checker: g})
	}
	done := make(chan []Result, 1)
	go func() { done <- (&Runner{}).Run(context.Background(), checks) }()
	for range DefaultConcurrency {
		g.awaitStart(t)
	}
	close(g.release)
	select {
	case <-done:
	case <-time.After(waitBound):
		t.Fatal("Run did not return")
	}
	assert.Equal(t, int32(DefaultConcurrency), g.maxRunning.Load())
}

func TestResultsAreSortedByName(t *testing.T) {
	names := []string{"delta", "alpha", "echo", "charlie", "bravo", "alpha2"}
	var checks []Check
	for i, name := range names {
		checks = append(checks, Check{Spec: Spec{Name: name, Type: "always"}, Checker: constChecker{passed: i%2 == 0}})
	}
	results := (&Runner{Concurrency: 3}).Run(context.Background(), checks)
	var got []string
	for _, r := range results {
		got = append(got, r.Name)
		assert.Equal(t, "always", r.Type)
	}
	want := append([]string(nil), names...)
	sort.Strings(want)
	assert.Equal(t, want, got)

	assert.Empty(t, (&Runner{}).Run(context.Background(), nil))
}

func TestCheckTimeoutAndPanics(t *testing.T) {
	g := newGate(1) // never released: the check ends with its timeout
	checks := []Check{
		{Spec: Spec{Name: "hangs", Type: "gate"}, Checker: g},
		{Spec: Spec{Name: "panics", Type: "bad"}, Checker: panicChecker{}},
		{Spec: Spec{Name: "nil", Type: "bad"}},
	}
	results := (&Runner{CheckTimeout: 50 * time.Millisecond}).Run(context.Background(), checks)
	require.Len(t, results, 3)
	assert.False(t, results[0].Passed)
	assert.Equal(t, "context deadline exceeded", results[0].Reason)
	assert.Equal(t, "nil", results[1].Name)
	assert.False(t, results[1].Passed)
	assert.Equal(t, "no checker", results[1].Reason)
	assert.False(t, results[2].Passed)
	assert.Equal(t, "the checker of type bad panicked: boom", results[2].Reason)
}

type panicChecker struct{}

func (panicChecker) Check(context.Context, Env) (bool, string) { panic("boom") }

func TestRunWithADoneContextRunsNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	marker := filepath.Join(t.TempDir(), "marker")
	results := (&Runner{AllowActions: true}).Run(ctx, []Check{markerCheck(t, "a", marker), failing("b", "true")})
	require.Len(t, results, 2)
	for _, r := range results {
		assert.False(t, r.Passed)
		assert.Equal(t, "not run: context canceled", r.Reason)
		assert.False(t, r.ActionRan)
	}
	assert.NoFileExists(t, marker)
}

func TestRunnerUsesItsFileSystems(t *testing.T) {
	r := &Runner{FS: fstest.MapFS{"etc/resolv.conf": {Data: []byte("nameserver 8.8.8.8\n")}}}
	checks, err := Parse([]byte(`{
		"resolv": {"type": "file_contains", "path": "/etc/resolv.conf", "check": "8.8.8.8"},
		"hosts": {"type": "file_exists", "path": "/etc/hosts"}
	}`))
	require.NoError(t, err)
	results := r.Run(context.Background(), checks)
	assert.False(t, results[0].Passed, "hosts is not in the fake file system")
	assert.Equal(t, "/etc/hosts does not exist", results[0].Reason)
	assert.True(t, results[1].Passed)
}

func TestReportJSONSchema(t *testing.T) {
	full := Result{
		Name: "n", Type: "t", Passed: false, Reason: "r",
		ActionRan: true, ActionExitCode: 1, ActionOutput: "o", ActionOutputTruncated: true,
		ActionNote: "note", Fixed: true, RecheckReason: "rr", Duration: 1500 * time.Microsecond,
	}
	rep := NewReport([]Result{full, {Name: "p", Type: "t", Passed: true, Reason: "ok"}})
	data, err := json.Marshal(rep)
	require.NoError(t, err)

	var generic map[string]any
	require.NoError(t, json.Unmarshal(data, &generic))
	assert.ElementsMatch(t, []string{"version", "checks", "passed", "failed", "results"}, keys(generic))
	assert.EqualValues(t, 1, generic["version"])
	assert.EqualValues(t, 2, generic["checks"])
	assert.EqualValues(t, 1, generic["passed"])
	assert.EqualValues(t, 1, generic["failed"])

	results := generic["results"].([]any)
	first := results[0].(map[string]any)
	assert.ElementsMatch(t, []string{"name", "type", "passed", "reason", "action_ran", "action_exit_code",
		"action_output", "action_output_truncated", "action_note", "fixed", "recheck_reason", "duration_ns"}, keys(first))
	assert.EqualValues(t, 1500000, first["duration_ns"])
	// Empty strings are left out; booleans and numbers are always there.
	second := results[1].(map[string]any)
	assert.ElementsMatch(t, []string{"name", "type", "passed", "reason", "action_ran", "action_exit_code",
		"action_output_truncated", "fixed", "duration_ns"}, keys(second))

	var back Report
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, rep, back)

	// No results: an empty list, not null.
	data, err = json.Marshal(NewReport(nil))
	require.NoError(t, err)
	assert.JSONEq(t, `{"version": 1, "checks": 0, "passed": 0, "failed": 0, "results": []}`, string(data))
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestSummary(t *testing.T) {
	assert.Equal(t, "1 check, 1 passed, 0 failed", NewReport([]Result{{Passed: true}}).Summary())
	assert.Equal(t, "3 checks, 1 passed, 2 failed", NewReport([]Result{{Passed: true}, {}, {}}).Summary())
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteTable(&b, []Result{
		{Name: "resolv_has_8888", Type: "file_contains", Passed: true, Reason: `/etc/resolv.conf contains "8.8.8.8"`},
		{Name: "odd", Type: "custom", Reason: "two\nlines"},
	}))
	assert.Equal(t, ""+
		"NAME             TYPE           RESULT  REASON\n"+
		"resolv_has_8888  file_contains  PASS    /etc/resolv.conf contains \"8.8.8.8\"\n"+
		"odd              custom         FAIL    \"two\\nlines\"\n"+
		"2 checks, 1 passed, 1 failed\n", b.String())

	b.Reset()
	require.NoError(t, WriteTable(&b, []Result{
		{Name: "a", Type: "file_exists", Reason: "/a does not exist", ActionNote: NoteDryRun},
		{Name: "b", Type: "file_exists", Reason: "/b does not exist", ActionRan: true, Fixed: true, RecheckReason: "/b exists"},
		{Name: "c", Type: "file_exists", Reason: "/c does not exist", ActionRan: true, ActionExitCode: 1, RecheckReason: "/c does not exist"},
		{Name: "d", Type: "file_exists", Passed: true, Reason: "/d exists"},
	}))
	assert.Equal(t, ""+
		"NAME  TYPE         RESULT  REASON             ACTION\n"+
		"a     file_exists  FAIL    /a does not exist  dry run: action not run\n"+
		"b     file_exists  FAIL    /b does not exist  ran, exit 0, fixed\n"+
		"c     file_exists  FAIL    /c does not exist  ran, exit 1, still failing: /c does not exist\n"+
		"d     file_exists  PASS    /d exists\n"+
		"4 checks, 1 passed, 3 failed\n", b.String())
}
