package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/sim"
)

// runSim is `smudge sim`: a deterministic simulation of a cluster of N
// nodes with the smudge engine, on a virtual network and clock, and a
// report of what it measured.
//
//	smudge sim [-n N] [-duration D | -periods P] [-loss F] [-latency D] [-jitter D]
//	           [-crashes N] [-pauses N] [-partitions N] [-seed S] [-json] [-plot FILE.svg] ...
//
// Faults given by count (-crashes 3) hit random nodes (drawn from the seed)
// at times spread evenly between -warmup and the end, leaving time to
// detect the last one; -crash, -pause and -partition place them exactly.
// Exit status: 0, or 2 for a bad flag.
func runSim(args []string, stdout, stderr io.Writer) int {
	o, err := parseSimFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "smudge sim: %v\n", err)
		return exitUsage
	}
	sc, err := o.scenario()
	if err != nil {
		fmt.Fprintf(stderr, "smudge sim: %v\n", err)
		return exitUsage
	}
	var trace *os.File
	if o.trace != "" {
		if trace, err = os.Create(o.trace); err != nil {
			fmt.Fprintf(stderr, "smudge sim: %v\n", err)
			return exitError
		}
		defer trace.Close()
		sc.Trace = trace
	}
	if o.progress {
		start, cpu0 := time.Now(), cpuSeconds()
		sc.Progress = func(done, total time.Duration) {
			fmt.Fprintf(stderr, "smudge sim: %v of %v simulated, %v of wall time, %.1f s of CPU, %.0f MiB peak\n",
				done, total, time.Since(start).Round(100*time.Millisecond), cpuSeconds()-cpu0, peakRSSMiB())
		}
	}
	if total := totalMemory(); total > 0 {
		if need := estimateSimMemory(o.n, o.loss); float64(need) > 0.7*float64(total) {
			fmt.Fprintf(stderr, "smudge sim: %d nodes need about %.1f GiB (every node keeps every other: about %d bytes a pair), more than 70%% of this machine's %.1f GiB: use fewer nodes\n",
				o.n, float64(need)/(1<<30), simBytesPerPair, float64(total)/(1<<30))
			return exitError
		}
	}
	tuneGC(o.n)
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "smudge sim: %v\n", err)
			return exitError
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "smudge sim: %v\n", err)
			return exitError
		}
	}
	start, cpu0 := time.Now(), cpuSeconds()
	res, err := sc.Run()
	if o.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		fmt.Fprintf(stderr, "smudge sim: %v\n", err)
		return exitError
	}
	if o.memProfile != "" {
		if err := writeHeapProfile(o.memProfile); err != nil {
			fmt.Fprintf(stderr, "smudge sim: %v\n", err)
			return exitError
		}
	}
	r := res.Report
	r.Wall = &sim.Wall{Seconds: time.Since(start).Seconds(), CPUSeconds: cpuSeconds() - cpu0, PeakRSSMiB: peakRSSMiB()}
	if o.plot != "" {
		if err := writePlot(o.plot, r, o.title()); err != nil {
			fmt.Fprintf(stderr, "smudge sim: %v\n", err)
			return exitError
		}
	}
	if o.json {
		err = r.WriteJSON(stdout)
	} else {
		err = r.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "smudge sim: %v\n", err)
		return exitError
	}
	return exitOK
}

// writeHeapProfile writes the live heap at the end of the run (the
// simulation is still referenced, so its engines are in it).
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

func writePlot(path string, r *sim.Report, title string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := r.WriteSVG(f, title); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// simOptions are the flags of smudge sim.
type simOptions struct {
	n                           int
	duration, period, warmup    time.Duration
	periods                     int
	loss                        float64
	pushPull                    bool          // -push-pull
	pushPullInterval            time.Duration // -push-pull-interval
	latency, jitter             time.Duration
	dist                        string
	join                        string
	seed                        uint64
	crashes, pauses, partitions int
	leaves, joins, broadcasts   int
	restartAfter, pauseFor      time.Duration
	partitionFor                time.Duration
	partitionSize               string
	crashAt, pauseAt, partAt    []string
	json, progress              bool
	plot, trace                 string
	cpuProfile, memProfile      string
	suspicionMult, indirect     int
}

// parseSimFlags parses the flags of smudge sim; flag.ErrHelp for -h.
func parseSimFlags(args []string, stderr io.Writer) (*simOptions, error) {
	o := &simOptions{}
	fs := flag.NewFlagSet("smudge sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := sim.DefaultEngineConfig()
	fs.IntVar(&o.n, "n", 1000, "number of `nodes`")
	fs.DurationVar(&o.duration, "duration", 0, "simulated `time` (default: 60s after -warmup's default, -warmup's faults included)")
	fs.IntVar(&o.periods, "periods", 0, "simulated time in protocol `periods` (overrides -duration)")
	fs.DurationVar(&o.period, "period", def.ProbeInterval, "protocol period (SMUDGE_HEARTBEAT_MILLIS)")
	fs.IntVar(&o.suspicionMult, "suspicion-mult", def.SuspicionMult, "suspicion timeout multiplier (SMUDGE_SUSPICION_MULT)")
	fs.IntVar(&o.indirect, "indirect-checks", def.IndirectChecks, "cap on ping-req relays (SMUDGE_INDIRECT_CHECKS)")
	fs.Func("loss", "packet loss `rate`, as 0.05 or 5% (default 0)", func(s string) error {
		v, err := parseFraction(s)
		o.loss = v
		return err
	})
	fs.DurationVar(&o.latency, "latency", time.Millisecond, "one-way base latency")
	fs.DurationVar(&o.jitter, "jitter", time.Millisecond, "latency spread above the base: uniform width, or Pareto scale")
	fs.StringVar(&o.dist, "latency-dist", "uniform", "latency distribution: uniform (fixed when -jitter is 0) or pareto (long-tailed)")
	fs.StringVar(&o.join, "join", "auto", "how the cluster forms: seed (all start at 0 and join through node 0), boot (full views from the start), auto (seed up to 2000 nodes, boot above)")
	fs.Uint64Var(&o.seed, "seed", 1, "random `seed`: the same seed and flags give the same run")
	fs.DurationVar(&o.warmup, "warmup", 0, "random faults start after this (default: 5s for boot; for seed, 5s + 40ms a node, the time a join storm takes)")
	fs.IntVar(&o.crashes, "crashes", 3, "random crashes")
	fs.DurationVar(&o.restartAfter, "restart-after", 0, "crashed nodes restart after this (0: never)")
	fs.IntVar(&o.pauses, "pauses", 0, "random pauses (a slow node processes nothing for -pause-for)")
	fs.DurationVar(&o.pauseFor, "pause-for", 5*time.Second, "length of random pauses")
	fs.IntVar(&o.partitions, "partitions", 0, "random partitions (-partition-size nodes cut off for -partition-for)")
	fs.DurationVar(&o.partitionFor, "partition-for", 10*time.Second, "length of random partitions")
	fs.StringVar(&o.partitionSize, "partition-size", "5%", "nodes cut off by a partition: a count or a percentage")
	fs.IntVar(&o.leaves, "leaves", 0, "random graceful leaves")
	fs.IntVar(&o.joins, "joins", 0, "nodes that join later, one at a time")
	fs.IntVar(&o.broadcasts, "broadcasts", 3, "broadcasts, from random nodes")
	fs.Func("crash", "crash at `AT[:NODE]` (e.g. 20s or 20s:17); repeatable", func(s string) error { o.crashAt = append(o.crashAt, s); return nil })
	fs.Func("pause", "pause at `AT+FOR[:NODE]` (e.g. 20s+5s); repeatable", func(s string) error { o.pauseAt = append(o.pauseAt, s); return nil })
	fs.Func("partition", "partition at `AT+FOR[:SIZE]` (e.g. 20s+10s:5%); repeatable", func(s string) error { o.partAt = append(o.partAt, s); return nil })
	fs.BoolVar(&o.pushPull, "push-pull", false, "push-pull state sync between random members (SMUDGE_PUSH_PULL_INTERVAL)")
	fs.DurationVar(&o.pushPullInterval, "push-pull-interval", 30*time.Second, "push-pull interval, stretched above 32 members (with -push-pull)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.StringVar(&o.plot, "plot", "", "write an SVG `file` of the fraction of nodes aware of each crash and broadcast over time")
	fs.StringVar(&o.trace, "trace", "", "write the event log to `file` (every status change and delivery at every node: large)")
	fs.BoolVar(&o.progress, "progress", false, "report progress on standard error")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to `file` (go tool pprof)")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile at the end of the run to `file` (go tool pprof)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: smudge sim [flags]\n\n"+
			"Simulates a cluster of smudge nodes on a virtual network and clock, deterministically\n"+
			"from -seed, and reports convergence, crash detection, false positives, traffic and\n"+
			"broadcast spread. Faults given by count hit random nodes at times spread evenly\n"+
			"between -warmup and the end.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("bad flag: %w", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case o.n < 1:
		return nil, fmt.Errorf("-n %d: need at least one node", o.n)
	case o.n > 1<<20:
		return nil, fmt.Errorf("-n %d: at most %d nodes", o.n, 1<<20)
	case o.periods < 0:
		return nil, fmt.Errorf("-periods %d: must not be negative", o.periods)
	case o.period <= 0:
		return nil, fmt.Errorf("-period %v: must be positive", o.period)
	case o.duration < 0:
		return nil, fmt.Errorf("-duration %v: must be positive", o.duration)
	case o.warmup < 0:
		return nil, fmt.Errorf("-warmup %v: must not be negative", o.warmup)
	case o.latency < 0 || o.jitter < 0:
		return nil, errors.New("-latency and -jitter must not be negative")
	case o.dist != "uniform" && o.dist != "pareto":
		return nil, fmt.Errorf("-latency-dist %q: uniform or pareto", o.dist)
	case o.join != "auto" && o.join != "seed" && o.join != "boot":
		return nil, fmt.Errorf("-join %q: seed, boot or auto", o.join)
	case o.crashes < 0 || o.pauses < 0 || o.partitions < 0 || o.leaves < 0 || o.joins < 0 || o.broadcasts < 0:
		return nil, errors.New("fault counts must not be negative")
	case o.suspicionMult < 1:
		return nil, fmt.Errorf("-suspicion-mult %d: at least 1", o.suspicionMult)
	case o.indirect < 0:
		return nil, fmt.Errorf("-indirect-checks %d: must not be negative", o.indirect)
	}
	if o.warmup == 0 {
		o.warmup = 5 * time.Second
		if o.joinMode() == sim.JoinSeed {
			o.warmup += time.Duration(o.n) * 40 * time.Millisecond
		}
	}
	switch {
	case o.periods > 0:
		o.duration = time.Duration(o.periods) * o.period
	case o.duration == 0:
		o.duration = 55*time.Second + o.warmup
	}
	return o, nil
}

func (o *simOptions) joinMode() sim.JoinMode {
	if o.join == "boot" || (o.join == "auto" && o.n > 2000) {
		return sim.JoinBoot
	}
	return sim.JoinSeed
}

func (o *simOptions) title() string {
	return fmt.Sprintf("smudge sim: %d nodes, loss %g%%, seed %d", o.n, 100*o.loss, o.seed)
}

// scenario turns the options into a sim.Scenario.
func (o *simOptions) scenario() (sim.Scenario, error) {
	cfg := sim.DefaultEngineConfig()
	cfg.ProbeInterval = o.period
	cfg.SuspicionMult = o.suspicionMult
	cfg.IndirectChecks = o.indirect
	sc := sim.Scenario{
		Config: sim.Config{Seed: o.seed, Latency: o.latency, Jitter: o.jitter, Loss: o.loss, Engine: cfg,
			PushPull: o.pushPull, PushPullInterval: o.pushPullInterval},
		Nodes: o.n, Duration: o.duration, Join: o.joinMode(),
	}
	if o.dist == "pareto" {
		sc.Dist = sim.LatencyPareto
	}
	warmup := o.warmup
	// Leave time to detect the last crash: the suspicion timeout and 30
	// periods, or a third of the run, whichever is shorter.
	tail := min(swim.SuspicionTimeout(cfg.SuspicionMult, o.n, cfg.ProbeInterval)+30*cfg.ProbeInterval, o.duration/3)
	end := o.duration - tail
	if warmup >= end {
		warmup = o.duration / 4
	}
	spread := func(k int, phase float64) []time.Duration {
		out := make([]time.Duration, k)
		for i := range out {
			out[i] = warmup + time.Duration((float64(i)+phase)/float64(k)*float64(end-warmup))
		}
		return out
	}
	size := 0
	if o.partitions > 0 || len(o.partAt) > 0 {
		var err error
		if size, err = o.partitionNodes(o.partitionSize); err != nil {
			return sc, fmt.Errorf("-partition-size: %w", err)
		}
	}
	add := func(f sim.Fault) { sc.Faults = append(sc.Faults, f) }
	for _, at := range spread(o.broadcasts, 0.1) {
		add(sim.Fault{Kind: sim.FaultBroadcast, At: at})
	}
	for _, at := range spread(o.crashes, 0.3) {
		add(sim.Fault{Kind: sim.FaultCrash, At: at, For: o.restartAfter})
	}
	for _, at := range spread(o.pauses, 0.5) {
		add(sim.Fault{Kind: sim.FaultPause, At: at, For: o.pauseFor})
	}
	for _, at := range spread(o.partitions, 0.6) {
		add(sim.Fault{Kind: sim.FaultPartition, At: at, For: o.partitionFor, Count: size})
	}
	for _, at := range spread(o.leaves, 0.8) {
		add(sim.Fault{Kind: sim.FaultLeave, At: at})
	}
	for _, at := range spread(o.joins, 0.9) {
		add(sim.Fault{Kind: sim.FaultJoin, At: at, Count: 1})
	}
	for _, s := range o.crashAt {
		at, _, node, err := parseFaultSpec(s, false)
		if err != nil {
			return sc, fmt.Errorf("-crash %q: %w", s, err)
		}
		f := sim.Fault{Kind: sim.FaultCrash, At: at, For: o.restartAfter}
		if node != "" {
			i, err := o.nodeIndex(node)
			if err != nil {
				return sc, fmt.Errorf("-crash %q: %w", s, err)
			}
			f.Nodes = []int{i}
		}
		add(f)
	}
	for _, s := range o.pauseAt {
		at, d, node, err := parseFaultSpec(s, true)
		if err != nil {
			return sc, fmt.Errorf("-pause %q: %w", s, err)
		}
		f := sim.Fault{Kind: sim.FaultPause, At: at, For: d}
		if node != "" {
			i, err := o.nodeIndex(node)
			if err != nil {
				return sc, fmt.Errorf("-pause %q: %w", s, err)
			}
			f.Nodes = []int{i}
		}
		add(f)
	}
	for _, s := range o.partAt {
		at, d, sz, err := parseFaultSpec(s, true)
		if err != nil {
			return sc, fmt.Errorf("-partition %q: %w", s, err)
		}
		k := size
		if sz != "" {
			if k, err = o.partitionNodes(sz); err != nil {
				return sc, fmt.Errorf("-partition %q: %w", s, err)
			}
		}
		add(sim.Fault{Kind: sim.FaultPartition, At: at, For: d, Count: k})
	}
	for _, f := range sc.Faults {
		if f.At >= o.duration {
			return sc, fmt.Errorf("a %v at %v is after the end of the run (%v)", f.Kind, f.At, o.duration)
		}
	}
	return sc, nil
}

// partitionNodes reads a partition size: a count or a percentage of -n.
func (o *simOptions) partitionNodes(s string) (int, error) {
	var k int
	if strings.HasSuffix(s, "%") {
		f, err := parseFraction(s)
		if err != nil {
			return 0, err
		}
		k = int(math.Round(f * float64(o.n)))
	} else {
		var err error
		if k, err = strconv.Atoi(s); err != nil {
			return 0, fmt.Errorf("partition size %q: a count or a percentage", s)
		}
	}
	if k < 1 || k >= o.n {
		return 0, fmt.Errorf("partition size %q: %d nodes of %d", s, k, o.n)
	}
	return k, nil
}

func (o *simOptions) nodeIndex(s string) (int, error) {
	i, err := strconv.Atoi(strings.TrimPrefix(s, "n"))
	if err != nil || i < 0 || i >= o.n {
		return 0, fmt.Errorf("node %q: a node index from 0 to %d", s, o.n-1)
	}
	return i, nil
}

// parseFaultSpec reads AT[+FOR][:EXTRA]; FOR is required when withFor.
func parseFaultSpec(s string, withFor bool) (at, d time.Duration, extra string, err error) {
	spec, extra, _ := strings.Cut(s, ":")
	atS, forS, hasFor := strings.Cut(spec, "+")
	if at, err = time.ParseDuration(atS); err != nil || at < 0 {
		return 0, 0, "", fmt.Errorf("time %q: a duration such as 20s", atS)
	}
	switch {
	case withFor && !hasFor:
		return 0, 0, "", errors.New("give a length: AT+FOR, such as 20s+5s")
	case !withFor && hasFor:
		return 0, 0, "", errors.New("no length expected")
	case hasFor:
		if d, err = time.ParseDuration(forS); err != nil || d <= 0 {
			return 0, 0, "", fmt.Errorf("length %q: a positive duration such as 5s", forS)
		}
	}
	return at, d, extra, nil
}

// parseFraction reads 0.05 or 5%.
func parseFraction(s string) (float64, error) {
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("%q: a fraction such as 0.05 or 5%%", s)
	}
	if pct {
		v /= 100
	}
	if v < 0 || v > 1 || math.IsNaN(v) {
		return 0, fmt.Errorf("%q: between 0 and 1 (0%% and 100%%)", s)
	}
	return v, nil
}

// tuneGC bounds the heap of large simulations (their live heap is about
// 130 bytes per pair of nodes): the collector runs as usual, and more
// often near 80% of the machine's memory rather than letting the heap
// double past it.
func tuneGC(n int) {
	if n < 2000 {
		return
	}
	if total := totalMemory(); total > 0 {
		debug.SetMemoryLimit(int64(float64(total) * 0.8))
	}
}

// simBytesPerPair is the memory a simulation takes for each node's entry
// about each other node: the member (80-96 bytes), its places in the order,
// the probe list and the table, and the garbage collector's headroom.
const simBytesPerPair = 120

// estimateSimMemory is the memory a simulation of n nodes is expected to
// reach, in bytes: its member tables, 64 KiB of buffers and queues a node,
// and a quarter more with loss (whose suspicions fill the gossip queues).
func estimateSimMemory(n int, loss float64) uint64 {
	est := float64(n)*float64(n)*simBytesPerPair + float64(n)*(64<<10) + (64 << 20)
	if loss > 0 {
		est *= 1.25
	}
	return uint64(est)
}

// totalMemory is the machine's memory in bytes, 0 if unknown.
func totalMemory() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}
