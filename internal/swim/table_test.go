package swim

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"unsafe"
)

// TestMemberTableAgainstMap drives the member table and a map with the same
// random inserts, removals (with the engine's swap-remove of order) and
// lookups, IPv4 and IPv6, through growth and shrinking.
func TestMemberTableAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	addr := func(i int) netip.AddrPort {
		if i%3 == 0 {
			var b [16]byte
			b[0], b[1], b[14], b[15] = 0xfd, 0x01, byte(i>>8), byte(i)
			return netip.AddrPortFrom(netip.AddrFrom16(b), uint16(1000+i%7))
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), uint16(7946+i%2))
	}
	tab := newMemberTable()
	var order []*member
	ref := map[netip.AddrPort]*member{}
	check := func() {
		t.Helper()
		for a, m := range ref {
			if got := tab.find(order, a); got != m {
				t.Fatalf("find(%v) = %p, want %p", a, got, m)
			}
		}
		for i, m := range order {
			if int(m.orderIdx) != i {
				t.Fatalf("order[%d].orderIdx = %d", i, m.orderIdx)
			}
		}
	}
	for step := range 40000 {
		a := addr(rng.IntN(3000))
		// Grow for the first half, shrink for the second.
		insert := rng.IntN(100) < 70
		if step > 20000 {
			insert = rng.IntN(100) < 25
		}
		if m := ref[a]; m != nil {
			if !insert {
				tab.remove(order, int(m.orderIdx))
				last := len(order) - 1
				if order[last] != m {
					tab.moved(order[last].addr, last, int(m.orderIdx))
				}
				order[m.orderIdx] = order[last]
				order[last].orderIdx = m.orderIdx
				order = order[:last]
				tab.shrink(order)
				delete(ref, a)
			}
		} else if insert {
			if tab.find(order, a) != nil {
				t.Fatalf("find(%v) found a member never inserted", a)
			}
			m := &member{addr: a, orderIdx: int32(len(order))}
			order = append(order, m)
			tab.insert(order, len(order)-1)
			ref[a] = m
		}
		if step%997 == 0 {
			check()
		}
	}
	check()
	if len(tab.slots) > 64 && len(order)*8 < len(tab.slots) {
		t.Errorf("table of %d slots for %d members did not shrink", len(tab.slots), len(order))
	}
}

// TestMemberIs96Bytes guards the member table's memory: 10^8 members in a
// 10,000-node simulation.
func TestMemberIs96Bytes(t *testing.T) {
	if got := unsafe.Sizeof(member{}); got > 96 {
		t.Errorf("member is %d bytes, want at most 96", got)
	}
}

// BenchmarkMemberTableFind looks up members of a table of 10,000; the
// same with a map[netip.AddrPort]*member, which the table replaced, is
// BenchmarkMapFind.
func BenchmarkMemberTableFind(b *testing.B) {
	order, addrs := benchMembers()
	t := newMemberTable()
	for i := range order {
		t.insert(order[:i+1], i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if t.find(order, addrs[i&1023]) == nil {
			b.Fatal("not found")
		}
		i++
	}
}

// BenchmarkMapFind is BenchmarkMemberTableFind with a map, for comparison.
func BenchmarkMapFind(b *testing.B) {
	order, addrs := benchMembers()
	m := make(map[netip.AddrPort]*member, len(order))
	for _, x := range order {
		m[x.addr] = x
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if m[addrs[i&1023]] == nil {
			b.Fatal("not found")
		}
		i++
	}
}

func benchMembers() ([]*member, []netip.AddrPort) {
	var order []*member
	for i := range 10000 {
		a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(16 + i>>16), byte(i >> 8), byte(i)}), 7946)
		order = append(order, &member{addr: a, orderIdx: int32(i)})
	}
	addrs := make([]netip.AddrPort, 1024)
	for i := range addrs {
		addrs[i] = order[(i*7919)%len(order)].addr
	}
	return order, addrs
}
