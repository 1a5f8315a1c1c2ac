package swim_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
)

// bcast is broadcast index i of origin, boot 1.
func bcast(origin netip.AddrPort, i uint32) wire.Message {
	return wire.Message{Type: wire.TypeBroadcast, Subject: origin, Boot: 1, Index: i, Payload: fmt.Appendf(nil, "b%d", i)}
}

// digestOf returns the digest in the last probe ping sent since from, and
// whether that ping had PingFlagDigest.
func (r *rig) lastProbeDigest(from int) (*wire.Message, bool) {
	var ping, digest *wire.Message
	for _, p := range r.sent[from:] {
		var dec wire.Packet
		require.NoError(r.t, dec.Decode(p.Data))
		for i := range dec.Messages {
			m := dec.Messages[i]
			m.Entries = append([]byte(nil), m.Entries...)
			switch m.Type {
			case wire.TypePing:
				if m.Flags&wire.PingFlagDigest != 0 {
					ping, digest = &m, nil
				}
			case wire.TypeDigest:
				if ping != nil {
					digest = &m
				}
			}
		}
	}
	return digest, ping != nil
}

// entries decodes a digest's entries as "origin/boot: index..." strings.
func entries(t *testing.T, d *wire.Message) []string {
	var out []string
	for rest := d.Entries; len(rest) > 0; {
		e, next, err := wire.NextDigestEntry(rest)
		require.NoError(t, err)
		rest = next
		s := fmt.Sprintf("%v/%d:", e.Origin, e.Boot)
		for i := e.First; e.Covers(i); i++ {
			if e.Has(i) {
				s += fmt.Sprintf(" %d", i)
			}
		}
		out = append(out, s)
	}
	return out
}

func TestProbesCarryADigestOfRetainedBroadcasts(t *testing.T) {
	r := newRig(t)
	r.addPeers(3)
	from := len(r.sent)
	r.run(2 * period)
	d, flagged := r.lastProbeDigest(from)
	require.True(t, flagged, "probes carry PingFlagDigest")
	require.Nil(t, d, "nothing retained: the flag alone says so")

	for _, i := range []uint32{1, 2, 4} {
		r.receive(peer(0), 1, bcast(peer(0), i))
	}
	r.receive(peer(1), 1, bcast(peer(1), 9))
	_, err := r.e.Broadcast(r.now, []byte("own"))
	require.NoError(t, err)
	from = len(r.sent)
	r.run(2 * period)
	d, _ = r.lastProbeDigest(from)
	require.NotNil(t, d)
	require.Zero(t, d.Flags&wire.DigestFlagPartial)
	require.ElementsMatch(t, []string{
		peer(0).String() + "/1: 1 2 4",
		peer(1).String() + "/1: 9",
		rigSelf.String() + "/7: 1",
	}, entries(t, d))

	// Past the retain window (BroadcastTTL/2 * 5/4) they are no longer listed.
	r.run(20 * time.Second)
	from = len(r.sent)
	r.run(2 * period)
	d, _ = r.lastProbeDigest(from)
	require.Nil(t, d)
}

// ackRepairs sends the engine a ping from p with the given flags and digest
// and returns the broadcasts in its answer, as "origin/index".
func (r *rig) ackRepairs(p netip.AddrPort, flags uint8, d *wire.Message) []string {
	msgs := []wire.Message{{Type: wire.TypePing, Seq: 77, Flags: flags}}
	if d != nil {
		msgs = append(msgs, *d)
	}
	from := len(r.sent)
	r.receive(p, 1, msgs...)
	var out []string
	for _, m := range r.sentMessages(from) {
		if m.Type == wire.TypeBroadcast {
			out = append(out, fmt.Sprintf("%v/%d", m.Subject, m.Index))
		}
	}
	return out
}

func TestAcksCarryTheBroadcastsADigestLacks(t *testing.T) {
	// No pushes: each new broadcast's pushes would carry the ones before
	// it as gossip and use up their queue sends before the first ack.
	r := newRigWith(t, func(c *swim.Config) { c.PushFanout = -1 })
	r.addPeers(4)
	origin := peer(0)
	for i := uint32(1); i <= 3; i++ {
		r.receive(origin, 1, bcast(origin, i))
	}
	// Until they have left this node's gossip queue, the queue carries
	// them (piggybacked on this very ack): no repairs.
	r.ackRepairs(peer(2), wire.PingFlagDigest, nil)
	require.Zero(t, r.e.Stats().BroadcastsRepaired)
	r.run(5 * time.Second) // every queued item sent EmitLimit times
	require.Zero(t, r.e.Stats().QueuedGossip)

	// No digest at all: it has none of them.
	require.ElementsMatch(t, []string{origin.String() + "/1", origin.String() + "/2", origin.String() + "/3"},
		r.ackRepairs(peer(2), wire.PingFlagDigest, nil))
	// A digest listing index 2: it gets 1 and 3.
	entry := wire.AppendDigestEntry(nil, wire.DigestEntry{Origin: origin, Boot: 1, First: 2, Count: 1, Bitmap: []byte{0x80}})
	require.ElementsMatch(t, []string{origin.String() + "/1", origin.String() + "/3"},
		r.ackRepairs(peer(3), wire.PingFlagDigest, &wire.Message{Type: wire.TypeDigest, Entries: entry}))
	// A ping without the flag (an old sender, a relayed ping) gets none.
	require.Empty(t, r.ackRepairs(peer(3), 0, nil))
	// The origin is never sent its own broadcasts.
	require.Empty(t, r.ackRepairs(origin, wire.PingFlagDigest, nil))
	// A partial digest whose cutoff is younger than them: not known to be
	// missing, not sent.
	require.Empty(t, r.ackRepairs(peer(3), wire.PingFlagDigest,
		&wire.Message{Type: wire.TypeDigest, Flags: wire.DigestFlagPartial, AgeMillis: 100, Entries: entry}))
	require.Equal(t, uint64(5), r.e.Stats().BroadcastsRepaired)

	// Past the repair window (BroadcastTTL/2) nothing is offered.
	r.run(15 * time.Second)
	require.Empty(t, r.ackRepairs(peer(2), wire.PingFlagDigest, nil))
}

func TestADigestTooLongForItsBudgetListsTheNewest(t *testing.T) {
	r := newRigWith(t, func(c *swim.Config) { c.MaxPacketBytes = 400 }) // a 100-byte digest budget
	r.addPeers(2)
	// 20 origins, one broadcast each, a period apart: 20 entries of 18
	// bytes do not fit.
	for i := range 20 {
		origin := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 8, 0, byte(i + 1)}), 7946)
		r.receive(peer(0), 1, bcast(origin, 1))
		r.run(period)
	}
	from := len(r.sent)
	r.run(2 * period)
	d, _ := r.lastProbeDigest(from)
	require.NotNil(t, d)
	require.NotZero(t, d.Flags&wire.DigestFlagPartial)
	got := entries(t, d)
	require.Len(t, got, 5, "5 entries of 18 bytes fit in 100: %v", got)
	for i := 16; i <= 20; i++ { // the newest five
		require.Contains(t, got, fmt.Sprintf("10.8.0.%d:7946/1: 1", i))
	}
	// The cutoff is the age of the oldest listed: about 4 to 6 periods.
	require.InDelta(t, float64(5*period/time.Millisecond), float64(d.AgeMillis), float64(2*period/time.Millisecond))
}
