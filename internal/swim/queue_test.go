package swim

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/wire"
)

// refQueue is the queue as it was before its items were arena-encoded: one
// heap item per message, encoded at every send. TestQueueMatchesReference
// holds the arena queue to its selections.

// TestQueueMatchesReference drives the arena queue and refQueue with the
// same random operations (updates replacing updates, broadcasts, removals,
// fills with random budgets, limits, ages and destinations) and asserts that
// every fill selects the same bytes and that the counts agree throughout.
func TestQueueMatchesReference(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		q, ref := newGossipQueue(), newRefQueue()
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		addr := func() netip.AddrPort {
			if rng.IntN(8) == 0 {
				return netip.AddrPortFrom(netip.MustParseAddr("fd00::1").Next(), uint16(7000+rng.IntN(40)))
			}
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(rng.IntN(60))}), 7946)
		}
		for op := 0; op < 4000; op++ {
			switch r := rng.IntN(100); {
			case r < 45:
				u := wire.Message{Type: wire.TypeUpdate, Status: wire.Status(1 + rng.IntN(4)),
					Incarnation: rng.Uint32N(50), Subject: addr()}
				if rng.IntN(2) == 0 {
					u.Source = addr()
				}
				if rng.IntN(4) == 0 {
					u.HasMeta, u.Meta = true, bytes.Repeat([]byte{byte(op)}, rng.IntN(40))
				}
				q.addUpdate(u)
				ref.addUpdate(u)
			case r < 55:
				b := wire.Message{Type: wire.TypeBroadcast, Subject: addr(), Boot: rng.Uint32N(3),
					Index: uint32(op), AgeMillis: rng.Uint32N(3000), Payload: bytes.Repeat([]byte{byte(op)}, rng.IntN(300))}
				var from netip.AddrPort
				if rng.IntN(2) == 0 {
					from = addr()
				}
				ref.addBroadcast(b, now, from)
				b.Payload = bytes.Clone(b.Payload)
				q.addBroadcast(b, now, from)
			case r < 60:
				a := addr()
				q.removeSubject(a)
				if it := ref.bySubject[a]; it != nil {
					ref.remove(it)
				}
			default:
				now = now.Add(time.Duration(rng.IntN(500)) * time.Millisecond)
				budget := 20 + rng.IntN(1400)
				limit := rng.IntN(20)
				ttl := time.Duration(1+rng.IntN(20)) * time.Second
				to := addr()
				got, gotExp := q.fill(nil, budget, now, limit, ttl, to)
				want, wantExp := ref.fill(nil, budget, now, limit, ttl, to)
				require.Equal(t, want, got, "seed %d op %d", seed, op)
				require.Equal(t, wantExp, gotExp, "seed %d op %d", seed, op)
			}
			require.Equal(t, ref.len, q.len, "seed %d op %d", seed, op)
			require.Equal(t, ref.broadcasts, q.broadcasts, "seed %d op %d", seed, op)
			require.Equal(t, len(ref.bySubject), len(q.bySubject))
			require.Equal(t, len(ref.byKey), len(q.byKey))
			for a, it := range ref.bySubject {
				require.Equal(t, ref.pending(a, 17), q.pending(a, 17))
				require.Equal(t, it.sent, int(q.items[q.bySubject[a]].sent))
			}
		}
	}
}

// TestQueueFillAllocatesNothing: selecting gossip for a packet allocates
// nothing, with updates and broadcasts queued.
func TestQueueFillAllocatesNothing(t *testing.T) {
	q := newGossipQueue()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		q.addUpdate(wire.Message{Type: wire.TypeUpdate, Status: wire.StatusSuspect, Incarnation: 7,
			Subject: benchPeer(i), Source: benchPeer(1)})
	}
	for i := range 4 {
		q.addBroadcast(wire.Message{Type: wire.TypeBroadcast, Subject: benchPeer(1), Boot: 1,
			Index: uint32(i), Payload: make([]byte, 64)}, now, netip.AddrPort{})
	}
	buf := make([]byte, 0, 1400)
	allocs := testing.AllocsPerRun(100, func() {
		q.fill(buf[:0], 1400, now, 1000, time.Hour, benchPeer(2))
	})
	require.Equal(t, 0.0, allocs)
}

// TestQueueCompacts: the arena does not grow without bound as items come
// and go, and compaction keeps every item's bytes.
func TestQueueCompacts(t *testing.T) {
	q, ref := newGossipQueue(), newRefQueue()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 20000 {
		u := wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: uint32(i),
			Subject: benchPeer(i % 100)}
		q.addUpdate(u)
		ref.addUpdate(u)
	}
	require.Equal(t, 100, q.len)
	require.Less(t, len(q.arena), 2*compactMin+100*32)
	got, _ := q.fill(nil, 1<<20, now, 5, time.Hour, netip.AddrPort{})
	want, _ := ref.fill(nil, 1<<20, now, 5, time.Hour, netip.AddrPort{})
	require.Equal(t, want, got)
}

type refQueue struct {
	buckets    [][]*refItem
	minLen     []int      // a lower bound on the encoded length of each bucket's items
	free       []*refItem // removed items, for reuse
	bySubject  map[netip.AddrPort]*refItem
	byKey      map[bcastKey]*refItem // the broadcasts
	broadcasts int                   // broadcast items queued
	len        int
	fills      uint64 // counts fill calls, so an item goes once per packet
}

type refItem struct {
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

func newRefQueue() *refQueue {
	return &refQueue{bySubject: make(map[netip.AddrPort]*refItem), byKey: make(map[bcastKey]*refItem)}
}

func (q *refQueue) push(it *refItem) {
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

func (q *refQueue) unlink(it *refItem) {
	b := q.buckets[it.bucket]
	last := b[len(b)-1]
	b[it.idx] = last
	last.idx = it.idx
	b[len(b)-1] = nil
	q.buckets[it.bucket] = b[:len(b)-1]
}

func (q *refQueue) remove(it *refItem) {
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
	if len(q.free) < refMaxFreeItems {
		*it = refItem{}
		q.free = append(q.free, it)
	}
}

// refMaxFreeItems bounds the removed items kept for reuse.
const refMaxFreeItems = 256

// newItem returns a queue item for msg, reused if one is free.
func (q *refQueue) newItem(msg wire.Message) *refItem {
	var it *refItem
	if n := len(q.free); n > 0 {
		it = q.free[n-1]
		q.free[n-1] = nil
		q.free = q.free[:n-1]
	} else {
		it = new(refItem)
	}
	it.msg = msg
	it.size = it.msg.EncodedLen()
	return it
}

// addUpdate queues an update, replacing any older one about the same member.
func (q *refQueue) addUpdate(u wire.Message) {
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
func (q *refQueue) addBroadcast(b wire.Message, now time.Time, from netip.AddrPort) {
	it := q.newItem(b)
	it.born, it.age0, it.from = now, b.AgeMillis, from
	q.byKey[keyOf(&b)] = it
	q.len++
	q.broadcasts++
	q.push(it)
}

// pending reports how many more times the update about addr will be sent.
func (q *refQueue) pending(addr netip.AddrPort, limit int) int {
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
func (q *refQueue) fill(pkt []byte, budget int, now time.Time, limit int, ttl time.Duration, to netip.AddrPort) ([]byte, int) {
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
