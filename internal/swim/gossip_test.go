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

// gossipOnly counts the packets sent since from that hold no ping, ack or
// ping-req: gossip rounds' (and pushes', when pushed is set).
func gossipOnly(t *testing.T, r *rig, from int, pushed bool) int {
	n := 0
	for _, p := range r.sent[from:] {
		var dec wire.Packet
		require.NoError(t, dec.Decode(p.Data))
		if (dec.Header.Flags&wire.HeaderFlagPush != 0) != pushed {
			continue
		}
		plain := true
		for _, m := range dec.Messages {
			if m.Type == wire.TypePing || m.Type == wire.TypeAck || m.Type == wire.TypePingReq {
				plain = false
			}
		}
		if plain {
			n++
		}
	}
	return n
}

func TestGossipRoundsFollowNewsAndStop(t *testing.T) {
	r := newRig(t)
	r.addPeers(40) // EmitLimit(41) = 9 sends: 3 pushed, 3 and 3 in two rounds; a third finds them used up
	require.Equal(t, 9, swim.EmitLimit(41))
	r.run(10 * time.Second)
	from := len(r.sent)
	r.run(10 * time.Second)
	assert.Zero(t, gossipOnly(t, r, from, false), "a quiet cluster: probes only")

	from = len(r.sent)
	_, err := r.e.Broadcast(r.now, []byte("news"))
	require.NoError(t, err)
	r.collect()
	assert.Equal(t, 3, gossipOnly(t, r, from, true), "pushed to PushFanout members")
	r.e.Tick(r.now) // the host ticks at NextDeadline: now
	r.collect()
	assert.Equal(t, 3, gossipOnly(t, r, from, false), "a first round at once, to GossipNodes members")
	r.run(200 * time.Millisecond) // rounds are 25 ms apart (a quarter of 250 ms, at most 25 ms)
	assert.Equal(t, 6, gossipOnly(t, r, from, false), "and a second one, then no more")
	r.run(5 * time.Second)
	assert.Equal(t, 6, gossipOnly(t, r, from, false))
	assert.Equal(t, uint64(6), r.e.Stats().GossipPackets)
}

func TestGossipRoundsOff(t *testing.T) {
	r := newRigWith(t, func(c *swim.Config) { c.GossipNodes = -1 })
	r.addPeers(10)
	from := len(r.sent)
	_, err := r.e.Broadcast(r.now, []byte("news"))
	require.NoError(t, err)
	r.run(time.Second)
	assert.Zero(t, gossipOnly(t, r, from, false))
}

// pushedUpdates counts the pushed packets sent since from whose first
// message is an update about subject with the given status.
func pushedUpdates(t *testing.T, r *rig, from int, subject netip.AddrPort, status wire.Status) int {
	n := 0
	for _, p := range r.sent[from:] {
		var dec wire.Packet
		require.NoError(t, dec.Decode(p.Data))
		if dec.Header.Flags&wire.HeaderFlagPush == 0 || len(dec.Messages) == 0 {
			continue
		}
		if m := dec.Messages[0]; m.Type == wire.TypeUpdate && m.Subject == subject && m.Status == status {
			n++
		}
	}
	return n
}

// A broadcast is forwarded by push once, on first receipt, however it came
// (most nodes first get one from a gossip round, not a push), while it is
// younger than a protocol period; an old one that a node gets late (by a
// probe, a repair) is not.
func TestFreshBroadcastIsPushedOnOnFirstReceiptHoweverItCame(t *testing.T) {
	r := newRig(t)
	r.addPeers(10)
	from := len(r.sent)
	r.receive(peer(0), 1, bcast(peer(0), 1)) // not pushed, age 0
	assert.Equal(t, 3, gossipOnly(t, r, from, true), "pushed on to PushFanout members")
	for _, p := range r.sent[from:] {
		assert.NotEqual(t, peer(0), p.To, "never back to the node it came from")
	}
	from = len(r.sent)
	r.receive(peer(1), 1, bcast(peer(0), 1))
	assert.Zero(t, gossipOnly(t, r, from, true), "once")

	old := bcast(peer(0), 2)
	old.AgeMillis = 250 // one period (sim.DefaultEngineConfig)
	from = len(r.sent)
	r.receive(peer(1), 1, old)
	assert.Zero(t, gossipOnly(t, r, from, true), "not when it is a period old")
	assert.Equal(t, uint64(3), r.e.Stats().Pushes)
}

// An accused node pushes its refutation however it was accused: the
// accusers' checks and last probes may be running everywhere at once (a
// suspicion that is confirmed spreads at once, as a verdict floods), and
// a node that reaches others by another way than they reach it has no
// other way to stop them in time.
func TestRefutationIsPushedWhateverItRefutes(t *testing.T) {
	r := newRig(t)
	r.addPeers(10)
	from := len(r.sent)
	r.receive(peer(1), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusSuspect, Incarnation: 100, Subject: rigSelf, Source: peer(1)})
	assert.Equal(t, uint64(1), r.e.Stats().Refutations)
	assert.Equal(t, 3, pushedUpdates(t, r, from, rigSelf, wire.StatusAlive), "a suspicion's refutation is pushed")

	from = len(r.sent)
	r.receive(peer(1), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusDead, Incarnation: 101, Subject: rigSelf, Source: peer(1)})
	assert.Equal(t, uint64(2), r.e.Stats().Refutations)
	assert.Equal(t, 3, pushedUpdates(t, r, from, rigSelf, wire.StatusAlive), "a verdict's refutation is pushed")
}

// A member suspected here with another node's verdict behind it is a death
// on its way: its refutation, however it comes, is pushed on. The
// refutation of a suspicion alone is not.
func TestRefutationOfASuspicionAVerdictBacksIsPushedOn(t *testing.T) {
	r := newRig(t)
	r.addPeers(10)
	suspect := func(who netip.AddrPort) wire.Message {
		return wire.Message{Type: wire.TypeUpdate, Status: wire.StatusSuspect, Incarnation: 1, Subject: who, Source: peer(9)}
	}
	alive := func(who netip.AddrPort) wire.Message {
		return wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 2, Subject: who}
	}
	// peer 0: suspected only. Its refutation is not pushed.
	r.receive(peer(9), 1, suspect(peer(0)))
	from := len(r.sent)
	r.receive(peer(0), 2, alive(peer(0)))
	assert.Zero(t, pushedUpdates(t, r, from, peer(0), wire.StatusAlive))

	// peer 1: suspected, then another node's DEAD verdict (a suspicion
	// here, with a last probe). Its refutation is pushed on, not back.
	r.receive(peer(9), 1, suspect(peer(1)))
	r.receive(peer(8), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusDead, Incarnation: 1, Subject: peer(1), Source: peer(8)})
	m, ok := r.e.Member(peer(1))
	require.True(t, ok)
	require.Equal(t, swim.StatusSuspect, m.Status)
	from = len(r.sent)
	r.receive(peer(7), 1, alive(peer(1)))
	assert.Equal(t, 3, pushedUpdates(t, r, from, peer(1), wire.StatusAlive))
	for _, p := range r.sent[from:] {
		assert.NotEqual(t, peer(7), p.To, "not back to the node it came from")
	}
}

// The refutation of a suspicion this node raised itself (its probe failed)
// starts gossip rounds: others are confirming that suspicion and will soon
// run it out. The refutation of one only heard of rides on probes.
func TestRefutationOfOwnAccusationStartsGossipRounds(t *testing.T) {
	r := newRigWith(t, func(c *swim.Config) { c.SuspicionChecks = -1 })
	r.addPeers(10)
	r.run(30 * time.Second)

	r.receive(peer(9), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusSuspect, Incarnation: 1, Subject: peer(1), Source: peer(9)})
	from := len(r.sent)
	r.receive(peer(2), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 2, Subject: peer(1)})
	r.run(200 * time.Millisecond)
	assert.Zero(t, gossipOnly(t, r, from, false), "heard of only: no rounds")

	r.silent[peer(0)] = true
	failProbe(t, r, nil)
	m, _ := r.e.Member(peer(0))
	require.Equal(t, swim.StatusSuspect, m.Status)
	from = len(r.sent)
	r.receive(peer(2), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 2, Subject: peer(0)})
	r.run(200 * time.Millisecond)
	assert.Positive(t, gossipOnly(t, r, from, false), "accused here: rounds")
}
