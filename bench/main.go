// Command bench runs the same real-UDP scenarios on loopback with smudge and
// with github.com/hashicorp/memberlist, side by side, and judges smudge
// against issue #8's targets:
//
//   - kill: one node stops without a word; the time until every survivor
//     reports it DEAD is at most 0.5× memberlist's (the median over -kills
//     nodes killed one after another in each run);
//   - broadcast: one node broadcasts a short message; the time until every
//     other node has it is at most 0.2× memberlist's;
//   - join: at 64 nodes, N nodes started together, each joining through
//     node 0, all see all within 2 s, in every one of -joins cluster starts;
//   - steady cost: over one memberlist push-pull period (so that its TCP
//     sync is counted), packets per node per second at most memberlist's,
//     bytes at most 0.7× memberlist's;
//   - slow nodes: while a few nodes' traffic is cut off for 1-3 s each, no
//     node declares a healthy node DEAD.
//
// Each is measured at equal probe interval (equal-1s, equal-200ms) and at
// each library's defaults, at 16 and 64 nodes. Each library runs in this
// one process with its N nodes inside, one library at a time (runs
// alternate which goes first); every wait is bounded, and -timeout bounds
// the whole.
//
// Run as root, bench re-executes itself inside a network namespace of its
// own (unshare --net: loopback only, gone when it exits). There iptables
// counts every packet the nodes send, UDP and TCP, with IP headers
// (memberlist's push-pull and fallback pings are TCP), and slow nodes are
// made by dropping a node's traffic with iptables (each node has a port of
// its own). Without root the slow-node scenario is skipped, saying why, and
// the traffic is the libraries' own count (smudge: Cluster.Stats;
// memberlist: its transport, wrapped) plus header sizes, with TCP packets
// estimated from the streams opened and marked "est.".
//
// smudge's nodes each use a raw *smudge.UDPTransport, so that its stream
// transport (TCP on the same port) is on, as in a deployment. memberlist
// has no broadcast of its own: as Serf and Consul do, each node queues the
// message in a TransmitLimitedQueue, and re-queues it the first time it
// receives it.
//
// Usage (from the bench directory, or make bench-compare / bench-quick):
//
//	go run . [-n 16,64] [-configs equal-1s,equal-200ms,defaults] [-runs 1] [-joins 10] [-kills 3]
//	         [-window 0] [-settle -1] [-libs smudge,memberlist] [-markdown] [-v] [-timeout 30m]
package main

import (
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// config is one way of setting up both libraries.
type config struct {
	name string
	// what says how, for the output.
	what string
	// smudge's and memberlist's probe intervals, and memberlist's probe
	// timeout; zero means the library's default.
	smudgeInterval, memberlistInterval, memberlistTimeout time.Duration
	// equal is whether both probe at the same interval.
	equal bool
}

var configs = []config{
	{name: "equal-1s", what: "both probe every 1 s (smudge HeartbeatInterval 1s; memberlist DefaultLANConfig: ProbeInterval 1s, ProbeTimeout 500ms)",
		smudgeInterval: time.Second, memberlistInterval: time.Second, memberlistTimeout: 500 * time.Millisecond, equal: true},
	{name: "equal-200ms", what: "both probe every 200 ms (smudge HeartbeatInterval 200ms; memberlist ProbeInterval 200ms, ProbeTimeout 150ms like smudge's MinPingTime, DefaultLANConfig otherwise)",
		smudgeInterval: 200 * time.Millisecond, memberlistInterval: 200 * time.Millisecond, memberlistTimeout: 150 * time.Millisecond, equal: true},
	{name: "defaults", what: "each library's defaults (smudge DefaultConfig: 250 ms period; memberlist DefaultLANConfig: 1 s probe interval, gossip every 200 ms, push-pull every 30 s)"},
}

func configByName(s string) (config, bool) {
	for _, c := range configs {
		if c.name == s {
			return c, true
		}
	}
	return config{}, false
}

const (
	libSmudge     = "smudge"
	libMemberlist = "memberlist"
	// joinJudgedAt is the size at which the join target applies.
	joinJudgedAt = 64
	joinTarget   = 2 * time.Second
)

func main() {
	nList := flag.String("n", "16,64", "cluster sizes, comma separated")
	cfgList := flag.String("configs", "equal-1s,equal-200ms,defaults", "configurations: equal-1s, equal-200ms (both libraries probe at that interval), defaults (each library's)")
	runs := flag.Int("runs", 1, "runs of each library in each configuration and size; the table shows the median and, with more than one, the range")
	joins := flag.Int("joins", 10, "cluster starts for the join row at 64 nodes (and more), the runs' own starts included")
	kills := flag.Int("kills", 3, "nodes killed in each run, one after another; the kill row is the median of every kill")
	window := flag.Duration("window", 0, "traffic window; 0 means one memberlist push-pull period at that size (30 s up to 32 nodes, 60 s at 64), so that its TCP sync is counted")
	settle := flag.Duration("settle", -1, "wait after the join before measuring traffic; -1 means one memberlist push-pull period, so that the window holds every node's first periodic sync of both libraries (memberlist's comes 1-2 periods after the start, smudge's 0-1)")
	libList := flag.String("libs", "smudge,memberlist", "libraries to run: smudge, memberlist or both (ratios and targets need both)")
	markdown := flag.Bool("markdown", false, "print the tables in Markdown")
	verbose := flag.Bool("v", false, "log every step's figures to stderr")
	useNetns := flag.Bool("netns", true, "when root, run in a network namespace of its own, with iptables counters and slow nodes")
	timeout := flag.Duration("timeout", 30*time.Minute, "give up (exit status 1) after this long")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	var ns []int
	for _, s := range strings.Split(*nList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 5 || n > 512 {
			fmt.Fprintf(os.Stderr, "bench: -n %q: sizes from 5 to 512\n", s)
			os.Exit(2)
		}
		ns = append(ns, n)
	}
	var cfgs []config
	for _, s := range strings.Split(*cfgList, ",") {
		c, ok := configByName(strings.TrimSpace(s))
		if !ok {
			fmt.Fprintf(os.Stderr, "bench: -configs %q: equal-1s, equal-200ms or defaults\n", s)
			os.Exit(2)
		}
		cfgs = append(cfgs, c)
	}
	var libs []string
	for _, s := range strings.Split(*libList, ",") {
		s = strings.TrimSpace(s)
		if s != libSmudge && s != libMemberlist || slices.Contains(libs, s) {
			fmt.Fprintf(os.Stderr, "bench: -libs %q: smudge and/or memberlist, once each\n", s)
			os.Exit(2)
		}
		libs = append(libs, s)
	}
	if *runs < 1 || *runs > 20 {
		fmt.Fprintf(os.Stderr, "bench: -runs %d: from 1 to 20\n", *runs)
		os.Exit(2)
	}
	if *kills < 1 || *kills > 5 {
		fmt.Fprintf(os.Stderr, "bench: -kills %d: from 1 to 5\n", *kills)
		os.Exit(2)
	}
	if *joins < 0 || *joins > 100 {
		fmt.Fprintf(os.Stderr, "bench: -joins %d: from 0 to 100\n", *joins)
		os.Exit(2)
	}
	if *window < 0 || *settle < -1 {
		fmt.Fprintln(os.Stderr, "bench: -window must not be negative, nor -settle but for -1")
		os.Exit(2)
	}

	// Root's extras: a network namespace with iptables.
	var netnsWhy string // why there is none
	var nsp *netns
	switch {
	case !*useNetns:
		netnsWhy = "-netns=false"
	case os.Getenv(envInNetns) == "1":
		var err error
		if nsp, err = setupNetns(); err != nil {
			netnsWhy = "iptables in the network namespace failed: " + err.Error()
		}
	case os.Geteuid() != 0:
		netnsWhy = "not root (iptables in a network namespace of its own needs root)"
	default:
		err := reexecInNetns(*timeout) // returns only on failure
		netnsWhy = "could not enter a network namespace of its own: " + err.Error()
	}
	if netnsWhy != "" {
		fmt.Fprintf(os.Stderr, "bench: no iptables (%s): the slow-node scenario is skipped, and TCP traffic is estimated from the libraries' own counts\n", netnsWhy)
	}

	time.AfterFunc(*timeout, func() {
		fmt.Fprintf(os.Stderr, "bench: gave up after %v (-timeout)\n", *timeout)
		os.Exit(1)
	})
	mlVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/hashicorp/memberlist" {
				mlVersion = d.Version
			}
		}
	}
	begin := time.Now()
	where := "127.0.0.1 in a network namespace of its own, traffic counted by iptables (IP headers included)"
	if nsp == nil {
		where = "127.0.0.1, traffic from the libraries' own counts plus header sizes (" + netnsWhy + ")"
	}
	fmt.Printf("smudge vs hashicorp/memberlist %s: real UDP on %s; N nodes in one process per library, one library at a time; %s, %d CPUs, %s, load average at start %s\n",
		mlVersion, where, time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), loadAvg())

	var rows []row
	for _, c := range cfgs {
		for _, n := range ns {
			w := *window
			if w == 0 {
				w = pushPullPeriod(n)
			}
			st := *settle
			if st < 0 {
				st = pushPullPeriod(n)
			}
			p := params{window: w, settle: st, kills: min(*kills, maxKills(n)), ns: nsp, verbose: *verbose}
			r := row{cfg: c, n: n, window: w, res: map[string][]result{}, joins: map[string][]time.Duration{}}
			if p.kills < *kills {
				r.notes = append(r.notes, fmt.Sprintf("%s, %d nodes: %d kill(s) a run, not %d (node 0, the broadcaster and %d slow-node candidates stay)", c.name, n, p.kills, *kills, slowCount(n)))
			}
			for k := range *runs {
				seed := runSeed(c.name, n, k)
				for _, lib := range order(libs, k) {
					fmt.Fprintf(os.Stderr, "bench: %s, %d nodes, run %d of %d: %s (window %v, load %s, %v so far)\n", c.name, n, k+1, *runs, lib, w, loadAvg(), time.Since(begin).Round(time.Second))
					runtime.GC() // the last run's garbage is not this one's work
					res := runScenarios(starterFor(lib, c, nsp != nil), n, c, p, seed)
					r.res[lib] = append(r.res[lib], res)
					r.joins[lib] = append(r.joins[lib], res.join)
				}
			}
			if n >= joinJudgedAt {
				for k := *runs; k < *joins; k++ {
					for _, lib := range order(libs, k) {
						fmt.Fprintf(os.Stderr, "bench: %s, %d nodes, join start %d of %d: %s (load %s, %v so far)\n", c.name, n, k+1, *joins, lib, loadAvg(), time.Since(begin).Round(time.Second))
						runtime.GC()
						ds, notes := joinStarts(starterFor(lib, c, nsp != nil), n, 1, p)
						r.joins[lib] = append(r.joins[lib], ds...)
						for _, nt := range notes {
							r.notes = append(r.notes, fmt.Sprintf("%s, %d nodes, %s, join start %d: %s", c.name, n, lib, k+1, nt))
						}
					}
				}
			}
			rows = append(rows, r)
		}
	}
	report(rows, cfgs, libs, *runs, *joins, *kills, *markdown, nsp != nil, netnsWhy)
	fmt.Printf("Total run %v; load average at the end %s.\n", time.Since(begin).Round(time.Second), loadAvg())
}

// row is one configuration at one size: each library's runs and join
// times.
type row struct {
	cfg    config
	n      int
	window time.Duration
	res    map[string][]result
	joins  map[string][]time.Duration
	notes  []string
}

// order is libs, rotated by k: runs alternate which library goes first, so
// that neither always runs on a warmer (or more loaded) machine.
func order(libs []string, k int) []string {
	out := slices.Clone(libs)
	if k%2 == 1 {
		slices.Reverse(out)
	}
	return out
}

// runSeed picks the slow nodes and their pauses: the same for both
// libraries in one run.
func runSeed(cfg string, n, k int) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d/%d", cfg, n, k)
	return h.Sum64()
}

func starterFor(name string, c config, mark bool) starter {
	if name == libSmudge {
		return func(n int, tr *tracker) (lib, time.Time, error) {
			s, at, err := startSmudge(n, c, tr)
			if err != nil {
				return nil, at, err
			}
			return s, at, nil
		}
	}
	return func(n int, tr *tracker) (lib, time.Time, error) {
		m, at, err := startMemberlist(n, c, tr, mark)
		if err != nil {
			return nil, at, err
		}
		return m, at, nil
	}
}

// measure is one line of a table.
type measure struct {
	name, short string
	get         func(result) float64 // -1: did not happen in time
	// each, instead of get, gives several values a run (+Inf: not in
	// time); the cell is the median of all of them over the runs.
	each func(result) []float64
	// est marks traffic figures estimated without iptables.
	est bool
	// target is the most smudge / memberlist may be (0: not judged).
	target float64
	// equalOnly: at the defaults the target is shown but the probe
	// intervals differ (see the notes).
	equalOnly bool
}

var measures = []measure{
	{name: "broadcast to all (s)", short: "broadcast", get: func(r result) float64 { return secs(r.broadcast) }, target: 0.2},
	{name: "kill to DEAD at all survivors (s)", short: "kill", each: func(r result) []float64 { return durs(r.kills) }, target: 0.5},
	{name: "packets sent / node / s (UDP+TCP)", short: "packets", get: func(r result) float64 { return r.traffic.pkts() }, est: true, target: 1, equalOnly: true},
	{name: "bytes sent / node / s (UDP+TCP, IP headers)", short: "bytes", get: func(r result) float64 { return r.traffic.bytes() }, est: true, target: 0.7, equalOnly: true},
	{name: "  UDP packets / node / s", get: func(r result) float64 { return r.traffic.udpPkts }},
	{name: "  UDP bytes / node / s", get: func(r result) float64 { return r.traffic.udpBytes }},
	{name: "  TCP packets / node / s", get: func(r result) float64 { return r.traffic.tcpPkts }, est: true},
	{name: "  TCP bytes / node / s", get: func(r result) float64 { return r.traffic.tcpBytes }, est: true},
	{name: "  TCP connections opened / node / s", get: func(r result) float64 { return r.traffic.streams }},
	{name: "  CPU ms / node / s", get: func(r result) float64 { return r.traffic.cpuMs }},
}

// verdicts tallies the judged targets.
type verdicts struct {
	pass, miss, skipped int
	misses              []string
}

func (v *verdicts) judge(ok bool, what string) string {
	if ok {
		v.pass++
		return "PASS"
	}
	v.miss++
	v.misses = append(v.misses, what)
	return "MISS"
}

func report(rows []row, cfgs []config, libs []string, runs, joins, kills int, markdown, iptables bool, netnsWhy string) {
	both := len(libs) == 2
	has := func(lib string) bool { return slices.Contains(libs, lib) }
	var v verdicts
	var notes []string
	for _, c := range cfgs {
		fmt.Printf("\nconfig %q: %s\n\n", c.name, c.what)
		var tw *tabwriter.Writer
		head := []string{"N", "measure", "smudge", "memberlist", "smudge/memberlist", "target", "verdict"}
		if markdown {
			fmt.Println("| " + strings.Join(head, " | ") + " |")
			fmt.Println("|---|---|---|---|---|---|---|")
		} else {
			tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, strings.Join(head, "\t"))
		}
		line := func(cells ...string) {
			if tw != nil {
				fmt.Fprintln(tw, strings.Join(cells, "\t"))
			} else {
				fmt.Println("| " + strings.Join(cells, " | ") + " |")
			}
		}
		for _, r := range rows {
			if r.cfg.name != c.name {
				continue
			}
			N := strconv.Itoa(r.n)
			where := fmt.Sprintf("%s %d", c.name, r.n)

			// Join: judged at 64 nodes (and more), on every start.
			js, jm := durs(r.joins[libSmudge]), durs(r.joins[libMemberlist])
			name := "join: all see all (s)"
			target, verdict := "", ""
			if r.n >= joinJudgedAt {
				name = fmt.Sprintf("join: all see all, %d starts (s)", max(len(js), len(jm)))
				target = fmt.Sprintf("every start <= %v", joinTarget)
				if has(libSmudge) && len(js) > 0 {
					over := 0
					for _, d := range js {
						if math.IsInf(d, 1) || d > joinTarget.Seconds() {
							over++
						}
					}
					verdict = v.judge(over == 0 && len(js) >= joins, fmt.Sprintf("%s join (%d of %d starts over %v, max %s s)", where, over, len(js), joinTarget, num(slices.Max(js))))
					if len(js) < joins {
						verdict += fmt.Sprintf(" (%d of %d starts)", len(js), joins)
					}
				} else {
					verdict = "n/a"
					v.skipped++
				}
			}
			line(N, name, cellOf(js, has(libSmudge), false), cellOf(jm, has(libMemberlist), false), ratio(median(js), median(jm), both), target, verdict)

			for _, m := range measures {
				us, ml := collect(r.res[libSmudge], m), collect(r.res[libMemberlist], m)
				estU := m.est && anyEst(r.res[libSmudge])
				estM := m.est && anyEst(r.res[libMemberlist])
				target, verdict := "", ""
				if m.target > 0 {
					target = fmt.Sprintf("<= %g x", m.target)
					// Judged on the ratio as printed (two decimals).
					rt, _ := strconv.ParseFloat(ratio(median(us), median(ml), true), 64)
					switch {
					case !both:
						verdict = "n/a"
						v.skipped++
					case math.IsInf(median(us), 1):
						verdict = v.judge(false, where+" "+m.short+" (smudge timed out)")
					case !measured(r.res[libMemberlist]):
						// memberlist's cluster never formed: nothing to compare with.
						verdict = "n/a (memberlist did not join)"
						v.skipped++
					case math.IsInf(median(ml), 1):
						verdict = v.judge(true, "")
					default:
						verdict = v.judge(rt <= m.target, fmt.Sprintf("%s %s %sx", where, m.short, ratio(median(us), median(ml), true)))
					}
					if m.equalOnly && !c.equal && verdict == "MISS" {
						verdict += " (periods differ: note 1)"
					}
				}
				line(N, m.name, cellOf(us, has(libSmudge), estU), cellOf(ml, has(libMemberlist), estM), ratio(median(us), median(ml), both), target, verdict)
			}

			// Slow nodes: no DEAD about healthy nodes.
			name = "DEAD about healthy nodes, slow nodes paused 1-3 s"
			if !iptables {
				line(N, name, "skipped", "skipped", "", "0", "skipped: "+netnsWhy)
				v.skipped++
			} else {
				fs, fm := slowCell(r.res[libSmudge], has(libSmudge)), slowCell(r.res[libMemberlist], has(libMemberlist))
				verdict := "n/a"
				if has(libSmudge) {
					total, ran := 0, 0
					for _, x := range r.res[libSmudge] {
						if x.slow.ran {
							total += x.slow.falsePairs
							ran++
						}
					}
					verdict = v.judge(ran == len(r.res[libSmudge]) && total == 0, fmt.Sprintf("%s slow nodes (%d DEAD declarations about healthy nodes, %d of %d runs done)", where, total, ran, len(r.res[libSmudge])))
				} else {
					v.skipped++
				}
				line(N, name, fs, fm, "", "0 (smudge)", verdict)
				line(N, "  paused nodes declared DEAD by some node", pausedCell(r.res[libSmudge], has(libSmudge)), pausedCell(r.res[libMemberlist], has(libMemberlist)), "", "", "")
			}

			for _, lib := range libs {
				for k, x := range r.res[lib] {
					for _, nt := range x.notes {
						notes = append(notes, fmt.Sprintf("%s, %s, run %d: %s", where, lib, k+1, nt))
					}
					if x.err != nil {
						notes = append(notes, fmt.Sprintf("%s, %s, run %d: error: %v", where, lib, k+1, x.err))
					}
					if x.err == nil && x.join < 0 {
						notes = append(notes, fmt.Sprintf("%s, %s, run %d: the nodes did not all see each other within 60 s; the run measured nothing else", where, lib, k+1))
					}
				}
			}
			notes = append(notes, r.notes...)
			if pp := pushPullPeriod(r.n); r.window < pp && has(libMemberlist) && !slices.Contains(notes, shortWindow(r.window, pp)) {
				notes = append(notes, shortWindow(r.window, pp))
			}
		}
		if tw != nil {
			tw.Flush()
		}
	}

	fmt.Println("\nNotes:")
	fmt.Println("1. At the defaults smudge probes every 250 ms and memberlist every 1 s, so smudge sends about 4x the packets; the equal-interval rows compare the cost per probe. The packet and byte targets are shown at the defaults too, and are expected to be missed there.")
	if iptables {
		fmt.Println("2. Packets and bytes are what iptables counted leaving the nodes in the network namespace (OUTPUT chain: UDP and TCP, IP headers included), over the traffic window.")
	} else {
		fmt.Printf("2. Without iptables (%s), UDP packets and bytes are the libraries' own counts (smudge: Cluster.Stats; memberlist: its transport's WriteTo) plus %d header bytes each; TCP bytes are memberlist's stream payload plus %d header bytes per packet, with %d packets per connection opened: \"est.\".\n", netnsWhy, udpHeader, tcpHeader, tcpPktsPerStream)
	}
	fmt.Printf("3. Each cell is the median of %d run(s)", runs)
	if runs > 1 {
		fmt.Print(" (min-max in brackets)")
	}
	fmt.Printf("; join rows at %d nodes and more count every cluster start (-joins %d, the runs' own included; a start whose own setup fails is tried once more, and says so); kill rows count every kill (-kills %d a run: nodes N-1, N-2, ... killed one after another, each once the last is DEAD at all survivors), with their range in brackets. Lower is better everywhere; a ratio below 1 means smudge is lower.\n", joinJudgedAt, joins, kills)
	if iptables {
		fmt.Println("4. Slow nodes: max(2, N/16) nodes (never node 0, the broadcaster or the killed nodes) have all their UDP and TCP traffic dropped by iptables for 1-3 s each, the same nodes and times for both libraries; DEAD declarations are counted from the first pause until 6 probe intervals (at least 5 s) after the last resume, as (observer, healthy node) pairs summed over runs, those made by the paused nodes themselves (which heard nobody meanwhile) included and shown in brackets. A paused node may be declared DEAD. This runs last, after the kills.")
	}
	for i, nt := range notes {
		fmt.Printf("%d. %s\n", i+5, nt)
	}
	judged := v.pass + v.miss
	fmt.Printf("\nSummary: %d of %d targets PASS, %d MISS", v.pass, judged, v.miss)
	if v.skipped > 0 {
		fmt.Printf(", %d not judged", v.skipped)
	}
	if len(v.misses) > 0 {
		fmt.Printf(" — MISS: %s", strings.Join(v.misses, "; "))
	}
	fmt.Println(".")
}

func anyEst(rs []result) bool {
	for _, r := range rs {
		if r.traffic.estimated {
			return true
		}
	}
	return false
}

func slowCell(rs []result, ran bool) string {
	if !ran {
		return "-"
	}
	total, byPaused, done := 0, 0, 0
	for _, r := range rs {
		if r.slow.ran {
			total += r.slow.falsePairs
			byPaused += r.slow.byPaused
			done++
		}
	}
	if done == 0 {
		return "not run"
	}
	return fmt.Sprintf("%d (%d by paused nodes)", total, byPaused)
}

func pausedCell(rs []result, ran bool) string {
	if !ran {
		return "-"
	}
	dead, paused := 0, 0
	for _, r := range rs {
		dead += r.slow.pausedDead
		paused += r.slow.paused
	}
	return fmt.Sprintf("%d of %d", dead, paused)
}

// durs turns join times into seconds, a timeout into +Inf.
func durs(ds []time.Duration) []float64 {
	out := make([]float64, 0, len(ds))
	for _, d := range ds {
		if d < 0 {
			out = append(out, math.Inf(1))
		} else {
			out = append(out, d.Seconds())
		}
	}
	return out
}

// collect takes one measure of each run; a run that did not get that far
// (join timed out, error) counts as a timeout.
func collect(rs []result, m measure) []float64 {
	out := make([]float64, 0, len(rs))
	for _, r := range rs {
		if m.each != nil {
			vs := m.each(r)
			if r.join < 0 {
				vs = nil
			}
			out = append(out, vs...)
			for range max(r.planned, 1) - len(vs) { // cut short: as timeouts
				out = append(out, math.Inf(1))
			}
			continue
		}
		v := m.get(r)
		if r.join < 0 || v < 0 || (r.err != nil && v == 0) {
			v = math.Inf(1)
		}
		out = append(out, v)
	}
	return out
}

// measured reports whether any of rs got past the join, so that its
// measures mean something.
func measured(rs []result) bool {
	for _, r := range rs {
		if r.join >= 0 && r.err == nil {
			return true
		}
	}
	return false
}

// median is the middle value (the upper middle of an even count); a
// timeout counts as longer than anything.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.Inf(1)
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// cellOf is the median, and with several values their range.
func cellOf(xs []float64, ran, est bool) string {
	if !ran || len(xs) == 0 {
		return "-"
	}
	m := num(median(xs))
	if len(xs) > 1 {
		m = fmt.Sprintf("%s (%s-%s)", m, num(slices.Min(xs)), num(slices.Max(xs)))
	}
	if est {
		m += " est."
	}
	return m
}

// loadAvg is the 1, 5 and 15 minute load averages, or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func secs(d time.Duration) float64 {
	if d < 0 {
		return -1
	}
	return d.Seconds()
}

func num(f float64) string {
	switch {
	case f < 0 || math.IsInf(f, 1):
		return "timeout"
	case f >= 100:
		return strconv.FormatFloat(f, 'f', 0, 64)
	case f >= 10:
		return strconv.FormatFloat(f, 'f', 1, 64)
	default:
		return strconv.FormatFloat(f, 'f', 2, 64)
	}
}

func ratio(us, them float64, both bool) string {
	switch {
	case !both:
		return "-"
	case math.IsInf(us, 1) || math.IsInf(them, 1):
		return "-"
	case them == 0 && us == 0:
		return "="
	case us < 0 || them <= 0:
		return "-"
	}
	return strconv.FormatFloat(us/them, 'f', 2, 64)
}

func shortWindow(w, pp time.Duration) string {
	return fmt.Sprintf("The traffic window (%v) is shorter than memberlist's push-pull period (%v): its TCP sync is counted for part of a period only, and noisily.", w, pp)
}
