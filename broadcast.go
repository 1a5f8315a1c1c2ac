package smudge

import "strconv"

// Broadcast is a message from one member to all the others, delivered to
// each of them once (never back to its origin).
type Broadcast struct {
	origin *Node
	boot   uint32
	index  uint32
	bytes  []byte
}

// Bytes returns a copy of the payload.
func (b *Broadcast) Bytes() []byte { return append([]byte(nil), b.bytes...) }

// Index is the origin's counter for this broadcast, from 1 in each run of
// the origin.
func (b *Broadcast) Index() uint32 { return b.index }

// Label is "ip:port:index", as in Smudge.
func (b *Broadcast) Label() string {
	return b.origin.Address() + ":" + strconv.FormatUint(uint64(b.index), 10)
}

// Origin is the node that sent the broadcast.
func (b *Broadcast) Origin() *Node { return b.origin }
