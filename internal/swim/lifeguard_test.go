package swim_test

import (
	"math"
	"net/netip"
	"slices"
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
		assert.Equal(t, uint16(4242), nack.Seq)
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

// failProbe runs r until its probe of peer(0), silent, has failed, calling
// nack (if set) with the seq and the relay of each ping-req it sends.
func failProbe(t *testing.T, r *rig, nack func(seq uint16, relay netip.AddrPort)) {
	failed := r.e.Stats().ProbesFailed
	for i := 0; i < 400 && r.e.Stats().ProbesFailed == failed; i++ {
		from := len(r.sent)
		r.run(10 * time.Millisecond)
		for _, p := range r.sentPackets(from) {
			if m := p.msgs[0]; m.Type == wire.TypePingReq && nack != nil {
				nack(m.Seq, p.to)
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
	failProbe(t, r, func(seq uint16, relay netip.AddrPort) {
		r.receive(relay, 1, wire.Message{Type: wire.TypeNack, Seq: seq})
	})
	st := r.e.Stats()
	assert.Zero(t, st.LocalHealth)
	assert.Equal(t, uint64(3), st.NacksReceived)
	assert.Zero(t, st.UnexpectedNacks)
}

// Only the relays a probe asked count, each once. Here one relay of three
// nacks three times and a member not asked nacks too: as many nacks as
// relays, but the indirect phase runs its full two timeouts, and the two
// nacks missed raise this node's health.
func TestOnlyTheRelaysAskedCountOnce(t *testing.T) {
	r := newRig(t)
	r.addPeers(6)
	r.run(30 * time.Second)
	r.silent[peer(0)] = true
	var relays []netip.AddrPort
	failProbe(t, r, func(seq uint16, relay netip.AddrPort) {
		if relays = append(relays, relay); len(relays) < 3 {
			return // the three ping-reqs go out together
		}
		for range 3 {
			r.receive(relays[0], 1, wire.Message{Type: wire.TypeNack, Seq: seq})
		}
		for i := 1; i < 6; i++ { // a member not asked: forged, or late
			if !slices.Contains(relays, peer(i)) {
				r.receive(peer(i), 1, wire.Message{Type: wire.TypeNack, Seq: seq})
				break
			}
		}
	})
	require.Len(t, relays, 3)
	st := r.e.Stats()
	assert.Equal(t, uint64(1), st.NacksReceived)
	assert.Equal(t, uint64(3), st.UnexpectedNacks)
	assert.Zero(t, st.ProbesEndedByNacks)
	assert.Equal(t, 2, st.LocalHealth)
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

// runNacking runs r in 1 ms steps for up to d, answering every ping-req
// about peer(0) (silent) with a nack from each relay, delay after it was
// sent, and returns when peer(0)'s status changed to each value, relative
// to the start.
func runNacking(t *testing.T, r *rig, d, delay time.Duration) (pingReqAt []time.Duration, statusAt map[swim.Status]time.Duration) {
	t.Helper()
	start := r.now
	statusAt = map[swim.Status]time.Duration{}
	type pending struct {
		at  time.Time
		to  netip.AddrPort
		seq uint16
	}
	var nacks []pending
	record := func(from int) {
		for _, ev := range r.events[from:] {
			if ev.Kind == swim.EventStatus && ev.Member.Addr == peer(0) {
				if _, seen := statusAt[ev.Member.Status]; !seen {
					statusAt[ev.Member.Status] = r.now.Sub(start)
				}
			}
		}
	}
	for r.now.Before(start.Add(d)) {
		sent, evs := len(r.sent), len(r.events)
		r.run(time.Millisecond)
		for _, p := range r.sent[sent:] {
			var dec wire.Packet
			require.NoError(t, dec.Decode(p.Data))
			for _, m := range dec.Messages {
				if m.Type == wire.TypePingReq && m.Target == peer(0) {
					nacks = append(nacks, pending{r.now.Add(delay), p.To, m.Seq})
					pingReqAt = append(pingReqAt, r.now.Sub(start))
				}
			}
		}
		record(evs)
		for len(nacks) > 0 && !nacks[0].at.After(r.now) {
			evs = len(r.events)
			r.receive(nacks[0].to, 1, wire.Message{Type: wire.TypeNack, Seq: nacks[0].seq})
			nacks = nacks[1:]
			record(evs)
		}
	}
	return pingReqAt, statusAt
}

// When every relay has nacked, the indirect phase has heard all it waits
// for: the probe fails once this node's own ping has had its timeout, not
// a second timeout later. Without the nacks it waits both.
func TestEveryRelayNackingEndsTheIndirectPhase(t *testing.T) {
	for _, nack := range []bool{true, false} {
		r := newRigWith(t, func(c *swim.Config) { c.SuspicionChecks = -1 })
		r.addPeers(6)
		r.run(30 * time.Second) // real RTT samples: the timeout is at its floor
		T := r.e.Stats().CurrentProbeTimeout
		require.Equal(t, 150*time.Millisecond, T)
		r.silent[peer(0)] = true
		delay := T / 3 // the relays nack before this node's own ping times out
		if !nack {
			delay = time.Hour
		}
		reqs, status := runNacking(t, r, 3*time.Second, delay)
		require.NotEmpty(t, reqs)
		suspect, ok := status[swim.StatusSuspect]
		require.True(t, ok)
		if nack {
			assert.Equal(t, reqs[0]+T, suspect, "suspected one timeout into the indirect phase")
			assert.Positive(t, r.e.Stats().ProbesEndedByNacks)
			assert.Zero(t, r.e.Stats().LocalHealth)
		} else {
			assert.Equal(t, reqs[0]+2*T, suspect, "two timeouts, for the nacks")
			assert.Zero(t, r.e.Stats().ProbesEndedByNacks)
		}
	}
}

// A last probe at this node's own suspicion timeout, every relay nacking,
// still ends with the suspicion's full timeout: the suspect gets all of it
// to refute.
func TestNacksDoNotShortenThisNodesOwnSuspicion(t *testing.T) {
	r := newRigWith(t, func(c *swim.Config) { c.SuspicionChecks = -1 })
	r.addPeers(6)
	r.run(30 * time.Second)
	T := r.e.Stats().CurrentProbeTimeout
	r.silent[peer(0)] = true
	_, status := runNacking(t, r, 10*time.Second, T/3)
	suspect, ok := status[swim.StatusSuspect]
	require.True(t, ok)
	dead, ok := status[swim.StatusDead]
	require.True(t, ok)
	timeout := swim.SuspicionTimeout(5, 7, 250*time.Millisecond) // nobody confirms
	assert.Equal(t, timeout, dead-suspect)
}

// A last probe on another node's verdict (that node ran the suspicion out)
// ends as soon as every relay has nacked and this node's own ping has had
// its timeout.
func TestEveryRelayNackingEndsALastProbeOnAVerdict(t *testing.T) {
	r := newRigWith(t, func(c *swim.Config) { c.SuspicionChecks = -1 })
	r.addPeers(8)
	r.run(30 * time.Second)
	T := r.e.Stats().CurrentProbeTimeout
	r.silent[peer(0)] = true
	require.NoError(t, r.e.SetStatus(r.now, peer(0), swim.StatusSuspect, peer(1)))
	r.collect()
	from := len(r.sent)
	start := r.now
	r.receive(peer(2), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusDead, Incarnation: 1, Subject: peer(0), Source: peer(2)})
	var reqs []wire.Message
	var relays []netip.AddrPort
	for _, p := range r.sent[from:] {
		var dec wire.Packet
		require.NoError(t, dec.Decode(p.Data))
		if dec.Messages[0].Type == wire.TypePingReq {
			reqs = append(reqs, dec.Messages[0])
			relays = append(relays, p.To)
		}
	}
	require.Len(t, reqs, 6, "a last probe asks twice IndirectChecks relays")
	r.run(T / 3)
	for i, m := range reqs {
		r.receive(relays[i], 1, wire.Message{Type: wire.TypeNack, Seq: m.Seq})
	}
	r.run(T - T/3 - time.Nanosecond)
	m, _ := r.e.Member(peer(0))
	require.Equal(t, swim.StatusSuspect, m.Status, "not before its own ping's timeout")
	r.run(time.Nanosecond)
	m, _ = r.e.Member(peer(0))
	assert.Equal(t, swim.StatusDead, m.Status)
	assert.Equal(t, T, r.now.Sub(start))
}

// A node cut off from everyone raises suspicions that reach nobody, the
// suspects included, and waits on them alone (its health is raised). Once
// the cut is over and its health is back to zero, it tells each suspect at
// once, with a check whose ping carries the suspicion, instead of leaving
// the suspicion standing until its next probe of that member, a round away,
// or until it runs out, maybe during the next cut.
func TestRecoveredNodeTellsItsLoneSuspectsAtOnce(t *testing.T) {
	r := newRig(t)
	r.addPeers(40)
	r.run(30 * time.Second)
	for i := range 40 {
		r.silent[peer(i)] = true
	}
	failProbe(t, r, nil) // its probe and the relays asked go unanswered
	r.run(time.Second)
	require.Positive(t, r.e.Stats().LocalHealth)
	own := map[netip.AddrPort]bool{}
	for _, m := range r.e.Members() {
		if m.Status == swim.StatusSuspect && m.Source == rigSelf {
			own[m.Addr] = true
		}
	}
	require.NotEmpty(t, own)

	for i := range 40 {
		r.silent[peer(i)] = false
	}
	var recovered time.Time
	from := len(r.sent)
	for i := 0; i < 20000 && recovered.IsZero(); i++ {
		from = len(r.sent)
		r.run(5 * time.Millisecond)
		if r.e.Stats().LocalHealth == 0 {
			recovered = r.now
		}
	}
	require.False(t, recovered.IsZero(), "health back to zero")
	for _, m := range r.e.Members() { // suspicions raised while it recovered
		if m.Status == swim.StatusSuspect && m.Source == rigSelf {
			own[m.Addr] = true
		}
	}
	assert.Equal(t, uint64(len(own)), r.e.Stats().LoneRechecks)
	// In the step where its health came back to zero, each suspect was
	// pinged with its suspicion.
	told := map[netip.AddrPort]bool{}
	for _, p := range r.sentPackets(from) {
		if p.msgs[0].Type != wire.TypePing || !own[p.to] {
			continue
		}
		for _, m := range p.msgs[1:] {
			if m.Type == wire.TypeUpdate && m.Subject == p.to && m.Status == wire.StatusSuspect {
				told[p.to] = true
			}
		}
	}
	assert.Equal(t, own, told)
}

// A probe asks its relays once its ping has gone unanswered for 1/8 of the
// probe timeout (the round trips here take 1 ms, far less), not a whole
// timeout: a crashed member is suspected most of a timeout sooner. The
// ping itself is not given up: its ack still counts until the probe ends,
// a timeout after the relays were asked at the soonest.
func TestProbeAsksItsRelaysOnceItsPingIsLate(t *testing.T) {
	for _, late := range []bool{false, true} {
		r := newRigWith(t, func(c *swim.Config) { c.SuspicionChecks = -1 })
		r.addPeers(6)
		r.run(30 * time.Second) // real round trips: the timeout is at its floor
		T := r.e.Stats().CurrentProbeTimeout
		require.Equal(t, 150*time.Millisecond, T)
		r.silent[peer(0)] = true
		var pingAt, reqAt time.Time
		var seq uint16
		for i := 0; i < 10000 && reqAt.IsZero(); i++ {
			from := len(r.sent)
			at := r.step()
			for _, p := range r.sentPackets(from) {
				switch m := p.msgs[0]; {
				case m.Type == wire.TypePing && p.to == peer(0) && pingAt.IsZero():
					pingAt, seq = at, m.Seq
				case m.Type == wire.TypePingReq && m.Target == peer(0) && !pingAt.IsZero():
					reqAt = at
					assert.Equal(t, seq, m.Seq)
				}
			}
		}
		require.False(t, reqAt.IsZero(), "no relay was asked")
		assert.Equal(t, T/8, reqAt.Sub(pingAt), "relays asked 1/8 of the timeout after the ping")
		if !late {
			continue
		}
		// The ping's ack comes after the relays were asked, half a timeout
		// after the ping: the member is alive, and nothing failed.
		r.run(pingAt.Add(T / 2).Sub(r.now))
		r.receive(peer(0), 1, wire.Message{Type: wire.TypeAck, Seq: seq})
		r.silent[peer(0)] = false
		r.run(time.Second)
		m, _ := r.e.Member(peer(0))
		assert.Equal(t, swim.StatusAlive, m.Status)
		assert.Zero(t, r.e.Stats().ProbesFailed)
		assert.Zero(t, r.e.Stats().SuspicionsRaised)
	}
}

// accusation is the update of accuser's suspicion of peer(0).
func accusation(accuser netip.AddrPort) wire.Message {
	return wire.Message{Type: wire.TypeUpdate, Status: wire.StatusSuspect, Incarnation: 1, Subject: peer(0), Source: accuser}
}

// confirmedSpreads returns the packets sent since from that tell of
// peer(0)'s confirmed suspicion: not pushed (no checks asked), led by the
// update of each accuser.
func confirmedSpreads(t *testing.T, r *rig, from int) (to []netip.AddrPort, accusers [][]netip.AddrPort) {
	for _, p := range r.sent[from:] {
		var dec wire.Packet
		require.NoError(t, dec.Decode(p.Data))
		var acc []netip.AddrPort
		for _, m := range dec.Messages {
			if m.Type != wire.TypeUpdate || m.Subject != peer(0) || m.Status != wire.StatusSuspect {
				break
			}
			acc = append(acc, m.Source)
		}
		if len(acc) > 1 {
			assert.Zero(t, dec.Header.Flags&wire.HeaderFlagPush, "not pushed: no checks asked")
			to, accusers = append(to, p.To), append(accusers, acc)
		}
	}
	return to, accusers
}

// lastProbeRelays counts the ping-reqs for peer(0) sent since from.
func lastProbeRelays(t *testing.T, r *rig, from int) int {
	n := 0
	for _, p := range r.sentPackets(from) {
		if m := p.msgs[0]; m.Type == wire.TypePingReq && m.Target == peer(0) {
			n++
		}
	}
	return n
}

// A node whose suspicion of a member gets all the accusers its timeout
// waits for (SuspicionConfirmations) tells PushFanout others at once, once,
// with every accuser's update, and starts its own last probe. A node told
// so holds the suspicion confirmed too: it starts its last probe at once
// (no check first) and tells PushFanout others in turn. So every member's
// last probe runs at about the time the first one's does.
func TestConfirmedSuspicionSpreadsAndStartsLastProbes(t *testing.T) {
	r := newRigWith(t, func(c *swim.Config) { c.SuspicionChecks = -1 })
	r.addPeers(10)
	r.run(30 * time.Second)
	r.silent[peer(0)] = true
	for i := 1; i <= 3; i++ {
		from := len(r.sent)
		r.receive(peer(i), 1, accusation(peer(i)))
		to, _ := confirmedSpreads(t, r, from)
		require.Empty(t, to, "not confirmed yet after %d accusers", i)
		assert.Zero(t, lastProbeRelays(t, r, from))
	}
	from := len(r.sent)
	r.receive(peer(4), 1, accusation(peer(4)))
	r.run(0) // the last probe's timer, due now
	to, accusers := confirmedSpreads(t, r, from)
	require.Len(t, to, 3, "PushFanout members told")
	for i := range to {
		assert.NotEqual(t, peer(0), to[i], "not the suspect")
		assert.Equal(t, []netip.AddrPort{peer(1), peer(2), peer(3), peer(4)}, accusers[i])
	}
	assert.Equal(t, uint64(3), r.e.Stats().ConfirmedSpread)
	assert.Equal(t, 6, lastProbeRelays(t, r, from), "its last probe, at once")

	from = len(r.sent)
	r.receive(peer(5), 1, accusation(peer(5)))
	to, _ = confirmedSpreads(t, r, from)
	assert.Empty(t, to, "once")

	// Told in one packet: confirmed at once, spread on, last probe at once.
	r2 := newRigWith(t, func(c *swim.Config) { c.SuspicionChecks = -1 })
	r2.addPeers(10)
	r2.run(30 * time.Second)
	r2.silent[peer(0)] = true
	from = len(r2.sent)
	r2.receive(peer(6), 1, accusation(peer(1)), accusation(peer(2)), accusation(peer(3)), accusation(peer(4)))
	r2.run(0)
	m, _ := r2.e.Member(peer(0))
	assert.Equal(t, swim.StatusSuspect, m.Status)
	to, _ = confirmedSpreads(t, r2, from)
	assert.Len(t, to, 3)
	assert.Equal(t, 6, lastProbeRelays(t, r2, from), "one probe: the last one, at once")
	assert.Zero(t, r2.e.Stats().ChecksRun)
}

// A last probe held back by this node's own suspicion timeout (every relay
// has nacked, the timeout has not run out) ends as soon as a DEAD verdict
// comes: the declarer's timeout has run out.
func TestVerdictEndsALastProbeHeldByItsTimeout(t *testing.T) {
	for _, verdict := range []bool{false, true} {
		r := newRigWith(t, func(c *swim.Config) {
			c.SuspicionChecks = -1
			c.ProbeInterval = time.Second // the floor of the suspicion timeout is longer than a last probe
		})
		r.addPeers(10)
		r.run(60 * time.Second)
		T := r.e.Stats().CurrentProbeTimeout
		require.Equal(t, 150*time.Millisecond, T)
		floor := time.Duration(0.5 * math.Log10(11) * float64(time.Second)) // 11 nodes: 521 ms
		r.silent[peer(0)] = true
		start := r.now
		from := len(r.sent)
		r.receive(peer(6), 1, accusation(peer(1)), accusation(peer(2)), accusation(peer(3)), accusation(peer(4)))
		var relays []netip.AddrPort
		var seq uint16
		at := r.now
		for range 1000 { // deadline by deadline, until the last probe starts
			for _, p := range r.sentPackets(from) {
				if m := p.msgs[0]; m.Type == wire.TypePingReq && m.Target == peer(0) {
					relays, seq = append(relays, p.to), m.Seq
				}
			}
			if len(relays) > 0 {
				break
			}
			from = len(r.sent)
			at = r.step()
		}
		require.Len(t, relays, 6)
		assert.Equal(t, floor-2*T, at.Sub(start), "the last probe starts so as to end with the timeout")
		r.run(T / 3)
		for _, relay := range relays {
			r.receive(relay, 1, wire.Message{Type: wire.TypeNack, Seq: seq})
		}
		r.run(start.Add(floor - 50*time.Millisecond).Sub(r.now))
		m, _ := r.e.Member(peer(0))
		require.Equal(t, swim.StatusSuspect, m.Status, "held: the suspect has until the timeout's end to refute")
		if verdict {
			r.receive(peer(5), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusDead, Incarnation: 1, Subject: peer(0), Source: peer(5)})
			m, _ = r.e.Member(peer(0))
			assert.Equal(t, swim.StatusDead, m.Status, "DEAD at once on the verdict")
			continue
		}
		r.run(start.Add(floor - time.Nanosecond).Sub(r.now))
		m, _ = r.e.Member(peer(0))
		require.Equal(t, swim.StatusSuspect, m.Status)
		r.run(time.Nanosecond)
		m, _ = r.e.Member(peer(0))
		assert.Equal(t, swim.StatusDead, m.Status, "DEAD when its own timeout ends")
	}
}

// The refutation of a confirmed suspicion races every member's last probe:
// it is pushed on, however it came: in an update from a third node, or in
// the suspect's own packet (its header's incarnation refutes), pushed or
// not. That of a mere suspicion heard of rides on probes (and on the
// suspect's own push to PushFanout members, who do not push it on).
func TestRefutationOfAConfirmedSuspicionIsPushedOn(t *testing.T) {
	refutation := wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 2, Subject: peer(0), Source: peer(0)}
	for _, confirmed := range []bool{false, true} {
		for _, via := range []string{"a third node", "the suspect", "the suspect, pushed"} {
			r := newRigWith(t, func(c *swim.Config) { c.SuspicionChecks = -1 })
			r.addPeers(10)
			r.run(30 * time.Second)
			if confirmed {
				r.receive(peer(6), 1, accusation(peer(1)), accusation(peer(2)), accusation(peer(3)), accusation(peer(4)))
			} else {
				r.receive(peer(6), 1, accusation(peer(1)))
			}
			m, _ := r.e.Member(peer(0))
			require.Equal(t, swim.StatusSuspect, m.Status)
			from := len(r.sent)
			switch via {
			case "a third node":
				r.receive(peer(7), 1, refutation)
			case "the suspect":
				r.receive(peer(0), 2, refutation)
			default:
				b := wire.AppendHeader(nil, wire.Header{Cluster: r.cluster, Sender: peer(0), Incarnation: 2, Flags: wire.HeaderFlagPush})
				r.e.Receive(r.now, peer(0), refutation.AppendTo(b))
				r.collect()
			}
			m, _ = r.e.Member(peer(0))
			require.Equal(t, swim.StatusAlive, m.Status)
			pushedOn := pushedUpdates(t, r, from, peer(0), wire.StatusAlive)
			if confirmed {
				assert.Equal(t, 3, pushedOn, "confirmed, from %s", via)
			} else {
				assert.Zero(t, pushedOn, "a mere suspicion, from %s", via)
			}
		}
	}
}

// A member whose round trips grow past the direct phase all at once (here
// from 1 ms to 40 ms, past the 19 ms after which relays are asked) acks
// only after the relays were asked, and such acks are not round trips (one
// may answer the probe's second ping). Each such probe in a row doubles the
// direct phase, so a probe soon gets its ack in time, the history learns
// the 40 ms, and probes stop asking relays. Without the doubling every
// probe of it would ask relays, for ever.
func TestProbesWaitLongerWhenAcksComeLate(t *testing.T) {
	const rtt = 40 * time.Millisecond
	r := newRigWith(t, func(c *swim.Config) { c.SuspicionChecks = -1 })
	r.addPeers(2)
	r.run(30 * time.Second)
	for i := range 2 {
		r.silent[peer(i)] = true // answered below, 40 ms late
	}
	type pending struct {
		at  time.Time
		to  netip.AddrPort
		seq uint16
	}
	var acks []pending
	var probes, relayed []bool // per probe: did it ask relays?
	seqIdx := map[uint16]int{}
	for range 100000 {
		if len(probes) >= 30 {
			break
		}
		at := r.e.NextDeadline()
		if len(acks) > 0 && acks[0].at.Before(at) {
			a := acks[0]
			acks = acks[1:]
			r.now = a.at
			r.receive(a.to, 1, wire.Message{Type: wire.TypeAck, Seq: a.seq})
			continue
		}
		from := len(r.sent)
		r.step()
		for _, p := range r.sentPackets(from) {
			switch m := p.msgs[0]; m.Type {
			case wire.TypePing:
				if _, ok := seqIdx[m.Seq]; !ok {
					seqIdx[m.Seq] = len(probes)
					probes, relayed = append(probes, true), append(relayed, false)
				}
				acks = append(acks, pending{at.Add(rtt), p.to, m.Seq})
			case wire.TypePingReq:
				if k, ok := seqIdx[m.Seq]; ok {
					relayed[k] = true
				}
			}
		}
	}
	require.Len(t, probes, 30)
	asked := 0
	for _, x := range relayed[20:] {
		if x {
			asked++
		}
	}
	t.Logf("probes asking relays, in order: %v", relayed)
	assert.Zero(t, asked, "the last 10 probes get their acks in time")
	m, _ := r.e.Member(peer(0))
	assert.Equal(t, swim.StatusAlive, m.Status)
	assert.Equal(t, rtt, m.RTT)
	assert.Zero(t, r.e.Stats().SuspicionsRaised)
}

// A node whose local health is raised (it may be the slow one) does not
// hurry: its probes ask their relays only once the ping has had the whole
// stretched timeout, as they did before relays were asked early.
func TestUnhealthyNodeAsksItsRelaysAfterItsWholeTimeout(t *testing.T) {
	r := newRigWith(t, func(c *swim.Config) { c.SuspicionChecks = -1 })
	r.addPeers(6)
	r.run(30 * time.Second)
	T := r.e.Stats().CurrentProbeTimeout
	require.Equal(t, 150*time.Millisecond, T)
	for i := range 6 {
		r.silent[peer(i)] = true // nobody answers, nobody nacks: the score climbs
	}
	type probeSeen struct {
		pingAt time.Time
		health int
	}
	pings := map[uint16]probeSeen{}
	delays := map[int]time.Duration{} // by the score when the ping went out
	for range 2000 {
		if r.e.NextDeadline().Sub(r.now) > time.Hour {
			break
		}
		from := len(r.sent)
		at := r.step()
		health := r.e.Stats().LocalHealth
		for _, p := range r.sentPackets(from) {
			switch m := p.msgs[0]; m.Type {
			case wire.TypePing:
				if _, ok := pings[m.Seq]; !ok {
					pings[m.Seq] = probeSeen{at, health}
				}
			case wire.TypePingReq:
				if s, ok := pings[m.Seq]; ok && at.After(s.pingAt) {
					if _, seen := delays[s.health]; !seen {
						delays[s.health] = at.Sub(s.pingAt)
					}
				}
			}
		}
		if len(delays) >= 3 {
			break
		}
	}
	require.Contains(t, delays, 0)
	t.Logf("relays asked after, by score: %v", delays)
	assert.Equal(t, T/8, delays[0], "healthy: relays asked early")
	require.GreaterOrEqual(t, len(delays), 2, "the score rose: %v", delays)
	for h, d := range delays {
		if h > 0 {
			assert.Equal(t, time.Duration(1+h)*T, d, "score %d: the whole stretched timeout first", h)
		}
	}
}
