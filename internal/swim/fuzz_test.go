package swim_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/wire"
)

// FuzzReceive feeds arbitrary datagrams to an engine that knows a few
// members: it must never panic, every packet it sends must decode and fit,
// and its member count must stay consistent.
func FuzzReceive(f *testing.F) {
	r := newRig(f)
	hdr := r.header(peer(0), 1)
	add := func(msgs ...wire.Message) {
		b := append([]byte(nil), hdr...)
		for i := range msgs {
			b = msgs[i].AppendTo(b)
		}
		f.Add(b)
	}
	add(wire.Message{Type: wire.TypePing, Seq: 1, Target: rigSelf})
	add(wire.Message{Type: wire.TypePing, Seq: 2, Flags: wire.PingFlagJoin})
	add(wire.Message{Type: wire.TypeAck, Seq: 3})
	add(wire.Message{Type: wire.TypePingReq, Seq: 4, Target: peer(1)})
	add(wire.Message{Type: wire.TypeUpdate, Status: wire.StatusSuspect, Incarnation: 100, Subject: rigSelf, Source: peer(0)})
	add(wire.Message{Type: wire.TypeUpdate, Status: wire.StatusDead, Incarnation: 1, Subject: peer(1), Source: peer(0)},
		wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 2, Subject: peer(7), Source: peer(7)})
	add(wire.Message{Type: wire.TypeBroadcast, Subject: peer(0), Boot: 1, Index: 1, Payload: []byte("hi")},
		wire.Message{Type: wire.TypeBroadcast, Subject: rigSelf, Boot: 7, Index: 1, Payload: []byte("echo")})
	f.Add([]byte("SW\x01\x00garbage"))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		r := newRig(t)
		r.addPeers(4)
		r.e.Receive(r.now, peer(0), data)
		r.collect() // checks every sent packet decodes and fits
		r.run(3 * period)
		live := 0
		for _, m := range r.e.Members() {
			if m.Status == wire.StatusAlive || m.Status == wire.StatusSuspect {
				live++
			}
		}
		require.Equal(t, live, r.e.NumLive())
	})
}
