package swim

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"
)

// memberTable finds members by address. It is an open-addressing hash
// table with linear probing whose slots hold positions in the engine's
// order slice (int32, -1 for empty) and 8 bits of the address's hash, so
// that a lookup rarely reads a member that is not the one it looks for:
// 5 bytes a slot and nothing for the garbage collector to scan, where a
// map[netip.AddrPort]*member costs about 90 bytes an entry. A node of a 10,000-member cluster keeps one entry per
// member, and a simulator keeps 10,000 such nodes.
//
// The hash is keyed with a random key per table (drawn by hash/maphash from
// the runtime, not from the engine's random source: it changes where
// entries sit, never what the engine does), so that addresses cannot be
// chosen to collide.
type memberTable struct {
	slots  []int32
	tags   []uint8 // the top 8 bits of the hash of each slot's address
	mask   uint64
	k0, k1 uint64
}

const emptySlot = -1

func newMemberTable() memberTable {
	var h maphash.Hash // a zero Hash picks a random seed
	h.WriteByte(0)
	k0 := h.Sum64()
	h.WriteByte(1)
	t := memberTable{k0: k0, k1: h.Sum64() | 1}
	t.alloc(8)
	return t
}

func (t *memberTable) alloc(size int) {
	t.slots = make([]int32, size)
	t.tags = make([]uint8, size)
	for i := range t.slots {
		t.slots[i] = emptySlot
	}
	t.mask = uint64(size - 1)
}

func (t *memberTable) hash(a netip.AddrPort) uint64 {
	ip := a.Addr()
	var x uint64
	if ip.Is4() {
		b := ip.As4()
		x = uint64(binary.BigEndian.Uint32(b[:]))<<16 | uint64(a.Port())
		x ^= t.k0
	} else {
		b := ip.As16()
		x = (binary.BigEndian.Uint64(b[:8]) ^ t.k1) * 0x9e3779b97f4a7c15
		x ^= binary.BigEndian.Uint64(b[8:]) ^ uint64(a.Port())<<48 ^ t.k0
	}
	// The finalizer of splitmix64: every bit of x reaches every bit.
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 31
	x *= 0x94d049bb133111eb
	x ^= x >> 29
	return x
}

// find returns the member with address a in order, or nil. Zones are part
// of an address's identity, as they are for a map key.
func (t *memberTable) find(order []*member, a netip.AddrPort) *member {
	h := t.hash(a)
	tag := uint8(h >> 56)
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == emptySlot {
			return nil
		}
		if t.tags[i] == tag {
			if m := order[s]; m.addr == a {
				return m
			}
		}
	}
}

// insert indexes order[pos], whose address is not in the table yet. order
// must already hold it (the table grows by re-reading order).
func (t *memberTable) insert(order []*member, pos int) {
	if uint64(len(order))*4 > uint64(len(t.slots))*3 { // load over 3/4
		size := len(t.slots) * 2
		for len(order)*4 > size*3 {
			size *= 2
		}
		t.rebuild(order, size)
		return
	}
	t.place(order[pos].addr, int32(pos))
}

func (t *memberTable) place(a netip.AddrPort, pos int32) {
	h := t.hash(a)
	i := h & t.mask
	for t.slots[i] != emptySlot {
		i = (i + 1) & t.mask
	}
	t.slots[i], t.tags[i] = pos, uint8(h>>56)
}

// rebuild re-indexes every member of order into a table of size slots.
func (t *memberTable) rebuild(order []*member, size int) {
	t.alloc(size)
	for i, m := range order {
		t.place(m.addr, int32(i))
	}
}

// slotOf returns the slot holding position pos, whose address is a.
func (t *memberTable) slotOf(a netip.AddrPort, pos int32) uint64 {
	for i := t.hash(a) & t.mask; ; i = (i + 1) & t.mask {
		if t.slots[i] == pos {
			return i
		}
	}
}

// remove unindexes order[pos] (still in order), by backward-shift deletion,
// which leaves no tombstones behind.
func (t *memberTable) remove(order []*member, pos int) {
	i := t.slotOf(order[pos].addr, int32(pos))
	for j := (i + 1) & t.mask; ; j = (j + 1) & t.mask {
		s := t.slots[j]
		if s == emptySlot {
			break
		}
		home := t.hash(order[s].addr) & t.mask
		// Move s back into the hole at i unless its home lies cyclically
		// in (i, j].
		if (j-home)&t.mask >= (j-i)&t.mask {
			t.slots[i], t.tags[i] = s, t.tags[j]
			i = j
		}
	}
	t.slots[i] = emptySlot
}

// moved records that the member at position from now sits at position to.
func (t *memberTable) moved(a netip.AddrPort, from, to int) {
	t.slots[t.slotOf(a, int32(from))] = int32(to)
}

// shrink halves the table while it is less than 1/8 full and above its
// minimum size, after removals.
func (t *memberTable) shrink(order []*member) {
	size := len(t.slots)
	for size > 64 && len(order)*8 < size {
		size /= 2
	}
	if size != len(t.slots) {
		t.rebuild(order, size)
	}
}
