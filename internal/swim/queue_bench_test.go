package swim

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/seed-c7906467/smudge/internal/wire"
)

func benchPeer(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 8, byte(i >> 8), byte(i)}), 7946)
}

// BenchmarkPiggyback is the selection of gossip for one packet: as many of
// the least-sent queued updates and broadcasts as fit in 1400 bytes, each
// sent at most 17 times (the limit of a cluster of 1000). The queue is
// topped up, outside the timer, when half of it has gone.
func BenchmarkPiggyback(b *testing.B) {
	for _, n := range []int{20, 1000} {
		b.Run(fmt.Sprintf("queued=%d", n), func(b *testing.B) {
			q := newGossipQueue()
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			next := 0
			topUp := func() {
				for q.len < n {
					q.addUpdate(wire.Message{Type: wire.TypeUpdate, Status: wire.StatusSuspect, Incarnation: 7,
						Subject: benchPeer(next % 60000), Source: benchPeer(1)})
					next++
				}
				for q.broadcasts < 4 {
					q.addBroadcast(wire.Message{Type: wire.TypeBroadcast, Subject: benchPeer(1), Boot: 1,
						Index: uint32(next), Payload: make([]byte, 64)}, now, netip.AddrPort{})
					next++
				}
			}
			topUp()
			hdr := wire.AppendHeader(nil, wire.Header{Cluster: 1, Sender: benchPeer(60001), Incarnation: 1})
			buf := make([]byte, 0, 1400)
			msgs := 0
			b.ReportAllocs()
			for b.Loop() {
				pkt := append(buf[:0], hdr...)
				before := q.fills
				pkt, _ = q.fill(pkt, 1400-len(pkt), now, 17, time.Hour, benchPeer(2))
				if q.fills != before+1 || len(pkt) == len(hdr) {
					b.Fatal("nothing piggybacked")
				}
				msgs += countMsgs(pkt[len(hdr):])
				if q.len < n/2 {
					b.StopTimer()
					topUp()
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(msgs)/float64(b.N), "msgs/packet")
		})
	}
}

// countMsgs counts the type-length-value messages in b.
func countMsgs(b []byte) int {
	n := 0
	for len(b) >= 3 {
		l := 3 + (int(b[1])<<8 | int(b[2]))
		b = b[min(l, len(b)):]
		n++
	}
	return n
}
