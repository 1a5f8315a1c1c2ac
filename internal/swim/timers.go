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
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && s[r].at.Before(s[l].at) {
			c = r
		}
		if !s[c].at.Before(s[i].at) {
			break
		}
		s[i], s[c] = s[c], s[i]
		i = c
	}
	*h = s
	return top
}
