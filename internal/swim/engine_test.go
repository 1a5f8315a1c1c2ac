package swim_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/sim"
)

func TestEmitLimitMatchesSmudgeFormula(t *testing.T) {
	cases := map[int]int{1: 0, 2: 2, 3: 3, 5: 4, 10: 6, 20: 7, 50: 10, 100: 12, 1000: 17, 10000: 23}
	for n, want := range cases {
		assert.Equal(t, want, swim.EmitLimit(n), "n=%d", n)
		assert.Equal(t, int(2.5*math.Log(float64(n))+0.5), swim.EmitLimit(n), "n=%d", n)
	}
}

func TestSuspicionTimeoutGrowsWithLogN(t *testing.T) {
	assert.Equal(t, 5*period, swim.SuspicionTimeout(5, 2, period))
	assert.Equal(t, 5*period, swim.SuspicionTimeout(5, 10, period))
	assert.Equal(t, 10*period, swim.SuspicionTimeout(5, 100, period))
	assert.Equal(t, 15*period, swim.SuspicionTimeout(5, 1000, period))
}

// joinBound is the time within which a cluster of n started at once must
// converge: the seed learns everyone at once; every other node learns the
// rest by gossip or by being probed, which the randomized round-robin
// guarantees within 2n-1 periods of the prober learning of it.
func joinBound(n int) time.Duration { return time.Duration(2*n+4) * period }

func TestJoinConverges(t *testing.T) {
	for _, n := range []int{2, 5, 50} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) {
			s := newCluster(t, n, 42, nil)
			ok := s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, joinBound(n))
			require.True(t, ok, "not converged within %v", joinBound(n))
			t.Logf("%d nodes converged in %v (%s)", n, s.Elapsed(), periods(s.Elapsed()))
			// Joining raises no suspicion at all, and the view stays.
			assert.Zero(t, countStatus(s, swim.StatusSuspect))
			assert.Zero(t, countStatus(s, swim.StatusDead))
			s.RunFor(20 * period)
			assert.True(t, converged(s))
			assert.Zero(t, countStatus(s, swim.StatusSuspect))
			for _, nd := range s.Nodes() {
				assert.Equal(t, n, nd.Engine.NumLive())
			}
		})
	}
}

// detectBound is the longest a crash in a quiet cluster of n may take to be
// DEAD everywhere: up to 2n-1 periods until it is probed, the probe's three
// timeouts (direct, then indirect for twice as long; the timeout is at most
// the front-loaded mean plus three deviations, under 400 ms here), the
// suspicion timeout, and a few periods for the news to spread.
func detectBound(n int) time.Duration {
	return time.Duration(2*n-1)*period + 3*400*time.Millisecond +
		swim.SuspicionTimeout(5, n, period) + 8*period
}

func TestCrashIsDetectedByAllWithoutFlapping(t *testing.T) {
	const n = 10
	s := newCluster(t, n, 7, nil)
	require.True(t, s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, joinBound(n)))
	victim := s.Node(4)
	s.Crash(victim)
	crashedAt := s.Elapsed()
	ok := s.RunUntil(func() bool { return allSee(s, victim, swim.StatusDead) }, 10*time.Millisecond, detectBound(n))
	require.True(t, ok, "not DEAD everywhere within %v", detectBound(n))
	took := s.Elapsed() - crashedAt
	t.Logf("crash to DEAD at all %d survivors: %v (%s)", n-1, took, periods(took))

	// Every observer went ALIVE -> SUSPECT -> DEAD, or ALIVE -> DEAD, once.
	for obs, seq := range statusRecords(s, victim.Addr) {
		if obs == victim.Addr {
			continue
		}
		got := fmt.Sprint(seq)
		assert.Contains(t, []string{"[alive suspect dead]", "[alive dead]"}, got, "observer %v", obs)
	}
	// Nobody else was ever suspected.
	for _, r := range s.Log {
		if r.Event.Kind == swim.EventStatus && r.Event.Member.Status != swim.StatusAlive {
			assert.Equal(t, victim.Addr, r.Event.Member.Addr, r.String())
		}
	}
}

func TestFalseSuspicionIsRefuted(t *testing.T) {
	const n = 5
	s := newCluster(t, n, 3, nil)
	require.True(t, s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, joinBound(n)))
	accused := s.Node(2)
	inc := accused.Engine.Incarnation()

	// Node 0 wrongly suspects node 2 and gossips it.
	s.Do(s.Node(0), func(now time.Time, e *swim.Engine) {
		require.NoError(t, e.SetStatus(now, accused.Addr, swim.StatusSuspect, e.Self()))
	})
	ok := s.RunUntil(func() bool {
		for _, o := range s.Nodes() {
			if m, _ := o.Engine.Member(accused.Addr); o != accused && (m.Status != swim.StatusAlive || m.Incarnation != inc+1) {
				return false
			}
		}
		return true
	}, 10*time.Millisecond, swim.SuspicionTimeout(5, n, period))
	require.True(t, ok, "refutation did not reach everyone within the suspicion timeout")
	assert.Equal(t, inc+1, accused.Engine.Incarnation())
	assert.Equal(t, uint64(1), accused.Engine.Stats().Refutations)
	s.RunFor(30 * period)
	assert.Zero(t, countStatus(s, swim.StatusDead), "a refuted suspicion must never turn into DEAD")
	assert.True(t, converged(s))
}

func TestShortOutageIsRefutedNotDeclaredDead(t *testing.T) {
	const n = 5
	s := newCluster(t, n, 11, nil)
	require.True(t, s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, joinBound(n)))
	cut := s.Node(1)
	// Cut node 1 off long enough to be suspected, shorter than the suspicion timeout.
	others := []*sim.Node{s.Node(0), s.Node(2), s.Node(3), s.Node(4)}
	s.Partition([]*sim.Node{cut}, others)
	s.RunUntil(func() bool { return countStatus(s, swim.StatusSuspect) > 0 }, 10*time.Millisecond, 20*period)
	require.Positive(t, countStatus(s, swim.StatusSuspect), "the outage should raise a suspicion")
	s.Heal()
	s.RunFor(40 * period)
	assert.Zero(t, countStatus(s, swim.StatusDead))
	assert.True(t, converged(s))
	assert.Positive(t, cut.Engine.Stats().Refutations)
}

func TestTwoNodeClusterSurvivesOneLostAck(t *testing.T) {
	s := newCluster(t, 2, 5, nil)
	require.True(t, s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, joinBound(2)))
	a, b := s.Node(0), s.Node(1)
	// Lose everything from b to a for a moment: about one ack.
	s.SetLinkLoss(b, a, 1)
	s.RunFor(period)
	s.SetLinkLoss(b, a, 0)
	s.RunFor(40 * period)
	assert.Zero(t, countStatus(s, swim.StatusDead))
	assert.Equal(t, swim.StatusAlive, statusOf(a, b))
	assert.Equal(t, swim.StatusAlive, statusOf(b, a))
}

func TestPartitionHealsBeforeRemoval(t *testing.T) {
	const n = 10
	s := newCluster(t, n, 21, nil)
	require.True(t, s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, joinBound(n)))
	left, right := s.Nodes()[:5], s.Nodes()[5:]
	s.Partition(left, right)
	// Long enough for each side to declare the other DEAD.
	ok := s.RunUntil(func() bool {
		for _, o := range left {
			for _, x := range right {
				if statusOf(o, x) != swim.StatusDead || statusOf(x, o) != swim.StatusDead {
					return false
				}
			}
		}
		return true
	}, 10*time.Millisecond, 20*time.Second)
	require.True(t, ok, "each side should see the other DEAD")
	for _, o := range left { // and its own side alive
		for _, x := range left {
			if o != x {
				require.Equal(t, swim.StatusAlive, statusOf(o, x))
			}
		}
	}
	s.Heal()
	healedAt := s.Elapsed()
	// Dead members are re-probed at most RemoveDeadAfter/8 apart, so the
	// cluster is whole again well before anyone is removed.
	ok = s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, 30*time.Second/8+detectBound(n))
	require.True(t, ok, "partition did not heal")
	t.Logf("healed in %v after the partition ended", s.Elapsed()-healedAt)
	for _, r := range s.Log {
		assert.NotEqual(t, swim.EventRemoved, r.Event.Kind, "nobody may be removed: %s", r)
	}
}

func TestRemovalThenRejoin(t *testing.T) {
	const n = 5
	s := newCluster(t, n, 8, nil)
	require.True(t, s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, joinBound(n)))
	victim := s.Node(4)
	oldInc := victim.Engine.Incarnation()
	s.Crash(victim)
	require.True(t, s.RunUntil(func() bool { return allSee(s, victim, swim.StatusDead) }, 10*time.Millisecond, detectBound(n)))
	require.True(t, s.RunUntil(func() bool { return allSee(s, victim, 0) }, 10*time.Millisecond, 31*time.Second))
	removals := 0
	for _, r := range s.Log {
		if r.Event.Kind == swim.EventRemoved && r.Event.Member.Addr == victim.Addr {
			removals++
		}
	}
	assert.Equal(t, n-1, removals, "every survivor reports the removal once")

	s.RunFor(10 * time.Second) // restart later, as a real node would: a higher incarnation
	s.Start(victim, s.Node(0))
	assert.Greater(t, victim.Engine.Incarnation(), oldInc)
	require.True(t, s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, joinBound(n)))
}

func TestDeadNodeThatRestartsIsAliveAtOnce(t *testing.T) {
	const n = 5
	s := newCluster(t, n, 9, nil)
	require.True(t, s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, joinBound(n)))
	victim := s.Node(3)
	s.Crash(victim)
	require.True(t, s.RunUntil(func() bool { return allSee(s, victim, swim.StatusDead) }, 10*time.Millisecond, detectBound(n)))
	s.RunFor(2 * time.Second)
	s.Start(victim, s.Node(0))
	// Its join ping carries a higher incarnation: node 0 has it ALIVE on
	// receipt, the rest within a few periods of gossip.
	s.RunFor(10 * time.Millisecond)
	assert.Equal(t, swim.StatusAlive, statusOf(s.Node(0), victim))
	require.True(t, s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, 10*period))
}

func TestGracefulLeaveSkipsSuspicion(t *testing.T) {
	const n = 6
	s := newCluster(t, n, 13, nil)
	require.True(t, s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, joinBound(n)))
	leaver := s.Node(2)
	s.Leave(leaver)
	s.RunFor(50 * time.Millisecond)
	s.Crash(leaver) // the process exits right after
	ok := s.RunUntil(func() bool { return allSee(s, leaver, swim.StatusLeft) }, 10*time.Millisecond, 4*period)
	require.True(t, ok, "everyone should hear of the leave at once")
	for obs, seq := range statusRecords(s, leaver.Addr) {
		if obs != leaver.Addr {
			assert.Equal(t, "[alive left]", fmt.Sprint(seq), "observer %v", obs)
		}
	}
	// Left members are removed like dead ones, never suspected.
	require.True(t, s.RunUntil(func() bool { return allSee(s, leaver, 0) }, 100*time.Millisecond, 31*time.Second))
	assert.Zero(t, countStatus(s, swim.StatusSuspect))
	assert.Zero(t, countStatus(s, swim.StatusDead))
}

func TestDeterministicFromSeed(t *testing.T) {
	run := func() string {
		s := newCluster(t, 12, 99, func(c *sim.Config) { c.Loss = 0.05; c.Jitter = 5 * time.Millisecond })
		s.RunFor(5 * time.Second)
		s.Crash(s.Node(7))
		s.Broadcast(s.Node(1), []byte("hello"))
		s.RunFor(10 * time.Second)
		var b strings.Builder
		for _, r := range s.Log {
			b.WriteString(r.String())
			b.WriteByte('\n')
		}
		return b.String()
	}
	first, second := run(), run()
	require.NotEmpty(t, first)
	assert.Equal(t, first, second)
}
