package swim

import (
	"net/netip"
	"time"

	"github.com/seed-c7906467/smudge/internal/wire"
)

// gossipQueue holds the membership updates and broadcasts waiting to be
// piggybacked. Items are kept in buckets by how often they were sent, so the
// least-sent are found first without sorting; within a bucket the newest go
// first. An update replaces an older one about the same member.
type gossipQueue struct {
	buckets    [][]*qitem
	minLen     []int    // a lower bound on the encoded length of each bucket's items
	free       []*qitem // removed items, for reuse
	bySubject  map[netip.AddrPort]*qitem
	byKey      map[bcastKey]*qitem // the broadcasts
	broadcasts int                 // broadcast items queued
	len        int
	fills      uint64 // counts fill calls, so an item goes once per packet
}

type qitem struct {
	msg    wire.Message   // TypeUpdate or TypeBroadcast; Payload owned
	born   time.Time      // when this node queued it (broadcast age base)
	age0   uint32         // broadcast age when it was queued, in ms
	from   netip.AddrPort // broadcast: the node it came from
	sent   int
	size   int    // encoded length
	fill   uint64 // the fill call that last sent it
	bucket int
	idx    int
}

func newGossipQueue() *gossipQueue {
	return &gossipQueue{bySubject: make(map[netip.AddrPort]*qitem), byKey: make(map[bcastKey]*qitem)}
}

func (q *gossipQueue) push(it *qitem) {
	for len(q.buckets) <= it.sent {
		q.buckets = append(q.buckets, nil)
		q.minLen = append(q.minLen, 0)
	}
	if len(q.buckets[it.sent]) == 0 || it.size < q.minLen[it.sent] {
		q.minLen[it.sent] = it.size
	}
	it.bucket = it.sent
	it.idx = len(q.buckets[it.bucket])
	q.buckets[it.bucket] = append(q.buckets[it.bucket], it)
}

func (q *gossipQueue) unlink(it *qitem) {
	b := q.buckets[it.bucket]
	last := b[len(b)-1]
	b[it.idx] = last
	last.idx = it.idx
	b[len(b)-1] = nil
	q.buckets[it.bucket] = b[:len(b)-1]
}

func (q *gossipQueue) remove(it *qitem) {
	q.unlink(it)
	q.len--
	if it.msg.Type == wire.TypeBroadcast {
		q.broadcasts--
		if k := keyOf(&it.msg); q.byKey[k] == it {
			delete(q.byKey, k)
		}
	} else if q.bySubject[it.msg.Subject] == it {
		delete(q.bySubject, it.msg.Subject)
	}
	if len(q.free) < maxFreeItems {
		*it = qitem{}
		q.free = append(q.free, it)
	}
}

// maxFreeItems bounds the removed items kept for reuse.
const maxFreeItems = 256

// newItem returns a queue item for msg, reused if one is free.
func (q *gossipQueue) newItem(msg wire.Message) *qitem {
	var it *qitem
	if n := len(q.free); n > 0 {
		it = q.free[n-1]
		q.free[n-1] = nil
		q.free = q.free[:n-1]
	} else {
		it = new(qitem)
	}
	it.msg = msg
	it.size = it.msg.EncodedLen()
	return it
}

// addUpdate queues an update, replacing any older one about the same member.
func (q *gossipQueue) addUpdate(u wire.Message) {
	if old := q.bySubject[u.Subject]; old != nil {
		q.remove(old)
	}
	it := q.newItem(u)
	q.bySubject[u.Subject] = it
	q.len++
	q.push(it)
}

// addBroadcast queues a broadcast whose payload the queue now owns. from is
// the node it came from (invalid for this node's own): it is never sent back
// there, where it would be a wasted send.
func (q *gossipQueue) addBroadcast(b wire.Message, now time.Time, from netip.AddrPort) {
	it := q.newItem(b)
	it.born, it.age0, it.from = now, b.AgeMillis, from
	q.byKey[keyOf(&b)] = it
	q.len++
	q.broadcasts++
	q.push(it)
}

// pending reports how many more times the update about addr will be sent.
func (q *gossipQueue) pending(addr netip.AddrPort, limit int) int {
	if it := q.bySubject[addr]; it != nil {
		return max(limit-it.sent, 0)
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
			it := q.buckets[b][i]
			if it.fill == q.fills {
				continue
			}
			if it.msg.Type == wire.TypeBroadcast && it.from == to && to.IsValid() {
				continue // it knows: not a send
			}
			if it.msg.Type == wire.TypeBroadcast {
				age := now.Sub(it.born).Milliseconds() + int64(it.age0)
				if age > ttl.Milliseconds() {
					q.remove(it)
					expired++
					continue
				}
				it.msg.AgeMillis = uint32(age)
			}
			n := it.size
			if n > budget {
				continue
			}
			pkt = it.msg.AppendTo(pkt)
			budget -= n
			it.sent++
			it.fill = q.fills
			if it.sent >= limit {
				q.remove(it)
				continue
			}
			q.unlink(it)
			q.push(it)
		}
	}
	return pkt, expired
}

// minItemLen is the smallest message the queue can hold (an IPv4 update
// with no source): anything less in the budget cannot take another item.
const minItemLen = 3 + 1 + 4 + 7 + 1
