// Package sim runs many swim engines in one process over a virtual network
// and a virtual clock. Everything, latency and loss included, comes from one
// seeded random source, so a run is reproducible from its seed: the same
// seed and configuration give a byte-identical event log.
//
// The network knows one-way latency (fixed, uniform or long-tailed), loss
// (global and per link) and partitions between sets of nodes. Nodes can be
// started, joined, bootstrapped with a full view, paused (a slow node: its
// packets and timers wait), crashed, restarted and made to leave, now or at
// a given virtual time (At). Every event of every engine (who saw whom in
// which status, every broadcast delivery) and every such action is passed
// to the Observers, in order; Trace writes them as text, and Metrics turns
// them into a Report.
//
// A Sim is not safe for concurrent use.
package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
)

// DefaultStart is the virtual time at which simulations begin.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// LatencyDist is the shape of the one-way latency distribution.
type LatencyDist uint8

// Latency distributions.
const (
	// LatencyUniform: Latency plus a uniform extra in [0, Jitter); fixed
	// when Jitter is 0.
	LatencyUniform LatencyDist = iota
	// LatencyPareto: Latency plus a long-tailed (Lomax, or Pareto II) extra
	// of scale Jitter and shape TailAlpha, capped at MaxLatency. With the
	// default shape 2 the extra's median is 0.41 Jitter, its 99th
	// percentile 9 Jitter and its 99.9th 31 Jitter.
	LatencyPareto
)

// String names the distribution as the demo binary's -latency-dist flag does.
func (d LatencyDist) String() string {
	switch d {
	case LatencyUniform:
		return "uniform"
	case LatencyPareto:
		return "pareto"
	}
	return fmt.Sprintf("LatencyDist(%d)", uint8(d))
}

// Config describes a simulation.
type Config struct {
	Seed    uint64
	Start   time.Time     // zero: DefaultStart
	Latency time.Duration // one-way base latency of every link
	Jitter  time.Duration // the spread above Latency (see Dist)
	Dist    LatencyDist
	// TailAlpha is LatencyPareto's shape; zero means 2.
	TailAlpha float64
	// MaxLatency caps LatencyPareto's latency; zero means Latency + 100 Jitter.
	MaxLatency time.Duration
	Loss       float64 // probability that a datagram is lost
	// PushPull turns push-pull state sync on (off by default): every
	// engine gets PushPullInterval (zero: swim.DefaultPushPullInterval),
	// and the simulation carries their states as a stream transport
	// would (see pushPull). Off, engines get no push-pull interval.
	PushPull         bool
	PushPullInterval time.Duration
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
// Times are relative to DefaultStart.
func (r Record) String() string {
	return formatEvent(r.At.Sub(DefaultStart), r.Observer.String(), &r.Event, nil)
}

// Node is one simulated process.
type Node struct {
	Index  int
	Addr   netip.AddrPort
	Engine *swim.Engine // nil until started, and after a crash
	Up     bool

	// Counters of the virtual network, over every run of this node.
	PacketsSent, BytesSent, PacketsReceived, BytesReceived uint64

	sim         *Sim
	pausedUntil int64
	inDelay     int64 // extra latency of every packet to it (SetSlow)
	tickAt      int64 // -1: no tick scheduled
	tickGen     uint64
	group       int // partition group
	bootInc     uint32
	bootID      uint32
	past        swim.Stats // the counters of crashed runs
}

// Paused reports whether n is paused now.
func (n *Node) Paused() bool { return n.Up && n.sim.now < n.pausedUntil }

// BootIncarnation is the incarnation n's current (or last) run started at.
func (n *Node) BootIncarnation() uint32 { return n.bootInc }

// BootID is the boot id of n's current (or last) run: its broadcasts carry it.
func (n *Node) BootID() uint32 { return n.bootID }

// Stats sums the engine counters of every run of n.
func (n *Node) Stats() swim.Stats {
	s := n.past
	if n.Engine != nil {
		addStats(&s, n.Engine.Stats())
	}
	return s
}

// NetStats counts what the virtual network did.
type NetStats struct {
	Sent, Delivered, Lost, Partitioned, ToDownNode uint64
	Bytes                                          uint64
	Filtered                                       uint64 // dropped by Sim.Filter
	// Push-pull exchanges (Config.PushPull): started, completed (both
	// states merged), failed (target down or unreachable, or too many
	// retransmissions), and the bytes of the states carried.
	PushPulls, PushPullsDone, PushPullsFailed, PushPullBytes uint64
}

// Observer is told everything that happens in a simulation, in order.
// Implementations must not call back into the Sim's mutating methods.
type Observer interface {
	// OnEvent: node n's engine produced ev at elapsed time at.
	OnEvent(at time.Duration, n *Node, ev *swim.Event)
	// OnAction: the simulation did a (a start, crash, pause, partition...).
	OnAction(at time.Duration, a *Action)
}

// ActionKind says what an Action did.
type ActionKind uint8

// Action kinds.
const (
	ActStart     ActionKind = iota + 1 // a node started (first time: a join; later: a restart)
	ActBootstrap                       // Nodes started knowing each other ALIVE
	ActCrash                           // a node stopped without a word
	ActPause                           // a node stops processing for Duration
	ActLeave                           // a node left gracefully
	ActPartition                       // Groups can no longer reach each other
	ActHeal                            // every partition ended
	ActBroadcast                       // a node broadcast Payload as Index
	ActLoss                            // the global loss rate became Loss
	ActLinkLoss                        // the loss from Nodes[0] to Nodes[1] became Loss
	ActSlow                            // packets to Node take Duration longer (0: normal again)
)

var actionNames = [...]string{
	ActStart: "START", ActBootstrap: "BOOTSTRAP", ActCrash: "CRASH", ActPause: "PAUSE",
	ActLeave: "LEAVE", ActPartition: "PARTITION", ActHeal: "HEAL", ActBroadcast: "BROADCAST",
	ActLoss: "LOSS", ActLinkLoss: "LINKLOSS", ActSlow: "SLOW",
}

// String names the kind as the trace does.
func (k ActionKind) String() string {
	if int(k) < len(actionNames) && actionNames[k] != "" {
		return actionNames[k]
	}
	return fmt.Sprintf("ActionKind(%d)", uint8(k))
}

// Action is something the simulation did to its nodes or network.
type Action struct {
	Kind     ActionKind
	Node     *Node         // the node acted on, if one
	Nodes    []*Node       // ActBootstrap: the nodes; ActStart: the seeds; ActLinkLoss: from, to
	Groups   [][]*Node     // ActPartition
	Cut      bool          // ActPartition: only Groups[0] and Groups[1] are cut from each other
	Duration time.Duration // ActPause, ActSlow
	Loss     float64       // ActLoss, ActLinkLoss
	Index    uint32        // ActBroadcast
	Boot     uint32        // ActBroadcast: the origin's boot id
	Payload  []byte        // ActBroadcast
}

// Sim is a simulation. It is not safe for concurrent use.
type Sim struct {
	cfg      Config
	start    time.Time
	now      int64 // virtual nanoseconds since start
	rng      *rand.Rand
	q        eventQueue
	seq      uint64
	nodes    []*Node
	byAddr   map[netip.AddrPort]*Node
	linkLoss map[[2]int32]float64
	loss     float64
	reach    [maxGroups]uint64 // reach[g] has bit h set when group g reaches group h
	split    bool              // a partition is in force
	free     [][]byte          // packet buffers to reuse
	quiet    bool              // bootstrapping: engine events are not reported
	targets  []netip.AddrPort  // push-pull targets (reused)
	obs      []Observer

	// Log holds every engine event of every node, in order, while KeepLog
	// is set (the default). Large simulations turn it off and observe.
	Log []Record
	// KeepLog turns recording into Log on or off (on by default).
	KeepLog bool
	// OnEvent, when set, is called for every event of every node.
	OnEvent func(n *Node, ev swim.Event)
	// Filter, when set, is asked about every datagram that the network
	// would carry (after partitions, before loss): false drops it
	// (NetStats.Filtered). Push-pull states are not datagrams and are not
	// filtered. data is the packet, valid only during the call.
	Filter func(from, to *Node, data []byte) bool
	// Net counts the network's work.
	Net NetStats
}

// maxGroups bounds the partition groups: a named group per set plus the rest.
const maxGroups = 64

// New returns an empty simulation.
func New(cfg Config) *Sim {
	if cfg.Start.IsZero() {
		cfg.Start = DefaultStart
	}
	if cfg.Engine.ClusterID == 0 {
		cfg.Engine.ClusterID = wire.ClusterID("sim")
	}
	if cfg.TailAlpha <= 0 {
		cfg.TailAlpha = 2
	}
	if cfg.MaxLatency <= 0 {
		cfg.MaxLatency = cfg.Latency + 100*cfg.Jitter
	}
	cfg.Engine.PushPullInterval = 0
	if cfg.PushPull {
		if cfg.PushPullInterval <= 0 {
			cfg.PushPullInterval = swim.DefaultPushPullInterval
		}
		cfg.Engine.PushPullInterval = cfg.PushPullInterval
	}
	s := &Sim{
		cfg: cfg, start: cfg.Start, loss: cfg.Loss,
		rng:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		byAddr:   make(map[netip.AddrPort]*Node),
		linkLoss: make(map[[2]int32]float64),
		KeepLog:  true,
	}
	s.healReach()
	return s
}

// Config returns the simulation's configuration, defaults filled in.
func (s *Sim) Config() Config { return s.cfg }

// Observe adds o to the observers; it sees everything from now on.
func (s *Sim) Observe(o Observer) { s.obs = append(s.obs, o) }

// Now is the virtual time.
func (s *Sim) Now() time.Time { return s.start.Add(time.Duration(s.now)) }

// Elapsed is the virtual time since the start.
func (s *Sim) Elapsed() time.Duration { return time.Duration(s.now) }

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

// IndexOf is the node index of a virtual address made by AddrOf, or -1.
func IndexOf(a netip.AddrPort) int {
	if !a.Addr().Is4() || a.Port() != 7946 {
		return -1
	}
	b := a.Addr().As4()
	if b[0] != 10 {
		return -1
	}
	return int(b[1])<<16 | int(b[2])<<8 | int(b[3])
}

// AddNodes adds n nodes that are not started yet.
func (s *Sim) AddNodes(n int) []*Node {
	out := make([]*Node, 0, n)
	for range n {
		i := len(s.nodes)
		nd := &Node{Index: i, Addr: AddrOf(i), sim: s, tickAt: -1}
		s.nodes = append(s.nodes, nd)
		s.byAddr[nd.Addr] = nd
		out = append(out, nd)
	}
	return out
}

// ---- actions ----

// At schedules f to run when the virtual time since the start reaches t
// (at once, if t has passed). Actions due at the same time run in the order
// they were scheduled.
func (s *Sim) At(t time.Duration, f func()) {
	at := max(int64(t), s.now)
	s.push(simEvent{at: at, kind: evAction, fn: f})
}

// Start boots n (again, after a crash: a restart) and joins it through
// seeds. Its incarnation starts at the virtual Unix time in seconds, as a
// real node's, and its boot id is new.
func (s *Sim) Start(n *Node, seeds ...*Node) {
	s.boot(n)
	addrs := make([]netip.AddrPort, 0, len(seeds))
	for _, sd := range seeds {
		addrs = append(addrs, sd.Addr)
	}
	s.act(&Action{Kind: ActStart, Node: n, Nodes: seeds})
	n.Engine.Join(s.Now(), addrs...)
	s.flush(n)
}

func (s *Sim) boot(n *Node) {
	if n.Up {
		s.Crash(n)
	}
	cfg := s.cfg.Engine
	cfg.Self = n.Addr
	cfg.Rand = rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))
	cfg.Incarnation = swim.ClockIncarnation(s.Now())
	cfg.BootID = s.rng.Uint32()
	e, err := swim.New(cfg, s.Now())
	if err != nil {
		panic(fmt.Sprintf("sim: engine config: %v", err))
	}
	n.Engine, n.Up = e, true
	n.bootInc, n.bootID = cfg.Incarnation, cfg.BootID
	n.pausedUntil = 0
	n.tickAt = -1
	n.tickGen++
}

// Crash stops n at once, without a word to anyone. Packets on their way to
// it are lost.
func (s *Sim) Crash(n *Node) {
	if !n.Up {
		return
	}
	addStats(&n.past, n.Engine.Stats())
	n.Up = false
	n.Engine = nil
	n.tickGen++
	n.tickAt = -1
	s.act(&Action{Kind: ActCrash, Node: n})
}

// Pause makes n process nothing for d: packets and timers wait, as for a
// process stopped by the scheduler or a long garbage collection. The
// packets that arrive meanwhile are all handled when it resumes.
func (s *Sim) Pause(n *Node, d time.Duration) {
	if !n.Up {
		return
	}
	n.pausedUntil = max(n.pausedUntil, s.now+int64(d))
	s.act(&Action{Kind: ActPause, Node: n, Duration: d})
}

// Leave makes n leave gracefully; it keeps running until Crash.
func (s *Sim) Leave(n *Node) {
	if !n.Up {
		return
	}
	s.act(&Action{Kind: ActLeave, Node: n})
	n.Engine.Leave(s.Now())
	s.flush(n)
}

// Broadcast sends payload from n.
func (s *Sim) Broadcast(n *Node, payload []byte) (uint32, error) {
	if !n.Up {
		return 0, fmt.Errorf("sim: node %d is down", n.Index)
	}
	idx, err := n.Engine.Broadcast(s.Now(), payload)
	if err == nil {
		s.act(&Action{Kind: ActBroadcast, Node: n, Index: idx, Payload: payload, Boot: n.bootID})
	}
	s.flush(n)
	return idx, err
}

// Do runs f against n's engine at the current time and sends its output.
func (s *Sim) Do(n *Node, f func(now time.Time, e *swim.Engine)) {
	f(s.Now(), n.Engine)
	s.flush(n)
}

// Partition splits the network: nodes in different groups cannot reach each
// other. Nodes not named stay in a group of their own with each other. It
// replaces any partition in force.
func (s *Sim) Partition(groups ...[]*Node) {
	if len(groups) >= maxGroups {
		panic("sim: too many partition groups")
	}
	s.setGroups(groups)
	for g := range s.reach {
		s.reach[g] = 1 << g
	}
	s.split = true
	s.act(&Action{Kind: ActPartition, Groups: groups})
}

// Cut severs the links between the nodes of a and those of b, both ways.
// Every other link works: a node in neither set reaches both sides, so
// indirect probes through it still succeed. It replaces any partition in
// force.
func (s *Sim) Cut(a, b []*Node) {
	s.setGroups([][]*Node{a, b})
	for g := range s.reach {
		s.reach[g] = ^uint64(0)
	}
	s.reach[1] &^= 1 << 2
	s.reach[2] &^= 1 << 1
	s.split = true
	s.act(&Action{Kind: ActPartition, Groups: [][]*Node{a, b}, Cut: true})
}

func (s *Sim) setGroups(groups [][]*Node) {
	for _, n := range s.nodes {
		n.group = 0
	}
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
	s.healReach()
	s.split = false
	s.act(&Action{Kind: ActHeal})
}

func (s *Sim) healReach() {
	for g := range s.reach {
		s.reach[g] = ^uint64(0)
	}
}

// Reachable reports whether a packet from a can reach b under the partition
// in force (loss aside).
func (s *Sim) Reachable(a, b *Node) bool {
	return s.reach[a.group]&(1<<b.group) != 0
}

// SetLoss sets the global loss rate.
func (s *Sim) SetLoss(p float64) {
	s.loss = p
	s.act(&Action{Kind: ActLoss, Loss: p})
}

// SetLinkLoss sets the loss rate from a to b (one direction), overriding
// the global rate.
func (s *Sim) SetLinkLoss(a, b *Node, p float64) {
	s.linkLoss[[2]int32{int32(a.Index), int32(b.Index)}] = p
	s.act(&Action{Kind: ActLinkLoss, Nodes: []*Node{a, b}, Loss: p})
}

// SetSlow makes n a slow receiver: every packet to it takes d longer to
// be handled, as if it waited in the queue of a node starved of CPU. Its
// own timers keep time. 0 makes it normal again.
func (s *Sim) SetSlow(n *Node, d time.Duration) {
	n.inDelay = int64(d)
	s.act(&Action{Kind: ActSlow, Node: n, Duration: d})
}

func (s *Sim) act(a *Action) {
	for _, o := range s.obs {
		o.OnAction(time.Duration(s.now), a)
	}
}

// ---- running ----

// RunFor advances virtual time by d, processing everything due.
func (s *Sim) RunFor(d time.Duration) {
	s.runUntil(s.now + int64(d))
}

// RunUntil advances time in steps of step until cond holds or limit has
// passed. It reports whether cond held; time stops at the step where it did.
func (s *Sim) RunUntil(cond func() bool, step, limit time.Duration) bool {
	end := s.now + int64(limit)
	for {
		if cond() {
			return true
		}
		if s.now >= end {
			return false
		}
		s.runUntil(min(s.now+int64(step), end))
	}
}

func (s *Sim) runUntil(end int64) {
	for s.q.len() > 0 && s.q.peek().at <= end {
		ev := s.q.pop()
		s.now = ev.at
		if ev.kind == evAction {
			ev.fn()
			continue
		}
		n := s.nodes[ev.node]
		if !n.Up {
			if ev.kind == evDeliver {
				s.Net.ToDownNode++
				s.recycle(ev.data)
			}
			continue
		}
		if ev.kind == evTick && ev.gen != n.tickGen {
			continue
		}
		if s.now < n.pausedUntil {
			ev.at = n.pausedUntil
			s.push(ev)
			continue
		}
		now := s.Now()
		switch ev.kind {
		case evTick:
			n.tickAt = -1
			n.Engine.Tick(now)
		case evDeliver:
			s.Net.Delivered++
			n.PacketsReceived++
			n.BytesReceived += uint64(len(ev.data))
			n.Engine.Receive(now, s.nodes[ev.from].Addr, ev.data)
			s.recycle(ev.data)
		case evPushPullReq:
			s.answerPushPull(n, s.nodes[ev.from], ev.data)
		case evPushPullResp:
			s.Net.PushPullsDone++
			if n.Engine.MergeState(now, s.nodes[ev.from].Addr, ev.data) != nil {
				n.Engine.PushPullFailed(s.nodes[ev.from].Addr)
			}
		}
		s.flush(n)
	}
	s.now = max(s.now, end)
}

// flush takes n's output: reports events, sends packets, schedules its tick.
func (s *Sim) flush(n *Node) {
	if !n.Up {
		return
	}
	pkts, evs := n.Engine.Outbox()
	if !s.quiet {
		for i := range evs {
			ev := &evs[i]
			if s.KeepLog {
				s.Log = append(s.Log, Record{At: s.Now(), Observer: n.Addr, Event: *ev})
			}
			if s.OnEvent != nil {
				s.OnEvent(n, *ev)
			}
			for _, o := range s.obs {
				o.OnEvent(time.Duration(s.now), n, ev)
			}
		}
	}
	for i := range pkts {
		s.send(n, &pkts[i])
	}
	if s.cfg.PushPull {
		s.targets = n.Engine.TakePushPulls(s.targets[:0])
		for _, a := range s.targets {
			s.pushPull(n, a)
		}
	}
	d := n.Engine.NextDeadline().Sub(s.start).Nanoseconds()
	if n.tickAt < 0 || d < n.tickAt {
		n.tickGen++
		n.tickAt = d
		s.push(simEvent{at: max(d, s.now), kind: evTick, node: int32(n.Index), gen: n.tickGen})
	}
}

func (s *Sim) send(from *Node, p *swim.Packet) {
	s.Net.Sent++
	s.Net.Bytes += uint64(len(p.Data))
	from.PacketsSent++
	from.BytesSent += uint64(len(p.Data))
	to := s.byAddr[p.To]
	if to == nil {
		s.Net.ToDownNode++
		return
	}
	if s.split && !s.Reachable(from, to) {
		s.Net.Partitioned++
		return
	}
	if s.Filter != nil && !s.Filter(from, to, p.Data) {
		s.Net.Filtered++
		return
	}
	loss := s.loss
	if len(s.linkLoss) > 0 {
		if l, ok := s.linkLoss[[2]int32{int32(from.Index), int32(to.Index)}]; ok {
			loss = l
		}
	}
	if loss > 0 && s.rng.Float64() < loss {
		s.Net.Lost++
		return
	}
	data := s.buffer(len(p.Data))
	copy(data, p.Data)
	s.push(simEvent{at: s.now + int64(s.latency()) + to.inDelay, kind: evDeliver, node: int32(to.Index), from: int32(from.Index), data: data})
}

// latency draws one packet's one-way latency.
func (s *Sim) latency() time.Duration {
	c := &s.cfg
	if c.Jitter <= 0 {
		return c.Latency
	}
	switch c.Dist {
	case LatencyPareto:
		u := s.rng.Float64() // [0, 1)
		extra := float64(c.Jitter) * (math.Pow(1-u, -1/c.TailAlpha) - 1)
		return min(c.Latency+time.Duration(extra), c.MaxLatency)
	default:
		return c.Latency + time.Duration(s.rng.Int64N(int64(c.Jitter)))
	}
}

func (s *Sim) buffer(n int) []byte {
	if k := len(s.free); k > 0 {
		b := s.free[k-1]
		s.free[k-1] = nil
		s.free = s.free[:k-1]
		if cap(b) >= n {
			return b[:n]
		}
	}
	return make([]byte, n, max(n, 512))
}

// recycle takes back a delivered packet's buffer. Engines do not keep
// references to received packets past Receive (they copy payloads).
func (s *Sim) recycle(b []byte) {
	if len(s.free) < 1<<14 {
		s.free = append(s.free, b)
	}
}

func (s *Sim) push(ev simEvent) {
	s.seq++
	ev.seq = s.seq
	s.q.push(ev)
}

type evKind uint8

const (
	evAction evKind = iota + 1
	evTick
	evDeliver
	evPushPullReq  // a push-pull request (the sender's state) arrives
	evPushPullResp // its answer (the responder's state) arrives
)

type simEvent struct {
	at   int64 // virtual ns since start
	seq  uint64
	gen  uint64
	node int32
	from int32
	kind evKind
	data []byte
	fn   func()
}

// eventQueue is a min-heap on (at, seq): ties go in scheduling order, which
// keeps runs deterministic.
type eventQueue struct{ h []simEvent }

func (q *eventQueue) len() int        { return len(q.h) }
func (q *eventQueue) peek() *simEvent { return &q.h[0] }
func less(a, b *simEvent) bool {
	if a.at == b.at {
		return a.seq < b.seq
	}
	return a.at < b.at
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
