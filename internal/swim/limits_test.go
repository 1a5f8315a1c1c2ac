package swim_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
)

// packet builds what a peer would send.
func (r *rig) packet(from netip.AddrPort, inc uint32, msgs ...wire.Message) []byte {
	b := r.header(from, inc)
	for i := range msgs {
		b = msgs[i].AppendTo(b)
	}
	return b
}

func TestReplaysDoNotResurrectOrRollBack(t *testing.T) {
	r := newRig(t)
	r.addPeers(4)
	victim, leaver, accused := peer(0), peer(1), peer(2)
	// Recorded now, replayed later: ordinary traffic from each of them.
	oldVictim := r.packet(victim, 1, wire.Message{Type: wire.TypePing, Seq: 5, Target: rigSelf})
	oldLeaver := r.packet(leaver, 1, wire.Message{Type: wire.TypeAck, Seq: 6})
	oldAlive := r.packet(peer(3), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 1, Subject: accused, Source: accused})

	// The victim dies, the leaver leaves, the accused is suspected.
	r.silent[victim] = true
	r.receive(leaver, 2, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusLeft, Incarnation: 2, Subject: leaver, Source: leaver})
	r.receive(peer(3), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusSuspect, Incarnation: 1, Subject: accused, Source: peer(3)})
	r.e.Receive(r.now, peer(3), oldAlive)
	m, _ := r.e.Member(accused)
	assert.Equal(t, swim.StatusSuspect, m.Status, "a replayed ALIVE at the same incarnation cannot roll back a suspicion")

	r.run(10 * time.Second)
	m, _ = r.e.Member(victim)
	require.Equal(t, swim.StatusDead, m.Status)
	r.e.Receive(r.now, victim, oldVictim)
	m, _ = r.e.Member(victim)
	assert.Equal(t, swim.StatusDead, m.Status, "a replayed packet cannot revive a dead member")
	r.e.Receive(r.now, leaver, oldLeaver)
	m, _ = r.e.Member(leaver)
	assert.Equal(t, swim.StatusLeft, m.Status, "nor one that left")

	// After removal, the same replays are dropped rather than re-adding them.
	r.run(31 * time.Second)
	_, known := r.e.Member(victim)
	require.False(t, known)
	before := r.e.Stats().DroppedStale
	mark := len(r.sent)
	r.e.Receive(r.now, victim, oldVictim)
	r.e.Receive(r.now, leaver, oldLeaver)
	r.collect()
	_, known = r.e.Member(victim)
	assert.False(t, known, "a replay must not resurrect a removed member")
	_, known = r.e.Member(leaver)
	assert.False(t, known)
	assert.Equal(t, before+2, r.e.Stats().DroppedStale)
	// The (possibly real) sender is told it is dead, so that it can refute.
	notices := 0
	for _, msg := range r.sentMessages(mark) {
		if msg.Type == wire.TypeUpdate && msg.Status == wire.StatusDead && (msg.Subject == victim || msg.Subject == leaver) {
			notices++
		}
	}
	assert.Equal(t, 2, notices)
	// A real restart (higher incarnation) is welcome at once.
	r.receive(victim, 2, wire.Message{Type: wire.TypeAck, Seq: 1})
	m, known = r.e.Member(victim)
	require.True(t, known)
	assert.Equal(t, swim.StatusAlive, m.Status)
}

func TestReplayedBroadcastIsNotDeliveredAgain(t *testing.T) {
	r := newRig(t)
	r.addPeers(3)
	bcast := r.packet(peer(0), 1, wire.Message{Type: wire.TypeBroadcast, Subject: peer(0), Boot: 9, Index: 4, Payload: []byte("once")})
	r.e.Receive(r.now, peer(0), bcast)
	r.collect()
	r.run(61 * time.Second) // past twice the TTL: the dedup entry is gone
	r.e.Receive(r.now, peer(0), bcast)
	r.collect()
	delivered := 0
	for _, ev := range r.events {
		if ev.Kind == swim.EventBroadcast {
			delivered++
		}
	}
	assert.Equal(t, 1, delivered)
	assert.Equal(t, uint64(1), r.e.Stats().DroppedReplayedBcast)
	// A later broadcast from the same run is still delivered.
	r.receive(peer(0), 1, wire.Message{Type: wire.TypeBroadcast, Subject: peer(0), Boot: 9, Index: 5, Payload: []byte("next")})
	assert.Equal(t, uint64(2), r.e.Stats().BroadcastsDelivered)
}

func TestNetworkFedTablesAreBounded(t *testing.T) {
	r := newRigWith(t, func(c *swim.Config) {
		c.MaxMembers = 10
		c.MaxPendingProbes = 8
		c.MaxSyncsPerPeriod = 3
	})
	for i := range 50 {
		r.receive(peer(i), 1, wire.Message{Type: wire.TypeAck, Seq: 1})
	}
	assert.Len(t, r.e.Members(), 1+10, "this node and MaxMembers others")
	assert.Equal(t, uint64(40), r.e.Stats().DroppedMemberLimit)
	before := r.e.Stats().DroppedProbeLimit
	r.silent[peer(5)] = true
	for range 100 {
		r.e.Receive(r.now, peer(1), r.packet(peer(1), 1, wire.Message{Type: wire.TypePingReq, Seq: 3, Target: peer(5)}))
	}
	r.collect()
	assert.Greater(t, r.e.Stats().DroppedProbeLimit, before+80)

	require.NoError(t, r.e.Ping(r.now, peer(2))) // it acks: verified, so its joins are answered at once
	r.collect()
	mark := len(r.sent)
	for range 20 {
		r.e.Receive(r.now, peer(2), r.packet(peer(2), 1, wire.Message{Type: wire.TypePing, Seq: 4, Flags: wire.PingFlagJoin}))
	}
	r.collect()
	syncs := 0
	for _, p := range r.sent[mark:] {
		h, _, err := wire.DecodeHeader(p.Data)
		require.NoError(t, err)
		if h.Flags&wire.HeaderFlagSync != 0 {
			syncs++
		}
	}
	assert.Equal(t, 3, syncs, "one packet of members per join answer, three answers per period")
	assert.Equal(t, uint64(17), r.e.Stats().SyncsSkipped)
}
