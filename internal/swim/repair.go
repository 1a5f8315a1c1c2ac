package swim

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/seed-c7906467/smudge/internal/wire"
)

// The repair round closes the gaps that piggybacking leaves under loss.
//
// Every broadcast a node delivers (or sends) is retained for a while. Each
// probe ping carries a digest of the retained broadcasts (PingFlagDigest;
// no digest means none), and the member probed puts in its ack the
// broadcasts it retains that the digest lacks. A node that missed a
// broadcast thus gets it from the first member it probes that has it,
// usually within a protocol period of the broadcast leaving the gossip
// queues; deduplication keeps delivery to once per node.
//
// A broadcast is offered for repairWindow after its origin sent it (as
// estimated from its age) and is listed in digests for a quarter longer, so
// that a node that has it is not offered it again when the two estimates
// differ a little. Both are well inside BroadcastTTL, so repaired copies are
// never refused as expired.

// retainedBcast is a broadcast kept for the repair round.
type retainedBcast struct {
	key  bcastKey
	msg  wire.Message // Payload shared with the queue; never modified
	sent int64        // when its origin sent it, estimated (see Engine.ns)
}

// repairWindow is how long after it was sent a broadcast is offered to
// members that lack it.
func (e *Engine) repairWindow() time.Duration { return e.cfg.BroadcastTTL / 2 }

// retainWindow is how long a broadcast is retained and listed in digests.
func (e *Engine) retainWindow() time.Duration { return e.repairWindow() * 5 / 4 }

// digestBudget bounds a digest's encoded length; a digest that would be
// longer lists only the newest broadcasts (DigestFlagPartial).
func (e *Engine) digestBudget() int { return e.cfg.MaxPacketBytes / 4 }

func keyOf(m *wire.Message) bcastKey {
	return bcastKey{origin: m.Subject, boot: m.Boot, index: m.Index}
}

// retain keeps msg, delivered or sent at now with age ageMillis, for the
// repair round. Past MaxRetainedBroadcasts the oldest is forgotten.
func (e *Engine) retain(now time.Time, msg wire.Message, ageMillis uint32) {
	if e.cfg.MaxRetainedBroadcasts < 0 {
		return
	}
	if len(e.retained)-e.retainHead >= e.cfg.MaxRetainedBroadcasts {
		e.retained[e.retainHead] = retainedBcast{}
		e.retainHead++
		e.stats.RetainedEvicted++
	}
	msg.AgeMillis = 0
	e.retained = append(e.retained, retainedBcast{
		key: keyOf(&msg), msg: msg, sent: e.ns(now) - int64(ageMillis)*int64(time.Millisecond),
	})
	e.digestDirty = true
}

// expireRetained forgets broadcasts past the retain window. Entries are in
// the order they were delivered, close to the order they were sent.
func (e *Engine) expireRetained(now time.Time) {
	limit := e.ns(now) - int64(e.retainWindow())
	for e.retainHead < len(e.retained) && e.retained[e.retainHead].sent <= limit {
		e.retained[e.retainHead] = retainedBcast{}
		e.retainHead++
		e.digestDirty = true
	}
	if e.retainHead == len(e.retained) {
		e.retained, e.retainHead = e.retained[:0], 0
	} else if e.retainHead > 64 && e.retainHead*2 > len(e.retained) {
		n := copy(e.retained, e.retained[e.retainHead:])
		clear(e.retained[n:])
		e.retained, e.retainHead = e.retained[:n], 0
	}
}

// digestGroup is a run of one origin's indexes in a digest being built.
type digestGroup struct {
	run   originBoot
	first uint32
	last  uint32
}

// count is how many indexes the run covers.
func (g *digestGroup) count() int { return int(g.last-g.first) + 1 }

// entryLen is the run's encoded length in a digest.
func (g *digestGroup) entryLen() int { return wire.DigestEntryLen(g.run.origin, g.count()) }

// holds reports whether k belongs to the run's origin and boot.
func (g *digestGroup) holds(k bcastKey) bool { return g.run == originBoot{k.origin, k.boot} }

// digest returns this node's digest message: nil when it retains nothing
// (a ping's PingFlagDigest alone then says so). The digest is rebuilt only
// when the retained set changed, except for a partial digest's cutoff age.
func (e *Engine) digest(now time.Time) *wire.Message {
	if e.retainHead == len(e.retained) {
		return nil
	}
	if e.digestDirty {
		e.buildDigest()
		e.digestDirty = false
	}
	m := &e.digestMsg
	if m.Flags&wire.DigestFlagPartial != 0 {
		m.AgeMillis = uint32(max(0, (e.ns(now)-e.digestCutoff)/int64(time.Millisecond)))
	}
	return m
}

// buildDigest encodes the retained broadcasts as digest entries: one per
// run of an origin's indexes no longer than MaxDigestSpan. When they do
// not all fit in digestBudget, only the newest are listed, with the cutoff
// (the sending time of the oldest listed) in the message.
func (e *Engine) buildDigest() {
	live := e.retained[e.retainHead:]
	// Newest first: the runs to list are chosen in that order.
	order := e.digestOrder[:0]
	for i := range live {
		order = append(order, int32(i))
	}
	slices.SortFunc(order, func(a, b int32) int { return cmp.Compare(live[b].sent, live[a].sent) })
	e.digestOrder = order

	// Runs by origin and index: sort a copy of the keys.
	keys := e.digestKeys[:0]
	for i := range live {
		keys = append(keys, live[i].key)
	}
	slices.SortFunc(keys, compareKeys)
	keys = slices.Compact(keys)
	e.digestKeys = keys
	groups := e.digestGroups[:0]
	for _, k := range keys {
		if n := len(groups); n > 0 {
			g := &groups[n-1]
			if g.holds(k) && k.index-g.first < wire.MaxDigestSpan {
				g.last = k.index
				continue
			}
		}
		groups = append(groups, digestGroup{run: originBoot{k.origin, k.boot}, first: k.index, last: k.index})
	}
	e.digestGroups = groups

	total := 0
	for i := range groups {
		total += groups[i].entryLen()
	}
	include := e.digestInclude[:0]
	for range groups {
		include = append(include, total <= e.digestBudget())
	}
	e.digestInclude = include
	e.digestMsg = wire.Message{Type: wire.TypeDigest}
	if total > e.digestBudget() {
		// Take the runs of the newest broadcasts until the budget is spent.
		used := 0
		e.digestCutoff = live[order[0]].sent
		for _, i := range order {
			g := findGroup(groups, live[i].key)
			if include[g] {
				e.digestCutoff = live[i].sent
				continue
			}
			n := groups[g].entryLen()
			if used+n > e.digestBudget() {
				break
			}
			used += n
			include[g] = true
			e.digestCutoff = live[i].sent
		}
		e.digestMsg.Flags = wire.DigestFlagPartial
	}
	buf := e.digestBuf[:0]
	ki := 0
	for gi := range groups {
		g := &groups[gi]
		count := g.count()
		start := ki
		for ki < len(keys) && g.holds(keys[ki]) && keys[ki].index <= g.last {
			ki++
		}
		if !include[gi] {
			continue
		}
		bitmap := e.digestBitmap[:0]
		for range (count + 7) / 8 {
			bitmap = append(bitmap, 0)
		}
		for _, k := range keys[start:ki] {
			off := k.index - g.first
			bitmap[off/8] |= 0x80 >> (off % 8)
		}
		e.digestBitmap = bitmap
		buf = wire.AppendDigestEntry(buf, wire.DigestEntry{Origin: g.run.origin, Boot: g.run.boot, First: g.first, Count: count, Bitmap: bitmap})
	}
	e.digestBuf = buf
	e.digestMsg.Entries = buf
}

func compareKeys(a, b bcastKey) int {
	if c := a.origin.Compare(b.origin); c != 0 {
		return c
	}
	if c := cmp.Compare(a.boot, b.boot); c != 0 {
		return c
	}
	return cmp.Compare(a.index, b.index)
}

// findGroup returns the index of the run holding k (groups are sorted).
func findGroup(groups []digestGroup, k bcastKey) int {
	i, _ := slices.BinarySearchFunc(groups, k, func(g digestGroup, k bcastKey) int {
		if c := g.run.origin.Compare(k.origin); c != 0 {
			return c
		}
		if c := cmp.Compare(g.run.boot, k.boot); c != 0 {
			return c
		}
		if k.index > g.last {
			return -1
		}
		if k.index < g.first {
			return 1
		}
		return 0
	})
	return i
}

// appendRepairs appends to an ack for the member at addr the retained
// broadcasts that its digest d (nil: it has none) lacks, within budget
// bytes, and returns the grown packet. Broadcasts still being piggybacked
// here are left to the queue; those from addr itself are never sent back.
func (e *Engine) appendRepairs(b []byte, now time.Time, d *wire.Message, addr netip.AddrPort, budget int) []byte {
	nowNS := e.ns(now)
	offerAfter := nowNS - int64(e.repairWindow())
	partial := d != nil && d.Flags&wire.DigestFlagPartial != 0
	var cutoff int64 // a partial digest lists what is younger than this
	if partial {
		// One period of slack: the two nodes' age estimates differ.
		cutoff = nowNS - int64(d.AgeMillis)*int64(time.Millisecond) + int64(e.cfg.ProbeInterval)
	}
	has := e.peerDigest[:0] // its entries, decoded once
	if d != nil {
		for rest := d.Entries; len(rest) > 0; {
			entry, next, err := wire.NextDigestEntry(rest)
			if err != nil {
				break // Decode checked every entry
			}
			has, rest = append(has, entry), next
		}
	}
	defer func() { clear(has); e.peerDigest = has[:0] }() // drop references to the packet
	for i := len(e.retained) - 1; i >= e.retainHead && budget > 0; i-- {
		r := &e.retained[i]
		if r.sent <= offerAfter || r.key.origin == addr || (partial && r.sent < cutoff) {
			continue
		}
		if e.queue.hasBroadcast(r.key) || digestHas(has, r.key) {
			continue
		}
		age := (nowNS - r.sent) / int64(time.Millisecond)
		if age > e.cfg.BroadcastTTL.Milliseconds() {
			continue
		}
		msg := r.msg
		msg.AgeMillis = uint32(max(age, 0))
		n := msg.EncodedLen()
		if n > budget {
			continue
		}
		b = msg.AppendTo(b)
		budget -= n
		e.stats.BroadcastsRepaired++
	}
	return b
}

// digestHas reports whether a digest's entries list k as present.
func digestHas(entries []wire.DigestEntry, k bcastKey) bool {
	for i := range entries {
		if e := &entries[i]; e.Origin == k.origin && e.Boot == k.boot && e.Covers(k.index) {
			return e.Has(k.index)
		}
	}
	return false
}
