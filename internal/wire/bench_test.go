package wire

import (
	"fmt"
	"net/netip"
	"testing"
)

// benchMTU is the packet budget the benchmarks fill, a typical safe UDP
// payload size.
const benchMTU = 1400

func benchAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 7946)
}

var benchHeader = Header{Cluster: ClusterID("bench"), Sender: benchAddr(1), Incarnation: 42}

func benchUpdate(i int) Message {
	return Message{Type: TypeUpdate, Status: Status(1 + i%4), Incarnation: uint32(i),
		Subject: benchAddr(100 + i), Source: benchAddr(1)}
}

// BenchmarkEncodePing encodes a header, a ping and six piggybacked updates
// into a reused buffer: the common outgoing packet.
func BenchmarkEncodePing(b *testing.B) {
	ping := Message{Type: TypePing, Seq: 12345, Target: benchAddr(2)}
	updates := make([]Message, 6)
	for i := range updates {
		updates[i] = benchUpdate(i)
	}
	buf := make([]byte, 0, benchMTU)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendHeader(buf[:0], benchHeader)
		buf = ping.AppendTo(buf)
		for i := range updates {
			buf = updates[i].AppendTo(buf)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkDecodeCompound decodes a packet of up to benchMTU bytes holding a
// ping and as many updates as fit.
func BenchmarkDecodeCompound(b *testing.B) {
	buf := AppendHeader(nil, benchHeader)
	ping := Message{Type: TypePing, Seq: 12345, Target: benchAddr(2)}
	buf = ping.AppendTo(buf)
	n := 0
	for {
		u := benchUpdate(n)
		if len(buf)+u.EncodedLen() > benchMTU {
			break
		}
		buf = u.AppendTo(buf)
		n++
	}
	var p Packet
	if err := p.Decode(buf); err != nil || len(p.Messages) != n+1 {
		b.Fatalf("decode: %v, %d messages", err, len(p.Messages))
	}
	b.ReportMetric(float64(n+1), "msgs/packet")
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}

var broadcastSizes = []int{64, 1024}

// BenchmarkEncodeBroadcast encodes a header and one broadcast into a reused
// buffer.
func BenchmarkEncodeBroadcast(b *testing.B) {
	for _, size := range broadcastSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			m := Message{Type: TypeBroadcast, Subject: benchAddr(1), Boot: 7, Index: 99, AgeMillis: 150,
				Payload: make([]byte, size)}
			buf := make([]byte, 0, benchMTU)
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendHeader(buf[:0], benchHeader)
				buf = m.AppendTo(buf)
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

// BenchmarkDecodeBroadcast decodes a packet holding one broadcast.
func BenchmarkDecodeBroadcast(b *testing.B) {
	for _, size := range broadcastSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			m := Message{Type: TypeBroadcast, Subject: benchAddr(1), Boot: 7, Index: 99, AgeMillis: 150,
				Payload: make([]byte, size)}
			buf := m.AppendTo(AppendHeader(nil, benchHeader))
			var p Packet
			if err := p.Decode(buf); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Decode(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
