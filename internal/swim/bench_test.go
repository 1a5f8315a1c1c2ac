package swim_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
)

// BenchmarkSimFigures measures, on the virtual clock with smudge's defaults
// (250 ms period, 1 ms latency, no loss), the steady cost per node and how
// long a crash takes to be detected. Run with:
//
//	go test -run '^$' -bench SimFigures -benchtime 5x ./internal/swim/
func BenchmarkSimFigures(b *testing.B) {
	for _, n := range []int{10, 50, 200} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			var first, all, pkts, bytes float64
			for i := 0; i < b.N; i++ {
				s := newCluster(b, n, uint64(i+1), nil)
				s.KeepLog = false
				if !s.RunUntil(func() bool { return converged(s) }, 50*time.Millisecond, 5*time.Minute) {
					b.Fatal("no convergence")
				}
				s.RunFor(40 * period) // let the join gossip die down
				before := s.Net
				const steady = 100
				s.RunFor(steady * period)
				pkts += float64(s.Net.Sent-before.Sent) / float64(n) / steady
				bytes += float64(s.Net.Bytes-before.Bytes) / float64(n) / steady

				victim := s.Node(n / 2)
				s.Crash(victim)
				start := s.Elapsed()
				s.RunUntil(func() bool {
					for _, o := range s.Nodes() {
						if o != victim && statusOf(o, victim) != swim.StatusAlive {
							return true
						}
					}
					return false
				}, 10*time.Millisecond, time.Minute)
				first += float64(s.Elapsed()-start) / float64(period)
				s.RunUntil(func() bool { return allSee(s, victim, swim.StatusDead) }, 10*time.Millisecond, time.Minute)
				all += float64(s.Elapsed()-start) / float64(period)
			}
			N := float64(b.N)
			b.ReportMetric(first/N, "periods-to-first-suspicion")
			b.ReportMetric(all/N, "periods-to-dead-at-all")
			b.ReportMetric(pkts/N, "packets/node/period")
			b.ReportMetric(bytes/N, "bytes/node/period")
		})
	}
}

// BenchmarkReceivePing is the hot path: a ping arrives, an ack goes out.
func BenchmarkReceivePing(b *testing.B) {
	r := newRig(b)
	r.addPeers(20)
	r.run(40 * period)
	pkt := r.header(peer(3), 1)
	ping := wire.Message{Type: wire.TypePing, Seq: 9, Target: rigSelf}
	pkt = ping.AppendTo(pkt)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.e.Receive(r.now, peer(3), pkt)
		r.e.Outbox()
	}
}

// BenchmarkTickProbe is one protocol period's probe of a quiet cluster.
func BenchmarkTickProbe(b *testing.B) {
	r := newRig(b)
	r.addPeers(100)
	r.run(100 * period)
	// The harness reuses its decoder and buffer, so allocations are the
	// engine's own.
	var dec wire.Packet
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.now = r.now.Add(period)
		r.e.Tick(r.now)
		pkts, _ := r.e.Outbox()
		for _, p := range pkts { // answer, so that nobody is suspected
			if dec.Decode(p.Data) == nil && dec.Messages[0].Type == wire.TypePing {
				ack := wire.Message{Type: wire.TypeAck, Seq: dec.Messages[0].Seq}
				buf = wire.AppendHeader(buf[:0], wire.Header{Cluster: r.cluster, Sender: p.To, Incarnation: 1})
				r.e.Receive(r.now, p.To, ack.AppendTo(buf))
			}
		}
		r.e.Outbox()
	}
}
