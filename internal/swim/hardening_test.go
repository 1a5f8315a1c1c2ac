package swim_test

import (
	"fmt"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
)

// A member whose status flips at a high rate (each flip a new incarnation,
// each suspicion a new timer) does not grow the timer heap without bound.
func TestTimerHeapFollowsMembersNotTheRateOfFlips(t *testing.T) {
	r := newRig(t)
	r.addPeers(10)
	p := peer(3)
	for i := range 100_000 {
		inc := uint32(2 + i)
		st := wire.StatusSuspect
		if i%2 == 1 {
			st = wire.StatusAlive
		}
		r.receive(peer(4), 1, wire.Message{Type: wire.TypeUpdate, Status: st, Incarnation: inc, Subject: p, Source: peer(4)})
		if i%1000 == 0 {
			r.now = r.now.Add(time.Millisecond)
		}
	}
	st := r.e.Stats()
	require.Less(t, st.PendingTimers, 4*(10+swim.DefaultMaxPendingProbes)+64+1, "heap size")
	require.Less(t, st.PendingTimers, 200, "heap size with 10 members")
	require.Positive(t, st.TimerCompactions)
	m, _ := r.e.Member(p)
	require.Equal(t, swim.StatusAlive, m.Status)
	// The timers that matter still fire: a suspicion runs its course.
	r.silent[p] = true
	r.receive(peer(4), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusSuspect, Incarnation: m.Incarnation, Subject: p, Source: peer(4)})
	r.run(30 * time.Second)
	m, _ = r.e.Member(p)
	require.Equal(t, swim.StatusDead, m.Status, "the last suspicion's timer fired")
}

func TestIncarnationJumpsAreRefused(t *testing.T) {
	r := newRig(t)
	p := peer(0)
	r.receive(p, 1000, wire.Message{Type: wire.TypeAck})
	far := uint32(1000 + swim.MaxIncarnationJump + 1)

	// A rumour about it at an incarnation far above: ignored.
	r.receive(peer(1), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusDead, Incarnation: far, Subject: p, Source: peer(1)})
	m, _ := r.e.Member(p)
	require.Equal(t, uint32(1000), m.Incarnation)
	require.Equal(t, swim.StatusAlive, m.Status)
	// A packet whose header claims it: dropped, messages and all.
	r.receive(p, far, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusDead, Incarnation: 5, Subject: peer(1), Source: p})
	m, _ = r.e.Member(p)
	require.Equal(t, uint32(1000), m.Incarnation)
	n1, _ := r.e.Member(peer(1))
	require.Equal(t, swim.StatusAlive, n1.Status)
	// At the bound it is believed.
	r.receive(peer(1), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: far - 1, Subject: p, Source: p})
	m, _ = r.e.Member(p)
	require.Equal(t, far-1, m.Incarnation)

	// Rumours about this node far above its own: not refuted.
	inc := r.e.Incarnation()
	r.receive(peer(1), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusSuspect, Incarnation: inc + swim.MaxIncarnationJump + 1, Subject: rigSelf, Source: peer(1)})
	require.Equal(t, inc, r.e.Incarnation())
	require.Equal(t, uint64(3), r.e.Stats().DroppedIncJump)
}

func TestIncarnationNeverWraps(t *testing.T) {
	r := newRigWith(t, func(c *swim.Config) { c.Incarnation = math.MaxUint32 - 1 })
	p := peer(0)
	r.receive(p, 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusSuspect, Incarnation: math.MaxUint32 - 1, Subject: rigSelf, Source: p})
	require.Equal(t, uint32(math.MaxUint32), r.e.Incarnation(), "refuted to the top")
	r.receive(p, 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusSuspect, Incarnation: math.MaxUint32, Subject: rigSelf, Source: p})
	require.Equal(t, uint32(math.MaxUint32), r.e.Incarnation(), "no refutation past the top: it would wrap to 0")
	require.ErrorIs(t, r.e.SetMeta(r.now, []byte("x")), swim.ErrIncarnationExhausted)
	r.e.Leave(r.now)
	require.Equal(t, uint32(math.MaxUint32), r.e.Incarnation())
	self, _ := r.e.Member(rigSelf)
	require.Equal(t, swim.StatusLeft, self.Status)
}

// syncPackets counts the join answers (member lists) sent since from, and
// the largest packet sent to addr.
func (r *rig) syncPackets(from int, addr netip.AddrPort) (syncs, largest int) {
	for _, p := range r.sent[from:] {
		h, _, err := wire.DecodeHeader(p.Data)
		require.NoError(r.t, err)
		if h.Flags&wire.HeaderFlagSync != 0 {
			syncs++
		}
		if p.To == addr {
			largest = max(largest, len(p.Data))
		}
	}
	return syncs, largest
}

// A forged source address cannot make this node an amplifier: a sender
// that has not acked a ping of this node's gets at most three times the
// bytes it sent, and its member list only once it acks.
func TestAnswersToUnverifiedSendersAreBounded(t *testing.T) {
	r := newRig(t)
	r.addPeers(60) // enough members for the answers to be large
	for i := range 60 {
		_, err := r.e.Broadcast(r.now, []byte(fmt.Sprint("gossip to carry ", i)))
		require.NoError(t, err)
	}
	victim := netip.MustParseAddrPort("10.7.0.1:7946")
	r.silent[victim] = true
	join := r.packet(victim, 1, wire.Message{Type: wire.TypePing, Seq: 4, Flags: wire.PingFlagJoin})
	mark := len(r.sent)
	r.e.Receive(r.now, victim, join)
	r.collect()
	syncs, largest := r.syncPackets(mark, victim)
	require.Zero(t, syncs, "no member list before it proves it receives")
	require.LessOrEqual(t, largest, 3*len(join))
	require.Equal(t, uint64(1), r.e.Stats().SyncsDeferred)

	// The same from a real node: it acks the ping it is sent, and gets
	// the list.
	joiner := netip.MustParseAddrPort("10.7.0.2:7946")
	mark = len(r.sent)
	r.e.Receive(r.now, joiner, r.packet(joiner, 1, wire.Message{Type: wire.TypePing, Seq: 4, Flags: wire.PingFlagJoin}))
	r.collect() // the rig acks the engine's ping
	syncs, largest = r.syncPackets(mark, joiner)
	require.Positive(t, syncs, "the member list follows its ack")
	require.Greater(t, largest, 3*len(join))

	// A ping-req for an address that is not a member is not relayed.
	mark = len(r.sent)
	r.e.Receive(r.now, peer(1), r.packet(peer(1), 1, wire.Message{Type: wire.TypePingReq, Seq: 9, Target: netip.MustParseAddrPort("192.0.2.1:53")}))
	r.collect()
	for _, p := range r.sent[mark:] {
		require.NotEqual(t, netip.MustParseAddrPort("192.0.2.1:53"), p.To)
	}
	require.Equal(t, uint64(1), r.e.Stats().DroppedRelayUnknown)
}
