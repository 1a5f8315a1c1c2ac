package swim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
	"github.com/seed-c7906467/smudge/sim"
)

// A ping to a member held DEAD carries its verdict, so that it can refute,
// and no gossip: sent to the dead, each item would use up one of its few
// sends for nothing.
func TestPingToDeadMemberCarriesNoGossip(t *testing.T) {
	r := newRig(t)
	r.addPeers(6)
	r.silent[peer(0)] = true
	r.run(20 * time.Second) // peer 0 dies here
	m, _ := r.e.Member(peer(0))
	require.Equal(t, swim.StatusDead, m.Status)
	// Plenty to gossip: news about five members.
	for i := 1; i < 6; i++ {
		r.receive(peer(i), 2, wire.Message{Type: wire.TypeAck, Seq: 0})
	}
	mark := len(r.sent)
	require.NoError(t, r.e.Ping(r.now, peer(0)))
	r.collect()
	var toDead, toLive int
	for _, p := range r.sent[mark:] {
		var dec wire.Packet
		require.NoError(t, dec.Decode(p.Data))
		if p.To == peer(0) {
			toDead++
			require.Len(t, dec.Messages, 2, "a ping and the verdict, nothing else")
			assert.Equal(t, wire.TypePing, dec.Messages[0].Type)
			assert.Equal(t, wire.TypeUpdate, dec.Messages[1].Type)
			assert.Equal(t, peer(0), dec.Messages[1].Subject)
			assert.Equal(t, wire.StatusDead, dec.Messages[1].Status)
		}
	}
	assert.Equal(t, 1, toDead)
	// A live member still gets the gossip.
	mark = len(r.sent)
	require.NoError(t, r.e.Ping(r.now, peer(1)))
	r.collect()
	for _, p := range r.sent[mark:] {
		var dec wire.Packet
		require.NoError(t, dec.Decode(p.Data))
		if p.To == peer(1) && dec.Messages[0].Type == wire.TypePing {
			toLive++
			assert.Greater(t, len(dec.Messages), 1, "gossip rides on pings to the living")
		}
	}
	assert.Equal(t, 1, toLive)
}

// With many dead members, re-probing them must not starve dissemination:
// during a partition, just after the larger side declared the smaller one
// DEAD (when the re-probes are most frequent), a node of the larger side is
// falsely suspected (here: by decree); it refutes, and no node of its side
// may declare it DEAD: the refutation must reach every node that heard the
// suspicion before that node's suspicion runs out. When re-probes of the
// dead carried gossip, this refutation stalled at about 90% of the nodes,
// and the rest declared a healthy node DEAD.
//
// How fast the refutation reaches every node is not asserted against the
// suspicion timeout: nodes that never heard the suspicion need not hear the
// refutation soon, and just after the partition many nodes' local health is
// raised (their probes of the cut-off side missed nacks under 5% loss),
// which stretches their periods; at 300 nodes the last node learned it after
// 1.2-6 s over seeds 70-77. It must reach them all in the end.
func TestRefutationSpreadsWhileManyMembersAreDead(t *testing.T) {
	n, cut := 1000, 50
	if raceEnabled {
		n, cut = 300, 15
	}
	s := sim.New(sim.Config{Seed: 77, Latency: time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.05,
		Engine: sim.DefaultEngineConfig()})
	s.KeepLog = false
	s.Bootstrap(s.AddNodes(n))
	s.RunFor(5 * time.Second)
	minority, majority := s.Nodes()[n-cut:], s.Nodes()[:n-cut]
	s.Partition(minority)
	// The majority declares the minority DEAD from about 4 s on; re-probes
	// of the newly dead are the most frequent right after.
	s.RunFor(5 * time.Second)
	require.NotEqual(t, swim.StatusAlive, statusOf(majority[0], minority[0]), "the partition should be noticed by now")
	accused, accuser := majority[5], majority[6]
	s.Do(accuser, func(now time.Time, e *swim.Engine) {
		require.NoError(t, e.SetStatus(now, accused.Addr, swim.StatusSuspect, e.Self()))
	})
	inc := accused.Engine.Incarnation()
	// Long enough for any suspicion of it, stretched by the highest local
	// health, to run out.
	limit := swim.SuspicionTimeout(5, n, period) * (1 + swim.DefaultMaxLocalHealth)
	var declared []string
	missing := func() int {
		k := 0
		for _, o := range majority {
			m, _ := o.Engine.Member(accused.Addr)
			if o != accused && m.Incarnation <= inc {
				k++
			}
			if m.Status == swim.StatusDead {
				declared = append(declared, o.Addr.String())
			}
		}
		return k
	}
	ok := s.RunUntil(func() bool { return missing() == 0 || len(declared) > 0 }, 50*time.Millisecond, limit)
	assert.Empty(t, declared, "nodes declared the refuting node DEAD")
	assert.True(t, ok, "the refutation did not reach %d nodes of the majority within %v", missing(), limit)
}

// When its suspicion runs out, a node probes the suspect one last time,
// with the suspicion and no other gossip in the ping: a suspect that answers
// (and refutes) is not declared DEAD; one that stays silent is.
func TestSuspectIsProbedOnceMoreBeforeDead(t *testing.T) {
	r := newRig(t)
	r.addPeers(5)
	// Peer 0 is suspected by someone else; it answers pings, but without
	// refuting (the rig answers at incarnation 1).
	r.receive(peer(1), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusSuspect, Incarnation: 1, Subject: peer(0), Source: peer(1)})
	mark := len(r.sent)
	r.run(swim.SuspicionTimeout(5, 6, period) + period)
	m, _ := r.e.Member(peer(0))
	assert.Equal(t, swim.StatusSuspect, m.Status, "it answered the last probe: no DEAD yet")
	var last []wire.Message
	for _, p := range r.sent[mark:] {
		var dec wire.Packet
		require.NoError(t, dec.Decode(p.Data))
		if p.To == peer(0) && dec.Messages[0].Type == wire.TypePing {
			last = append([]wire.Message(nil), dec.Messages...)
		}
	}
	require.Len(t, last, 2, "the last probe carries the suspicion and nothing else")
	assert.Equal(t, wire.StatusSuspect, last[1].Status)

	// Its refutation ends the suspicion.
	r.receive(peer(0), 2, wire.Message{Type: wire.TypeAck, Seq: 0})
	m, _ = r.e.Member(peer(0))
	assert.Equal(t, swim.StatusAlive, m.Status)

	// A silent suspect is declared DEAD after the suspicion timeout and the
	// last probe's timeouts.
	r.receive(peer(1), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusSuspect, Incarnation: 2, Subject: peer(0), Source: peer(1)})
	r.silent[peer(0)] = true
	r.run(swim.SuspicionTimeout(5, 6, period) + 2*time.Second)
	m, _ = r.e.Member(peer(0))
	assert.Equal(t, swim.StatusDead, m.Status)
	assert.Equal(t, rigSelf, m.Source)
	assert.Equal(t, uint64(1), r.e.Stats().DeadDeclared)
}
