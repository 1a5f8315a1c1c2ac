package sim

import (
	"fmt"
	"slices"
	"time"

	"github.com/seed-c7906467/smudge/internal/swim"
)

// Metrics is an Observer that measures a simulation as it runs, in memory
// proportional to the nodes squared (one byte per pair: who sees whom in
// which status) and to the faults, never to the events: it works when the
// simulation keeps no log. Attach it with Observe before anything happens
// (before the nodes start) and call Report at the end.
type Metrics struct {
	sim *Sim

	view      [][]swim.Status // view[o][x]: what o believes of x; 0 unknown
	up        []bool
	upCount   int
	good      []int32 // good[o]: up nodes other than o that o sees live (ALIVE or SUSPECTED)
	goodObs   int     // up nodes whose good is upCount-1
	upSince   []int64
	upNanos   int64 // node-nanoseconds up, over closed intervals
	converged bool
	convAt    []time.Duration // every time the cluster became converged
	joinConv  []time.Duration // ... for the first time after nodes joined
	joining   bool            // a node joined (started for the first time) since the last convergence
	started   []bool
	everPause []int64  // first pause start per node; -1 never
	left      []bool   // left gracefully (its exit is not a crash)
	layouts   []layout // every partition, in order
	heals     []time.Duration
	marks     []Mark // faults, for plots
	openSpan  int    // index in marks of the partition in force, or -1

	crashes  []*crashTrack
	open     []*crashTrack // open[x]: the crash of x being detected, or nil
	bcasts   []*bcastTrack
	bcastIdx map[bcastKey]*bcastTrack

	falseDead [falseKinds]int // DEAD views of nodes that are up, by kind
	falseSelf [falseKinds]int // ... declared by the observer itself
	falseSubj [falseKinds]map[int]bool
	// FalseDeadSamples keeps the first few false DEAD views about healthy
	// nodes, for investigation.
	FalseDeadSamples []FalseDead
}

// FalseDead is one node's DEAD view of a node that was up.
type FalseDead struct {
	At       time.Duration
	Observer int
	Subject  int
	Source   int // who declared it (-1: not a node of the simulation)
	Inc      uint32
}

const (
	falseHealthy = iota
	falsePaused
	falsePartitioned
	falseKinds
)

type layout struct {
	at     int64
	groups []uint8 // group per node index at the time
	reach  [maxGroups]uint64
}

type bcastKey struct {
	origin int
	boot   uint32
	index  uint32
}

type crashTrack struct {
	node     int
	at       int64
	end      int64 // when the window closed (a restart); -1 open
	expected []bool
	firstSus int64
	dead     []int64 // per observer: first DEAD after the crash; -1 none
}

type bcastTrack struct {
	key      bcastKey
	at       int64
	expected []bool
	got      []int64 // per node: first delivery; -1 none
	dups     int
}

// NewMetrics returns metrics for s, already observing it.
func NewMetrics(s *Sim) *Metrics {
	m := &Metrics{sim: s, bcastIdx: make(map[bcastKey]*bcastTrack), openSpan: -1}
	for i := range falseKinds {
		m.falseSubj[i] = make(map[int]bool)
	}
	m.grow()
	s.Observe(m)
	return m
}

// grow makes room for every node of the simulation.
func (m *Metrics) grow() {
	n := len(m.sim.nodes)
	for len(m.up) < n {
		m.up = append(m.up, false)
		m.good = append(m.good, 0)
		m.upSince = append(m.upSince, 0)
		m.everPause = append(m.everPause, -1)
		m.left = append(m.left, false)
		m.started = append(m.started, false)
		m.open = append(m.open, nil)
		m.view = append(m.view, nil)
	}
}

func (m *Metrics) row(o int) []swim.Status {
	if n := len(m.sim.nodes); len(m.view[o]) < n {
		m.view[o] = append(m.view[o], make([]swim.Status, n-len(m.view[o]))...)
	}
	return m.view[o]
}

// OnEvent implements Observer.
func (m *Metrics) OnEvent(at time.Duration, n *Node, ev *swim.Event) {
	m.grow()
	o := n.Index
	switch ev.Kind {
	case swim.EventStatus, swim.EventRemoved:
		x := IndexOf(ev.Member.Addr)
		if x < 0 || x >= len(m.up) || x == o {
			return
		}
		st := ev.Member.Status
		if ev.Kind == swim.EventRemoved {
			st = 0
		}
		m.setView(o, x, st)
		if ev.Kind == swim.EventStatus {
			m.status(int64(at), o, x, &ev.Member)
		}
	case swim.EventBroadcast:
		b := &ev.Broadcast
		k := bcastKey{origin: IndexOf(b.Origin), boot: b.Boot, index: b.Index}
		t := m.bcastIdx[k]
		if t == nil {
			return
		}
		if t.got[o] >= 0 {
			t.dups++
			return
		}
		t.got[o] = int64(at)
	}
}

// live reports whether a member in status st is a live member (ALIVE or
// SUSPECTED): what convergence asks of every pair of up nodes.
func live(st swim.Status) bool { return st == swim.StatusAlive || st == swim.StatusSuspect }

func (m *Metrics) setView(o, x int, st swim.Status) {
	row := m.row(o)
	old := row[x]
	row[x] = st
	if !m.up[o] || !m.up[x] || live(old) == live(st) {
		return
	}
	before := m.good[o] == int32(m.upCount-1)
	if live(st) {
		m.good[o]++
	} else {
		m.good[o]--
	}
	if after := m.good[o] == int32(m.upCount-1); after != before {
		if after {
			m.goodObs++
		} else {
			m.goodObs--
		}
	}
	m.checkConverged(time.Duration(m.sim.now), true)
}

// checkConverged updates the converged state. A start records no
// convergence (a node that starts alone, or before the others, is
// trivially converged): the cluster converges when views change, by an
// event, a bootstrap or a crash.
func (m *Metrics) checkConverged(at time.Duration, record bool) {
	c := m.upCount > 0 && m.goodObs == m.upCount
	if c && !m.converged && record {
		m.convAt = append(m.convAt, at)
		if m.joining {
			m.joinConv = append(m.joinConv, at)
			m.joining = false
		}
	}
	m.converged = c
}

// recount recomputes good and goodObs after the set of up nodes changed.
func (m *Metrics) recount(record bool) {
	m.goodObs = 0
	for o, isUp := range m.up {
		if !isUp {
			continue
		}
		row := m.row(o)
		g := int32(0)
		for x, st := range row {
			if x != o && live(st) && m.up[x] {
				g++
			}
		}
		m.good[o] = g
		if g == int32(m.upCount-1) {
			m.goodObs++
		}
	}
	m.checkConverged(time.Duration(m.sim.now), record)
}

// status handles o seeing x in a new status.
func (m *Metrics) status(at int64, o, x int, mem *swim.Member) {
	if c := m.open[x]; c != nil && c.expected[o] {
		switch mem.Status {
		case swim.StatusSuspect:
			if c.firstSus < 0 {
				c.firstSus = at
			}
		case swim.StatusDead:
			if c.dead[o] < 0 {
				c.dead[o] = at
			}
		}
	}
	if mem.Status != swim.StatusDead || !m.up[x] || mem.Incarnation < m.sim.nodes[x].bootInc {
		return // true, or about an earlier run of a restarted node
	}
	kind := falseHealthy
	switch {
	case m.partitioned(o, x, at):
		kind = falsePartitioned
	case m.everPause[x] >= 0 && m.everPause[x] <= at, m.everPause[o] >= 0 && m.everPause[o] <= at:
		kind = falsePaused
	}
	m.falseDead[kind]++
	m.falseSubj[kind][x] = true
	src := IndexOf(mem.Source)
	if src == o {
		m.falseSelf[kind]++
	}
	if kind == falseHealthy && len(m.FalseDeadSamples) < 20 {
		m.FalseDeadSamples = append(m.FalseDeadSamples, FalseDead{
			At: time.Duration(at), Observer: o, Subject: x, Source: src, Inc: mem.Incarnation})
	}
}

// partitioned reports whether, by at, a partition had cut observer o off
// from subject x, or x off from anyone (x was in one of the sets named in
// a Partition or Cut).
func (m *Metrics) partitioned(o, x int, at int64) bool {
	for i := range m.layouts {
		l := &m.layouts[i]
		if l.at > at {
			break
		}
		go_, gx := groupOf(l.groups, o), groupOf(l.groups, x)
		if gx != 0 || l.reach[go_]&(1<<gx) == 0 || l.reach[gx]&(1<<go_) == 0 {
			return true
		}
	}
	return false
}

func groupOf(groups []uint8, i int) uint8 {
	if i < len(groups) {
		return groups[i]
	}
	return 0
}

// OnAction implements Observer.
func (m *Metrics) OnAction(at time.Duration, a *Action) {
	m.grow()
	now := int64(at)
	switch a.Kind {
	case ActStart:
		if m.started[a.Node.Index] {
			m.marks = append(m.marks, Mark{Label: fmt.Sprintf("restart n%d", a.Node.Index), At: at.Seconds()})
		}
		m.nodeUp(now, a.Node.Index)
		m.recount(false)
	case ActBootstrap:
		for _, n := range a.Nodes {
			if !m.up[n.Index] {
				m.nodeUp(now, n.Index)
			}
		}
		for _, o := range a.Nodes {
			row := m.row(o.Index)
			for _, x := range a.Nodes {
				if x != o {
					row[x.Index] = swim.StatusAlive
				}
			}
		}
		m.recount(true)
	case ActCrash:
		x := a.Node.Index
		m.nodeDown(now, x)
		m.recount(true)
		for _, c := range m.open { // x no longer counts as an observer
			if c != nil {
				c.expected[x] = false
			}
		}
		for _, t := range m.bcasts {
			if t.got[x] < 0 {
				t.expected[x] = false
			}
		}
		if m.left[x] {
			break // the process of a node that left exits: not a crash
		}
		m.marks = append(m.marks, Mark{Label: fmt.Sprintf("crash n%d", x), At: at.Seconds()})
		c := &crashTrack{node: x, at: now, end: -1, firstSus: -1,
			expected: make([]bool, len(m.up)), dead: make([]int64, len(m.up))}
		for o := range m.up {
			c.dead[o] = -1
			st := m.row(o)[x]
			c.expected[o] = m.up[o] && live(st)
		}
		if old := m.open[x]; old != nil {
			old.end = now
		}
		m.open[x] = c
		m.crashes = append(m.crashes, c)
	case ActLeave:
		m.left[a.Node.Index] = true // the others see it LEFT, not DEAD
		m.marks = append(m.marks, Mark{Label: fmt.Sprintf("leave n%d", a.Node.Index), At: at.Seconds()})
	case ActSlow:
		// A slow node counts as paused: DEAD views of it are about a node
		// that was not healthy.
		if a.Duration > 0 && m.everPause[a.Node.Index] < 0 {
			m.everPause[a.Node.Index] = now
		}
	case ActPause:
		if m.everPause[a.Node.Index] < 0 {
			m.everPause[a.Node.Index] = now
		}
		m.marks = append(m.marks, Mark{Label: fmt.Sprintf("pause n%d", a.Node.Index), At: at.Seconds(), Until: (at + a.Duration).Seconds()})
	case ActPartition:
		l := layout{at: now, groups: make([]uint8, len(m.sim.nodes)), reach: m.sim.reach}
		for i, n := range m.sim.nodes {
			l.groups[i] = uint8(n.group)
		}
		m.layouts = append(m.layouts, l)
		m.closeSpan(at)
		n := 0
		for _, g := range a.Groups {
			n += len(g)
		}
		label := fmt.Sprintf("partition (%d nodes)", n)
		if a.Cut {
			label = fmt.Sprintf("cut (%d+%d nodes)", len(a.Groups[0]), len(a.Groups[1]))
		}
		m.openSpan = len(m.marks)
		m.marks = append(m.marks, Mark{Label: label, At: at.Seconds()})
	case ActHeal:
		m.heals = append(m.heals, at)
		m.closeSpan(at)
	case ActBroadcast:
		k := bcastKey{origin: a.Node.Index, boot: a.Boot, index: a.Index}
		t := &bcastTrack{key: k, at: now, expected: make([]bool, len(m.up)), got: make([]int64, len(m.up))}
		for i := range m.up {
			t.got[i] = -1
			t.expected[i] = m.up[i] && i != k.origin
		}
		m.bcasts = append(m.bcasts, t)
		m.bcastIdx[k] = t
	}
}

func (m *Metrics) closeSpan(at time.Duration) {
	if m.openSpan >= 0 {
		m.marks[m.openSpan].Until = at.Seconds()
		m.openSpan = -1
	}
}

// Marks returns the faults so far, for plots: crashes, restarts and leaves
// as instants, partitions and pauses as spans (a partition still in force
// ends now).
func (m *Metrics) Marks() []Mark {
	out := slices.Clone(m.marks)
	if m.openSpan >= 0 {
		out[m.openSpan].Until = m.sim.Elapsed().Seconds()
	}
	return out
}

func (m *Metrics) nodeUp(now int64, x int) {
	m.left[x] = false
	if !m.started[x] {
		m.started[x] = true
		m.joining = true
	}
	if c := m.open[x]; c != nil { // restarted: the crash's window closes
		c.end = now
		m.open[x] = nil
	}
	if !m.up[x] {
		m.up[x] = true
		m.upCount++
		m.upSince[x] = now
	}
	clear(m.row(x)) // a new engine knows nothing yet
}

func (m *Metrics) nodeDown(now int64, x int) {
	if m.up[x] {
		m.up[x] = false
		m.upCount--
		m.upNanos += now - m.upSince[x]
	}
	clear(m.row(x))
}

// Converged reports whether every up node has every other up node as a
// live member (ALIVE or SUSPECTED: a suspicion is an opinion about a member
// it knows, which loss raises and refutation ends all the time).
func (m *Metrics) Converged() bool { return m.converged }

// CrashDetection is what is known of one crash: the elapsed times, -1
// for what has not happened.
type CrashDetection struct {
	Node         int
	At           time.Duration
	FirstSuspect time.Duration   // first SUSPECT view after the crash
	Dead         []time.Duration // per expected observer, in node order: its first DEAD view
	Observers    []int           // the expected observers: up and knowing the node at the crash
}

// Crashes returns every crash so far with its detection.
func (m *Metrics) Crashes() []CrashDetection {
	var out []CrashDetection
	for _, c := range m.crashes {
		d := CrashDetection{Node: c.node, At: time.Duration(c.at), FirstSuspect: time.Duration(c.firstSus)}
		for o, exp := range c.expected {
			if exp {
				d.Observers = append(d.Observers, o)
				d.Dead = append(d.Dead, time.Duration(c.dead[o]))
			}
		}
		out = append(out, d)
	}
	return out
}

// BroadcastDelivery is what is known of one broadcast.
type BroadcastDelivery struct {
	Origin     int
	Index      uint32
	At         time.Duration
	Receivers  []int           // every node up at the broadcast, but the origin, and not crashed since
	Got        []time.Duration // per receiver: its delivery; -1 none
	Duplicates int             // deliveries to a node that had it already
}

// Broadcasts returns every broadcast so far with its deliveries.
func (m *Metrics) Broadcasts() []BroadcastDelivery {
	var out []BroadcastDelivery
	for _, t := range m.bcasts {
		d := BroadcastDelivery{Origin: t.key.origin, Index: t.key.index, At: time.Duration(t.at), Duplicates: t.dups}
		for o, exp := range t.expected {
			if exp && m.up[o] {
				d.Receivers = append(d.Receivers, o)
				d.Got = append(d.Got, time.Duration(t.got[o]))
			}
		}
		out = append(out, d)
	}
	return out
}

// ConvergedAt returns every elapsed time at which the cluster became
// converged.
func (m *Metrics) ConvergedAt() []time.Duration { return slices.Clone(m.convAt) }

// JoinConvergedAt returns the elapsed times at which the cluster became
// converged after nodes joined (started for the first time): the first is
// the time the initial nodes took to form the cluster.
func (m *Metrics) JoinConvergedAt() []time.Duration { return slices.Clone(m.joinConv) }

// NodeSeconds is the total time nodes were up, in seconds.
func (m *Metrics) NodeSeconds() float64 {
	total := m.upNanos
	for x, u := range m.up {
		if u {
			total += m.sim.now - m.upSince[x]
		}
	}
	return time.Duration(total).Seconds()
}
