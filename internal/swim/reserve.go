package swim

import "slices"

// Reserve makes room for n members (this node not counted): the member
// table, the member order and the probe list are sized for n at once, and
// the members still to come are allocated together, in one block, instead of
// one by one. It is for a node about to learn a large membership at once,
// such as a simulator's bootstrap; an engine works the same without it. A
// member removed later keeps its place in the block until every member of
// the block is gone.
func (e *Engine) Reserve(n int) {
	more := n - len(e.order)
	if more <= 0 {
		return
	}
	e.order = slices.Grow(e.order, more)
	e.probeList = slices.Grow(e.probeList, n-len(e.probeList))
	e.members.reserve(e.order, n)
	e.slab = make([]member, more)
}

// SetQuiet turns quiet mode on or off. While it is on, the engine applies
// what it learns (members, their status changes) without queueing gossip
// about it, without starting gossip rounds for it, and without outputting
// events: for a simulator's bootstrap, which gives every node a membership
// it is meant to have had for long, so that nothing about it is news.
// Packets the engine sends are output as usual.
func (e *Engine) SetQuiet(quiet bool) { e.quiet = quiet }

// newMember returns a zero member, from the block Reserve allocated while
// it lasts.
func (e *Engine) newMember() *member {
	if len(e.slab) == 0 {
		e.slab = nil
		return new(member)
	}
	m := &e.slab[0]
	e.slab = e.slab[1:]
	return m
}

// reserve grows the table so that n members fit without growing again.
func (t *memberTable) reserve(order []*member, n int) {
	size := len(t.slots)
	for n*4 > size*3 {
		size *= 2
	}
	if size != len(t.slots) {
		t.rebuild(order, size)
	}
}
