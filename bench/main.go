// Command bench runs the same real-UDP scenarios on 127.0.0.1 with smudge and
// with github.com/hashicorp/memberlist, side by side, and prints a table
// with our/theirs ratios:
//
//   - join: N nodes started together, each joining through node 0, until
//     every node has all N as live members;
//   - steady traffic: UDP packets and bytes (UDP and TCP) sent per node per
//     second, and CPU per node, over a quiet window;
//   - broadcast: one node broadcasts a short message, until every other node
//     has delivered it;
//   - kill: one node stops without a word, until every survivor reports it
//     dead.
//
// Each library runs in this one process with its N nodes inside, one
// library at a time. Packets and bytes are counted by wrapping each node's
// transport (smudge's Config.Transport, memberlist's Transport). memberlist
// has no broadcast of its own: as Serf and Consul do, each node queues the
// message in a TransmitLimitedQueue, and re-queues it the first time it
// receives it, so that it spreads like smudge's.
//
// Both libraries are measured the same way: the same scenario on the same
// loopback, the nodes' own listeners (smudge's status and broadcast
// listeners, memberlist's event and message delegates) timestamping what
// they see, and every datagram and stream byte counted where the library
// hands it to its transport (UDP payloads; no IP, UDP or TCP headers).
// Runs alternate which library goes first, the garbage of one is collected
// before the other starts, and every wait is bounded (-timeout bounds the
// whole).
//
// Usage (from the bench directory, or make bench-compare):
//
//	go run . [-n 16,64] [-configs equal,defaults] [-runs 1] [-window 10s] [-markdown] [-timeout 30m]
package main

import (
	"flag"
	"fmt"
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
	// what says how, for the table.
	what string
	// smudge and memberlist probe intervals; zero means the library's default.
	smudgeInterval, memberlistInterval time.Duration
}

var configs = map[string]config{
	"equal": {name: "equal", what: "both probe every 250 ms (smudge's default; memberlist: ProbeInterval 250ms, ProbeTimeout 150ms like smudge's floor, other settings DefaultLANConfig)",
		smudgeInterval: 250 * time.Millisecond, memberlistInterval: 250 * time.Millisecond},
	"defaults": {name: "defaults", what: "each library's defaults (smudge: 250 ms period; memberlist DefaultLANConfig: 1 s probe interval, 200 ms gossip interval, push-pull every 30 s)"},
}

// result is what one library measured in one configuration.
type result struct {
	join, broadcast, dead time.Duration // -1: did not happen in time
	pktsPerNodeSec        float64
	bytesPerNodeSec       float64
	streamsPerNodeSec     float64
	cpuMsPerNodeSec       float64
	err                   error
}

func main() {
	nList := flag.String("n", "16,64", "cluster sizes, comma separated")
	cfgList := flag.String("configs", "equal,defaults", "configurations: equal (both probe every 250 ms), defaults (each library's)")
	runs := flag.Int("runs", 1, "runs of each library in each configuration and size; the table shows the median and, with more than one, the range")
	window := flag.Duration("window", 10*time.Second, "quiet window over which traffic and CPU are measured")
	settle := flag.Duration("settle", 5*time.Second, "wait after the join before measuring traffic")
	markdown := flag.Bool("markdown", false, "print the table as Markdown")
	timeout := flag.Duration("timeout", 40*time.Minute, "give up (exit status 1) after this long")
	flag.Parse()
	var ns []int
	for _, s := range strings.Split(*nList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 3 || n > 512 {
			fmt.Fprintf(os.Stderr, "bench: -n %q: sizes from 3 to 512\n", s)
			os.Exit(2)
		}
		ns = append(ns, n)
	}
	var cfgs []config
	for _, s := range strings.Split(*cfgList, ",") {
		c, ok := configs[strings.TrimSpace(s)]
		if !ok {
			fmt.Fprintf(os.Stderr, "bench: -configs %q: equal or defaults\n", s)
			os.Exit(2)
		}
		cfgs = append(cfgs, c)
	}
	if *runs < 1 || *runs > 20 {
		fmt.Fprintf(os.Stderr, "bench: -runs %d: from 1 to 20\n", *runs)
		os.Exit(2)
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
	start := time.Now()
	load0 := loadAvg()
	fmt.Printf("smudge vs hashicorp/memberlist %s: real UDP on 127.0.0.1, N nodes in one process per library, one library at a time; %s, %d CPUs, %s, load average at start %s\n",
		mlVersion, time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), load0)
	p := params{window: *window, settle: *settle}
	type row struct {
		cfg    config
		n      int
		us, ml []result
	}
	var rows []row
	for _, c := range cfgs {
		for _, n := range ns {
			r := row{cfg: c, n: n}
			for k := range *runs {
				// Alternate which library goes first, so that neither
				// always runs on a warmer (or more loaded) machine.
				order := []string{"smudge", "memberlist"}
				if k%2 == 1 {
					order[0], order[1] = order[1], order[0]
				}
				for _, lib := range order {
					fmt.Fprintf(os.Stderr, "bench: %s, %d nodes, run %d of %d: %s... (load %s)\n", c.name, n, k+1, *runs, lib, loadAvg())
					runtime.GC() // the last run's garbage is not this one's work
					if lib == "smudge" {
						r.us = append(r.us, runSmudge(n, c, p))
					} else {
						r.ml = append(r.ml, runMemberlist(n, c, p))
					}
				}
			}
			rows = append(rows, r)
		}
	}
	for _, c := range cfgs {
		fmt.Printf("\nconfig %q: %s\n\n", c.name, c.what)
		var tw *tabwriter.Writer
		sep := "\t"
		if *markdown {
			sep = " | "
			fmt.Println("| N | measure | smudge | memberlist | smudge / memberlist |")
			fmt.Println("|---|---|---|---|---|")
		} else {
			tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "N\tmeasure\tsmudge\tmemberlist\tsmudge/memberlist")
		}
		line := func(s string) {
			if tw != nil {
				fmt.Fprintln(tw, s)
			} else {
				fmt.Println("| " + s + " |")
			}
		}
		for _, r := range rows {
			if r.cfg.name != c.name {
				continue
			}
			for _, m := range measures {
				us, ml := collect(r.us, m.get), collect(r.ml, m.get)
				line(strings.Join([]string{strconv.Itoa(r.n), m.name, cell(us), cell(ml), ratio(median(us), median(ml))}, sep))
			}
			for _, rs := range [][]result{r.us, r.ml} {
				for _, x := range rs {
					if x.err != nil {
						line(strings.Join([]string{strconv.Itoa(r.n), "error", x.err.Error(), "", ""}, sep))
					}
				}
			}
		}
		if tw != nil {
			tw.Flush()
		}
	}
	spread := ""
	if *runs > 1 {
		spread = fmt.Sprintf(" Each cell is the median of %d runs (min-max in brackets).", *runs)
	}
	fmt.Printf("\nLower is better for every measure; a ratio below 1 means smudge is lower.%s Total run %v; load average at the end %s.\n",
		spread, time.Since(start).Round(time.Second), loadAvg())
}

// measures are the rows of the table, in order.
var measures = []struct {
	name string
	get  func(result) float64 // -1: did not happen in time
}{
	{"join: all see all (s)", func(r result) float64 { return secs(r.join) }},
	{"broadcast to all (s)", func(r result) float64 { return secs(r.broadcast) }},
	{"kill to DEAD at all survivors (s)", func(r result) float64 { return secs(r.dead) }},
	{"UDP packets sent / node / s", func(r result) float64 { return r.pktsPerNodeSec }},
	{"bytes sent (UDP+TCP payload) / node / s", func(r result) float64 { return r.bytesPerNodeSec }},
	{"TCP connections opened / node / s", func(r result) float64 { return r.streamsPerNodeSec }},
	{"CPU ms / node / s", func(r result) float64 { return r.cpuMsPerNodeSec }},
}

// collect takes one measure of each run; a run that did not get that far
// (join timed out, error) counts as a timeout.
func collect(rs []result, get func(result) float64) []float64 {
	out := make([]float64, 0, len(rs))
	for _, r := range rs {
		v := get(r)
		if r.join < 0 || v < 0 {
			v = math.Inf(1)
		}
		out = append(out, v)
	}
	return out
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

// cell is the median, and with several runs their range.
func cell(xs []float64) string {
	m := num(median(xs))
	if len(xs) < 2 {
		return m
	}
	return fmt.Sprintf("%s (%s-%s)", m, num(slices.Min(xs)), num(slices.Max(xs)))
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

// params are the timing knobs of a run.
type params struct {
	window, settle time.Duration
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

func ratio(us, them float64) string {
	switch {
	case math.IsInf(us, 1) || math.IsInf(them, 1):
		return "-"
	case them == 0 && us == 0:
		return "="
	case us < 0 || them <= 0:
		return "-"
	}
	return strconv.FormatFloat(us/them, 'f', 2, 64)
}
