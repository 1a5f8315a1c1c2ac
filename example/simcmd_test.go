package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// simRun runs `smudge sim args...` in process.
func simRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runSim(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestSimReport(t *testing.T) {
	dir := t.TempDir()
	plot := filepath.Join(dir, "aware.svg")
	code, out, errOut := simRun(t, "-n", "60", "-loss", "5%", "-seed", "3", "-crashes", "2", "-pauses", "1",
		"-partitions", "1", "-partition-size", "6", "-broadcasts", "2", "-plot", plot)
	require.Equal(t, exitOK, code, errOut)
	for _, want := range []string{
		"smudge sim: 60 nodes", "seed 3", "loss 5%", "join: seed",
		"time to converge", "crash detection: 2 crashes", "first DEAD anywhere", "DEAD at all survivors",
		"false DEAD views", "suspicions:", "packets and", "broadcasts: 2 sent", "wall:",
		"crash of n", "pause of n", "partition of 6 nodes",
	} {
		assert.Contains(t, out, want)
	}
	if runtime.GOOS == "linux" {
		assert.Regexp(t, `wall: [0-9.]+ s \(CPU [0-9.]+ s\), peak memory \(RSS\) [0-9]+ MiB`, out)
	}
	svg, err := os.ReadFile(plot)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(svg, []byte("<svg ")))
	assert.Equal(t, 4, bytes.Count(svg, []byte("<polyline")), "two crashes and two broadcasts")
}

func TestSimJSONIsDeterministic(t *testing.T) {
	run := func() map[string]any {
		code, out, errOut := simRun(t, "-n", "40", "-periods", "160", "-join", "boot", "-seed", "9", "-json",
			"-crashes", "0", "-crash", "10s:7", "-pause", "12s+2s:8", "-partition", "15s+5s:4", "-loss", "0.02", "-latency-dist", "pareto")
		require.Equal(t, exitOK, code, errOut)
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &r))
		delete(r, "wall")
		return r
	}
	first := run()
	assert.Equal(t, first, run(), "the same flags and seed give the same report")
	assert.EqualValues(t, 40, first["nodes"])
	assert.EqualValues(t, 40, first["sim_seconds"])
	det := first["detection"].(map[string]any)
	assert.EqualValues(t, 1, det["crashes"])
	crash := det["per_crash"].([]any)[0].(map[string]any)
	assert.EqualValues(t, 7, crash["node"])
	assert.EqualValues(t, 10, crash["at_s"])
	assert.EqualValues(t, 0, first["converge_seconds"], "a bootstrapped cluster starts converged")
}

func TestSimTraceFile(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "trace.log")
	code, _, errOut := simRun(t, "-n", "10", "-duration", "20s", "-crash", "5s:3", "-broadcasts", "0", "-crashes", "0", "-trace", trace)
	require.Equal(t, exitOK, code, errOut)
	b, err := os.ReadFile(trace)
	require.NoError(t, err)
	assert.Contains(t, string(b), "5.000000000s CRASH n3\n")
	assert.Contains(t, string(b), " sees n3 dead ")
}

func TestSimBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "0"}, "-n 0: need at least one node"},
		{[]string{"-loss", "1.5"}, `"1.5": between 0 and 1`},
		{[]string{"-loss", "x"}, `"x": a fraction such as 0.05 or 5%`},
		{[]string{"-latency-dist", "normal"}, `-latency-dist "normal": uniform or pareto`},
		{[]string{"-join", "later"}, `-join "later": seed, boot or auto`},
		{[]string{"-crash", "soon"}, `-crash "soon": time "soon": a duration such as 20s`},
		{[]string{"-crash", "5s:99999", "-n", "10"}, `node "99999": a node index from 0 to 9`},
		{[]string{"-pause", "5s"}, "give a length: AT+FOR"},
		{[]string{"-partition", "5s+1s:100%", "-n", "10"}, `partition size "100%": 10 nodes of 10`},
		{[]string{"-crash", "90s", "-duration", "60s"}, "a crash at 1m30s is after the end of the run (1m0s)"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"-crashes", "-1"}, "fault counts must not be negative"},
	} {
		code, _, errOut := simRun(t, c.args...)
		assert.Equal(t, exitUsage, code, "%v", c.args)
		assert.Contains(t, errOut, c.want, "%v", c.args)
	}
	code, _, errOut := simRun(t, "-h")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, errOut, "Usage: smudge sim [flags]")
}

func TestSimDefaultsLeaveTimeForTheJoinStorm(t *testing.T) {
	o, err := parseSimFlags([]string{"-n", "1000"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, 45*time.Second, o.warmup, "5 s + 40 ms a node")
	assert.Equal(t, 100*time.Second, o.duration)
	o, err = parseSimFlags([]string{"-n", "10000"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, 5*time.Second, o.warmup, "a cluster that large is bootstrapped")
	assert.Equal(t, 60*time.Second, o.duration)
	sc, err := o.scenario()
	require.NoError(t, err)
	assert.Len(t, sc.Faults, 6, "3 crashes and 3 broadcasts by default")
	for _, f := range sc.Faults {
		assert.Greater(t, f.At, o.warmup)
		assert.Less(t, f.At, o.duration)
	}
	assert.True(t, strings.HasPrefix(o.title(), "smudge sim: 10000 nodes"))
}

func TestSimProfiles(t *testing.T) {
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "mem.pprof")
	code, _, errOut := simRun(t, "-n", "20", "-duration", "10s", "-cpuprofile", cpu, "-memprofile", mem)
	require.Equal(t, exitOK, code, errOut)
	for _, p := range []string{cpu, mem} {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		require.Greater(t, len(b), 2, p)
		assert.Equal(t, []byte{0x1f, 0x8b}, b[:2], "%s: a gzipped pprof profile", p)
	}
	code, _, errOut = simRun(t, "-n", "5", "-duration", "5s", "-cpuprofile", filepath.Join(dir, "no", "such", "dir"))
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "no such file or directory")
}

// TestSimRefusesTooLarge: a simulation whose estimated memory exceeds 70%
// of the machine's is refused before it starts, with the reason.
func TestSimRefusesTooLarge(t *testing.T) {
	if totalMemory() == 0 {
		t.Skip("the machine's memory is unknown here")
	}
	var stdout, stderr bytes.Buffer
	require.Equal(t, exitError, runSim([]string{"-n", "1000000", "-periods", "1"}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "more than 70% of this machine's")
	assert.Empty(t, stdout.String())
	assert.Equal(t, uint64(120e8+10000*(64<<10)+(64<<20)), estimateSimMemory(10000, 0))
}
