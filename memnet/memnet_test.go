package memnet

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitLimit bounds every wait in these tests.
const waitLimit = 5 * time.Second

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func listen(t *testing.T, n *Network, addr string) *Endpoint {
	t.Helper()
	e, err := n.Listen(ap(addr))
	if err != nil {
		t.Fatalf("Listen(%s): %v", addr, err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func send(t *testing.T, from *Endpoint, to *Endpoint, payload string) {
	t.Helper()
	if err := from.WriteTo([]byte(payload), to.LocalAddr()); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
}

type readResult struct {
	data []byte
	from netip.AddrPort
	err  error
	at   time.Time
}

// readAsync starts one ReadFrom with a buffer of size bytes.
func readAsync(e *Endpoint, size int) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		buf := make([]byte, size)
		n, from, err := e.ReadFrom(buf)
		ch <- readResult{data: buf[:n], from: from, err: err, at: time.Now()}
	}()
	return ch
}

// recv reads one datagram or fails the test after waitLimit.
func recv(t *testing.T, e *Endpoint) readResult {
	t.Helper()
	select {
	case r := <-readAsync(e, 65536):
		if r.err != nil {
			t.Fatalf("ReadFrom on %s: %v", e.LocalAddr(), r.err)
		}
		return r
	case <-time.After(waitLimit):
		t.Fatalf("no datagram on %s within %v", e.LocalAddr(), waitLimit)
		return readResult{}
	}
}

// recvQueued reads a datagram that must already be queued (zero latency
// delivers synchronously), without blocking.
func recvQueued(t *testing.T, e *Endpoint) readResult {
	t.Helper()
	if queued(e) == 0 {
		t.Fatalf("nothing queued on %s", e.LocalAddr())
	}
	buf := make([]byte, 65536)
	n, from, err := e.ReadFrom(buf)
	if err != nil {
		t.Fatalf("ReadFrom on %s: %v", e.LocalAddr(), err)
	}
	return readResult{data: buf[:n], from: from, at: time.Now()}
}

// queued reports how many datagrams wait in e's queue.
func queued(e *Endpoint) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.queue) - e.head
}

func wantStats(t *testing.T, n *Network, want Stats) {
	t.Helper()
	if got := n.Stats(); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}

func TestDelivery(t *testing.T) {
	n := New()
	a := listen(t, n, "127.0.0.1:1001")
	b := listen(t, n, "127.0.0.1:1002")

	buf := []byte("hello")
	if err := a.WriteTo(buf, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXX") // WriteTo must have copied
	r := recv(t, b)
	if string(r.data) != "hello" || r.from != a.LocalAddr() {
		t.Fatalf("got %q from %s, want %q from %s", r.data, r.from, "hello", a.LocalAddr())
	}

	send(t, b, a, "reply")
	if r := recv(t, a); string(r.data) != "reply" || r.from != b.LocalAddr() {
		t.Fatalf("got %q from %s", r.data, r.from)
	}
	wantStats(t, n, Stats{Sent: 2, Delivered: 2})
}

func TestDeliveryInOrderWithoutLatency(t *testing.T) {
	n := New()
	a := listen(t, n, "10.0.0.1:7946")
	b := listen(t, n, "10.0.0.2:7946")
	for i := range 100 {
		send(t, a, b, fmt.Sprint(i))
	}
	for i := range 100 {
		if r := recvQueued(t, b); string(r.data) != fmt.Sprint(i) {
			t.Fatalf("datagram %d: got %q", i, r.data)
		}
	}
}

func TestIPv6AndMappedAddresses(t *testing.T) {
	n := New()
	a := listen(t, n, "[::1]:1001")
	b := listen(t, n, "[::ffff:127.0.0.1]:1002")
	if got := b.LocalAddr(); got != ap("127.0.0.1:1002") {
		t.Fatalf("mapped listen address not unmapped: %s", got)
	}
	c := listen(t, n, "127.0.0.1:1003")
	// A mapped destination reaches the IPv4 endpoint.
	if err := c.WriteTo([]byte("v4"), ap("[::ffff:127.0.0.1]:1002")); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, b); string(r.data) != "v4" || r.from != c.LocalAddr() {
		t.Fatalf("got %q from %s", r.data, r.from)
	}
	send(t, a, b, "from v6")
	if r := recv(t, b); r.from != ap("[::1]:1001") {
		t.Fatalf("sender %s, want [::1]:1001", r.from)
	}
}

func TestLossOneDropsAll(t *testing.T) {
	n := New(WithLoss(1))
	a := listen(t, n, "127.0.0.1:1")
	b := listen(t, n, "127.0.0.1:2")
	for range 100 {
		send(t, a, b, "x")
	}
	wantStats(t, n, Stats{Sent: 100, Dropped: 100})
	if q := queued(b); q != 0 {
		t.Fatalf("%d datagrams queued, want 0", q)
	}

	// Runtime change: no loss any more.
	n.SetLoss(0)
	send(t, a, b, "through")
	if r := recv(t, b); string(r.data) != "through" {
		t.Fatalf("got %q", r.data)
	}
}

func TestLossZeroDropsNone(t *testing.T) {
	n := New(WithLoss(0))
	a := listen(t, n, "127.0.0.1:1")
	b := listen(t, n, "127.0.0.1:2")
	for range 1000 {
		send(t, a, b, "x")
	}
	wantStats(t, n, Stats{Sent: 1000, Delivered: 1000})
	if q := queued(b); q != 1000 {
		t.Fatalf("%d datagrams queued, want 1000", q)
	}
}

func TestPartialLossIsRoughlyRight(t *testing.T) {
	n := New(WithLoss(0.3), WithSeed(42), WithMaxQueue(10000))
	a := listen(t, n, "127.0.0.1:1")
	b := listen(t, n, "127.0.0.1:2")
	const total = 5000
	for range total {
		send(t, a, b, "x")
	}
	s := n.Stats()
	if s.Sent != total || s.Dropped+s.Delivered != total {
		t.Fatalf("counters do not add up: %+v", s)
	}
	if s.Dropped < total*25/100 || s.Dropped > total*35/100 {
		t.Fatalf("dropped %d of %d with loss 0.3", s.Dropped, total)
	}
}

func TestLinkLoss(t *testing.T) {
	n := New()
	a := listen(t, n, "127.0.0.1:1")
	b := listen(t, n, "127.0.0.1:2")
	c := listen(t, n, "127.0.0.1:3")

	n.SetLinkLoss(a.LocalAddr(), b.LocalAddr(), 1)
	send(t, a, b, "lost")
	wantStats(t, n, Stats{Sent: 1, Dropped: 1})
	send(t, b, a, "back") // the other direction is not affected
	send(t, c, b, "other")
	send(t, a, c, "other")
	wantStats(t, n, Stats{Sent: 4, Dropped: 1, Delivered: 3})

	// An override of 0 beats network-wide loss of 1.
	n.SetLoss(1)
	n.SetLinkLoss(c.LocalAddr(), a.LocalAddr(), 0)
	send(t, c, a, "kept")
	send(t, b, a, "lost")
	wantStats(t, n, Stats{Sent: 6, Dropped: 2, Delivered: 4})

	n.SetLoss(0)
	n.ClearLinkLoss(a.LocalAddr(), b.LocalAddr())
	send(t, a, b, "healed")
	wantStats(t, n, Stats{Sent: 7, Dropped: 2, Delivered: 5})
	if q := queued(b); q != 2 { // "other" and "healed"
		t.Fatalf("b has %d queued, want 2", q)
	}
}

func TestPartitionBothDirectionsAndHeal(t *testing.T) {
	n := New()
	a1 := listen(t, n, "127.0.0.1:1")
	a2 := listen(t, n, "127.0.0.1:2")
	b1 := listen(t, n, "127.0.0.1:3")
	c := listen(t, n, "127.0.0.1:4")

	n.Partition([]netip.AddrPort{a1.LocalAddr(), a2.LocalAddr()}, []netip.AddrPort{b1.LocalAddr()})
	send(t, a1, b1, "x")
	send(t, a2, b1, "x")
	send(t, b1, a1, "x")
	send(t, b1, a2, "x")
	wantStats(t, n, Stats{Sent: 4, Partitioned: 4})

	// Inside a side and to outsiders, traffic flows.
	send(t, a1, a2, "same side")
	send(t, a1, c, "outsider")
	send(t, c, b1, "outsider")
	wantStats(t, n, Stats{Sent: 7, Partitioned: 4, Delivered: 3})

	n.Heal()
	send(t, a1, b1, "healed")
	send(t, b1, a2, "healed")
	wantStats(t, n, Stats{Sent: 9, Partitioned: 4, Delivered: 5})
	if r := recv(t, b1); string(r.data) != "outsider" {
		t.Fatalf("got %q", r.data)
	}
	if r := recv(t, b1); string(r.data) != "healed" || r.from != a1.LocalAddr() {
		t.Fatalf("got %q from %s", r.data, r.from)
	}
}

func TestLatency(t *testing.T) {
	const latency, jitter = 30 * time.Millisecond, 20 * time.Millisecond
	n := New(WithLatency(latency, jitter))
	a := listen(t, n, "127.0.0.1:1")
	b := listen(t, n, "127.0.0.1:2")

	for i := range 5 {
		start := time.Now()
		send(t, a, b, fmt.Sprint(i))
		if s := n.Stats(); s.InFlight == 0 && s.Delivered == uint64(i) {
			t.Fatalf("datagram neither in flight nor delivered: %+v", s)
		}
		r := recv(t, b)
		if got := r.at.Sub(start); got < latency {
			t.Fatalf("datagram %d delivered after %v, before the latency %v", i, got, latency)
		}
	}
	wantStats(t, n, Stats{Sent: 5, Delivered: 5})

	// Runtime change to zero latency: synchronous again.
	n.SetLatency(0, 0)
	send(t, a, b, "now")
	if q := queued(b); q != 1 {
		t.Fatalf("zero latency: %d queued right after WriteTo, want 1", q)
	}
}

func TestLatencyWithoutJitterKeepsOrder(t *testing.T) {
	n := New(WithLatency(2*time.Millisecond, 0))
	a := listen(t, n, "127.0.0.1:1")
	b := listen(t, n, "127.0.0.1:2")
	for i := range 200 {
		send(t, a, b, fmt.Sprint(i))
	}
	for i := range 200 {
		if r := recv(t, b); string(r.data) != fmt.Sprint(i) {
			t.Fatalf("datagram %d: got %q", i, r.data)
		}
	}
}

func TestQueueOverflowCounted(t *testing.T) {
	n := New(WithMaxQueue(10))
	a := listen(t, n, "127.0.0.1:1")
	b := listen(t, n, "127.0.0.1:2")
	for i := range 15 {
		send(t, a, b, fmt.Sprint(i))
	}
	wantStats(t, n, Stats{Sent: 15, Delivered: 10, QueueFull: 5})
	for i := range 10 {
		if r := recvQueued(t, b); string(r.data) != fmt.Sprint(i) {
			t.Fatalf("datagram %d: got %q", i, r.data)
		}
	}
	send(t, a, b, "room again")
	if r := recvQueued(t, b); string(r.data) != "room again" {
		t.Fatalf("got %q", r.data)
	}

	n.SetMaxQueue(1)
	send(t, a, b, "1")
	send(t, a, b, "2")
	wantStats(t, n, Stats{Sent: 18, Delivered: 12, QueueFull: 6})
}

func TestQueueCompactsWhileReading(t *testing.T) {
	// Interleave reads and writes so the queue's consumed front is reused.
	n := New()
	a := listen(t, n, "127.0.0.1:1")
	b := listen(t, n, "127.0.0.1:2")
	next := 0
	for i := range 1000 {
		send(t, a, b, fmt.Sprint(i))
		if i%3 != 0 {
			if r := recvQueued(t, b); string(r.data) != fmt.Sprint(next) {
				t.Fatalf("got %q, want %d", r.data, next)
			}
			next++
		}
	}
	for ; next < 1000; next++ {
		if r := recvQueued(t, b); string(r.data) != fmt.Sprint(next) {
			t.Fatalf("got %q, want %d", r.data, next)
		}
	}
}

func TestNoListenerCounted(t *testing.T) {
	n := New()
	a := listen(t, n, "127.0.0.1:1")
	if err := a.WriteTo([]byte("x"), ap("127.0.0.1:9")); err != nil {
		t.Fatalf("WriteTo to nobody must succeed like UDP: %v", err)
	}
	wantStats(t, n, Stats{Sent: 1, NoListener: 1})
}

func TestCloseUnblocksRead(t *testing.T) {
	n := New()
	a := listen(t, n, "127.0.0.1:1")
	b := listen(t, n, "127.0.0.1:2")
	ch := readAsync(a, 100)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		if !errors.Is(r.err, net.ErrClosed) {
			t.Fatalf("ReadFrom after Close: %v, want net.ErrClosed", r.err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Close did not unblock ReadFrom")
	}
	if _, _, err := a.ReadFrom(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom on closed endpoint: %v", err)
	}
	if err := a.WriteTo([]byte("x"), b.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteTo on closed endpoint: %v", err)
	}
	if err := a.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	// Datagrams to the closed address go nowhere.
	send(t, b, a, "x")
	if s := n.Stats(); s.NoListener != 1 {
		t.Fatalf("Stats = %+v, want NoListener 1", s)
	}
}

func TestCloseDiscardsQueued(t *testing.T) {
	n := New()
	a := listen(t, n, "127.0.0.1:1")
	b := listen(t, n, "127.0.0.1:2")
	send(t, a, b, "queued")
	_ = b.Close()
	if _, _, err := b.ReadFrom(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom on closed endpoint with queued data: %v", err)
	}
}

func TestRebindAfterClose(t *testing.T) {
	n := New()
	a, err := n.Listen(ap("127.0.0.1:7946"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Listen(ap("127.0.0.1:7946")); err == nil || !strings.Contains(err.Error(), "127.0.0.1:7946") {
		t.Fatalf("second Listen on a bound address: %v, want an error naming it", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a2 := listen(t, n, "127.0.0.1:7946")
	b := listen(t, n, "127.0.0.1:1")
	send(t, b, a2, "to the new one")
	if r := recv(t, a2); string(r.data) != "to the new one" {
		t.Fatalf("got %q", r.data)
	}
	// Closing the old endpoint again must not unbind the new one.
	_ = a.Close()
	send(t, b, a2, "still bound")
	if r := recv(t, a2); string(r.data) != "still bound" {
		t.Fatalf("got %q", r.data)
	}
}

func TestPortZero(t *testing.T) {
	n := New()
	seen := map[netip.AddrPort]bool{}
	for _, addr := range []string{"127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "[::1]:0"} {
		e := listen(t, n, addr)
		got := e.LocalAddr()
		if got.Port() == 0 || got.Addr() != ap(addr).Addr() {
			t.Fatalf("Listen(%s) bound %s", addr, got)
		}
		if seen[got] {
			t.Fatalf("port 0 handed out %s twice", got)
		}
		seen[got] = true
	}
	// A port that is taken explicitly is skipped.
	n2 := New()
	listen(t, n2, fmt.Sprintf("127.0.0.1:%d", firstEphemeralPort))
	if e := listen(t, n2, "127.0.0.1:0"); e.LocalAddr().Port() == firstEphemeralPort {
		t.Fatalf("port 0 handed out a bound port: %s", e.LocalAddr())
	}
}

func TestPortZeroExhaustion(t *testing.T) {
	n := New()
	ip := netip.MustParseAddr("10.1.1.1")
	for p := firstEphemeralPort; p <= lastEphemeralPort; p++ {
		if _, err := n.Listen(netip.AddrPortFrom(ip, uint16(p))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.Listen(netip.AddrPortFrom(ip, 0)); err == nil {
		t.Fatal("Listen with port 0 and no free port succeeded")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestListenAndWriteErrors(t *testing.T) {
	n := New()
	for _, bad := range []netip.AddrPort{{}, ap("0.0.0.0:1"), ap("[::]:1")} {
		if _, err := n.Listen(bad); err == nil {
			t.Errorf("Listen(%s) succeeded", bad)
		}
	}
	a := listen(t, n, "127.0.0.1:1")
	for _, bad := range []netip.AddrPort{{}, ap("127.0.0.1:0"), ap("0.0.0.0:5")} {
		if err := a.WriteTo([]byte("x"), bad); err == nil {
			t.Errorf("WriteTo(%s) succeeded", bad)
		}
	}
	if err := a.WriteTo(make([]byte, MaxDatagramIPv4+1), ap("127.0.0.1:2")); err == nil {
		t.Error("oversized IPv4 datagram accepted")
	}
	if err := a.WriteTo(make([]byte, MaxDatagramIPv4), ap("127.0.0.1:2")); err != nil {
		t.Errorf("largest IPv4 datagram rejected: %v", err)
	}
	if err := a.WriteTo(make([]byte, MaxDatagramIPv6+1), ap("[::1]:2")); err == nil {
		t.Error("oversized IPv6 datagram accepted")
	}
	if s := n.Stats(); s.Sent != 1 {
		t.Errorf("rejected writes were counted: %+v", s)
	}
}

func TestInvalidKnobsPanic(t *testing.T) {
	n := New()
	for name, f := range map[string]func(){
		"SetLoss(-0.1)":      func() { n.SetLoss(-0.1) },
		"SetLoss(1.5)":       func() { n.SetLoss(1.5) },
		"SetLinkLoss(2)":     func() { n.SetLinkLoss(ap("127.0.0.1:1"), ap("127.0.0.1:2"), 2) },
		"SetLatency(-1, 0)":  func() { n.SetLatency(-1, 0) },
		"SetMaxQueue(0)":     func() { n.SetMaxQueue(0) },
		"WithLoss(NaN)":      func() { New(WithLoss(nanValue())) },
		"WithLatency(0, -1)": func() { WithLatency(0, -1) },
		"WithMaxQueue(-1)":   func() { WithMaxQueue(-1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

func TestTruncatedDatagram(t *testing.T) {
	n := New()
	a := listen(t, n, "127.0.0.1:1")
	b := listen(t, n, "127.0.0.1:2")
	send(t, a, b, "0123456789")
	send(t, a, b, "next")

	buf := make([]byte, 4)
	got, from, err := b.ReadFrom(buf)
	if got != 4 || string(buf) != "0123" || from != a.LocalAddr() {
		t.Fatalf("truncated read: n=%d %q from %s", got, buf, from)
	}
	if !errors.Is(err, ErrTruncatedDatagram) {
		t.Fatalf("truncated read error %v, want ErrTruncatedDatagram", err)
	}
	// smudge.ErrTruncatedDatagram, which memnet cannot import, has this text.
	if !errors.Is(err, errors.New("smudge: truncated datagram")) {
		t.Fatal("ErrTruncatedDatagram does not match smudge's error")
	}
	if errors.Is(err, net.ErrClosed) || errors.Is(err, errors.New("other")) {
		t.Fatal("ErrTruncatedDatagram matches unrelated errors")
	}
	// The endpoint stays usable and the rest of the datagram is gone.
	buf = make([]byte, 100)
	got, _, err = b.ReadFrom(buf)
	if err != nil || string(buf[:got]) != "next" {
		t.Fatalf("read after truncation: %q, %v", buf[:got], err)
	}
}

func TestConcurrentSendersAndKnobs(t *testing.T) {
	const senders, each = 8, 500
	n := New(WithMaxQueue(senders * each))
	dst := listen(t, n, "127.0.0.1:9000")
	srcs := make([]*Endpoint, senders)
	for i := range srcs {
		srcs[i] = listen(t, n, fmt.Sprintf("127.0.0.1:%d", 9001+i))
	}

	// The reader stops after the expected number, or at Close.
	received := make(chan int, 1)
	go func() {
		count := 0
		buf := make([]byte, 64)
		for count < senders*each {
			if _, _, err := dst.ReadFrom(buf); err != nil {
				break
			}
			count++
		}
		received <- count
	}()

	var wg sync.WaitGroup
	for _, src := range srcs {
		wg.Go(func() {
			for j := range each {
				if err := src.WriteTo([]byte(fmt.Sprint(j)), dst.LocalAddr()); err != nil {
					t.Errorf("WriteTo: %v", err)
					return
				}
			}
		})
	}
	// Knobs change while traffic flows; none of them drops anything.
	wg.Go(func() {
		for range 200 {
			n.SetLoss(0)
			n.SetLatency(0, 0)
			n.SetLinkLoss(srcs[0].LocalAddr(), srcs[1].LocalAddr(), 1)
			n.Partition([]netip.AddrPort{srcs[2].LocalAddr()}, []netip.AddrPort{srcs[3].LocalAddr()})
			n.Heal()
			_ = n.Stats()
		}
	})
	wg.Wait()

	select {
	case count := <-received:
		if count != senders*each {
			t.Fatalf("received %d, want %d", count, senders*each)
		}
	case <-time.After(waitLimit):
		_ = dst.Close()
		t.Fatalf("reader did not get all %d datagrams within %v", senders*each, waitLimit)
	}
	wantStats(t, n, Stats{Sent: senders * each, Delivered: senders * each})
}

func TestConcurrentReadersGetEverything(t *testing.T) {
	n := New()
	a := listen(t, n, "127.0.0.1:1")
	b := listen(t, n, "127.0.0.1:2")
	const readers, total = 4, 400
	got := make(chan string, total)
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			buf := make([]byte, 16)
			for {
				k, _, err := b.ReadFrom(buf)
				if err != nil {
					return
				}
				got <- string(buf[:k])
			}
		})
	}
	for i := range total {
		send(t, a, b, fmt.Sprint(i))
	}
	seen := map[string]bool{}
	deadline := time.After(waitLimit)
	for len(seen) < total {
		select {
		case s := <-got:
			seen[s] = true
		case <-deadline:
			t.Fatalf("readers got %d of %d", len(seen), total)
		}
	}
	_ = b.Close()
	wg.Wait()
}

// deliveredSet sends 300 numbered datagrams through a lossy, jittery network
// and returns the numbers that arrived, sorted.
func deliveredSet(t *testing.T, seed int64) []int {
	t.Helper()
	n := New(WithSeed(seed), WithLoss(0.5), WithLatency(0, time.Millisecond))
	a := listen(t, n, "127.0.0.1:1")
	b := listen(t, n, "127.0.0.1:2")
	const total = 300
	for i := range total {
		send(t, a, b, fmt.Sprint(i))
	}
	s := n.Stats()
	want := int(s.Sent - s.Dropped)
	var got []int
	for range want {
		r := recv(t, b)
		var v int
		if _, err := fmt.Sscan(string(r.data), &v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	slices.Sort(got)
	return got
}

func TestDeterministicDropsWithSameSeed(t *testing.T) {
	first := deliveredSet(t, 7)
	second := deliveredSet(t, 7)
	if !slices.Equal(first, second) {
		t.Fatalf("same seed, different deliveries:\n%v\n%v", first, second)
	}
	if len(first) == 0 || len(first) == 300 {
		t.Fatalf("loss 0.5 delivered %d of 300", len(first))
	}
	if other := deliveredSet(t, 8); slices.Equal(first, other) {
		t.Fatal("different seeds gave identical deliveries")
	}

	// SetSeed restarts the sequence.
	n := New(WithLoss(0.5))
	a := listen(t, n, "127.0.0.1:1")
	run := func() []uint64 {
		var drops []uint64
		for i := range 100 {
			before := n.Stats().Dropped
			send(t, a, a, "x")
			if n.Stats().Dropped > before {
				drops = append(drops, uint64(i))
			}
		}
		return drops
	}
	n.SetSeed(3)
	d1 := run()
	n.SetSeed(3)
	if d2 := run(); !slices.Equal(d1, d2) {
		t.Fatalf("SetSeed did not restart the sequence:\n%v\n%v", d1, d2)
	}
}

// schedulerDone returns the channel closed when the current scheduler exits,
// or nil if none runs.
func schedulerDone(n *Network) chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.schedOn {
		return nil
	}
	return n.schedDone
}

func waitClosed(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	if ch == nil {
		return
	}
	select {
	case <-ch:
	case <-time.After(waitLimit):
		t.Fatalf("%s within %v", what, waitLimit)
	}
}

func TestSchedulerExitsWhenIdle(t *testing.T) {
	n := New(WithLatency(time.Millisecond, 0))
	a := listen(t, n, "127.0.0.1:1")
	b := listen(t, n, "127.0.0.1:2")
	if schedulerDone(n) != nil {
		t.Fatal("scheduler runs before anything was sent")
	}
	send(t, a, b, "x")
	done := schedulerDone(n)
	if done == nil {
		t.Fatal("no scheduler for a delayed datagram")
	}
	_ = a.Close()
	_ = b.Close()
	waitClosed(t, done, "scheduler did not exit after delivering")
	wantStats(t, n, Stats{Sent: 1, NoListener: 1})
}

func TestNetworkCloseStopsSchedulerAndEndpoints(t *testing.T) {
	n := New(WithLatency(time.Hour, 0))
	a := listen(t, n, "127.0.0.1:1")
	b := listen(t, n, "127.0.0.1:2")
	ch := readAsync(b, 10)
	send(t, a, b, "never")
	send(t, a, b, "never")
	if s := n.Stats(); s.InFlight != 2 {
		t.Fatalf("Stats = %+v, want 2 in flight", s)
	}
	done := schedulerDone(n)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, done, "scheduler did not exit on Close")
	select {
	case r := <-ch:
		if !errors.Is(r.err, net.ErrClosed) {
			t.Fatalf("ReadFrom after network Close: %v", r.err)
		}
	case <-time.After(waitLimit):
		t.Fatal("network Close did not unblock ReadFrom")
	}
	wantStats(t, n, Stats{Sent: 2, Dropped: 2})
	if err := a.WriteTo([]byte("x"), b.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteTo after network Close: %v", err)
	}
	if _, err := n.Listen(ap("127.0.0.1:3")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Listen after network Close: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestEarlierDatagramRearmsScheduler(t *testing.T) {
	n := New(WithLatency(time.Hour, 0))
	a := listen(t, n, "127.0.0.1:1")
	b := listen(t, n, "127.0.0.1:2")
	send(t, a, b, "late")
	n.SetLatency(time.Millisecond, 0)
	start := time.Now()
	send(t, a, b, "early")
	r := recv(t, b)
	if string(r.data) != "early" || r.at.Sub(start) < time.Millisecond {
		t.Fatalf("got %q after %v", r.data, r.at.Sub(start))
	}
	_ = n.Close()
}

func TestWriteCopiesPayload(t *testing.T) {
	n := New(WithLatency(time.Millisecond, 0))
	a := listen(t, n, "127.0.0.1:1")
	b := listen(t, n, "127.0.0.1:2")
	buf := []byte("original")
	if err := a.WriteTo(buf, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	copy(buf, "mutated!")
	if r := recv(t, b); !bytes.Equal(r.data, []byte("original")) {
		t.Fatalf("got %q", r.data)
	}
}

func BenchmarkEndpointWriteRead(b *testing.B) {
	n := New()
	defer n.Close()
	src, _ := n.Listen(ap("127.0.0.1:1"))
	dst, _ := n.Listen(ap("127.0.0.1:2"))
	payload := make([]byte, 512)
	buf := make([]byte, 1500)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if err := src.WriteTo(payload, dst.LocalAddr()); err != nil {
			b.Fatal(err)
		}
		if k, _, err := dst.ReadFrom(buf); err != nil || k != len(payload) {
			b.Fatalf("ReadFrom: n=%d err=%v", k, err)
		}
	}
}
