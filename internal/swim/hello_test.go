package swim_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
)

// joinAnswer is a packet marked as a join answer from seed, describing
// peers 1..n alive.
func (r *rig) joinAnswer(seed netip.AddrPort, n int) []byte {
	b := wire.AppendHeader(nil, wire.Header{Cluster: r.cluster, Sender: seed, Incarnation: 1, Flags: wire.HeaderFlagSync})
	for i := 1; i <= n; i++ {
		u := wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 1, Subject: peer(i)}
		b = u.AppendTo(b)
	}
	return b
}

// greetings lists to whom the packets sent since from that hold only this
// node's own update went.
func (r *rig) greetings(from int) []netip.AddrPort {
	var to []netip.AddrPort
	for _, p := range r.sent[from:] {
		var dec wire.Packet
		require.NoError(r.t, dec.Decode(p.Data))
		if len(dec.Messages) == 1 && dec.Messages[0].Type == wire.TypeUpdate && dec.Messages[0].Subject == rigSelf &&
			dec.Messages[0].HasMeta && dec.Header.Flags == 0 {
			to = append(to, p.To)
		}
	}
	return to
}

func TestJoinerGreetsTheMembersItsJoinAnswerListsOnce(t *testing.T) {
	r := newRig(t)
	seed := peer(0)
	r.e.Join(r.now, seed)
	r.collect()
	r.receive(peer(2), 1, wire.Message{Type: wire.TypeAck, Seq: 0}) // heard from 2 itself: it knows this node
	from := len(r.sent)
	r.e.Receive(r.now, seed, r.joinAnswer(seed, 5))
	r.collect()
	assert.Equal(t, []netip.AddrPort{peer(1), peer(3), peer(4), peer(5)}, r.greetings(from),
		"every member listed but the one heard from, once each, the seed not at all")
	from = len(r.sent)
	r.e.Receive(r.now, seed, r.joinAnswer(seed, 6)) // a second answer: only the new member
	r.collect()
	assert.Equal(t, []netip.AddrPort{peer(6)}, r.greetings(from))
	assert.Equal(t, uint64(5), r.e.Stats().Hellos)

	from = len(r.sent)
	r.e.Receive(r.now, peer(1), r.header(peer(7), 1)) // not a join answer: no greeting
	r.collect()
	assert.Empty(t, r.greetings(from))
}

func TestGreetingsAreBounded(t *testing.T) {
	r := newRigWith(t, func(c *swim.Config) { c.MaxHellos = 3 })
	r.e.Join(r.now, peer(0))
	r.collect()
	from := len(r.sent)
	r.e.Receive(r.now, peer(0), r.joinAnswer(peer(0), 10))
	r.collect()
	assert.Len(t, r.greetings(from), 3)
	st := r.e.Stats()
	assert.Equal(t, uint64(3), st.Hellos)
	assert.Equal(t, uint64(7), st.HellosSkipped)
}

func TestGreetingsOff(t *testing.T) {
	r := newRigWith(t, func(c *swim.Config) { c.MaxHellos = -1 })
	r.e.Join(r.now, peer(0))
	r.collect()
	from := len(r.sent)
	r.e.Receive(r.now, peer(0), r.joinAnswer(peer(0), 10))
	r.collect()
	assert.Empty(t, r.greetings(from))
	assert.Zero(t, r.e.Stats().HellosSkipped)
}
