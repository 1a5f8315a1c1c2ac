package swim

import "time"

type timerKind uint8

const (
	timerProbe   timerKind = iota + 1 // a probe's current deadline (by seq)
	timerSuspect                      // a suspicion runs out
	timerReprobe                      // re-probe a dead member
	timerRemove                       // forget a dead or left member
	timerJoin                         // ask the seeds again while alone (by join round)
)

// timer is one scheduled engine action. Member timers carry the member's
// generation at scheduling time; a status change bumps the generation, which
// cancels them without searching the heap.
type timer struct {
	at   time.Time
	kind timerKind
	m    *member
	gen  uint32
	seq  uint32
}

// timerHeap is a binary min-heap on at, hand-rolled to avoid the interface
// conversions of container/heap on the hot path.
type timerHeap []timer

func (h *timerHeap) push(t timer) {
	*h = append(*h, t)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s[i].at.Before(s[p].at) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *timerHeap) pop() timer {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = timer{}
	s = s[:n]
	s.down(0)
	*h = s
	return top
}

// schedule adds t. Timers cancelled by a status change (or an answered
// probe, or a later join round) stay in the heap until they are due; when
// they come to outnumber the live ones, the heap is compacted, so that its
// size follows the members and probes, not the rate of status changes.
func (e *Engine) schedule(t timer) {
	e.timers.push(t)
	if limit := 4*(len(e.order)+len(e.probes)) + 64; len(e.timers) > limit {
		e.compactTimers()
	}
}

// timerLive reports whether t would still act when due.
func (e *Engine) timerLive(t *timer) bool {
	switch t.kind {
	case timerProbe:
		p := e.probes[t.seq]
		return p != nil && p.serial == t.gen
	case timerJoin:
		return t.seq == e.joinGen
	default:
		return t.m != nil && !t.m.removed && t.m.gen == t.gen
	}
}

// compactTimers drops the cancelled timers and restores the heap order.
func (e *Engine) compactTimers() {
	h := e.timers
	n := 0
	for i := range h {
		if e.timerLive(&h[i]) {
			h[n] = h[i]
			n++
		}
	}
	clear(h[n:])
	h = h[:n]
	for i := n/2 - 1; i >= 0; i-- {
		h.down(i)
	}
	e.timers = h
	e.stats.TimerCompactions++
}

// down restores the heap order below i.
func (h timerHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && h[r].at.Before(h[l].at) {
			c = r
		}
		if !h[c].at.Before(h[i].at) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}
