package sim_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/sim"
)

// staggeredJoin starts 64 nodes with a 1 s period through node 0, at
// random times over half a second (as processes started together do), and
// returns how long after the first start every node saw all 64 live, or -1
// if they did not within limit.
func staggeredJoin(seed uint64, tweak func(*swim.Config), limit time.Duration) time.Duration {
	const n = 64
	cfg := sim.Config{Seed: seed, Latency: 100 * time.Microsecond, Jitter: 200 * time.Microsecond, Engine: sim.DefaultEngineConfig()}
	cfg.Engine.ProbeInterval = time.Second
	if tweak != nil {
		tweak(&cfg.Engine)
	}
	s := sim.New(cfg)
	nodes := s.AddNodes(n)
	s.Start(nodes[0])
	r := rand.New(rand.NewPCG(seed, 9))
	for _, node := range nodes[1:] {
		s.At(time.Duration(r.Int64N(int64(500*time.Millisecond))), func() { s.Start(node, nodes[0]) })
	}
	converged := func() bool {
		for _, node := range nodes {
			if node.Engine == nil || node.Engine.NumLive() != n {
				return false
			}
		}
		return true
	}
	if !s.RunUntil(converged, time.Millisecond, limit) {
		return -1
	}
	return s.Elapsed()
}

// Every pair of 64 nodes joining together knows each other as soon as the
// last one has joined, in every one of 10 starts: the later of two joiners
// greets the earlier one, which its join answer lists (hello.go).
func TestJoinStormConvergesWhenTheLastNodeJoins(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		took := staggeredJoin(seed, nil, 2*time.Second)
		assert.Positive(t, took, "start %d: not converged within 2 s", seed)
		assert.LessOrEqual(t, took, 510*time.Millisecond, "start %d: the last node joins before 500 ms", seed)
	}
}

// Without greetings, gossip alone leaves a pair unaware of each other for
// tens of seconds in some starts, until one's probe reaches the other:
// measured with wire version 2, 16 of the 200 starts of seeds 1-200, 6 of
// these 40 (seeds 68, 77, 84, 91, 96, 98: 3.6-62.7 s). With greetings all
// 200 converged within 502 ms. (With wire version 1 it happened at other
// seeds, seed 4 of 1-12 at its last commit: which starts have a tail
// depends on what fits in each packet.) If a change to gossip makes this test fail,
// greetings may no longer be needed: measure.
func TestWithoutGreetingsAJoinStormHasATail(t *testing.T) {
	slow := 0
	for seed := uint64(61); seed <= 100; seed++ {
		if staggeredJoin(seed, func(c *swim.Config) { c.MaxHellos = -1 }, 2*time.Second) < 0 {
			slow++
		}
	}
	assert.Positive(t, slow, "every start converged within 2 s without greetings")
}
