package sim

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// JoinMode says how a scenario's nodes form their cluster.
type JoinMode uint8

// Join modes.
const (
	// JoinSeed starts every node at time 0, each joining through node 0: a
	// join storm, whose convergence the report times.
	JoinSeed JoinMode = iota
	// JoinBoot starts every node with a full view (see Sim.Bootstrap): a
	// cluster that formed long ago. Needed for very large clusters, whose
	// formation by gossip alone takes far longer than the run.
	JoinBoot
)

// String names the mode as the demo binary's -join flag does.
func (j JoinMode) String() string {
	if j == JoinBoot {
		return "boot"
	}
	return "seed"
}

// FaultKind is what a Fault does.
type FaultKind uint8

// Fault kinds.
const (
	// FaultCrash crashes Nodes; with For set, each restarts For later,
	// joining through node 0 (or another up node).
	FaultCrash FaultKind = iota + 1
	// FaultPause pauses Nodes for For.
	FaultPause
	// FaultPartition cuts Nodes off from the rest for For (0: for good).
	FaultPartition
	// FaultCut severs the links between the two halves of Nodes (the first
	// Count/2 and the rest) for For; every other link works.
	FaultCut
	// FaultLeave makes Nodes leave gracefully; their processes exit a
	// second later.
	FaultLeave
	// FaultJoin starts Count new nodes, joining through node 0.
	FaultJoin
	// FaultBroadcast broadcasts a short message from each of Nodes.
	FaultBroadcast
)

var faultNames = [...]string{FaultCrash: "crash", FaultPause: "pause", FaultPartition: "partition",
	FaultCut: "cut", FaultLeave: "leave", FaultJoin: "join", FaultBroadcast: "broadcast"}

// String names the kind.
func (k FaultKind) String() string {
	if int(k) < len(faultNames) && faultNames[k] != "" {
		return faultNames[k]
	}
	return fmt.Sprintf("FaultKind(%d)", uint8(k))
}

// Fault is something a scenario does at a given time.
type Fault struct {
	Kind FaultKind
	At   time.Duration
	For  time.Duration
	// Nodes are the node indices acted on. When nil, Count nodes (at least
	// one) are drawn at random, from the seed, among nodes that no other
	// fault of the scenario touches (node 0, the seed, is never drawn).
	Nodes []int
	Count int
}

// Scenario is a simulation described by its size and faults: what the demo
// binary's sim subcommand and the property tests run.
type Scenario struct {
	Config       // seed, network and engine
	Nodes    int // initial nodes
	Duration time.Duration
	Join     JoinMode
	Faults   []Fault
	// Trace, when set, receives the event log (see Trace).
	Trace io.Writer
	// Progress, when set, is called about every twentieth of the run.
	Progress func(done, total time.Duration)
	// Observers are told everything, as the metrics are.
	Observers []Observer
}

// Result is a scenario's run.
type Result struct {
	Sim     *Sim
	Metrics *Metrics
	Faults  []Fault // as run: random choices made
	Report  *Report
}

// Run runs the scenario to its end and reports.
func (sc Scenario) Run() (*Result, error) {
	if sc.Nodes < 1 {
		return nil, errors.New("sim: a scenario needs at least one node")
	}
	if sc.Duration <= 0 {
		return nil, errors.New("sim: a scenario needs a positive duration")
	}
	if sc.Engine.ProbeInterval == 0 {
		sc.Engine = DefaultEngineConfig()
	}
	faults, extra, err := sc.resolve()
	if err != nil {
		return nil, err
	}
	s := New(sc.Config)
	s.KeepLog = false
	m := NewMetrics(s)
	var tr *Trace
	if sc.Trace != nil {
		tr = NewTrace(sc.Trace)
		s.Observe(tr)
	}
	for _, o := range sc.Observers {
		s.Observe(o)
	}
	nodes := s.AddNodes(sc.Nodes + extra)
	initial := nodes[:sc.Nodes]
	switch sc.Join {
	case JoinBoot:
		s.Bootstrap(initial)
	default:
		s.Start(initial[0])
		for _, n := range initial[1:] {
			s.Start(n, initial[0])
		}
	}
	for _, f := range faults {
		sc.schedule(s, f)
	}
	step := max(sc.Duration/20, time.Second)
	for s.Elapsed() < sc.Duration {
		s.RunFor(min(step, sc.Duration-s.Elapsed()))
		if sc.Progress != nil {
			sc.Progress(s.Elapsed(), sc.Duration)
		}
	}
	if tr != nil {
		if err := tr.Flush(); err != nil {
			return nil, fmt.Errorf("sim: writing the trace: %w", err)
		}
	}
	r := m.Report()
	r.Setup = sc.describe(faults)
	return &Result{Sim: s, Metrics: m, Faults: faults, Report: r}, nil
}

// resolve draws the random nodes of the faults and numbers the joiners.
func (sc Scenario) resolve() ([]Fault, int, error) {
	rng := rand.New(rand.NewPCG(sc.Seed, 0x5ce7a210))
	used := make(map[int]bool)
	for _, f := range sc.Faults {
		for _, i := range f.Nodes {
			if i < 0 || i >= sc.Nodes {
				return nil, 0, fmt.Errorf("sim: %v at %v: no node %d (there are %d)", f.Kind, f.At, i, sc.Nodes)
			}
			used[i] = true
		}
	}
	pool := rng.Perm(sc.Nodes)
	draw := func(k int) ([]int, error) {
		var out []int
		for len(out) < k {
			if len(pool) == 0 {
				return nil, fmt.Errorf("sim: not enough nodes for the faults (%d nodes)", sc.Nodes)
			}
			i := pool[0]
			pool = pool[1:]
			if i == 0 || used[i] {
				continue
			}
			used[i] = true
			out = append(out, i)
		}
		return out, nil
	}
	extra := 0
	out := make([]Fault, 0, len(sc.Faults))
	for _, f := range sc.Faults {
		switch {
		case f.Kind == FaultJoin:
			k := max(f.Count, 1)
			f.Nodes = nil
			for range k {
				f.Nodes = append(f.Nodes, sc.Nodes+extra)
				extra++
			}
		case f.Nodes == nil:
			k := max(f.Count, 1)
			if f.Kind == FaultCut {
				k = max(f.Count, 2)
			}
			nodes, err := draw(k)
			if err != nil {
				return nil, 0, err
			}
			f.Nodes = nodes
		}
		f.Count = len(f.Nodes)
		out = append(out, f)
	}
	return out, extra, nil
}

func (sc Scenario) schedule(s *Sim, f Fault) {
	nodes := make([]*Node, len(f.Nodes))
	for i, x := range f.Nodes {
		nodes[i] = s.Node(x)
	}
	// restartSeed is node 0 if it is up, else any up node.
	restartSeed := func(not *Node) *Node {
		if n := s.Node(0); n.Up && n != not {
			return n
		}
		for _, n := range s.Nodes() {
			if n.Up && n != not {
				return n
			}
		}
		return nil
	}
	switch f.Kind {
	case FaultCrash:
		s.At(f.At, func() {
			for _, n := range nodes {
				s.Crash(n)
			}
		})
		if f.For > 0 {
			s.At(f.At+f.For, func() {
				for _, n := range nodes {
					if seed := restartSeed(n); seed != nil {
						s.Start(n, seed)
					} else {
						s.Start(n)
					}
				}
			})
		}
	case FaultPause:
		s.At(f.At, func() {
			for _, n := range nodes {
				s.Pause(n, f.For)
			}
		})
	case FaultPartition, FaultCut:
		s.At(f.At, func() {
			if f.Kind == FaultCut {
				h := len(nodes) / 2
				s.Cut(nodes[:h], nodes[h:])
			} else {
				s.Partition(nodes)
			}
		})
		if f.For > 0 {
			s.At(f.At+f.For, s.Heal)
		}
	case FaultLeave:
		s.At(f.At, func() {
			for _, n := range nodes {
				s.Leave(n)
			}
		})
		s.At(f.At+time.Second, func() {
			for _, n := range nodes {
				s.Crash(n)
			}
		})
	case FaultJoin:
		s.At(f.At, func() {
			for _, n := range nodes {
				if seed := restartSeed(n); seed != nil {
					s.Start(n, seed)
				} else {
					s.Start(n)
				}
			}
		})
	case FaultBroadcast:
		s.At(f.At, func() {
			for _, n := range nodes {
				if n.Up {
					s.Broadcast(n, fmt.Appendf(nil, "broadcast from n%d at %v", n.Index, f.At))
				}
			}
		})
	}
}

// describe says how the scenario was set up, in a few lines.
func (sc Scenario) describe(faults []Fault) []string {
	c := sc.Config
	var lat string
	switch {
	case c.Jitter <= 0:
		lat = fmt.Sprintf("latency %v fixed", c.Latency)
	case c.Dist == LatencyPareto:
		alpha := c.TailAlpha
		if alpha <= 0 {
			alpha = 2
		}
		lat = fmt.Sprintf("latency %v + long tail (Pareto, scale %v, shape %g)", c.Latency, c.Jitter, alpha)
	default:
		lat = fmt.Sprintf("latency %v + uniform [0, %v)", c.Latency, c.Jitter)
	}
	lines := []string{fmt.Sprintf("network: %s one way, loss %g%%", lat, 100*c.Loss)}
	if sc.Join == JoinBoot {
		lines = append(lines, "join: boot (every node starts with a full view: a cluster formed long ago)")
	} else {
		lines = append(lines, "join: seed (every node starts at 0 s and joins through node 0)")
	}
	e := c.Engine
	lines = append(lines, fmt.Sprintf("engine: period %v, suspicion mult %d, indirect checks %d, min probe timeout %v",
		e.ProbeInterval, e.SuspicionMult, e.IndirectChecks, e.MinProbeTimeout))
	faults = slices.Clone(faults)
	slices.SortStableFunc(faults, func(a, b Fault) int { return cmp.Compare(a.At, b.At) })
	for _, f := range faults {
		var b strings.Builder
		fmt.Fprintf(&b, "at %v: %v", f.At, f.Kind)
		switch f.Kind {
		case FaultJoin:
			fmt.Fprintf(&b, " of %d new nodes", len(f.Nodes))
		case FaultPartition:
			fmt.Fprintf(&b, " of %d nodes from the rest", len(f.Nodes))
		case FaultCut:
			fmt.Fprintf(&b, " between %d and %d nodes", len(f.Nodes)/2, len(f.Nodes)-len(f.Nodes)/2)
		default:
			fmt.Fprintf(&b, " of %s", indexList(f.Nodes))
		}
		if f.For > 0 {
			switch f.Kind {
			case FaultCrash:
				fmt.Fprintf(&b, ", restarted after %v", f.For)
			case FaultPause, FaultPartition, FaultCut:
				fmt.Fprintf(&b, " for %v", f.For)
			}
		}
		lines = append(lines, b.String())
	}
	return lines
}

func indexList(xs []int) string {
	if len(xs) > 8 {
		return fmt.Sprintf("%d nodes", len(xs))
	}
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("n%d", x)
	}
	return strings.Join(parts, ", ")
}
