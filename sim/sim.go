// Package sim runs many swim engines in one process over a virtual network
// and a virtual clock. Everything, latency and loss included, comes from one
// seeded random source, so a run is reproducible from its seed.
package sim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
)

// DefaultStart is the virtual time at which simulations begin.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Config describes a simulation.
type Config struct {
	Seed    uint64
	Start   time.Time     // zero: DefaultStart
	Latency time.Duration // one-way base latency of every link
	Jitter  time.Duration // extra uniform latency in [0, Jitter)
	Loss    float64       // probability that a datagram is lost
	// Engine is the template for every node's engine; Self, Rand,
	// Incarnation and BootID are filled in per node. ClusterID defaults to
	// wire.ClusterID("sim").
	Engine swim.Config
}

// DefaultEngineConfig is the engine configuration of smudge's defaults.
func DefaultEngineConfig() swim.Config {
	return swim.Config{
		ClusterID:            wire.ClusterID("sim"),
		ProbeInterval:        250 * time.Millisecond,
		MinProbeTimeout:      150 * time.Millisecond,
		PingHistoryFrontload: 200 * time.Millisecond,
		IndirectChecks:       3,
		SuspicionMult:        5,
		RemoveDeadAfter:      30 * time.Second,
		MaxPacketBytes:       1400,
		MaxBroadcastBytes:    256,
		BroadcastTTL:         30 * time.Second,
	}
}

// Record is one event seen by one node.
type Record struct {
	At       time.Time
	Observer netip.AddrPort
	Event    swim.Event
}

// String formats the record on one line, for logs and golden comparisons.
func (r Record) String() string {
	t := r.At.Sub(DefaultStart)
	ev := r.Event
	switch ev.Kind {
	case swim.EventStatus:
		return fmt.Sprintf("%v %v sees %v %v inc=%d (was %v)", t, r.Observer, ev.Member.Addr, ev.Member.Status, ev.Member.Incarnation, ev.Previous)
	case swim.EventRemoved:
		return fmt.Sprintf("%v %v removed %v", t, r.Observer, ev.Member.Addr)
	case swim.EventBroadcast:
		return fmt.Sprintf("%v %v got broadcast %v/%d/%d %q", t, r.Observer, ev.Broadcast.Origin, ev.Broadcast.Boot, ev.Broadcast.Index, ev.Broadcast.Payload)
	}
	return fmt.Sprintf("%v %v event %d", t, r.Observer, ev.Kind)
}

// Node is one simulated process.
type Node struct {
	Index  int
	Addr   netip.AddrPort
	Engine *swim.Engine // nil until started, and after a crash
	Up     bool

	sim         *Sim
	pausedUntil time.Time
	tickAt      time.Time
	tickGen     uint64
	group       int
}

// NetStats counts what the virtual network did.
type NetStats struct {
	Sent, Delivered, Lost, Partitioned, ToDownNode uint64
	Bytes                                          uint64
}

// Sim is a simulation. It is not safe for concurrent use.
type Sim struct {
	cfg      Config
	now      time.Time
	rng      *rand.Rand
	q        eventQueue
	seq      uint64
	nodes    []*Node
	byAddr   map[netip.AddrPort]*Node
	linkLoss map[[2]int]float64

	// Log holds every event of every node, in order.
	Log []Record
	// KeepLog turns recording into Log on or off (on by default).
	KeepLog bool
	// OnEvent, when set, is called for every event of every node.
	OnEvent func(n *Node, ev swim.Event)
	// Net counts the network's work.
	Net NetStats
}

// New returns an empty simulation.
func New(cfg Config) *Sim {
	if cfg.Start.IsZero() {
		cfg.Start = DefaultStart
	}
	if cfg.Engine.ClusterID == 0 {
		cfg.Engine.ClusterID = wire.ClusterID("sim")
	}
	return &Sim{
		cfg: cfg, now: cfg.Start,
		rng:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		byAddr:   make(map[netip.AddrPort]*Node),
		linkLoss: make(map[[2]int]float64),
		KeepLog:  true,
	}
}

// Now is the virtual time.
func (s *Sim) Now() time.Time { return s.now }

// Elapsed is the virtual time since the start.
func (s *Sim) Elapsed() time.Duration { return s.now.Sub(s.cfg.Start) }

// Nodes returns every node ever added, in order.
func (s *Sim) Nodes() []*Node { return s.nodes }

// Node returns node i.
func (s *Sim) Node(i int) *Node { return s.nodes[i] }

// NodeAt returns the node with address a, or nil.
func (s *Sim) NodeAt(a netip.AddrPort) *Node { return s.byAddr[a] }

// AddrOf is the virtual address of node i: 10.x.y.z:7946.
func AddrOf(i int) netip.AddrPort {
	ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	return netip.AddrPortFrom(ip, 7946)
}

// AddNodes adds n nodes that are not started yet.
func (s *Sim) AddNodes(n int) []*Node {
	out := make([]*Node, 0, n)
	for range n {
		i := len(s.nodes)
		nd := &Node{Index: i, Addr: AddrOf(i), sim: s}
		s.nodes = append(s.nodes, nd)
		s.byAddr[nd.Addr] = nd
		out = append(out, nd)
	}
	return out
}

// Start boots n (again, after a crash) and joins it through seeds. Its
// incarnation starts at the virtual Unix time in seconds, as a real node's.
func (s *Sim) Start(n *Node, seeds ...*Node) {
	cfg := s.cfg.Engine
	cfg.Self = n.Addr
	cfg.Rand = rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))
	cfg.Incarnation = uint32(s.now.Unix())
	cfg.BootID = s.rng.Uint32()
	e, err := swim.New(cfg, s.now)
	if err != nil {
		panic(fmt.Sprintf("sim: engine config: %v", err))
	}
	n.Engine, n.Up = e, true
	n.pausedUntil = time.Time{}
	addrs := make([]netip.AddrPort, 0, len(seeds))
	for _, sd := range seeds {
		addrs = append(addrs, sd.Addr)
	}
	e.Join(s.now, addrs...)
	s.flush(n)
}

// Crash stops n at once, without a word to anyone.
func (s *Sim) Crash(n *Node) {
	n.Up = false
	n.Engine = nil
	n.tickGen++
}

// Pause makes n process nothing for d: packets and timers wait, as for a
// process stopped by the scheduler or a long garbage collection.
func (s *Sim) Pause(n *Node, d time.Duration) {
	n.pausedUntil = s.now.Add(d)
}

// Leave makes n leave gracefully; it keeps running until Crash.
func (s *Sim) Leave(n *Node) {
	if !n.Up {
		return
	}
	n.Engine.Leave(s.now)
	s.flush(n)
}

// Broadcast sends payload from n.
func (s *Sim) Broadcast(n *Node, payload []byte) (uint32, error) {
	idx, err := n.Engine.Broadcast(s.now, payload)
	s.flush(n)
	return idx, err
}

// Do runs f against n's engine at the current time and sends its output.
func (s *Sim) Do(n *Node, f func(now time.Time, e *swim.Engine)) {
	f(s.now, n.Engine)
	s.flush(n)
}

// Partition splits the network: nodes in different groups cannot reach each
// other. Nodes not named stay in group 0 with each other.
func (s *Sim) Partition(groups ...[]*Node) {
	for gi, g := range groups {
		for _, n := range g {
			n.group = gi + 1
		}
	}
}

// Heal removes every partition.
func (s *Sim) Heal() {
	for _, n := range s.nodes {
		n.group = 0
	}
}

// SetLinkLoss sets the loss rate from a to b (one direction), overriding Loss.
func (s *Sim) SetLinkLoss(a, b *Node, p float64) {
	s.linkLoss[[2]int{a.Index, b.Index}] = p
}

// RunFor advances virtual time by d, processing everything due.
func (s *Sim) RunFor(d time.Duration) {
	s.runUntilTime(s.now.Add(d))
}

// RunUntil advances time in steps of step until cond holds or limit has
// passed. It reports whether cond held; time stops at the step where it did.
func (s *Sim) RunUntil(cond func() bool, step, limit time.Duration) bool {
	end := s.now.Add(limit)
	for {
		if cond() {
			return true
		}
		if !s.now.Before(end) {
			return false
		}
		next := s.now.Add(step)
		if next.After(end) {
			next = end
		}
		s.runUntilTime(next)
	}
}

func (s *Sim) runUntilTime(end time.Time) {
	for s.q.len() > 0 && !s.q.peek().at.After(end) {
		ev := s.q.pop()
		s.now = ev.at
		n := ev.node
		if !n.Up {
			if ev.kind == evDeliver {
				s.Net.ToDownNode++
			}
			continue
		}
		if s.now.Before(n.pausedUntil) {
			if ev.kind == evTick && ev.gen != n.tickGen {
				continue
			}
			ev.at = n.pausedUntil
			s.push(ev)
			continue
		}
		switch ev.kind {
		case evTick:
			if ev.gen != n.tickGen {
				continue
			}
			n.tickAt = time.Time{}
			n.Engine.Tick(s.now)
		case evDeliver:
			s.Net.Delivered++
			n.Engine.Receive(s.now, ev.from, ev.data)
		}
		s.flush(n)
	}
	s.now = end
}

// flush takes n's output: records events, sends packets, schedules its tick.
func (s *Sim) flush(n *Node) {
	if !n.Up {
		return
	}
	pkts, evs := n.Engine.Outbox()
	for _, ev := range evs {
		if s.KeepLog {
			s.Log = append(s.Log, Record{At: s.now, Observer: n.Addr, Event: ev})
		}
		if s.OnEvent != nil {
			s.OnEvent(n, ev)
		}
	}
	for _, p := range pkts {
		s.send(n, p)
	}
	d := n.Engine.NextDeadline()
	if n.tickAt.IsZero() || d.Before(n.tickAt) {
		n.tickGen++
		n.tickAt = d
		s.push(simEvent{at: d, kind: evTick, node: n, gen: n.tickGen})
	}
}

func (s *Sim) send(from *Node, p swim.Packet) {
	s.Net.Sent++
	s.Net.Bytes += uint64(len(p.Data))
	to := s.byAddr[p.To]
	if to == nil {
		s.Net.ToDownNode++
		return
	}
	if from.group != to.group {
		s.Net.Partitioned++
		return
	}
	loss := s.cfg.Loss
	if l, ok := s.linkLoss[[2]int{from.Index, to.Index}]; ok {
		loss = l
	}
	if loss > 0 && s.rng.Float64() < loss {
		s.Net.Lost++
		return
	}
	lat := s.cfg.Latency
	if s.cfg.Jitter > 0 {
		lat += time.Duration(s.rng.Int64N(int64(s.cfg.Jitter)))
	}
	data := append([]byte(nil), p.Data...)
	s.push(simEvent{at: s.now.Add(lat), kind: evDeliver, node: to, from: from.Addr, data: data})
}

func (s *Sim) push(ev simEvent) {
	s.seq++
	ev.seq = s.seq
	s.q.push(ev)
}

type evKind uint8

const (
	evTick evKind = iota + 1
	evDeliver
)

type simEvent struct {
	at   time.Time
	seq  uint64
	kind evKind
	node *Node
	gen  uint64
	from netip.AddrPort
	data []byte
}

// eventQueue is a min-heap on (at, seq): ties go in scheduling order, which
// keeps runs deterministic.
type eventQueue struct{ h []simEvent }

func (q *eventQueue) len() int        { return len(q.h) }
func (q *eventQueue) peek() *simEvent { return &q.h[0] }
func less(a, b *simEvent) bool {
	if a.at.Equal(b.at) {
		return a.seq < b.seq
	}
	return a.at.Before(b.at)
}

func (q *eventQueue) push(ev simEvent) {
	q.h = append(q.h, ev)
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !less(&q.h[i], &q.h[p]) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *eventQueue) pop() simEvent {
	top := q.h[0]
	n := len(q.h) - 1
	q.h[0] = q.h[n]
	q.h[n] = simEvent{}
	q.h = q.h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && less(&q.h[r], &q.h[l]) {
			c = r
		}
		if !less(&q.h[c], &q.h[i]) {
			break
		}
		q.h[i], q.h[c] = q.h[c], q.h[i]
		i = c
	}
	return top
}
