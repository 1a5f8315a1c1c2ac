package sim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/sim"
)

// Simulator tests of each part of Lifeguard (internal/swim/lifeguard.go),
// each run with the part on and off from the same seed.

// slowNodeRun: in a 20-node cluster, node 3 stalls for 3 s every 10 s (for
// 60 s): packets to it wait 600 ms, as in the receive queue of a node
// starved of CPU, while its timers keep time.
type slowNodeRun struct {
	accusations  uint64 // suspicions the slow node raised (all false)
	healthRaised uint64
	nacksMissed  uint64
	deadHealthy  int // DEAD views of nodes other than the slow one
}

func runSlowNode(t *testing.T, tweak func(*swim.Config)) slowNodeRun {
	cfg := sim.DefaultEngineConfig()
	tweak(&cfg)
	s := sim.New(sim.Config{Seed: 7, Latency: time.Millisecond, Jitter: time.Millisecond, Engine: cfg})
	nodes := s.AddNodes(20)
	s.Bootstrap(nodes)
	slow := nodes[3]
	var r slowNodeRun
	s.OnEvent = func(n *sim.Node, ev swim.Event) {
		if ev.Kind == swim.EventStatus && ev.Member.Status == swim.StatusDead && ev.Member.Addr != slow.Addr {
			r.deadHealthy++
		}
	}
	for at := 5 * time.Second; at < 65*time.Second; at += 10 * time.Second {
		s.At(at, func() { s.SetSlow(slow, 600*time.Millisecond) })
		s.At(at+3*time.Second, func() { s.SetSlow(slow, 0) })
	}
	s.RunFor(65 * time.Second)
	st := slow.Engine.Stats()
	r.accusations, r.healthRaised, r.nacksMissed = st.SuspicionsRaised, st.HealthRaised, st.NacksMissed
	return r
}

func TestLifeguardLocalHealthSuppressesASlowNodesFalseAccusations(t *testing.T) {
	on := runSlowNode(t, func(*swim.Config) {})
	noNacks := runSlowNode(t, func(c *swim.Config) { c.NoNacks = true })
	off := runSlowNode(t, func(c *swim.Config) { c.NoLocalHealth = true })
	t.Logf("false accusations by the slow node: Lifeguard %d (score raised %d times, %d nacks missed); without nacks %d; without local health %d",
		on.accusations, on.healthRaised, on.nacksMissed, noNacks.accusations, off.accusations)

	// Without local health, every stall makes the slow node accuse the
	// members it probes.
	assert.GreaterOrEqual(t, off.accusations, uint64(30))
	// With it, its first failures stretch its timeouts: a few accusations
	// per run, not one per probe.
	assert.LessOrEqual(t, on.accusations*5, off.accusations)
	assert.Positive(t, on.healthRaised)
	// Missed nacks raise the score faster than failed probes alone.
	assert.Positive(t, on.nacksMissed)
	assert.Less(t, on.accusations, noNacks.accusations)
	// Nobody healthy is ever declared DEAD, either way.
	assert.Zero(t, on.deadHealthy)
	assert.Zero(t, off.deadHealthy)
}

// crashRun crashes one node of 30 and reports when the first node, and
// when every survivor, declared it DEAD.
func crashRun(t *testing.T, seed uint64, tweak func(*swim.Config)) (first, all time.Duration, confirmations uint64) {
	cfg := sim.DefaultEngineConfig()
	cfg.ProbeInterval = time.Second
	tweak(&cfg)
	s := sim.New(sim.Config{Seed: seed, Latency: time.Millisecond, Jitter: time.Millisecond, Engine: cfg})
	nodes := s.AddNodes(30)
	s.Bootstrap(nodes)
	s.RunFor(20 * time.Second)
	victim := nodes[11]
	seen := map[int]bool{}
	first = -1
	var crashedAt time.Duration
	s.OnEvent = func(n *sim.Node, ev swim.Event) {
		if ev.Kind == swim.EventStatus && ev.Member.Addr == victim.Addr && ev.Member.Status == swim.StatusDead && !seen[n.Index] {
			seen[n.Index] = true
			if first < 0 {
				first = s.Elapsed() - crashedAt
			}
			all = s.Elapsed() - crashedAt
		}
	}
	crashedAt = s.Elapsed()
	s.Crash(victim)
	s.RunFor(30 * time.Second)
	require.Len(t, seen, 29, "every survivor declares the crashed node DEAD")
	for _, n := range nodes {
		if n.Up {
			confirmations += n.Engine.Stats().SuspicionConfirmations
		}
	}
	return first, all, confirmations
}

func TestLifeguardConfirmationsShortenSuspicion(t *testing.T) {
	cfg := sim.DefaultEngineConfig()
	cfg.ProbeInterval = time.Second
	fixed := swim.SuspicionTimeout(cfg.SuspicionMult, 30, cfg.ProbeInterval)
	for seed := uint64(1); seed <= 3; seed++ {
		f1, a1, c1 := crashRun(t, seed, func(*swim.Config) {})
		f0, a0, _ := crashRun(t, seed, func(c *swim.Config) { c.NoDynamicSuspicion = true })
		t.Logf("seed %d: crash to DEAD, first/all: dynamic %v/%v (%d confirmations), fixed %v/%v (timeout %v)", seed, f1, a1, c1, f0, a0, fixed)
		assert.Positive(t, c1, "accusers other than the first were heard of")
		// A fixed suspicion runs its full timeout everywhere.
		assert.Greater(t, f0, fixed)
		// A confirmed one runs out well before: within the floor, plus a
		// period for a node to probe the crashed one, the time to suspect
		// (a probe and its indirect phase), a last probe on another's
		// verdict, and a period of slack.
		lo := time.Duration(swim.DefaultSuspicionMinMult * 1.4771 * float64(cfg.ProbeInterval)) // log10(30)
		bound := lo + 6*cfg.MinProbeTimeout + 2*cfg.ProbeInterval
		assert.Less(t, a1, bound, "DEAD at all survivors")
		assert.Less(t, 2*a1, a0)
	}
}

// cutOffRun: in a 30-node cluster, packets to node 5 are lost for 2.5 s,
// except those from node 4. The others soon suspect node 5; it can learn
// so only from node 4. It reports how long node 5 took to refute after it
// was first suspected (-1: not during the cut), and the DEAD views of it.
func cutOffRun(t *testing.T, seed uint64, noBuddy bool) (refuteAfter time.Duration, deadViews int) {
	cfg := sim.DefaultEngineConfig()
	cfg.NoBuddy = noBuddy
	s := sim.New(sim.Config{Seed: seed, Latency: time.Millisecond, Jitter: time.Millisecond, Engine: cfg})
	nodes := s.AddNodes(30)
	s.Bootstrap(nodes)
	a, b := nodes[4], nodes[5]
	s.RunFor(3 * time.Second)
	suspected := time.Duration(-1)
	s.OnEvent = func(n *sim.Node, ev swim.Event) {
		if ev.Kind != swim.EventStatus || ev.Member.Addr != b.Addr {
			return
		}
		switch ev.Member.Status {
		case swim.StatusSuspect:
			if suspected < 0 {
				suspected = s.Elapsed()
			}
		case swim.StatusDead:
			deadViews++
		}
	}
	setLoss := func(p float64) {
		for _, x := range nodes {
			if x != a && x != b {
				s.SetLinkLoss(x, b, p)
			}
		}
	}
	setLoss(1)
	refuteAfter = -1
	for range 250 {
		s.RunFor(10 * time.Millisecond)
		if refuteAfter < 0 && suspected >= 0 && b.Engine.Stats().Refutations > 0 {
			refuteAfter = s.Elapsed() - suspected
		}
	}
	setLoss(0)
	s.RunFor(10 * time.Second)
	return refuteAfter, deadViews
}

func TestLifeguardBuddySystemRefutesAtOnce(t *testing.T) {
	var onDead, offDead, offRefuted int
	var onMax time.Duration
	for seed := uint64(1); seed <= 5; seed++ {
		on, d1 := cutOffRun(t, seed, false)
		off, d0 := cutOffRun(t, seed, true)
		t.Logf("seed %d: node 5 refuted %v after it was first suspected (DEAD views %d) with the buddy system; %v (%d) without", seed, on, d1, off, d0)
		require.GreaterOrEqual(t, on, time.Duration(0), "with the buddy system node 5 refutes through node 4")
		onMax, onDead = max(onMax, on), onDead+d1
		offDead += d0
		if off >= 0 {
			offRefuted++
		}
	}
	// Every packet to a suspect tells it: node 4's pings and answers reach
	// node 5 within a period or two, and it refutes each suspicion in time,
	// pushing its refutation to all (its own packets get through), but for
	// the odd survivor (1 DEAD view in these 5 runs; 11 before refutations
	// were always pushed, 9 over 40 runs).
	assert.Less(t, onMax, time.Second)
	assert.Less(t, onDead, 5)
	// Without, it learns only from gossip about it, which node 4 soon runs
	// out of, or once it is DEAD somewhere: nearly every survivor sees it
	// DEAD.
	assert.Greater(t, offDead, 5*onDead)
	t.Logf("DEAD views of node 5 over 5 runs: %d with the buddy system, %d without (%d refuted during the cut)", onDead, offDead, offRefuted)
}

// isolationRun: in a 64-node cluster at a 200 ms period, node 9 is cut off
// from every other node (its packets dropped both ways, as a firewall or a
// dead link does) for 1, 2 and 3 s in turn, five times each.
type isolationRun struct {
	deadByIt    int // DEAD views the cut-off node took of healthy members
	deadAboutIt int // DEAD views others took of it (expected: it was unreachable)
}

func runIsolation(t *testing.T, tweak func(*swim.Config)) isolationRun {
	cfg := sim.DefaultEngineConfig()
	cfg.ProbeInterval = 200 * time.Millisecond
	tweak(&cfg)
	s := sim.New(sim.Config{Seed: 11, Latency: time.Millisecond, Jitter: time.Millisecond, Engine: cfg})
	nodes := s.AddNodes(64)
	s.Bootstrap(nodes)
	lone := nodes[9]
	var r isolationRun
	s.OnEvent = func(n *sim.Node, ev swim.Event) {
		if ev.Kind != swim.EventStatus || ev.Member.Status != swim.StatusDead {
			return
		}
		if n == lone {
			r.deadByIt++
		} else if ev.Member.Addr == lone.Addr {
			r.deadAboutIt++
		}
	}
	at := 5 * time.Second
	for i := 0; i < 15; i++ {
		d := time.Duration(1+i%3) * time.Second
		s.At(at, func() { s.Partition([]*sim.Node{lone}) })
		s.At(at+d, func() { s.Heal() })
		at += d + 10*time.Second
	}
	s.RunFor(at)
	require.True(t, lone.Up)
	return r
}

// A node cut off from everyone fails every probe and, alone in suspecting
// each member, would declare healthy members DEAD once its suspicions run
// out (at 64 nodes and 200 ms, 1.8 s; 7 DEAD views before this rule): while
// its local health is raised, a suspicion nobody else confirms waits
// 1+score times longer.
func TestLifeguardACutOffNodeDeclaresNobodyDead(t *testing.T) {
	with := runIsolation(t, func(*swim.Config) {})
	without := runIsolation(t, func(c *swim.Config) { c.NoLocalHealth = true })
	t.Logf("DEAD views by the cut-off node: %d with local health, %d without; DEAD views of it: %d, %d",
		with.deadByIt, without.deadByIt, with.deadAboutIt, without.deadAboutIt)
	assert.Zero(t, with.deadByIt, "the cut-off node declared healthy members DEAD")
	assert.Positive(t, without.deadByIt, "without local health the cut-off node should declare others DEAD")
	assert.Positive(t, with.deadAboutIt, "the others should declare the unreachable node DEAD")
}
