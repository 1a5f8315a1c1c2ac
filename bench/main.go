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
// Usage (from the bench directory, or make bench-compare):
//
//	go run . [-n 16,64] [-configs equal,defaults] [-window 10s] [-markdown]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/debug"
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
	cpuMsPerNodeSec       float64
	err                   error
}

func main() {
	nList := flag.String("n", "16,64", "cluster sizes, comma separated")
	cfgList := flag.String("configs", "equal,defaults", "configurations: equal (both probe every 250 ms), defaults (each library's)")
	window := flag.Duration("window", 10*time.Second, "quiet window over which traffic and CPU are measured")
	settle := flag.Duration("settle", 5*time.Second, "wait after the join before measuring traffic")
	markdown := flag.Bool("markdown", false, "print the table as Markdown")
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
	mlVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/hashicorp/memberlist" {
				mlVersion = d.Version
			}
		}
	}
	start := time.Now()
	fmt.Printf("smudge vs hashicorp/memberlist %s: real UDP on 127.0.0.1, N nodes in one process per library, one library at a time; %s\n",
		mlVersion, time.Now().UTC().Format("2006-01-02"))
	p := params{window: *window, settle: *settle}
	type row struct {
		cfg    config
		n      int
		us, ml result
	}
	var rows []row
	for _, c := range cfgs {
		for _, n := range ns {
			fmt.Fprintf(os.Stderr, "bench: %s, %d nodes: smudge...\n", c.name, n)
			us := runSmudge(n, c, p)
			fmt.Fprintf(os.Stderr, "bench: %s, %d nodes: memberlist...\n", c.name, n)
			ml := runMemberlist(n, c, p)
			rows = append(rows, row{c, n, us, ml})
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
			for _, m := range []struct {
				name   string
				us, ml float64
				unit   string
				dur    bool
			}{
				{"join: all see all (s)", secs(r.us.join), secs(r.ml.join), "", true},
				{"broadcast to all (s)", secs(r.us.broadcast), secs(r.ml.broadcast), "", true},
				{"kill to DEAD at all survivors (s)", secs(r.us.dead), secs(r.ml.dead), "", true},
				{"UDP packets sent / node / s", r.us.pktsPerNodeSec, r.ml.pktsPerNodeSec, "", false},
				{"bytes sent (UDP+TCP) / node / s", r.us.bytesPerNodeSec, r.ml.bytesPerNodeSec, "", false},
				{"CPU ms / node / s", r.us.cpuMsPerNodeSec, r.ml.cpuMsPerNodeSec, "", false},
			} {
				line(strings.Join([]string{strconv.Itoa(r.n), m.name, num(m.us), num(m.ml), ratio(m.us, m.ml)}, sep))
			}
			for _, e := range []error{r.us.err, r.ml.err} {
				if e != nil {
					line(strings.Join([]string{strconv.Itoa(r.n), "error", e.Error(), "", ""}, sep))
				}
			}
		}
		if tw != nil {
			tw.Flush()
		}
	}
	fmt.Printf("\nTimes in seconds, lower is better; a ratio below 1 means smudge is lower. Total run %v.\n",
		time.Since(start).Round(time.Second))
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
	case f < 0:
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
	if us < 0 || them <= 0 {
		return "-"
	}
	return strconv.FormatFloat(us/them, 'f', 2, 64)
}
