package swim

import (
	"time"
)

// Gossip rounds. Piggybacking alone moves news at the pace of probes: one
// ping and its ack per period. With a long period (1 s) the few members a
// push flood misses (about e^-3, 5%, of them with a fan-out of 3) would wait
// most of a period. So after this node pushes news (a broadcast, a death, a
// leave, a newcomer: see push), it also sends its gossip, every
// GossipInterval, in packets of their own to GossipNodes random live
// members, for gossipRounds rounds (the first at once): memberlist's gossip
// rounds, but only when there is news worth pushing, and faster.
// Suspicions and refutations, which a lossy cluster has all the time, ride
// on probes as before; a quiet cluster's traffic is the probes'.

// Defaults for gossip rounds.
const (
	DefaultGossipNodes       = 3
	DefaultMaxGossipInterval = 25 * time.Millisecond
	// gossipRounds is how many rounds news starts. With the push on
	// first receipt, each member is sent a broadcast about 12 times (3
	// pushed, 9 in rounds), so that practically none is missed (about
	// e^-12 of them) and none waits for a probe: in the simulator, 64
	// nodes get each of 500 broadcasts within the third round (50 ms), at
	// a 1 s or a 200 ms period. With two rounds 50 ms apart, 0.6% of them
	// waited for a probe (up to 0.5 s at 1 s).
	gossipRounds = 3
)

// gossipInterval is the time between two gossip rounds: GossipInterval, or
// by default a quarter of the probe period, at most
// DefaultMaxGossipInterval.
func (e *Engine) gossipInterval() time.Duration {
	if e.cfg.GossipInterval > 0 {
		return e.cfg.GossipInterval
	}
	return min(e.cfg.ProbeInterval/4, DefaultMaxGossipInterval)
}

// gossipDue reports whether a gossip round is wanted at now: news was
// pushed lately and there is gossip to send.
func (e *Engine) gossipDue(now time.Time) bool {
	return e.cfg.GossipNodes > 0 && e.queue.len > 0 && !e.leaving && now.Before(e.urgentUntil)
}

// urgent starts (or prolongs) gossip rounds after news was pushed at now.
func (e *Engine) urgent(now time.Time) {
	if e.cfg.GossipNodes <= 0 || e.quiet {
		return
	}
	if until := now.Add(gossipRounds*e.gossipInterval() - 1); until.After(e.urgentUntil) {
		e.urgentUntil = until
	}
}

// gossipRound sends this node's gossip to GossipNodes random live members,
// if it has any and the round is due; it schedules the next.
func (e *Engine) gossipRound(now time.Time) {
	if !now.Before(e.urgentUntil) {
		e.urgentUntil = time.Time{} // the rounds are over
	}
	if now.Before(e.nextGossipAt) || !e.gossipDue(now) {
		return // news arriving after a quiet spell goes out at once
	}
	e.nextGossipAt = now.Add(e.gossipInterval())
	for _, m := range e.pickRandom(e.cfg.GossipNodes, nil) {
		b := e.startPacket(0)
		empty := len(b)
		b = e.piggyback(b, now, m.addr)
		if len(b) == empty {
			e.out[e.cur].used-- // nothing left to send: give the buffer back
			break
		}
		e.emit(m.addr, b)
		e.stats.GossipPackets++
	}
}

// gossipDeadline is when Tick must run for the next gossip round, if one
// has something to send.
func (e *Engine) gossipDeadline(d time.Time) time.Time {
	if e.gossipDue(e.nextGossipAt) && e.nextGossipAt.Before(d) {
		return e.nextGossipAt
	}
	return d
}
