package swim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
)

func countType(msgs []wire.Message, typ wire.MsgType) (n int, last wire.Message) {
	for _, m := range msgs {
		if m.Type == typ {
			n++
			last = m
		}
	}
	return n, last
}

func TestRelayNacksWhenItsPingGoesUnanswered(t *testing.T) {
	for _, noNacks := range []bool{false, true} {
		r := newRigWith(t, func(c *swim.Config) { c.NoNacks = noNacks })
		r.addPeers(3)
		r.silent[peer(0)] = true
		from := len(r.sent)
		r.receive(peer(1), 1, wire.Message{Type: wire.TypePingReq, Seq: 4242, Target: peer(0)})
		r.now = r.now.Add(time.Second)
		r.e.Tick(r.now)
		r.collect()
		n, nack := countType(r.sentMessages(from), wire.TypeNack)
		if noNacks {
			assert.Zero(t, n)
			continue
		}
		require.Equal(t, 1, n)
		assert.Equal(t, uint32(4242), nack.Seq)
		for _, p := range r.sent[from:] {
			var dec wire.Packet
			require.NoError(t, dec.Decode(p.Data))
			if dec.Messages[0].Type == wire.TypeNack {
				assert.Equal(t, peer(1), p.To, "the nack goes to the requester")
			}
		}
		assert.Equal(t, uint64(1), r.e.Stats().NacksSent)
	}
}

// failProbe runs r until its probe of peer(0), silent, has failed, and
// returns the seq of that probe's ping-reqs.
func failProbe(t *testing.T, r *rig, nack func(seq uint32)) {
	failed := r.e.Stats().ProbesFailed
	for i := 0; i < 400 && r.e.Stats().ProbesFailed == failed; i++ {
		from := len(r.sent)
		r.run(10 * time.Millisecond)
		for _, m := range r.sentMessages(from) {
			if m.Type == wire.TypePingReq && nack != nil {
				nack(m.Seq)
			}
		}
	}
	require.Greater(t, r.e.Stats().ProbesFailed, failed)
}

func TestLocalHealthRisesWithMissedNacksAndStretchesTimeouts(t *testing.T) {
	r := newRig(t)
	r.addPeers(6)
	r.run(30 * time.Second) // fill the RTT history with real samples
	base := r.e.Stats().CurrentProbeTimeout
	require.Zero(t, r.e.Stats().LocalHealth)

	// Nobody nacks: each of the 3 relays asked missed its nack.
	r.silent[peer(0)] = true
	failProbe(t, r, nil)
	st := r.e.Stats()
	assert.Equal(t, 3, st.LocalHealth)
	assert.Equal(t, uint64(3), st.NacksMissed)
	assert.Equal(t, 4*base, st.CurrentProbeTimeout, "timeouts stretch 1+score times")

	// Successful probes bring it back down, one at a time.
	r.silent[peer(0)] = false
	r.run(10 * time.Second)
	assert.Zero(t, r.e.Stats().LocalHealth)
	assert.Equal(t, base, r.e.Stats().CurrentProbeTimeout)
}

func TestNackedFailureDoesNotBlameThisNode(t *testing.T) {
	r := newRig(t)
	r.addPeers(6)
	r.run(30 * time.Second)
	r.silent[peer(0)] = true
	// Every relay answers with a nack: the target is the problem.
	failProbe(t, r, func(seq uint32) {
		for i := 1; i <= 3; i++ {
			r.receive(peer(i), 1, wire.Message{Type: wire.TypeNack, Seq: seq})
		}
	})
	st := r.e.Stats()
	assert.Zero(t, st.LocalHealth)
	assert.Equal(t, uint64(3), st.NacksReceived)
	assert.Positive(t, st.UnexpectedNacks, "the nacks of relays not asked are not counted")
}

func TestWithoutNacksAnyFailedProbeRaisesTheScore(t *testing.T) {
	r := newRigWith(t, func(c *swim.Config) { c.NoNacks = true })
	r.addPeers(6)
	r.silent[peer(0)] = true
	failProbe(t, r, nil)
	assert.Equal(t, 1, r.e.Stats().LocalHealth)
	r2 := newRigWith(t, func(c *swim.Config) { c.NoLocalHealth = true })
	r2.addPeers(6)
	r2.silent[peer(0)] = true
	failProbe(t, r2, nil)
	assert.Zero(t, r2.e.Stats().LocalHealth)
}

func TestBuddySystemPingCarriesTheSuspicion(t *testing.T) {
	for _, noBuddy := range []bool{false, true} {
		r := newRigWith(t, func(c *swim.Config) { c.NoBuddy = noBuddy; c.SuspicionChecks = -1 })
		r.addPeers(1)
		require.NoError(t, r.e.SetStatus(r.now, peer(0), swim.StatusSuspect, peer(0)))
		// The suspect answers every ping (but never refutes): it is probed
		// again and again, long after the gossip of its suspicion (2 sends
		// in a cluster of 2) has run out.
		r.run(20 * time.Second)
		pings, carried := 0, 0
		for _, p := range r.sent {
			var dec wire.Packet
			require.NoError(t, dec.Decode(p.Data))
			if p.To != peer(0) || dec.Messages[0].Type != wire.TypePing {
				continue
			}
			pings++
			for _, u := range dec.Messages[1:] {
				if u.Type == wire.TypeUpdate && u.Subject == peer(0) && u.Status == swim.StatusSuspect {
					carried++
					break
				}
			}
		}
		require.Greater(t, pings, 10)
		if noBuddy {
			assert.LessOrEqual(t, carried, swim.EmitLimit(2), "only as gossip")
		} else {
			assert.Equal(t, pings, carried, "every ping to the suspect carries its suspicion")
		}
	}
}
