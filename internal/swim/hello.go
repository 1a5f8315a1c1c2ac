package swim

import (
	"time"

	"github.com/seed-c7906467/smudge/internal/wire"
)

// Greetings close the tail of a join storm.
//
// When many nodes join at once through a seed, each learns the members
// that joined before it from the seed's member list (the join answer), and
// the members that join after it from gossip: the seed pushes each
// newcomer's arrival and gossips it, and so do those it reaches. Gossip
// spreads each item a bounded number of times (EmitLimit, computed while
// the cluster is still small), and the seed's pushes are bounded per
// period, so now and then one early joiner never hears of one later joiner
// until the later one's probe reaches it: up to n periods later (measured:
// 64 nodes joining over half a second with a 1 s period, 2 starts in 10
// left one pair unaware of each other for 28 and 54 s).
//
// So a joining node greets the members the join answer describes that it
// never heard from itself: one small packet each, its own update with its
// metadata, no gossip. Each pair of joiners is then covered by the later
// one's join answer, which lists the earlier one, whatever gossip did. The
// greetings are bounded by MaxHellos per Join (beyond it, at a thousand
// members, gossip and the members' own probes do it as before), sent once
// per member, and only in answer to packets marked as a join answer.
func (e *Engine) greet(now time.Time) {
	for i := range e.pkt.Messages {
		e.greetOne(now, &e.pkt.Messages[i])
	}
}

// greetOne greets the subject of u, an update of a member list, if it is
// live here and was never heard from.
func (e *Engine) greetOne(now time.Time, u *wire.Message) {
	if u.Type != wire.TypeUpdate || u.Subject == e.cfg.Self {
		return
	}
	m := e.find(u.Subject)
	if m == nil || m.removed || !m.live() || m.greeted || m.lastHeard != never {
		return
	}
	if e.hellosLeft <= 0 {
		if e.cfg.MaxHellos > 0 {
			e.stats.HellosSkipped++
		}
		return
	}
	e.hellosLeft--
	m.greeted = true
	b := e.startPacket(0)
	self := e.selfUpdate()
	e.emit(m.addr, self.AppendTo(b))
	e.stats.Hellos++
}
