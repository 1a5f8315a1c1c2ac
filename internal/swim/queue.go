package swim

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"time"

	"github.com/seed-c7906467/smudge/internal/wire"
)

// gossipQueue holds the membership updates and broadcasts waiting to be
// piggybacked. Items are kept in buckets by how often they were sent, so the
// least-sent are found first without sorting; within a bucket the newest go
// first. An update replaces an older one about the same member.
//
// Each item is encoded once, when it is queued, into one shared buffer (the
// arena); filling a packet copies those bytes (a broadcast's age is patched
// in place first). Items are values in one slice, reused through a free
// list, and the buckets hold their indices, so neither queueing in steady
// state nor filling a packet allocates. Removed items leave holes in the
// arena, which is compacted in place when they make up most of it.
type gossipQueue struct {
	buckets    [][]int32 // item indices, by times sent
	minLen     []int     // a lower bound on the encoded length of each bucket's items
	items      []qitem
	free       []int32 // indices of removed items, for reuse
	arena      []byte  // the items' encodings, back to back, with holes
	garbage    int     // bytes of the arena held by removed items
	scratch    []int32 // compaction's work list
	bySubject  map[netip.AddrPort]int32
	byKey      map[bcastKey]int32 // the broadcasts
	broadcasts int                // broadcast items queued
	len        int
	fills      uint64 // counts fill calls, so an item goes once per packet
}

type qitem struct {
	key    bcastKey       // broadcast: its key; update: key.origin is the subject
	from   netip.AddrPort // broadcast: the node it came from
	born   time.Time      // when this node queued it (broadcast age base)
	fill   uint64         // the fill call that last sent it
	off    int32          // its encoding is arena[off : off+size]
	size   int32          // encoded length
	sent   int32
	bucket int32
	idx    int32
	age0   uint32 // broadcast age when it was queued, in ms
	ageOff int32  // broadcast: where the age sits in its encoding; -1: nowhere
	bcast  bool
}

// compactMin is the garbage below which the arena is never compacted.
const compactMin = 4096

func newGossipQueue() *gossipQueue {
	return &gossipQueue{bySubject: make(map[netip.AddrPort]int32), byKey: make(map[bcastKey]int32)}
}

func (q *gossipQueue) push(i int32) {
	it := &q.items[i]
	for len(q.buckets) <= int(it.sent) {
		q.buckets = append(q.buckets, nil)
		q.minLen = append(q.minLen, 0)
	}
	s := it.sent
	if len(q.buckets[s]) == 0 || int(it.size) < q.minLen[s] {
		q.minLen[s] = int(it.size)
	}
	it.bucket = s
	it.idx = int32(len(q.buckets[s]))
	q.buckets[s] = append(q.buckets[s], i)
}

func (q *gossipQueue) unlink(i int32) {
	it := &q.items[i]
	b := q.buckets[it.bucket]
	last := b[len(b)-1]
	b[it.idx] = last
	q.items[last].idx = it.idx
	q.buckets[it.bucket] = b[:len(b)-1]
}

func (q *gossipQueue) remove(i int32) {
	q.unlink(i)
	q.len--
	it := &q.items[i]
	if it.bcast {
		q.broadcasts--
		if j, ok := q.byKey[it.key]; ok && j == i {
			delete(q.byKey, it.key)
		}
	} else if j, ok := q.bySubject[it.key.origin]; ok && j == i {
		delete(q.bySubject, it.key.origin)
	}
	q.garbage += int(it.size)
	*it = qitem{}
	q.free = append(q.free, i)
}

// removeSubject drops the update about addr, if one is queued.
func (q *gossipQueue) removeSubject(addr netip.AddrPort) {
	if i, ok := q.bySubject[addr]; ok {
		q.remove(i)
	}
}

// hasBroadcast reports whether the broadcast k is queued.
func (q *gossipQueue) hasBroadcast(k bcastKey) bool {
	_, ok := q.byKey[k]
	return ok
}

// newItem encodes msg into the arena and returns the index of an item for
// it, reused if one is free.
func (q *gossipQueue) newItem(msg *wire.Message) int32 {
	if q.garbage >= compactMin && q.garbage*2 > len(q.arena) {
		q.compact()
	}
	var i int32
	if n := len(q.free); n > 0 {
		i = q.free[n-1]
		q.free = q.free[:n-1]
	} else {
		i = int32(len(q.items))
		q.items = append(q.items, qitem{})
	}
	off := len(q.arena)
	q.arena = msg.AppendTo(q.arena)
	q.items[i] = qitem{off: int32(off), size: int32(len(q.arena) - off), ageOff: -1}
	return i
}

// compact moves the live items' encodings to the front of the arena, in
// their order there, closing the holes.
func (q *gossipQueue) compact() {
	order := q.scratch[:0]
	for _, b := range q.buckets {
		order = append(order, b...)
	}
	slices.SortFunc(order, func(a, b int32) int { return int(q.items[a].off) - int(q.items[b].off) })
	w := int32(0)
	for _, i := range order {
		it := &q.items[i]
		copy(q.arena[w:], q.arena[it.off:it.off+it.size])
		it.off = w
		w += it.size
	}
	q.arena = q.arena[:w]
	q.garbage = 0
	q.scratch = order[:0]
}

// addUpdate queues an update, replacing any older one about the same member.
func (q *gossipQueue) addUpdate(u wire.Message) {
	q.removeSubject(u.Subject)
	i := q.newItem(&u)
	q.items[i].key.origin = u.Subject
	q.bySubject[u.Subject] = i
	q.len++
	q.push(i)
}

// addBroadcast queues a broadcast (its payload is copied). from is the node
// it came from (invalid for this node's own): it is never sent back there,
// where it would be a wasted send.
func (q *gossipQueue) addBroadcast(b wire.Message, now time.Time, from netip.AddrPort) {
	i := q.newItem(&b)
	it := &q.items[i]
	it.bcast, it.born, it.age0, it.from = true, now, b.AgeMillis, from
	it.key = keyOf(&b)
	if it.size > 0 {
		it.ageOff = int32(b.AgeOffset())
	}
	q.byKey[it.key] = i
	q.len++
	q.broadcasts++
	q.push(i)
}

// pending reports how many more times the update about addr will be sent.
func (q *gossipQueue) pending(addr netip.AddrPort, limit int) int {
	if i, ok := q.bySubject[addr]; ok {
		return max(limit-int(q.items[i].sent), 0)
	}
	return 0
}

// fill appends to pkt as many queued messages as fit within budget bytes,
// least-sent first, counting one send for each. Items sent limit times, and
// broadcasts older than ttl, leave the queue. It returns the grown packet and
// the number of broadcasts dropped because they expired.
// Broadcasts are not put in packets to the node they came from (to).
func (q *gossipQueue) fill(pkt []byte, budget int, now time.Time, limit int, ttl time.Duration, to netip.AddrPort) ([]byte, int) {
	expired := 0
	q.fills++
	if limit < 1 {
		limit = 1
	}
	for b := 0; b < len(q.buckets) && budget >= minItemLen; b++ {
		// Walk newest first; moved items are swapped out of this bucket.
		// Stop when not even the bucket's shortest item fits.
		for i := len(q.buckets[b]) - 1; i >= 0 && budget >= q.minLen[b]; i-- {
			if i >= len(q.buckets[b]) {
				continue
			}
			ix := q.buckets[b][i]
			it := &q.items[ix]
			if it.fill == q.fills {
				continue
			}
			if it.bcast {
				if it.from == to && to.IsValid() {
					continue // it knows: not a send
				}
				age := now.Sub(it.born).Milliseconds() + int64(it.age0)
				if age > ttl.Milliseconds() {
					q.remove(ix)
					expired++
					continue
				}
				if it.ageOff >= 0 {
					binary.BigEndian.PutUint32(q.arena[it.off+it.ageOff:], uint32(age))
				}
			}
			n := int(it.size)
			if n > budget {
				continue
			}
			pkt = append(pkt, q.arena[it.off:it.off+it.size]...)
			budget -= n
			it.sent++
			it.fill = q.fills
			if int(it.sent) >= limit {
				q.remove(ix)
				continue
			}
			q.unlink(ix)
			q.push(ix)
		}
	}
	return pkt, expired
}

// minItemLen is the smallest message the queue can hold (an IPv4 update
// with no source): anything less in the budget cannot take another item.
const minItemLen = 2 + 1 + 1 + 7 + 1 // type, length, status, incarnation, subject, no source
