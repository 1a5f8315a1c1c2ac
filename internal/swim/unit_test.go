package swim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
)

func TestUpdateIsSentExactlyEmitLimitTimes(t *testing.T) {
	for _, n := range []int{2, 10, 20} {
		r := newRig(t)
		r.addPeers(n - 1)
		require.Equal(t, n, r.e.NumLive())
		r.run(30 * period) // let the joins' own gossip finish
		mark := len(r.sent)
		// A peer refutes at a higher incarnation: news to gossip.
		subject := peer(0)
		r.receive(peer(1%(n-1)), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 5, Subject: subject, Source: subject})
		r.run(30 * period)
		sends := 0
		for _, m := range r.sentMessages(mark) {
			if m.Type == wire.TypeUpdate && m.Subject == subject && m.Incarnation == 5 {
				sends++
			}
		}
		assert.Equal(t, swim.EmitLimit(n), sends, "n=%d", n)
		assert.Zero(t, r.e.Stats().QueuedGossip)
	}
}

func TestPiggybackFillsPacketsLeastSentFirst(t *testing.T) {
	r := newRig(t)
	r.addPeers(200)
	mark := len(r.sent)
	r.run(2 * period)
	require.GreaterOrEqual(t, len(r.sent)-mark, 2)
	// The first packet after 200 joins carries as many updates as fit.
	var dec wire.Packet
	require.NoError(t, dec.Decode(r.sent[mark].Data))
	updates := 0
	for _, m := range dec.Messages {
		if m.Type == wire.TypeUpdate {
			updates++
		}
	}
	hdr := wire.HeaderLen(wire.Header{Sender: rigSelf})
	ping := (&wire.Message{Type: wire.TypePing, Target: peer(0)}).EncodedLen()
	upd := (&wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Subject: peer(0), Source: peer(0)}).EncodedLen()
	assert.Equal(t, (1400-hdr-ping)/upd, updates)
	assert.GreaterOrEqual(t, len(r.sent[mark].Data), 1400-upd)

	// Least-sent first: the next packet carries none of the first one's.
	first := map[string]bool{}
	for _, m := range dec.Messages {
		first[m.Subject.String()] = true
	}
	require.NoError(t, dec.Decode(r.sent[mark+1].Data))
	for _, m := range dec.Messages {
		if m.Type == wire.TypeUpdate {
			assert.False(t, first[m.Subject.String()], "%v was sent again before others were sent once", m.Subject)
		}
	}
}

func TestBadPacketsAreDroppedAndCounted(t *testing.T) {
	r := newRig(t)
	r.addPeers(3)
	before := r.e.Stats()
	r.e.Receive(r.now, peer(0), []byte("definitely not a packet"))
	r.e.Receive(r.now, peer(0), nil)
	other := wire.AppendHeader(nil, wire.Header{Cluster: wire.ClusterID("other"), Sender: peer(9), Incarnation: 1})
	other = (&wire.Message{Type: wire.TypePing, Seq: 1}).AppendTo(other)
	r.e.Receive(r.now, peer(9), other)
	self := r.header(rigSelf, 1)
	self = (&wire.Message{Type: wire.TypePing, Seq: 1}).AppendTo(self)
	r.e.Receive(r.now, peer(0), self)
	misdirected := r.header(peer(0), 1)
	misdirected = (&wire.Message{Type: wire.TypePing, Seq: 1, Target: peer(5)}).AppendTo(misdirected)
	r.e.Receive(r.now, peer(0), misdirected)
	// A wire version 1 ping (smudge before 2026-12-06), and a packet of a
	// version to come: counted apart from garbage.
	v1 := []byte("SW\x01\x00" + "7^F\x8c\xe5\xb1\x11D" + "\x04\n\x00\x00\x01'\x0f" + "\x00\x00\x00\x03" +
		"\x01\x00\x0c" + "\x00\x00\x03\xe9\x00" + "\x04\n\x00\x00\x02'\x0f")
	r.e.Receive(r.now, peer(0), v1)
	v3 := r.header(peer(0), 1)
	v3 = (&wire.Message{Type: wire.TypePing, Seq: 1}).AppendTo(v3)
	v3[0]++
	r.e.Receive(r.now, peer(0), v3)
	r.collect()

	st := r.e.Stats()
	assert.Equal(t, before.DroppedVersion+2, st.DroppedVersion)
	assert.Equal(t, before.DroppedMalformed+2, st.DroppedMalformed)
	assert.Equal(t, before.DroppedWrongCluster+1, st.DroppedWrongCluster)
	assert.Equal(t, before.DroppedFromSelf+1, st.DroppedFromSelf)
	assert.Equal(t, before.DroppedMisdirected+1, st.DroppedMisdirected)
	_, known := r.e.Member(peer(9))
	assert.False(t, known, "a packet from another cluster must not add its sender")
	assert.Equal(t, 4, r.e.NumLive())
}

func TestStaleAndUnknownRumoursChangeNothing(t *testing.T) {
	r := newRig(t)
	r.addPeers(3)
	// An old incarnation cannot roll a member back.
	r.receive(peer(1), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 9, Subject: peer(0), Source: peer(0)})
	r.receive(peer(1), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusDead, Incarnation: 8, Subject: peer(0), Source: peer(1)})
	m, _ := r.e.Member(peer(0))
	assert.Equal(t, swim.StatusAlive, m.Status)
	assert.Equal(t, uint32(9), m.Incarnation)
	// At equal incarnation: DEAD beats SUSPECTED beats ALIVE, never back. A
	// rumour of death makes a live member SUSPECTED here: this node declares
	// it DEAD only when its own suspicion runs out and a last probe fails.
	r.receive(peer(1), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusDead, Incarnation: 9, Subject: peer(0), Source: peer(1)})
	r.receive(peer(2), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusSuspect, Incarnation: 9, Subject: peer(0), Source: peer(2)})
	r.receive(peer(2), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 9, Subject: peer(0), Source: peer(0)})
	m, _ = r.e.Member(peer(0))
	assert.Equal(t, swim.StatusSuspect, m.Status)
	assert.Equal(t, peer(1), m.Source)
	r.silent[peer(0)] = true
	r.run(10 * time.Second)
	m, _ = r.e.Member(peer(0))
	assert.Equal(t, swim.StatusDead, m.Status)
	assert.Equal(t, rigSelf, m.Source)
	r.receive(peer(2), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 9, Subject: peer(0), Source: peer(0)})
	m, _ = r.e.Member(peer(0))
	assert.Equal(t, swim.StatusDead, m.Status)
	// Death of a stranger does not make it a member.
	r.receive(peer(1), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusDead, Incarnation: 1, Subject: peer(50), Source: peer(1)})
	_, known := r.e.Member(peer(50))
	assert.False(t, known)
}

func TestSuspicionOfSelfIsRefutedInTheAck(t *testing.T) {
	r := newRig(t)
	r.addPeers(3)
	mark := len(r.sent)
	inc := r.e.Incarnation()
	r.receive(peer(0), 1,
		wire.Message{Type: wire.TypePing, Seq: 77, Target: rigSelf},
		wire.Message{Type: wire.TypeUpdate, Status: wire.StatusSuspect, Incarnation: inc, Subject: rigSelf, Source: peer(0)})
	assert.Equal(t, inc+1, r.e.Incarnation())
	var msgs []wire.Message // the answer to peer 0's ping (the refutation is pushed to others too)
	for _, p := range r.sentPackets(mark) {
		if p.to == peer(0) && len(p.msgs) > 0 && p.msgs[0].Type == wire.TypeAck {
			msgs = p.msgs
		}
	}
	require.GreaterOrEqual(t, len(msgs), 2)
	assert.Equal(t, wire.TypeAck, msgs[0].Type)
	assert.Equal(t, uint16(77), msgs[0].Seq)
	assert.Equal(t, wire.TypeUpdate, msgs[1].Type)
	assert.Equal(t, rigSelf, msgs[1].Subject)
	assert.Equal(t, wire.StatusAlive, msgs[1].Status)
	assert.Equal(t, inc+1, msgs[1].Incarnation)
}

func TestIndirectAckKeepsMemberAlive(t *testing.T) {
	r := newRig(t)
	r.addPeers(5)
	r.run(10 * period)
	target := peer(2)
	r.silent[target] = true // direct pings to it are lost, ...
	mark := len(r.sent)
	r.run(12 * period)
	// ... but a relay answers for it each time it is asked.
	var relayed []wire.Message
	for _, m := range r.sentMessages(mark) {
		if m.Type == wire.TypePingReq && m.Target == target {
			relayed = append(relayed, m)
		}
	}
	require.NotEmpty(t, relayed, "the engine never asked for an indirect probe")
	m, _ := r.e.Member(target)
	require.Contains(t, []swim.Status{swim.StatusSuspect, swim.StatusDead}, m.Status, "without any ack the target is suspected (and by now perhaps dead)")

	r2 := newRig(t)
	r2.addPeers(5)
	r2.run(10 * period)
	r2.silent[target] = true
	for range 12 {
		mark := len(r2.sent)
		r2.run(period)
		for _, m := range r2.sentMessages(mark) {
			if m.Type == wire.TypePingReq && m.Target == target {
				r2.receive(peer(3), 1, wire.Message{Type: wire.TypeAck, Seq: m.Seq})
			}
		}
	}
	m, _ = r2.e.Member(target)
	assert.Equal(t, swim.StatusAlive, m.Status, "an indirect ack is as good as a direct one")
	assert.Zero(t, r2.e.Stats().SuspicionsRaised)
	assert.Positive(t, r2.e.Stats().IndirectProbes)
}

func TestProbeTimeoutAdaptsToRoundTrips(t *testing.T) {
	r := newRig(t)
	// Front-loaded with 200 ms: the first timeout is 200 ms.
	assert.Equal(t, 200*time.Millisecond, r.e.Stats().CurrentProbeTimeout)
	r.addPeers(3)
	r.run(100 * period) // 100 probes answered in 1 ms each
	assert.Equal(t, 150*time.Millisecond, r.e.Stats().CurrentProbeTimeout, "floored at the minimum ping time")
}

func TestEveryMemberIsProbedWithin2nMinus1Periods(t *testing.T) {
	const n = 12
	r := newRig(t)
	r.addPeers(n)
	mark := len(r.sent)
	r.run(10 * n * period)
	last := map[string]int{}
	periodIdx := 0
	worst := 0
	for _, p := range r.sent[mark:] {
		var dec wire.Packet
		require.NoError(t, dec.Decode(p.Data))
		if dec.Messages[0].Type != wire.TypePing {
			continue
		}
		periodIdx++
		to := p.To.String()
		if prev, ok := last[to]; ok {
			worst = max(worst, periodIdx-prev)
		}
		last[to] = periodIdx
	}
	assert.Len(t, last, n)
	assert.LessOrEqual(t, worst, 2*n-1)
	t.Logf("longest gap between probes of one member: %d periods (bound %d)", worst, 2*n-1)
}
