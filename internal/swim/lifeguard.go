package swim

import (
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/seed-c7906467/smudge/internal/wire"
)

// Lifeguard: the refinements of SWIM of Dadgar, Phillips and Currey,
// "Lifeguard: Local Health Awareness for More Accurate Failure Detection"
// (2018), and smudge's own suspicion checks. Each can be switched off in
// Config, for comparison.
//
//   - Local health: a score from 0 to MaxLocalHealth that failed probes,
//     missed nacks and refuted suspicions raise and successful probes lower
//     (this node's own round of probes only: last probes and suspicion
//     checks, of members others failed to reach, are left out).
//     It multiplies this node's probe period and probe timeout by 1+score:
//     a node that is itself slow (starved of CPU, its packets queued) stops
//     accusing healthy members of its own slowness.
//   - Nacks: a member asked to ping another on this node's behalf (ping-req)
//     answers with a nack when its ping goes unanswered. A node that gets
//     neither the ack nor the nacks it expected is likely the problem
//     itself: each missed nack raises its score.
//   - Dynamic suspicion: a suspicion's timeout starts at SuspicionMult
//     periods (times max(1, log10 n)) and shrinks, with each independent
//     accuser heard of (logarithmically, as Lifeguard does), to
//     SuspicionMinMult periods after SuspicionConfirmations accusers. A DEAD
//     verdict from another node counts as one, and starts this node's last
//     probe of the member at once: no node holds a member DEAD unless a
//     probe of its own failed (directly and through 2k others), so a stale
//     verdict can never kill a healthy member, and a true one is taken
//     within a probe's time.
//   - Confirmed suspicions spread (smudge's): a node whose suspicion gets
//     its SuspicionConfirmations accusers tells PushFanout others, once,
//     with every accuser (see spreadConfirmed); they hold it confirmed too,
//     start their last probes (at once, or as soon as their timeout
//     allows) and tell others in turn. So the last
//     probes of all members run together, not one after the other behind
//     the first verdict; a verdict then ends a last probe that only this
//     node's own timeout still holds back.
//   - Refutations race them: the suspect pushes its refutation whatever it
//     refutes, and the refutation of a confirmed suspicion, or of one a
//     verdict backs, is pushed on by every member it is news to (see
//     refutationNews).
//   - Suspicion checks (smudge's): a node that raises a suspicion itself
//     pushes it at once to SuspicionChecks random members, which probe the
//     suspect at once: their pings carry the suspicion, so a live suspect
//     refutes within a round trip, and their failures are independent
//     accusations, sent straight to the accuser, that shrink its timeout.
//   - Lone suspicions wait (smudge's): a suspicion that only this node
//     holds, due while its local health is raised, is stretched 1+score
//     times (see deferLoneSuspicion).
//   - Buddy system: every ping to a member suspected here, and every answer
//     to it, carries the suspicion, so that the member refutes at once,
//     whether or not the suspicion is still being gossiped (see tellsState).

// maxNackRelays bounds the relays whose nacks a probe waits for (their
// addresses are kept in the probe).
const maxNackRelays = 8

// Defaults for Lifeguard.
const (
	DefaultMaxLocalHealth         = 8
	DefaultSuspicionMinMult       = 0.5
	DefaultSuspicionConfirmations = 3
	DefaultSuspicionChecks        = 3
	// MaxSuspicionConfirmations bounds SuspicionConfirmations: the
	// accusers of a suspicion are kept in a fixed array.
	MaxSuspicionConfirmations = 7
)

// suspicion is the state of one member suspected here.
type suspicion struct {
	start    time.Time // when the suspicion (at this incarnation) began here
	deadline time.Time // when its last probe is due: the at of its live timerSuspect
	n        int       // accusers heard of, the first included
	verdict  bool      // a DEAD verdict about it (at this incarnation) came
	spread   bool      // this node has told others it is confirmed (spreadConfirmed)
	accusers [MaxSuspicionConfirmations + 1]netip.AddrPort
}

// dynamicSuspicion reports whether suspicion timeouts shrink with
// confirmations (and DEAD verdicts about suspects are taken at once).
func (e *Engine) dynamicSuspicion() bool { return !e.cfg.NoDynamicSuspicion }

// healthFactor is 1 + the local health score: how much this node stretches
// its probe period and probe timeout.
func (e *Engine) healthFactor() time.Duration { return time.Duration(1 + e.health) }

// ownProbeTimeout is how long this node waits for an ack to a ping of its
// own: the adaptive timeout, stretched by the local health score.
func (e *Engine) ownProbeTimeout() time.Duration { return e.rtt.timeout() * e.healthFactor() }

// adjustHealth adds delta to the local health score, within its bounds.
func (e *Engine) adjustHealth(delta int) {
	if e.cfg.NoLocalHealth || delta == 0 {
		return
	}
	e.health = min(max(e.health+delta, 0), e.cfg.MaxLocalHealth)
	e.stats.LocalHealth = e.health
	if delta > 0 {
		e.stats.HealthRaised += uint64(delta)
	}
}

// confirmationsWanted is how many accusers besides the first bring a
// suspicion's timeout to its floor: SuspicionConfirmations, or fewer in a
// cluster too small to have them. Below 1, none are waited for.
func (e *Engine) confirmationsWanted() int {
	return min(e.cfg.SuspicionConfirmations, e.live-1)
}

// confirmed reports whether s has all the accusers its timeout waits for
// (with dynamic suspicion): its timeout is at its floor.
func (e *Engine) confirmed(s *suspicion) bool {
	k := e.confirmationsWanted()
	return e.dynamicSuspicion() && k >= 1 && s.n > k
}

// suspicionTimeoutAfter is a suspicion's timeout once c accusers besides
// the first have been heard of.
func (e *Engine) suspicionTimeoutAfter(c int) time.Duration {
	n := e.live + 1
	hi := SuspicionTimeout(e.cfg.SuspicionMult, n, e.cfg.ProbeInterval)
	if !e.dynamicSuspicion() {
		return hi
	}
	lo := time.Duration(e.cfg.SuspicionMinMult * math.Max(1, math.Log10(float64(n))) * float64(e.cfg.ProbeInterval))
	k := e.confirmationsWanted()
	if k < 1 || c >= k {
		return min(lo, hi)
	}
	frac := math.Log(float64(c+1)) / math.Log(float64(k+1))
	return max(hi-time.Duration(frac*float64(hi-lo)), lo)
}

// startSuspicion starts (or, at a new incarnation, restarts) the suspicion
// of m, raised by accuser, and schedules its last probe.
func (e *Engine) startSuspicion(now time.Time, m *member, accuser netip.AddrPort) {
	s := e.suspicions[m]
	if s == nil {
		if k := len(e.freeSuspicions); k > 0 {
			s = e.freeSuspicions[k-1]
			e.freeSuspicions = e.freeSuspicions[:k-1]
		} else {
			s = new(suspicion)
		}
		e.suspicions[m] = s
	}
	*s = suspicion{start: now, n: 1}
	s.accusers[0] = accuser
	e.scheduleSuspicion(now, m, s, true)
}

// restartSuspicion gives m, which answered its last probe without
// refuting, another suspicion timeout from now, its accusers kept.
func (e *Engine) restartSuspicion(now time.Time, m *member) {
	s := e.suspicions[m]
	if s == nil {
		e.startSuspicion(now, m, m.sourceAddr())
		return
	}
	s.start = now
	e.scheduleSuspicion(now, m, s, true)
}

// scheduleSuspicion schedules the last probe of m at the suspicion's
// current timeout (early enough that a failed last probe ends with it), if
// that is earlier than what is scheduled, or always if reset.
func (e *Engine) scheduleSuspicion(now time.Time, m *member, s *suspicion, reset bool) {
	at := s.start.Add(e.suspicionTimeoutAfter(s.n-1) - e.lastProbeTime())
	if at.Before(now) {
		at = now
	}
	if !reset && !at.Before(s.deadline) {
		return
	}
	s.deadline = at
	e.schedule(timer{at: at, kind: timerSuspect, m: m, gen: m.gen})
}

// confirmSuspicion counts accuser, if new, as an independent accuser of m
// (suspected here at its current incarnation) and shortens the suspicion.
// It reports whether the accuser was new.
func (e *Engine) confirmSuspicion(now time.Time, m *member, accuser netip.AddrPort) bool {
	s := e.suspicions[m]
	if s == nil || !accuser.IsValid() || accuser == m.addr {
		return false
	}
	for _, a := range s.accusers[:s.n] {
		if a == accuser {
			return false
		}
	}
	if s.n == len(s.accusers) || s.n > e.cfg.SuspicionConfirmations {
		return false // the timeout is at its floor already
	}
	s.accusers[s.n] = accuser
	s.n++
	e.stats.SuspicionConfirmations++
	if e.dynamicSuspicion() {
		e.scheduleSuspicion(now, m, s, false)
		if !s.spread && !s.verdict && e.confirmed(s) { // a verdict floods anyway
			s.spread = e.spreadConfirmed(m, s)
		}
	}
	return true
}

// spreadConfirmed tells PushFanout random members other than m that m's
// suspicion, held here, is confirmed: one packet with the update of each
// of its accusers. A member that learns of them holds the suspicion
// confirmed too, so its own last probe starts at once, or as soon as its
// timeout allows (a last probe is timed to end with the suspicion's
// timeout: at once where that floor is at most two probe timeouts, as at
// 16 nodes and a 200 ms period). It still declares m DEAD only if that
// probe fails, and no sooner than its own suspicion timeout unless a
// verdict comes; and it tells PushFanout others in turn, once. So the last
// probes of every member run at about the time the first accuser's does,
// not one after the other behind its verdict: a crashed member is DEAD
// everywhere about a probe's time sooner.
//
// The packet is not marked pushed: its updates are gossip where they land,
// not requests for checks (the last probe is one). It carries nothing else
// (the gossip queue holds the suspicion too), and no more accusers than
// fit in MaxPacketBytes. It costs PushFanout packets per member for a
// suspicion that gets confirmed, as a verdict does: a crash, or a member
// most cannot reach. It reports whether it sent any.
func (e *Engine) spreadConfirmed(m *member, s *suspicion) bool {
	sent := e.fanOut(1, m, netip.AddrPort{}, netip.AddrPort{}, func(netip.AddrPort) []byte {
		b := e.startPacket(0)
		for _, a := range s.accusers[:s.n] {
			u := wire.Message{Type: wire.TypeUpdate, Status: StatusSuspect, Incarnation: m.inc, Subject: m.addr, Source: a}
			if more := u.AppendTo(b); len(more) <= e.cfg.MaxPacketBytes {
				b = more
			}
		}
		return b
	})
	e.stats.ConfirmedSpread += uint64(sent)
	return sent > 0
}

// endSuspicion forgets m's suspicion: it is no longer suspected here.
func (e *Engine) endSuspicion(m *member) {
	if s := e.suspicions[m]; s != nil {
		delete(e.suspicions, m)
		if len(e.freeSuspicions) < maxFreeProbes {
			e.freeSuspicions = append(e.freeSuspicions, s)
		}
	}
}

// deferLoneSuspicion gives m's suspicion, due now, more time if this node
// is its only accuser (no confirmation, no verdict came) while its own local
// health is raised: the suspicion's timeout is stretched 1+score times, as
// its probe period is. A node cut off from everyone (a firewall, a dead
// link) fails every probe, hears no confirmation and, without this, would
// declare healthy members DEAD as soon as its suspicions ran out; a member
// that really failed is confirmed by others, and its timeout shrinks as
// before. It reports whether it deferred the suspicion.
func (e *Engine) deferLoneSuspicion(now time.Time, m *member) bool {
	s := e.suspicions[m]
	if s == nil || !e.waitsAlone(s) {
		return false
	}
	at := s.start.Add(e.suspicionTimeoutAfter(0)*e.healthFactor() - e.lastProbeTime())
	if !at.After(now) {
		return false
	}
	s.deadline = at
	e.schedule(timer{at: at, kind: timerSuspect, m: m, gen: m.gen})
	e.stats.SuspicionsDeferred++
	return true
}

// recheckLoneSuspicions checks again, when this node's local health has
// just recovered, each suspicion it raised alone: its ping carries the
// suspicion (and its failure changes nothing, this node being the accuser
// already). A suspicion raised while this node was cut off or starved
// reached nobody, its gossip spent meanwhile, so the suspect could not
// refute it; deferLoneSuspicion may keep it for many periods, and this
// node's next probe of the suspect can be a whole round away. Left so, it
// would come due long after the trouble ended, maybe during the next one,
// and a last probe failing then would declare a live member DEAD.
func (e *Engine) recheckLoneSuspicions(now time.Time) {
	for _, m := range e.order { // not the map: the engine is deterministic
		if m.status != StatusSuspect || m.removed {
			continue
		}
		if s := e.suspicions[m]; s != nil && s.n <= 1 && !s.verdict && s.accusers[0] == e.cfg.Self {
			e.runCheck(now, m)
			e.stats.LoneRechecks++
		}
	}
}

// suspicionDue reports whether t, a timerSuspect of a member suspected
// here, is the suspicion's current deadline (earlier ones were replaced as
// confirmations shortened it).
func (e *Engine) suspicionDue(t *timer) bool {
	s := e.suspicions[t.m]
	return s != nil && s.deadline.Equal(t.at)
}

// requestChecks pushes this node's new suspicion of m to SuspicionChecks
// random members other than m, which probe m at once.
func (e *Engine) requestChecks(m *member) {
	if e.cfg.SuspicionChecks <= 0 || e.leaving {
		return
	}
	u := e.updateMsg(m)
	sent := 0
	for _, r := range e.pickRandom(e.cfg.SuspicionChecks+1, m) {
		if sent == e.cfg.SuspicionChecks {
			break
		}
		b := e.startPacket(wire.HeaderFlagPush)
		e.emit(r.addr, u.AppendTo(b))
		sent++
	}
	e.stats.ChecksRequested += uint64(sent)
}

// accuse records that this node's own probe of m, suspected here on
// another's word, failed: an independent accusation. It is counted, sent
// straight to the accuser and gossiped.
func (e *Engine) accuse(now time.Time, m *member) {
	accuser := m.sourceAddr()
	if !e.confirmSuspicion(now, m, e.cfg.Self) {
		return
	}
	u := wire.Message{Type: wire.TypeUpdate, Status: StatusSuspect, Incarnation: m.inc, Subject: m.addr, Source: e.cfg.Self}
	if accuser != e.cfg.Self && accuser != m.addr {
		b := e.startPacket(0)
		e.emit(accuser, u.AppendTo(b))
	}
	e.queueUpdate(u)
}

// waitsAlone reports whether s is a lone suspicion that deferLoneSuspicion
// stretches: no other accuser, no verdict, this node's health raised.
func (e *Engine) waitsAlone(s *suspicion) bool {
	return s.n <= 1 && !s.verdict && e.health > 0 && e.dynamicSuspicion()
}

// suspicionEnd is when s runs out, as scheduleSuspicion and
// deferLoneSuspicion count it: the time its last probe is scheduled to end.
func (e *Engine) suspicionEnd(s *suspicion) time.Time {
	d := e.suspicionTimeoutAfter(s.n - 1)
	if e.waitsAlone(s) {
		d = max(d, e.suspicionTimeoutAfter(0)*e.healthFactor())
	}
	return s.start.Add(d)
}

// handleNack counts a nack for the probe seq, from one of its relays.
//
// Once every relay has nacked, the indirect phase has heard all it waits
// for: its second timeout is there for the nacks to come, and an ack now
// could only be this node's own ping's, late. So the probe fails at once,
// or as soon as that ping has had its own timeout (stretched by local
// health: a slow node still waits longer before it accuses). A last probe
// at this node's own suspicion timeout ends no sooner than the suspicion
// would have (its full timeout, as confirmations have shortened it): the
// suspect gets all of that time to refute.
//
// Only a relay this probe asked counts, and only once: a nack from anyone
// else (a forged one, or a late one for an earlier probe with the same
// sequence number), or a second from the same relay, is counted in
// UnexpectedNacks and changes nothing. A probe waits for the nacks of the
// first maxNackRelays relays it asks.
func (e *Engine) handleNack(now time.Time, seq uint16, from netip.AddrPort) {
	p := e.probes[uint32(seq)]
	i := -1
	if p != nil && !p.relay && p.indirect {
		i = slices.Index(p.relays[:p.nacksWant], from)
	}
	if i < 0 || p.nacked&(1<<i) != 0 {
		e.stats.UnexpectedNacks++
		return
	}
	p.nacked |= 1 << i
	p.nacks++
	e.stats.NacksReceived++
	if e.endIfNacked(now, p) {
		e.stats.ProbesEndedByNacks++
	}
}

// endIfNacked ends p, failed, if every relay it asked has nacked: at once,
// or as soon as its own ping has had its timeout and its notBefore has
// come (see handleNack). It reports whether that is sooner than p's own
// deadline.
func (e *Engine) endIfNacked(now time.Time, p *probe) bool {
	if p.nacksWant == 0 || p.nacks < p.nacksWant {
		return false
	}
	at := p.indirectAt.Add(e.ownProbeTimeout())
	if p.notBefore.After(at) {
		at = p.notBefore
	}
	if !at.Before(p.indirectAt.Add(2 * e.ownProbeTimeout())) {
		return false // no sooner than its own deadline
	}
	if at.After(now) {
		e.scheduleProbe(at, p)
	} else {
		e.probeTimeout(now, p.seq, p.serial)
	}
	return true
}

// sendNack tells requester that the ping this node sent on its behalf
// (request seq) went unanswered.
func (e *Engine) sendNack(requester netip.AddrPort, seq uint16) {
	if e.cfg.NoNacks {
		return
	}
	b := e.startPacket(0)
	nack := wire.Message{Type: wire.TypeNack, Seq: seq}
	e.emit(requester, nack.AppendTo(b))
	e.stats.NacksSent++
}

// runCheck probes m, suspected on the word of the node that pushed the
// suspicion here, at once, unless a probe of it is under way: the ping
// carries the suspicion (the suspect refutes in its ack if alive), and its
// failure is an independent accusation (see accuse). Like a last probe, it
// asks its relays at once, with the direct ping: the member already failed
// the accuser's probe, and a check that takes a whole probe (a timeout,
// then two more through the relays) holds up the confirmation by a timeout.
func (e *Engine) runCheck(now time.Time, m *member) {
	if e.cfg.SuspicionChecks <= 0 || e.leaving || m.removed || m.status != StatusSuspect || len(e.probes) >= e.cfg.MaxPendingProbes {
		return
	}
	for _, p := range e.probes {
		if p.target == m {
			return
		}
	}
	p := e.newProbe()
	*p = probe{target: m, addr: m.addr, sentAt: now, check: true}
	e.track(p)
	e.stats.ProbesSent++
	e.probeIndirect(now, p, m)
	e.stats.ChecksRun++
}

// firstVerdict records a DEAD verdict by declarer about m, suspected here,
// as a confirmation, and reports whether it is the first verdict of this
// suspicion (to be acted upon and pushed on; later ones are not).
func (e *Engine) firstVerdict(now time.Time, m *member, declarer netip.AddrPort) bool {
	s := e.suspicions[m]
	if s == nil || s.verdict {
		return false
	}
	s.verdict = true
	e.confirmSuspicion(now, m, declarer)
	return true
}

// probeLast starts the last probe of m (see confirmProbe) at once, on
// another node's verdict, unless one is under way.
func (e *Engine) probeLast(now time.Time, m *member) {
	if e.leaving || m.removed || m.status != StatusSuspect {
		return
	}
	if p := e.lastProbeOf(m); p != nil {
		// The verdict says the suspicion ran out at its declarer: this
		// node's own timeout no longer holds its last probe back.
		if !p.notBefore.IsZero() {
			p.notBefore = time.Time{}
			e.endIfNacked(now, p)
		}
		return
	}
	e.confirmProbe(now, m, true)
	e.stats.VerdictProbes++
}

// lastProbeOf returns the last probe of m (confirmProbe) under way, if any,
// for its current suspicion.
func (e *Engine) lastProbeOf(m *member) *probe {
	for _, p := range e.probes {
		if p.target == m && p.confirm && p.gen == m.gen {
			return p
		}
	}
	return nil
}

// tellsState reports whether packets to m carry what this node holds of
// it: always when m is DEAD or LEFT here (so that it refutes, or a
// partition heals), and when it is SUSPECTED, unless the buddy system is
// off.
func (e *Engine) tellsState(m *member) bool {
	return m.status != StatusAlive && (m.status != StatusSuspect || !e.cfg.NoBuddy)
}
