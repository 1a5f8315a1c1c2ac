package sim_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/sim"
)

const period = 250 * time.Millisecond

// everything is a scenario that uses every knob of the simulator.
func everything(seed uint64) sim.Scenario {
	return sim.Scenario{
		Config: sim.Config{Seed: seed, Latency: 2 * time.Millisecond, Jitter: 3 * time.Millisecond,
			Dist: sim.LatencyPareto, Loss: 0.03, Engine: sim.DefaultEngineConfig()},
		Nodes: 40, Duration: 50 * time.Second, Join: sim.JoinSeed,
		Faults: []sim.Fault{
			{Kind: sim.FaultBroadcast, At: 12 * time.Second, Count: 2},
			{Kind: sim.FaultCrash, At: 13 * time.Second, For: 8 * time.Second}, // and a restart
			{Kind: sim.FaultCrash, At: 14 * time.Second},
			{Kind: sim.FaultPause, At: 15 * time.Second, For: 3 * time.Second},
			{Kind: sim.FaultPartition, At: 17 * time.Second, For: 6 * time.Second, Count: 5},
			{Kind: sim.FaultCut, At: 26 * time.Second, For: 4 * time.Second, Count: 6},
			{Kind: sim.FaultLeave, At: 31 * time.Second},
			{Kind: sim.FaultJoin, At: 32 * time.Second, Count: 3},
			{Kind: sim.FaultBroadcast, At: 33 * time.Second},
		},
	}
}

func TestSameSeedSameLogByteForByte(t *testing.T) {
	run := func(seed uint64) []byte {
		var trace bytes.Buffer
		sc := everything(seed)
		sc.Trace = &trace
		_, err := sc.Run()
		require.NoError(t, err)
		return trace.Bytes()
	}
	first, second := run(5), run(5)
	require.NotEmpty(t, first)
	assert.True(t, bytes.Equal(first, second), "same seed, different logs: sha256 %x and %x",
		sha256.Sum256(first), sha256.Sum256(second))
	assert.False(t, bytes.Equal(first, run(6)), "another seed should give another log")

	// The log records every kind of event and action.
	log := string(first)
	for _, want := range []string{" sees n", " suspect ", " dead ", " left ", " removed n", " got broadcast ",
		" CRASH n", " START n", " PAUSE n", " PARTITION [", " PARTITION cut [", " HEAL", " LEAVE n", " BROADCAST n"} {
		assert.True(t, strings.Contains(log, want), "the log has no %q", want)
	}
	t.Logf("%d lines, sha256 %x", strings.Count(log, "\n"), sha256.Sum256(first))
}

// Bootstrap feeds the engines in parallel: the run must not depend on how
// many CPUs did it, nor on the schedule.
func TestBootstrappedRunIsTheSameOnOneCPUOrMany(t *testing.T) {
	run := func(procs int) []byte {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		var trace bytes.Buffer
		sc := everything(11)
		sc.Nodes, sc.Join, sc.Trace = 120, sim.JoinBoot, &trace
		_, err := sc.Run()
		require.NoError(t, err)
		return trace.Bytes()
	}
	one, four, again := run(1), run(4), run(4)
	require.NotEmpty(t, one)
	assert.True(t, bytes.Equal(one, four), "1 and 4 CPUs, different logs: sha256 %x and %x", sha256.Sum256(one), sha256.Sum256(four))
	assert.True(t, bytes.Equal(four, again), "same seed, different logs: sha256 %x and %x", sha256.Sum256(four), sha256.Sum256(again))
	assert.Contains(t, string(one), " BOOTSTRAP ")
}

func TestLinkLossPauseAndCut(t *testing.T) {
	s := sim.New(sim.Config{Seed: 3, Latency: time.Millisecond, Engine: sim.DefaultEngineConfig()})
	nodes := s.AddNodes(6)
	s.Bootstrap(nodes)
	a, b, c := nodes[0], nodes[1], nodes[2]

	// One-way total loss from a to b: b's pings to a still get through...
	s.SetLinkLoss(a, b, 1)
	before := s.Net.Lost
	s.RunFor(20 * period)
	assert.Greater(t, s.Net.Lost, before)
	s.SetLinkLoss(a, b, 0)

	// A paused node handles nothing, then everything that waited.
	received := c.PacketsReceived
	s.Pause(c, 2*time.Second)
	assert.True(t, c.Paused())
	s.RunFor(1900 * time.Millisecond)
	assert.Equal(t, received, c.PacketsReceived, "a paused node handles no packet")
	s.RunFor(200 * time.Millisecond)
	assert.False(t, c.Paused())
	assert.Greater(t, c.PacketsReceived, received+4, "the waiting packets are handled when it resumes")

	// A cut between {a} and {b} leaves both reaching everyone else.
	s.Cut([]*sim.Node{a}, []*sim.Node{b})
	assert.False(t, s.Reachable(a, b))
	assert.False(t, s.Reachable(b, a))
	assert.True(t, s.Reachable(a, c))
	assert.True(t, s.Reachable(c, b))
	s.Partition([]*sim.Node{a, b})
	assert.True(t, s.Reachable(a, b))
	assert.False(t, s.Reachable(a, c))
	assert.False(t, s.Reachable(c, b))
	assert.True(t, s.Reachable(c, nodes[3]))
	s.Heal()
	assert.True(t, s.Reachable(a, c))
}

func TestBootstrapGivesEveryNodeAFullView(t *testing.T) {
	s := sim.New(sim.Config{Seed: 1, Latency: time.Millisecond, Engine: sim.DefaultEngineConfig()})
	m := sim.NewMetrics(s)
	nodes := s.AddNodes(300)
	s.Bootstrap(nodes)
	assert.Empty(t, s.Log, "the bootstrapped view is not logged")
	assert.Zero(t, s.Net.Sent, "nor counted as traffic")
	assert.True(t, m.Converged())
	assert.Equal(t, []time.Duration{0}, m.ConvergedAt())
	for _, n := range nodes {
		require.Equal(t, 300, n.Engine.NumLive())
	}
	s.RunFor(40 * period)
	assert.True(t, m.Converged())
	r := m.Report()
	assert.InDelta(t, 2.0/period.Seconds(), r.Traffic.PacketsPerNodeSec, 0.2, "a ping and an ack per node per period")
	assert.Zero(t, r.Suspicions.Raised)
}

func TestMetricsDetectionAndFalseDead(t *testing.T) {
	s := sim.New(sim.Config{Seed: 2, Latency: time.Millisecond, Engine: sim.DefaultEngineConfig()})
	m := sim.NewMetrics(s)
	nodes := s.AddNodes(20)
	s.Bootstrap(nodes)
	s.RunFor(10 * period)
	s.Crash(nodes[7])
	s.RunFor(20 * time.Second)
	// A healthy node declared DEAD by decree, then one after a pause.
	s.Do(nodes[1], func(now time.Time, e *swim.Engine) {
		require.NoError(t, e.SetStatus(now, nodes[2].Addr, swim.StatusDead, e.Self()))
	})
	s.Pause(nodes[3], 10*time.Second)
	s.RunFor(20 * time.Second)
	_, err := s.Broadcast(nodes[4], []byte("hi"))
	require.NoError(t, err)
	s.RunFor(5 * time.Second)

	r := m.Report()
	require.Equal(t, 1, r.Detection.Crashes)
	c := r.Detection.PerCrash[0]
	assert.Equal(t, 7, c.Node)
	assert.Equal(t, 19, c.Survivors)
	assert.Equal(t, 19, c.Detected)
	require.NotNil(t, c.AllDead)
	// At least the floor of a confirmed suspicion (Lifeguard).
	assert.Greater(t, *c.AllDead, swim.DefaultSuspicionMinMult*math.Log10(20)*period.Seconds())
	assert.Less(t, *c.AllDead, 15.0)
	assert.Equal(t, 19, r.Detection.Each.N)
	assert.InDelta(t, *c.AllDead, r.Detection.All.Max, 1e-9)
	assert.InDelta(t, r.Detection.All.Max/period.Seconds(), r.Detection.All.MaxPeriods, 1e-9)

	assert.Equal(t, 1, r.FalseDead.Healthy.Subjects, "node 2, by decree")
	assert.Positive(t, r.FalseDead.Healthy.Declared)
	assert.Equal(t, 1, r.FalseDead.Paused.Subjects, "node 3, paused for longer than the suspicion timeout")
	assert.Zero(t, r.FalseDead.Partitioned.Views)
	require.NotEmpty(t, m.FalseDeadSamples)
	assert.Equal(t, 2, m.FalseDeadSamples[0].Subject)

	assert.Equal(t, 1, r.Broadcast.Sent)
	assert.Zero(t, r.Broadcast.Incomplete)
	assert.Zero(t, r.Broadcast.Duplicates)
	assert.Equal(t, 1, r.Broadcast.Full.N)
	assert.Len(t, r.Curves, 2)

	var text, js bytes.Buffer
	require.NoError(t, r.WriteText(&text))
	assert.Contains(t, text.String(), "crash detection: 1 crashes")
	require.NoError(t, r.WriteJSON(&js))
	var back map[string]any
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	assert.EqualValues(t, 20, back["nodes"])
}

func TestScenarioDrawsDistinctNodes(t *testing.T) {
	sc := sim.Scenario{Config: sim.Config{Seed: 9, Latency: time.Millisecond}, Nodes: 30, Duration: 5 * time.Second,
		Join: sim.JoinBoot, Faults: []sim.Fault{
			{Kind: sim.FaultCrash, At: time.Second, Count: 5},
			{Kind: sim.FaultPause, At: time.Second, Nodes: []int{3}},
			{Kind: sim.FaultPartition, At: 2 * time.Second, Count: 10},
			{Kind: sim.FaultJoin, At: 3 * time.Second, Count: 2},
		}}
	res, err := sc.Run()
	require.NoError(t, err)
	seen := map[int]bool{}
	for _, f := range res.Faults[:3] {
		for _, n := range f.Nodes {
			assert.False(t, seen[n], "node %d drawn twice", n)
			assert.NotZero(t, n, "node 0 is the seed")
			seen[n] = true
		}
	}
	assert.Len(t, seen, 16)
	assert.Equal(t, []int{30, 31}, res.Faults[3].Nodes)
	assert.Len(t, res.Sim.Nodes(), 32)
	assert.True(t, res.Sim.Node(31).Up)

	_, err = sim.Scenario{Nodes: 3, Duration: time.Second, Faults: []sim.Fault{{Kind: sim.FaultCrash, Count: 5}}}.Run()
	assert.ErrorContains(t, err, "not enough nodes")
	_, err = sim.Scenario{Nodes: 3, Duration: time.Second, Faults: []sim.Fault{{Kind: sim.FaultCrash, Nodes: []int{7}}}}.Run()
	assert.ErrorContains(t, err, "no node 7")
}

func TestSeedJoinConverges(t *testing.T) {
	n := 200
	if raceEnabled {
		n = 50
	}
	res, err := sim.Scenario{Config: sim.Config{Seed: 4, Latency: time.Millisecond, Jitter: 2 * time.Millisecond},
		Nodes: n, Duration: 60 * time.Second, Join: sim.JoinSeed}.Run()
	require.NoError(t, err)
	r := res.Report
	require.NotNil(t, r.ConvergeSeconds, "the join storm did not converge")
	t.Logf("%d nodes joining at once through one seed converge in %.1f s (%.0f periods)",
		n, *r.ConvergeSeconds, *r.ConvergeSeconds/period.Seconds())
	assert.Zero(t, r.FalseDead.Healthy.Views)
	assert.False(t, math.IsNaN(r.Traffic.BytesPerNodeSec))
	assert.Equal(t, fmt.Sprint(n), fmt.Sprint(r.Nodes))
}
