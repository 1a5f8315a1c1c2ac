package swim_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
	"github.com/seed-c7906467/smudge/sim"
)

func reserveEngine(t *testing.T) *swim.Engine {
	cfg := sim.DefaultEngineConfig()
	cfg.Self = rigSelf
	cfg.Incarnation = 100
	cfg.Rand = rand.New(rand.NewPCG(1, 2))
	e, err := swim.New(cfg, sim.DefaultStart)
	require.NoError(t, err)
	e.Outbox()
	return e
}

// gossipPacket is a plain (not join answer) packet from member(0) carrying
// updates that member(1)..member(n) are ALIVE at incarnation 1.
func gossipPacket(n int) []byte {
	hdr := wire.Header{Cluster: sim.DefaultEngineConfig().ClusterID, Sender: member(0), Incarnation: 1}
	b := wire.AppendHeader(nil, hdr)
	for i := 1; i <= n; i++ {
		u := wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 1, Subject: member(i)}
		b = u.AppendTo(b)
	}
	return b
}

// TestReserve: an engine that reserved room for its members learns them
// exactly as one that did not (same members, same probe order, same
// output), allocating next to nothing per member.
func TestReserve(t *testing.T) {
	const n = 5000
	pkts := syncPackets(sim.DefaultEngineConfig().ClusterID, 0, n)
	plain, reserved := reserveEngine(t), reserveEngine(t)
	reserved.Reserve(n)
	for _, p := range pkts {
		plain.Receive(sim.DefaultStart, member(0), p)
		plain.Outbox()
	}
	allocs := testing.AllocsPerRun(1, func() {
		for _, p := range pkts {
			reserved.Receive(sim.DefaultStart, member(0), p)
			reserved.Outbox()
		}
	})
	require.Less(t, allocs, float64(n/50), "allocations while learning %d reserved members", n)
	require.Equal(t, n+1, reserved.NumLive())
	require.Equal(t, plain.Members(), reserved.Members())
	now := sim.DefaultStart
	for range 50 {
		now = now.Add(sim.DefaultEngineConfig().ProbeInterval)
		plain.Tick(now)
		reserved.Tick(now)
		pp, pe := plain.Outbox()
		rp, re := reserved.Outbox()
		require.Equal(t, pp, rp)
		require.Equal(t, pe, re)
	}
	live := reserved.NumLive()
	reserved.Reserve(10) // fewer than it has: nothing changes
	require.Equal(t, live, reserved.NumLive())
	require.Equal(t, plain.Members(), reserved.Members())
}

// TestSetQuiet: a quiet engine takes members from gossip without queueing
// gossip about them or reporting them; once loud again, news is queued and
// reported as before.
func TestSetQuiet(t *testing.T) {
	loud := reserveEngine(t)
	loud.Receive(sim.DefaultStart, member(0), gossipPacket(10))
	_, events := loud.Outbox()
	require.Len(t, events, 11) // the sender and the ten it told of
	require.Equal(t, 11, loud.Stats().QueuedGossip)

	e := reserveEngine(t)
	e.SetQuiet(true)
	e.Receive(sim.DefaultStart, member(0), gossipPacket(10))
	_, events = e.Outbox()
	require.Empty(t, events)
	require.Equal(t, 0, e.Stats().QueuedGossip)
	require.Equal(t, 12, e.NumLive())

	e.SetQuiet(false)
	e.Receive(sim.DefaultStart, member(0), gossipPacket(12))
	_, events = e.Outbox()
	require.Len(t, events, 2) // member(11) and member(12), the news
	require.Equal(t, swim.StatusAlive, events[0].Member.Status)
	require.Equal(t, member(11), events[0].Member.Addr)
	require.Equal(t, 2, e.Stats().QueuedGossip)
}
