package swim_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
	"github.com/seed-c7906467/smudge/sim"
)

// quietEngine returns an engine that knows n peers ALIVE at incarnation 1,
// learned from join answers (so nothing is queued for gossip), with its
// output drained.
func quietEngine(b testing.TB, n int) (*swim.Engine, time.Time) {
	cfg := sim.DefaultEngineConfig()
	cfg.Self = rigSelf
	cfg.Incarnation = 100
	cfg.Rand = rand.New(rand.NewPCG(1, 2))
	now := sim.DefaultStart
	e, err := swim.New(cfg, now)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range syncPackets(cfg.ClusterID, 0, n) {
		e.Receive(now, member(0), p)
		e.Outbox()
	}
	if e.NumLive() != n+1 {
		b.Fatalf("engine knows %d members, want %d", e.NumLive(), n+1)
	}
	return e, now
}

// member is the address of the i-th member of the benchmarks' views, for
// views larger than peer's.
func member(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(16 + i>>16), byte(i >> 8), byte(i)}), 7946)
}

// syncPackets are join answers from member(from) describing members from..to-1
// ALIVE at incarnation 1.
func syncPackets(cluster uint32, from, to int) [][]byte {
	var out [][]byte
	hdr := wire.Header{Flags: wire.HeaderFlagSync, Cluster: cluster, Sender: member(from), Incarnation: 1}
	b := wire.AppendHeader(nil, hdr)
	for i := from; i < to; i++ {
		u := wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 1, Subject: member(i)}
		if len(b)+u.EncodedLen() > 1400 {
			out = append(out, b)
			b = wire.AppendHeader(nil, hdr)
		}
		b = u.AppendTo(b)
	}
	return append(out, b)
}

// BenchmarkReceiveGossip is the commonest receive: an ack carrying as many
// updates as fit in a packet, none of them news (every subject is known at
// that incarnation already).
func BenchmarkReceiveGossip(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			e, now := quietEngine(b, n)
			pkt := wire.AppendHeader(nil, wire.Header{Cluster: wire.ClusterID("sim"), Sender: member(1), Incarnation: 1})
			ack := wire.Message{Type: wire.TypeAck, Seq: 12345}
			pkt = ack.AppendTo(pkt)
			msgs := 1
			for i := 0; ; i++ {
				u := wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 1,
					Subject: member(i * 7 % n), Source: member(2)}
				if len(pkt)+u.EncodedLen() > 1400 {
					break
				}
				pkt = u.AppendTo(pkt)
				msgs++
			}
			b.ReportMetric(float64(msgs), "msgs/packet")
			b.ReportAllocs()
			for b.Loop() {
				e.Receive(now, member(1), pkt)
				e.Outbox()
			}
		})
	}
}

// BenchmarkProbePeriod is one protocol period of a quiet cluster of n as one
// node lives it: its tick sends a ping with piggybacked gossip, the ack comes
// back, and it answers one ping from another member.
func BenchmarkProbePeriod(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			e, now := quietEngine(b, n)
			cluster := wire.ClusterID("sim")
			var dec wire.Packet
			buf := make([]byte, 0, 64)
			ping := wire.Message{Type: wire.TypePing, Seq: 9, Target: rigSelf}
			inPing := ping.AppendTo(wire.AppendHeader(nil, wire.Header{Cluster: cluster, Sender: member(5), Incarnation: 1}))
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(period)
				e.Tick(now)
				pkts, _ := e.Outbox()
				for _, p := range pkts {
					if dec.Decode(p.Data) == nil && dec.Messages[0].Type == wire.TypePing {
						ack := wire.Message{Type: wire.TypeAck, Seq: dec.Messages[0].Seq}
						buf = wire.AppendHeader(buf[:0], wire.Header{Cluster: cluster, Sender: p.To, Incarnation: 1})
						e.Receive(now, p.To, ack.AppendTo(buf))
					}
				}
				e.Receive(now, member(5), inPing)
				e.Outbox()
			}
		})
	}
}

// BenchmarkJoinAnswer is the cost of learning members from join answers, per
// member: what a full view costs to build, in time and memory.
func BenchmarkJoinAnswer(b *testing.B) {
	const n = 10000
	pkts := syncPackets(wire.ClusterID("sim"), 0, n)
	b.ReportAllocs()
	var heap uint64
	for b.Loop() {
		cfg := sim.DefaultEngineConfig()
		cfg.Self = rigSelf
		cfg.Rand = rand.New(rand.NewPCG(1, 2))
		e, _ := swim.New(cfg, sim.DefaultStart)
		b.StopTimer()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		for _, p := range pkts {
			e.Receive(sim.DefaultStart, member(0), p)
			e.Outbox()
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap += after.HeapAlloc - before.HeapAlloc
		runtime.KeepAlive(e)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/member")
	b.ReportMetric(float64(heap)/float64(b.N*n), "heap-B/member")
}

// BenchmarkMemberLookup is Member(addr) on a view of 10000.
func BenchmarkMemberLookup(b *testing.B) {
	e, _ := quietEngine(b, 10000)
	addrs := make([]netip.AddrPort, 1024)
	for i := range addrs {
		addrs[i] = member(i * 9)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := e.Member(addrs[i&1023]); !ok {
			b.Fatal("unknown")
		}
		i++
	}
}
