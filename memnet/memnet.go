// Package memnet is an in-memory datagram network for tests.
//
// A [Network] connects any number of [Endpoint]s, each bound to a
// netip.AddrPort, and delivers datagrams between them the way UDP would:
// unreliably, without connections, dropping what nobody listens for. Loss,
// latency, jitter, partitions and per-link loss can be set at construction
// and changed while traffic flows, so a cluster built on smudge.Transport can
// be tested in one process, without sockets.
//
// An *Endpoint satisfies smudge.Transport (memnet does not import smudge, so
// it can be used from smudge's own tests).
//
// Latency is real time: delayed datagrams are handed over by one scheduler
// goroutine that exists only while datagrams are in flight. With zero latency
// and zero jitter, WriteTo delivers synchronously into the receiver's queue.
//
// Random decisions (loss and jitter) come from one source seeded by
// [WithSeed] (default 0): the same sequence of sends on the same
// configuration gives the same decisions.
package memnet

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"
)

// DefaultMaxQueue is the default number of datagrams an endpoint holds before
// further datagrams to it are dropped (and counted in [Stats].QueueFull).
const DefaultMaxQueue = 4096

// Largest datagram payloads, as for UDP over IPv4 and IPv6. WriteTo rejects
// larger ones.
const (
	MaxDatagramIPv4 = 65507
	MaxDatagramIPv6 = 65527
)

// Ephemeral port range used when Listen is asked for port 0.
const (
	firstEphemeralPort = 49152
	lastEphemeralPort  = 65535
)

// ErrTruncatedDatagram is returned by [Endpoint.ReadFrom] together with
// n = len(b) when the datagram did not fit in b. It matches
// smudge.ErrTruncatedDatagram under errors.Is (both are
// "smudge: truncated datagram"), so code written against smudge.Transport
// handles both implementations alike.
var ErrTruncatedDatagram error = truncatedError{}

const truncatedMsg = "smudge: truncated datagram"

type truncatedError struct{}

func (truncatedError) Error() string { return truncatedMsg }

// Is reports whether target is a truncation error: memnet's own, or
// smudge.ErrTruncatedDatagram, recognised by its message since memnet cannot
// import smudge.
func (truncatedError) Is(target error) bool {
	return target != nil && target.Error() == truncatedMsg
}

// Stats counts what happened to the datagrams written to a [Network].
// Every accepted WriteTo is counted in Sent and, once decided, in exactly one
// of Delivered, Dropped, Partitioned, QueueFull or NoListener; until then it
// is counted in InFlight. Datagrams discarded by [Network.Close] are counted
// in Dropped.
type Stats struct {
	// Sent is the number of datagrams accepted by WriteTo.
	Sent uint64
	// Delivered is the number placed in a receiver's queue.
	Delivered uint64
	// Dropped is the number lost to random loss (network-wide or per link).
	Dropped uint64
	// Partitioned is the number dropped because a partition separated sender
	// and receiver.
	Partitioned uint64
	// QueueFull is the number dropped because the receiver's queue was full.
	QueueFull uint64
	// NoListener is the number addressed to an address nobody listened on at
	// delivery time.
	NoListener uint64
	// InFlight is the number currently delayed by latency or jitter.
	InFlight int
}

// Option configures a [Network] at construction.
type Option func(*Network)

// WithLoss sets the probability, in [0, 1], that a datagram is dropped.
// It panics on a value outside [0, 1].
func WithLoss(p float64) Option {
	checkProb(p)
	return func(n *Network) { n.loss = p }
}

// WithLatency sets the delay of every datagram to latency plus a uniform
// random extra in [0, jitter). It panics on a negative duration.
func WithLatency(latency, jitter time.Duration) Option {
	checkDurations(latency, jitter)
	return func(n *Network) { n.latency, n.jitter = latency, jitter }
}

// WithSeed seeds the random source for loss and jitter (default 0).
func WithSeed(seed int64) Option { return func(n *Network) { n.rng = newRand(seed) } }

// WithMaxQueue sets how many datagrams each endpoint holds before dropping
// (default [DefaultMaxQueue]). It panics if max < 1.
func WithMaxQueue(max int) Option {
	checkMaxQueue(max)
	return func(n *Network) { n.maxQueue = max }
}

// link is a directed pair of addresses.
type link struct{ from, to netip.AddrPort }

// Network is an in-memory datagram network. It is safe for concurrent use.
// The zero value is not usable; create one with [New].
type Network struct {
	mu sync.Mutex

	// knobs
	loss            float64
	latency, jitter time.Duration
	maxQueue        int
	rng             *rand.Rand
	linkLoss        map[link]float64
	partitioned     map[link]struct{}

	endpoints map[netip.AddrPort]*Endpoint
	nextPort  map[netip.Addr]uint16
	stats     Stats
	closed    bool

	// scheduler for delayed datagrams
	pending    pendingHeap
	seq        uint64
	schedOn    bool
	schedWake  chan struct{}
	schedDone  chan struct{} // closed when the running scheduler exits (for tests)
	schedClose chan struct{} // closed by Close
}

// New returns an empty network: no loss, no latency, seed 0, queues of
// [DefaultMaxQueue] datagrams.
func New(opts ...Option) *Network {
	n := &Network{
		maxQueue:    DefaultMaxQueue,
		rng:         newRand(0),
		linkLoss:    make(map[link]float64),
		partitioned: make(map[link]struct{}),
		endpoints:   make(map[netip.AddrPort]*Endpoint),
		nextPort:    make(map[netip.Addr]uint16),
		schedWake:   make(chan struct{}, 1),
		schedClose:  make(chan struct{}),
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func newRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
}

func checkProb(p float64) float64 {
	if math.IsNaN(p) || p < 0 || p > 1 {
		panic(fmt.Sprintf("memnet: loss probability %v outside [0, 1]", p))
	}
	return p
}

func checkDurations(latency, jitter time.Duration) {
	if latency < 0 || jitter < 0 {
		panic(fmt.Sprintf("memnet: negative latency %v or jitter %v", latency, jitter))
	}
}

func checkMaxQueue(max int) {
	if max < 1 {
		panic(fmt.Sprintf("memnet: max queue %d < 1", max))
	}
}

func normalize(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
}

// SetLoss sets the network-wide probability, in [0, 1], that a datagram is
// dropped. Per-link overrides ([Network.SetLinkLoss]) take precedence. It
// panics on a value outside [0, 1].
func (n *Network) SetLoss(p float64) {
	checkProb(p)
	n.mu.Lock()
	n.loss = p
	n.mu.Unlock()
}

// SetLatency sets the delay of datagrams sent from now on to latency plus a
// uniform random extra in [0, jitter). Datagrams already in flight keep their
// delivery time. It panics on a negative duration.
func (n *Network) SetLatency(latency, jitter time.Duration) {
	checkDurations(latency, jitter)
	n.mu.Lock()
	n.latency, n.jitter = latency, jitter
	n.mu.Unlock()
}

// SetSeed reseeds the random source for loss and jitter.
func (n *Network) SetSeed(seed int64) {
	n.mu.Lock()
	n.rng = newRand(seed)
	n.mu.Unlock()
}

// SetMaxQueue sets how many datagrams each endpoint holds before dropping.
// Datagrams already queued stay. It panics if max < 1.
func (n *Network) SetMaxQueue(max int) {
	checkMaxQueue(max)
	n.mu.Lock()
	n.maxQueue = max
	n.mu.Unlock()
}

// SetLinkLoss overrides the loss probability for datagrams from one address
// to another (one direction only). It panics on a value outside [0, 1].
func (n *Network) SetLinkLoss(from, to netip.AddrPort, p float64) {
	checkProb(p)
	n.mu.Lock()
	n.linkLoss[link{normalize(from), normalize(to)}] = p
	n.mu.Unlock()
}

// ClearLinkLoss removes the override set by [Network.SetLinkLoss] for the
// link from -> to, so the network-wide loss applies again.
func (n *Network) ClearLinkLoss(from, to netip.AddrPort) {
	n.mu.Lock()
	delete(n.linkLoss, link{normalize(from), normalize(to)})
	n.mu.Unlock()
}

// Partition drops all traffic, in both directions, between every member of a
// and every member of b, until [Network.Heal]. Partitions add up. Traffic
// inside a and inside b is unaffected. The decision is taken when a datagram
// is sent: datagrams already in flight are delivered.
func (n *Network) Partition(a, b []netip.AddrPort) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, x := range a {
		x = normalize(x)
		for _, y := range b {
			y = normalize(y)
			if x == y {
				continue
			}
			n.partitioned[link{x, y}] = struct{}{}
			n.partitioned[link{y, x}] = struct{}{}
		}
	}
}

// Heal removes all partitions. Per-link loss overrides stay.
func (n *Network) Heal() {
	n.mu.Lock()
	clear(n.partitioned)
	n.mu.Unlock()
}

// Stats returns a snapshot of the network's counters.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.stats
	s.InFlight = len(n.pending)
	return s
}

// Listen binds an endpoint to addr. Port 0 picks a free port for that IP.
// It fails if addr is already bound, is not a concrete address (memnet has no
// wildcard addresses such as 0.0.0.0), or the network is closed. IPv4-mapped
// IPv6 addresses are treated as IPv4.
func (n *Network) Listen(addr netip.AddrPort) (*Endpoint, error) {
	addr = normalize(addr)
	ip := addr.Addr()
	if !ip.IsValid() || ip.IsUnspecified() {
		return nil, fmt.Errorf("memnet: listen %s: need a concrete IP address", addr)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("memnet: listen %s: %w", addr, net.ErrClosed)
	}
	if addr.Port() == 0 {
		port, ok := n.freePortLocked(ip)
		if !ok {
			return nil, fmt.Errorf("memnet: listen %s: no free port", addr)
		}
		addr = netip.AddrPortFrom(ip, port)
	} else if _, taken := n.endpoints[addr]; taken {
		return nil, fmt.Errorf("memnet: listen %s: address already in use", addr)
	}
	e := &Endpoint{
		net:    n,
		addr:   addr,
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	n.endpoints[addr] = e
	return e, nil
}

// freePortLocked returns an unused port for ip from the ephemeral range,
// cycling so that a just-closed port is not handed out again at once.
func (n *Network) freePortLocked(ip netip.Addr) (uint16, bool) {
	const size = lastEphemeralPort - firstEphemeralPort + 1
	start := int(n.nextPort[ip])
	if start < firstEphemeralPort {
		start = firstEphemeralPort
	}
	for i := 0; i < size; i++ {
		p := firstEphemeralPort + (start-firstEphemeralPort+i)%size
		if _, taken := n.endpoints[netip.AddrPortFrom(ip, uint16(p))]; !taken {
			n.nextPort[ip] = uint16(firstEphemeralPort + (p-firstEphemeralPort+1)%size)
			return uint16(p), true
		}
	}
	return 0, false
}

// Close closes every endpoint and discards datagrams in flight (counting them
// as Dropped); the scheduler goroutine, if running, exits. Listen fails
// afterwards. Closing twice is a no-op.
func (n *Network) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	for _, e := range n.endpoints {
		e.closeLocked()
	}
	n.stats.Dropped += uint64(len(n.pending))
	clear(n.pending)
	n.pending = n.pending[:0]
	close(n.schedClose)
	return nil
}

// send decides the fate of one datagram from e to "to".
func (n *Network) send(e *Endpoint, b []byte, to netip.AddrPort) error {
	to = normalize(to)
	ip := to.Addr()
	if !ip.IsValid() || ip.IsUnspecified() || to.Port() == 0 {
		return fmt.Errorf("memnet: write %s to %s: invalid destination", e.addr, to)
	}
	limit := MaxDatagramIPv4
	if ip.Is6() {
		limit = MaxDatagramIPv6
	}
	if len(b) > limit {
		return fmt.Errorf("memnet: write %s to %s: datagram of %d bytes exceeds %d", e.addr, to, len(b), limit)
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || e.isClosed() {
		return fmt.Errorf("memnet: write %s to %s: %w", e.addr, to, net.ErrClosed)
	}
	n.stats.Sent++
	l := link{e.addr, to}
	if _, cut := n.partitioned[l]; cut {
		n.stats.Partitioned++
		return nil
	}
	p, ok := n.linkLoss[l]
	if !ok {
		p = n.loss
	}
	if p >= 1 || (p > 0 && n.rng.Float64() < p) {
		n.stats.Dropped++
		return nil
	}
	delay := n.latency
	if n.jitter > 0 {
		delay += time.Duration(n.rng.Int64N(int64(n.jitter)))
	}
	d := datagram{from: e.addr, data: append([]byte(nil), b...)}
	if delay <= 0 {
		n.deliverLocked(to, d)
		return nil
	}
	n.seq++
	heap.Push(&n.pending, &inflight{at: time.Now().Add(delay), seq: n.seq, to: to, d: d})
	if !n.schedOn {
		n.schedOn = true
		n.schedDone = make(chan struct{})
		go n.schedule(n.schedDone)
	} else if n.pending[0].seq == n.seq {
		// The new datagram is due first: wake the scheduler to re-arm.
		select {
		case n.schedWake <- struct{}{}:
		default:
		}
	}
	return nil
}

// deliverLocked puts d into the queue of whoever listens on to.
func (n *Network) deliverLocked(to netip.AddrPort, d datagram) {
	e, ok := n.endpoints[to]
	if !ok {
		n.stats.NoListener++
		return
	}
	if e.enqueue(d, n.maxQueue) {
		n.stats.Delivered++
	} else {
		n.stats.QueueFull++
	}
}

// schedule hands over delayed datagrams when they are due. It runs while
// datagrams are pending and exits when none are left or the network closes.
func (n *Network) schedule(done chan struct{}) {
	defer close(done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		n.mu.Lock()
		now := time.Now()
		for len(n.pending) > 0 && !n.pending[0].at.After(now) {
			f := heap.Pop(&n.pending).(*inflight)
			n.deliverLocked(f.to, f.d)
		}
		if n.closed || len(n.pending) == 0 {
			n.schedOn = false
			n.mu.Unlock()
			return
		}
		wait := n.pending[0].at.Sub(now)
		n.mu.Unlock()

		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-n.schedWake:
			timer.Stop()
		case <-n.schedClose:
			timer.Stop()
		}
	}
}

// datagram is one queued message.
type datagram struct {
	from netip.AddrPort
	data []byte
}

// inflight is a delayed datagram.
type inflight struct {
	at  time.Time
	seq uint64 // ties broken in send order
	to  netip.AddrPort
	d   datagram
}

// pendingHeap orders in-flight datagrams by delivery time.
type pendingHeap []*inflight

func (h pendingHeap) Len() int { return len(h) }
func (h pendingHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h pendingHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pendingHeap) Push(x any)   { *h = append(*h, x.(*inflight)) }
func (h *pendingHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return x
}

// Endpoint is one bound address on a [Network]. It satisfies
// smudge.Transport: it is safe for concurrent readers and writers.
type Endpoint struct {
	net  *Network
	addr netip.AddrPort

	mu     sync.Mutex
	queue  []datagram
	head   int
	closed bool
	notify chan struct{} // a token when the queue becomes non-empty
	done   chan struct{} // closed by Close
}

// LocalAddr returns the address the endpoint is bound to.
func (e *Endpoint) LocalAddr() netip.AddrPort { return e.addr }

// WriteTo sends a copy of b to addr. Like UDP, it succeeds even if the
// datagram is then lost, partitioned away, dropped at a full queue or
// addressed to nobody; [Network.Stats] tells which. It fails on an invalid
// destination (no IP, unspecified IP or port 0), on a datagram larger than
// [MaxDatagramIPv4] / [MaxDatagramIPv6], and after Close (wrapping
// net.ErrClosed).
func (e *Endpoint) WriteTo(b []byte, addr netip.AddrPort) error {
	return e.net.send(e, b, addr)
}

// ReadFrom blocks until a datagram arrives, copies it into b and returns its
// length and sender. A datagram longer than b fills b and comes with
// [ErrTruncatedDatagram]. After Close it returns an error wrapping
// net.ErrClosed.
func (e *Endpoint) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return 0, netip.AddrPort{}, fmt.Errorf("memnet: read %s: %w", e.addr, net.ErrClosed)
		}
		if e.head < len(e.queue) {
			d := e.queue[e.head]
			e.queue[e.head] = datagram{}
			e.head++
			if e.head == len(e.queue) {
				e.queue, e.head = e.queue[:0], 0
			} else {
				// More left: pass the token on in case another reader waits.
				e.signal()
			}
			e.mu.Unlock()
			c := copy(b, d.data)
			if c < len(d.data) {
				return c, d.from, ErrTruncatedDatagram
			}
			return c, d.from, nil
		}
		e.mu.Unlock()
		select {
		case <-e.notify:
		case <-e.done:
		}
	}
}

// Close unbinds the endpoint: blocked and later ReadFrom and WriteTo calls
// fail with an error wrapping net.ErrClosed, queued datagrams are discarded
// and the address can be bound again. Closing twice returns such an error
// too, as a UDP socket does.
func (e *Endpoint) Close() error {
	e.net.mu.Lock()
	defer e.net.mu.Unlock()
	if !e.closeLocked() {
		return fmt.Errorf("memnet: close %s: %w", e.addr, net.ErrClosed)
	}
	return nil
}

// closeLocked closes e and unbinds its address; e.net.mu is held. It reports
// false if e was closed already.
func (e *Endpoint) closeLocked() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.closed = true
	close(e.done)
	e.queue, e.head = nil, 0
	if e.net.endpoints[e.addr] == e {
		delete(e.net.endpoints, e.addr)
	}
	return true
}

func (e *Endpoint) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// enqueue appends d unless the queue holds max datagrams already.
func (e *Endpoint) enqueue(d datagram, max int) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || len(e.queue)-e.head >= max {
		return false
	}
	if e.head > 0 && len(e.queue) == cap(e.queue) {
		// Reuse the consumed front before growing.
		m := copy(e.queue, e.queue[e.head:])
		clear(e.queue[m:])
		e.queue, e.head = e.queue[:m], 0
	}
	e.queue = append(e.queue, d)
	e.signal()
	return true
}

// signal leaves a wake-up token for a reader; e.mu is held.
func (e *Endpoint) signal() {
	select {
	case e.notify <- struct{}{}:
	default:
	}
}
