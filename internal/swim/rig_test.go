package swim_test

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
	"github.com/seed-c7906467/smudge/sim"
)

// rig drives one engine by hand: a fake clock, and fake peers that answer
// every ping at once. It records every packet the engine sends.
type rig struct {
	t       testing.TB
	e       *swim.Engine
	now     time.Time
	cluster uint32
	sent    []swim.Packet // copies
	events  []swim.Event
	silent  map[netip.AddrPort]bool // peers that do not answer
}

var rigSelf = netip.MustParseAddrPort("10.9.0.1:7946")

func peer(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i) + 2}), 7946)
}

func newRig(t testing.TB) *rig { return newRigWith(t, nil) }

func newRigWith(t testing.TB, tweak func(*swim.Config)) *rig {
	cfg := sim.DefaultEngineConfig()
	cfg.Self = rigSelf
	cfg.Incarnation = 100
	cfg.BootID = 7
	cfg.Rand = rand.New(rand.NewPCG(1, 2))
	if tweak != nil {
		tweak(&cfg)
	}
	now := sim.DefaultStart
	e, err := swim.New(cfg, now)
	require.NoError(t, err)
	r := &rig{t: t, e: e, now: now, cluster: cfg.ClusterID, silent: map[netip.AddrPort]bool{}}
	r.collect()
	return r
}

func (r *rig) header(from netip.AddrPort, inc uint32) []byte {
	return wire.AppendHeader(nil, wire.Header{Cluster: r.cluster, Sender: from, Incarnation: inc})
}

// receive hands the engine a packet from a peer made of msgs.
func (r *rig) receive(from netip.AddrPort, inc uint32, msgs ...wire.Message) {
	b := r.header(from, inc)
	for i := range msgs {
		b = msgs[i].AppendTo(b)
	}
	r.e.Receive(r.now, from, b)
	r.collect()
}

// collect takes the engine's output and answers pings from live fake peers.
func (r *rig) collect() {
	for {
		pkts, evs := r.e.Outbox()
		r.events = append(r.events, evs...)
		var answers [][2]any
		for _, p := range pkts {
			r.sent = append(r.sent, swim.Packet{To: p.To, Data: append([]byte(nil), p.Data...)})
			var dec wire.Packet
			require.NoError(r.t, dec.Decode(p.Data), "the engine sent an undecodable packet")
			require.LessOrEqual(r.t, len(p.Data), 1400, "packet over MaxPacketBytes")
			for _, m := range dec.Messages {
				if m.Type == wire.TypePing && !r.silent[p.To] {
					answers = append(answers, [2]any{p.To, m.Seq})
				}
			}
		}
		if len(answers) == 0 {
			return
		}
		for _, a := range answers {
			b := r.header(a[0].(netip.AddrPort), 1)
			ack := wire.Message{Type: wire.TypeAck, Seq: a[1].(uint16)}
			b = ack.AppendTo(b)
			r.now = r.now.Add(time.Millisecond)
			r.e.Receive(r.now, a[0].(netip.AddrPort), b)
		}
	}
}

// run advances the clock by d, ticking at every deadline.
func (r *rig) run(d time.Duration) {
	end := r.now.Add(d)
	for {
		next := r.e.NextDeadline()
		if next.After(end) {
			r.now = end
			return
		}
		if next.After(r.now) {
			r.now = next
		}
		r.e.Tick(r.now)
		r.collect()
	}
}

// step advances the clock to the engine's next deadline and ticks there,
// answering as collect does; it returns the deadline (the answers may have
// moved r.now past it).
func (r *rig) step() time.Time {
	at := r.e.NextDeadline()
	r.now = at
	r.e.Tick(at)
	r.collect()
	return at
}

// addPeers makes the engine hear from peers 0..n-1 (each at incarnation 1).
func (r *rig) addPeers(n int) {
	for i := range n {
		r.receive(peer(i), 1, wire.Message{Type: wire.TypeAck, Seq: 0})
	}
}

// sentPacket is a packet the engine sent, decoded.
type sentPacket struct {
	to   netip.AddrPort
	msgs []wire.Message
}

// sentPackets decodes every packet sent since index from, keeping where
// each went.
func (r *rig) sentPackets(from int) []sentPacket {
	var out []sentPacket
	for _, p := range r.sent[from:] {
		var dec wire.Packet
		require.NoError(r.t, dec.Decode(p.Data))
		out = append(out, sentPacket{p.To, append([]wire.Message(nil), dec.Messages...)})
	}
	return out
}

// sentMessages decodes every packet sent since index from.
func (r *rig) sentMessages(from int) []wire.Message {
	var out []wire.Message
	for _, p := range r.sent[from:] {
		var dec wire.Packet
		require.NoError(r.t, dec.Decode(p.Data))
		for _, m := range dec.Messages {
			m.Payload = append([]byte(nil), m.Payload...)
			out = append(out, m)
		}
	}
	return out
}
