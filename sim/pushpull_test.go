package sim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
	"github.com/seed-c7906467/smudge/sim"
)

// droppedLeave runs 16 bootstrapped nodes; at 2 s node 5 leaves and stops
// 1 s later, and a filter drops every datagram to node 9 that carries
// node 5's LEFT, so node 9 misses the update whatever gossip does. It
// returns when node 9 first saw node 5 LEFT (since the leave), or -1 if it
// did not within 60 s.
func droppedLeave(t *testing.T, pushPull bool) (time.Duration, sim.NetStats) {
	t.Helper()
	s := sim.New(sim.Config{Seed: 11, Latency: time.Millisecond, Jitter: time.Millisecond,
		PushPull: pushPull, PushPullInterval: 5 * time.Second, Engine: sim.DefaultEngineConfig()})
	nodes := s.AddNodes(16)
	s.Bootstrap(nodes)
	leaver, victim := nodes[5], nodes[9]
	var pkt wire.Packet
	s.Filter = func(from, to *sim.Node, data []byte) bool {
		if to != victim || pkt.Decode(data) != nil {
			return true
		}
		for _, m := range pkt.Messages {
			if m.Type == wire.TypeUpdate && m.Subject == leaver.Addr && m.Status == swim.StatusLeft {
				return false
			}
		}
		return true
	}
	const leaveAt = 2 * time.Second
	learned := time.Duration(-1)
	s.OnEvent = func(n *sim.Node, ev swim.Event) {
		if n == victim && ev.Kind == swim.EventStatus && ev.Member.Addr == leaver.Addr &&
			ev.Member.Status == swim.StatusLeft && learned < 0 {
			learned = s.Elapsed() - leaveAt
		}
	}
	s.At(leaveAt, func() { s.Leave(leaver) })
	s.At(leaveAt+time.Second, func() { s.Crash(leaver) })
	s.RunFor(leaveAt + 60*time.Second)
	// Everyone else saw the leave: the update went round, only not to 9.
	for _, n := range nodes {
		if n != leaver && n != victim {
			require.Contains(t, []swim.Status{swim.StatusLeft, 0}, statusOf(n, leaver), "node %d", n.Index)
		}
	}
	require.NotZero(t, s.Net.Filtered)
	return learned, s.Net
}

func statusOf(o, x *sim.Node) swim.Status {
	m, ok := o.Engine.Member(x.Addr)
	if !ok {
		return 0
	}
	return m.Status
}

func TestPushPullClosesADroppedUpdate(t *testing.T) {
	with, net := droppedLeave(t, true)
	without, _ := droppedLeave(t, false)
	t.Logf("node 9 saw the leave %v after it with push-pull (%d exchanges, %d failed, %d state bytes), %v without (-1: never within 60 s)",
		with, net.PushPulls, net.PushPullsFailed, net.PushPullBytes, without)
	assert.Equal(t, time.Duration(-1), without, "gossip alone repaired the dropped update: the test proves nothing")
	require.GreaterOrEqual(t, with, time.Duration(0), "push-pull did not close the gap")
	assert.Less(t, with, 15*time.Second)
}
