package swim

import (
	"net/netip"
	"time"
)

// admit decides whether a member not in the table may be added at inc,
// counting the refusals.
func (e *Engine) admit(now time.Time, addr netip.AddrPort, inc uint32) bool {
	if e.tombs.stale(now, addr, inc) != nil {
		e.stats.DroppedStale++
		return false
	}
	if len(e.order) >= e.cfg.MaxMembers {
		e.stats.DroppedMemberLimit++
		return false
	}
	e.tombs.remove(addr)
	return true
}

// tombstone remembers a removed member.
type tombstone struct {
	seq        uint64 // which FIFO slot is this tombstone's
	inc        uint32
	expires    time.Time
	nextNotice time.Time
	retry      bool // removed after it was DEAD: its address is retried (partition healing)
}

// tombstones is a bounded map of removed members that expire in the order
// they were added.
type tombstones struct {
	byAddr map[netip.AddrPort]*tombstone
	fifo   []tombSlot
	head   int
	seq    uint64
}

type tombSlot struct {
	addr netip.AddrPort
	seq  uint64
}

func newTombstones() tombstones {
	return tombstones{byAddr: make(map[netip.AddrPort]*tombstone)}
}

func (ts *tombstones) add(addr netip.AddrPort, inc uint32, expires time.Time, limit int, retry bool) {
	if t := ts.byAddr[addr]; t != nil {
		t.inc, t.expires, t.retry = max(t.inc, inc), expires, retry
		return
	}
	for len(ts.byAddr) >= limit && ts.head < len(ts.fifo) { // slots of removed tombstones free nothing; keep popping
		ts.evictOldest()
	}
	ts.seq++
	ts.byAddr[addr] = &tombstone{seq: ts.seq, inc: inc, expires: expires, retry: retry}
	ts.fifo = append(ts.fifo, tombSlot{addr: addr, seq: ts.seq})
}

// evictOldest pops the oldest FIFO slot, forgetting its tombstone unless
// the address was removed and added again since.
func (ts *tombstones) evictOldest() {
	slot := ts.fifo[ts.head]
	ts.fifo[ts.head] = tombSlot{}
	ts.head++
	if t := ts.byAddr[slot.addr]; t != nil && t.seq == slot.seq {
		delete(ts.byAddr, slot.addr)
	}
	if ts.head > 1024 && ts.head*2 > len(ts.fifo) {
		n := copy(ts.fifo, ts.fifo[ts.head:])
		ts.fifo = ts.fifo[:n]
		ts.head = 0
	}
}

// stale returns the tombstone that makes a packet from addr at inc stale.
func (ts *tombstones) stale(now time.Time, addr netip.AddrPort, inc uint32) *tombstone {
	t := ts.byAddr[addr]
	if t == nil || inc > t.inc || !now.Before(t.expires) {
		return nil
	}
	return t
}

// pickRetry returns the address of a random unexpired tombstone to retry,
// trying a few random slots of the FIFO; ok is false if none was found.
func (ts *tombstones) pickRetry(now time.Time, r interface{ IntN(int) int }) (netip.AddrPort, bool) {
	n := len(ts.fifo) - ts.head
	for range min(n, 4) {
		slot := ts.fifo[ts.head+r.IntN(n)]
		if t := ts.byAddr[slot.addr]; t != nil && t.seq == slot.seq && t.retry && now.Before(t.expires) {
			return slot.addr, true
		}
	}
	return netip.AddrPort{}, false
}

// remove forgets addr's tombstone (its slot in the FIFO expires harmlessly).
func (ts *tombstones) remove(addr netip.AddrPort) { delete(ts.byAddr, addr) }

// expire drops the tombstones whose time is up.
func (ts *tombstones) expire(now time.Time) {
	for ts.head < len(ts.fifo) {
		slot := ts.fifo[ts.head]
		if t := ts.byAddr[slot.addr]; t != nil && t.seq == slot.seq && now.Before(t.expires) {
			return
		}
		ts.evictOldest()
	}
}

// originBoot is one run of one broadcasting node.
type originBoot struct {
	origin netip.AddrPort
	boot   uint32
}

// broadcastFloors remembers, per run of each origin, the highest broadcast
// index already forgotten by the dedup table: anything at or below it is a
// replay (a genuine copy would be older than BroadcastTTL by then).
type broadcastFloors struct {
	byRun map[originBoot]uint32
	fifo  []originBoot
	head  int
}

func newBroadcastFloors() broadcastFloors {
	return broadcastFloors{byRun: make(map[originBoot]uint32)}
}

func (f *broadcastFloors) raise(run originBoot, index uint32, limit int) {
	cur, ok := f.byRun[run]
	if ok {
		f.byRun[run] = max(cur, index)
		return
	}
	for len(f.byRun) >= limit && f.head < len(f.fifo) {
		delete(f.byRun, f.fifo[f.head])
		f.fifo[f.head] = originBoot{}
		f.head++
	}
	if f.head > 1024 && f.head*2 > len(f.fifo) {
		n := copy(f.fifo, f.fifo[f.head:])
		f.fifo = f.fifo[:n]
		f.head = 0
	}
	f.byRun[run] = index
	f.fifo = append(f.fifo, run)
}

func (f *broadcastFloors) covers(run originBoot, index uint32) bool {
	floor, ok := f.byRun[run]
	return ok && index <= floor
}
