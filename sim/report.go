package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a simulation measured. Times are in seconds of virtual
// time; a Dist also gives them in protocol periods.
type Report struct {
	Nodes         int     `json:"nodes"`
	Seed          uint64  `json:"seed"`
	SimSeconds    float64 `json:"sim_seconds"`
	PeriodSeconds float64 `json:"period_seconds"`
	// Setup says in words how the run was set up (network, join, faults).
	Setup []string `json:"setup,omitempty"`

	// ConvergeSeconds is when every up node first had every other up node
	// as a live member (ALIVE or SUSPECTED) after the initial nodes started
	// (0 for a bootstrapped cluster); nil if that never happened.
	ConvergeSeconds *float64 `json:"converge_seconds"`
	// HealToConvergeSeconds is, per healed partition, how long after the
	// heal the cluster was converged again; nil entries never were.
	HealToConvergeSeconds []*float64 `json:"heal_to_converge_seconds,omitempty"`

	Detection  Detection       `json:"detection"`
	FalseDead  FalseDeadCounts `json:"false_dead"`
	Suspicions Suspicions      `json:"suspicions"`
	Lifeguard  Lifeguard       `json:"lifeguard"`
	Traffic    Traffic         `json:"traffic"`
	Broadcast  BroadcastStats  `json:"broadcasts"`

	// Wall is filled in by whoever timed the run.
	Wall *Wall `json:"wall,omitempty"`

	// Curves are the fraction of the nodes aware of each crash (DEAD) and
	// of each broadcast (delivered) over time, for plotting.
	Curves []Curve `json:"-"`
	// Marks are the faults, for plotting.
	Marks []Mark `json:"-"`
}

// Dist summarises a set of durations.
type Dist struct {
	N          int     `json:"n"`
	P50        float64 `json:"p50_s"`
	P99        float64 `json:"p99_s"`
	Max        float64 `json:"max_s"`
	P50Periods float64 `json:"p50_periods"`
	P99Periods float64 `json:"p99_periods"`
	MaxPeriods float64 `json:"max_periods"`
}

// Detection is how fast crashes were found.
type Detection struct {
	Crashes int `json:"crashes"`
	// FirstSuspect: crash to the first SUSPECT view anywhere, per crash.
	FirstSuspect Dist `json:"first_suspect"`
	// First: crash to the first DEAD view anywhere, per crash.
	First Dist `json:"first_dead"`
	// Each: crash to the DEAD view of each survivor that knew the node,
	// over every (crash, survivor) pair that happened.
	Each Dist `json:"each_survivor"`
	// All: crash to DEAD at the last survivor, per crash seen DEAD by all.
	All Dist `json:"all_survivors"`
	// Undetected counts (crash, survivor) pairs with no DEAD view by the
	// end (or before the node restarted).
	Undetected int `json:"undetected"`
	// PerCrash lists every crash.
	PerCrash []CrashSummary `json:"per_crash,omitempty"`
}

// CrashSummary is one crash.
type CrashSummary struct {
	Node         int      `json:"node"`
	At           float64  `json:"at_s"`
	FirstSuspect *float64 `json:"first_suspect_s"` // after the crash
	FirstDead    *float64 `json:"first_dead_s"`
	AllDead      *float64 `json:"all_dead_s"`
	Survivors    int      `json:"survivors"`
	Detected     int      `json:"detected"`
}

// FalseDeadCounts counts DEAD views of nodes that were up (about their
// current run), by what had happened before: the subject was in a set cut
// off by a partition, or the observer was cut off from it (partitioned);
// else either of them was paused (paused); else neither (healthy).
type FalseDeadCounts struct {
	Healthy     FalseDeadCount `json:"healthy"`
	Paused      FalseDeadCount `json:"paused"`
	Partitioned FalseDeadCount `json:"partitioned"`
}

// FalseDeadCount is one kind of false DEAD view.
type FalseDeadCount struct {
	Views    int `json:"views"`    // (observer, subject) DEAD views
	Declared int `json:"declared"` // of which the observer's own suspicion ran out
	Subjects int `json:"subjects"` // distinct nodes seen DEAD
}

// Suspicions sums the engines' counters.
type Suspicions struct {
	Raised  uint64 `json:"raised"`  // a node suspected a member itself
	Refuted uint64 `json:"refuted"` // a node refuted a rumour about itself
	Dead    uint64 `json:"dead"`    // suspicions that ran out (DEAD declared)
}

// Lifeguard sums the engines' Lifeguard counters (see swim's lifeguard.go).
type Lifeguard struct {
	HealthMean    float64 `json:"health_mean"`    // local health score of the live nodes at the end, on average
	HealthMax     int     `json:"health_max"`     // and at most
	HealthRaised  uint64  `json:"health_raised"`  // raises of the score
	NacksSent     uint64  `json:"nacks_sent"`     // by relays whose ping went unanswered
	NacksMissed   uint64  `json:"nacks_missed"`   // expected by a failed probe but not received
	Confirmations uint64  `json:"confirmations"`  // independent accusers counted
	Checks        uint64  `json:"checks"`         // probes run at an accuser's request
	VerdictProbes uint64  `json:"verdict_probes"` // last probes run at once on another's DEAD verdict
}

// Traffic is what the nodes sent, per node and second of being up.
type Traffic struct {
	PacketsPerNodeSec float64 `json:"packets_per_node_s"`
	BytesPerNodeSec   float64 `json:"bytes_per_node_s"`
	Sent              uint64  `json:"packets_sent"`
	Lost              uint64  `json:"packets_lost"`
	Partitioned       uint64  `json:"packets_partitioned"`
	// QueueMean and QueueMax are the updates and broadcasts waiting to be
	// piggybacked, per up node, at the end: a queue that grows means more
	// news than packets to carry it.
	QueueMean float64 `json:"queue_mean"`
	QueueMax  int     `json:"queue_max"`
}

// BroadcastStats is how broadcasts spread.
type BroadcastStats struct {
	Sent int `json:"sent"`
	// Full: broadcast to delivery at every live node, per broadcast that
	// got there.
	Full Dist `json:"to_all"`
	// Incomplete broadcasts missed Missing (node, broadcast) deliveries.
	Incomplete int `json:"incomplete"`
	Missing    int `json:"missing"`
	Duplicates int `json:"duplicates"`
}

// Wall is the real cost of a run.
type Wall struct {
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds,omitempty"` // user and system CPU time of the process; 0 if unknown
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// Curve is the fraction of nodes aware of something over time: Times are
// the elapsed seconds at which each of Total nodes became aware, sorted.
type Curve struct {
	Label string
	Kind  string // "crash" or "broadcast"
	At    float64
	Times []float64
	Total int
}

// Report summarises the simulation so far.
func (m *Metrics) Report() *Report {
	s := m.sim
	period := s.cfg.Engine.ProbeInterval
	r := &Report{
		Nodes: len(s.nodes), Seed: s.cfg.Seed,
		SimSeconds: s.Elapsed().Seconds(), PeriodSeconds: period.Seconds(),
	}
	conv := m.convAt
	if len(m.joinConv) > 0 {
		r.ConvergeSeconds = ptr(m.joinConv[0].Seconds())
	}
	for _, h := range m.heals {
		var got *float64
		for _, c := range conv {
			if c >= h {
				got = ptr((c - h).Seconds())
				break
			}
		}
		if got == nil && m.converged && len(conv) > 0 && conv[len(conv)-1] < h {
			got = ptr(0) // never stopped being converged
		}
		r.HealToConvergeSeconds = append(r.HealToConvergeSeconds, got)
	}

	var firstSus, first, each, all []time.Duration
	for _, c := range m.Crashes() {
		cs := CrashSummary{Node: c.Node, At: c.At.Seconds(), Survivors: len(c.Observers)}
		if c.FirstSuspect >= 0 {
			firstSus = append(firstSus, c.FirstSuspect-c.At)
			cs.FirstSuspect = ptr((c.FirstSuspect - c.At).Seconds())
		}
		lo, hi := time.Duration(-1), time.Duration(-1)
		for _, d := range c.Dead {
			if d < 0 {
				r.Detection.Undetected++
				continue
			}
			cs.Detected++
			each = append(each, d-c.At)
			if lo < 0 || d < lo {
				lo = d
			}
			hi = max(hi, d)
		}
		if lo >= 0 {
			first = append(first, lo-c.At)
			cs.FirstDead = ptr((lo - c.At).Seconds())
		}
		if cs.Detected == cs.Survivors && hi >= 0 {
			all = append(all, hi-c.At)
			cs.AllDead = ptr((hi - c.At).Seconds())
		}
		r.Detection.PerCrash = append(r.Detection.PerCrash, cs)
		r.Curves = append(r.Curves, curve(fmt.Sprintf("crash n%d", c.Node), "crash", c.At, c.Dead))
	}
	r.Detection.Crashes = len(m.crashes)
	r.Detection.FirstSuspect = dist(firstSus, period)
	r.Detection.First = dist(first, period)
	r.Detection.Each = dist(each, period)
	r.Detection.All = dist(all, period)

	for k, dst := range []*FalseDeadCount{&r.FalseDead.Healthy, &r.FalseDead.Paused, &r.FalseDead.Partitioned} {
		*dst = FalseDeadCount{Views: m.falseDead[k], Declared: m.falseSelf[k], Subjects: len(m.falseSubj[k])}
	}
	up := 0
	for _, n := range s.nodes {
		st := n.Stats()
		if n.Up {
			up++
			r.Traffic.QueueMean += float64(st.QueuedGossip)
			r.Traffic.QueueMax = max(r.Traffic.QueueMax, st.QueuedGossip)
			r.Lifeguard.HealthMean += float64(st.LocalHealth)
			r.Lifeguard.HealthMax = max(r.Lifeguard.HealthMax, st.LocalHealth)
		}
		lg := &r.Lifeguard
		lg.HealthRaised += st.HealthRaised
		lg.NacksSent += st.NacksSent
		lg.NacksMissed += st.NacksMissed
		lg.Confirmations += st.SuspicionConfirmations
		lg.Checks += st.ChecksRun
		lg.VerdictProbes += st.VerdictProbes
		r.Suspicions.Raised += st.SuspicionsRaised
		r.Suspicions.Refuted += st.Refutations
		r.Suspicions.Dead += st.DeadDeclared
	}
	if up > 0 {
		r.Traffic.QueueMean /= float64(up)
		r.Lifeguard.HealthMean /= float64(up)
	}
	if secs := m.NodeSeconds(); secs > 0 {
		r.Traffic.PacketsPerNodeSec = float64(s.Net.Sent) / secs
		r.Traffic.BytesPerNodeSec = float64(s.Net.Bytes) / secs
	}
	r.Traffic.Sent, r.Traffic.Lost, r.Traffic.Partitioned = s.Net.Sent, s.Net.Lost, s.Net.Partitioned

	var full []time.Duration
	for _, b := range m.Broadcasts() {
		r.Broadcast.Sent++
		r.Broadcast.Duplicates += b.Duplicates
		missing, last := 0, time.Duration(0)
		for _, g := range b.Got {
			if g < 0 {
				missing++
			} else {
				last = max(last, g-b.At)
			}
		}
		if missing > 0 {
			r.Broadcast.Incomplete++
			r.Broadcast.Missing += missing
		} else {
			full = append(full, last)
		}
		r.Curves = append(r.Curves, curve(fmt.Sprintf("broadcast n%d#%d", b.Origin, b.Index), "broadcast", b.At, b.Got))
	}
	r.Broadcast.Full = dist(full, period)
	r.Marks = m.Marks()
	return r
}

func curve(label, kind string, at time.Duration, times []time.Duration) Curve {
	c := Curve{Label: label, Kind: kind, At: at.Seconds(), Total: len(times)}
	for _, t := range times {
		if t >= 0 {
			c.Times = append(c.Times, t.Seconds())
		}
	}
	slices.Sort(c.Times)
	return c
}

func ptr(f float64) *float64 { return &f }

// dist summarises ds with nearest-rank percentiles.
func dist(ds []time.Duration, period time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	pct := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		return ds[max(i, 0)]
	}
	d := Dist{N: len(ds), P50: pct(0.5).Seconds(), P99: pct(0.99).Seconds(), Max: ds[len(ds)-1].Seconds()}
	if period > 0 {
		p := period.Seconds()
		d.P50Periods, d.P99Periods, d.MaxPeriods = d.P50/p, d.P99/p, d.Max/p
	}
	return d
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes r for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	periods := r.SimSeconds / r.PeriodSeconds
	fmt.Fprintf(&b, "smudge sim: %d nodes, %s simulated (%.0f periods of %s), seed %d\n",
		r.Nodes, secs(r.SimSeconds), periods, secs(r.PeriodSeconds), r.Seed)
	for _, s := range r.Setup {
		fmt.Fprintf(&b, "  %s\n", s)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	inP := func(s float64) string { return fmt.Sprintf("%s (%.1f periods)", secs(s), s/r.PeriodSeconds) }
	if r.ConvergeSeconds != nil {
		fmt.Fprintf(tw, "time to converge\t%s\n", inP(*r.ConvergeSeconds))
	} else {
		fmt.Fprintf(tw, "time to converge\tnever: some node never had every other as a live member\n")
	}
	for i, h := range r.HealToConvergeSeconds {
		if h != nil {
			fmt.Fprintf(tw, "partition %d heal to converged\t%s\n", i+1, inP(*h))
		} else {
			fmt.Fprintf(tw, "partition %d heal to converged\tnever\n", i+1)
		}
	}
	tw.Flush()
	d := &r.Detection
	fmt.Fprintf(&b, "\ncrash detection: %d crashes, %d survivor views of them\n", d.Crashes, d.Each.N+d.Undetected)
	if d.Crashes > 0 {
		fmt.Fprintf(tw, "  crash to\tn\tp50\tp99\tmax\n")
		row := func(name string, x Dist) {
			if x.N == 0 {
				fmt.Fprintf(tw, "  %s\t0\t-\t-\t-\n", name)
				return
			}
			f := func(s, p float64) string { return fmt.Sprintf("%s = %.1f p", secs(s), p) }
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\n", name, x.N, f(x.P50, x.P50Periods), f(x.P99, x.P99Periods), f(x.Max, x.MaxPeriods))
		}
		row("first SUSPECT anywhere", d.FirstSuspect)
		row("first DEAD anywhere", d.First)
		row("DEAD at each survivor", d.Each)
		row("DEAD at all survivors", d.All)
		tw.Flush()
		fmt.Fprintf(&b, "  survivor views never DEAD: %d\n", d.Undetected)
	}
	f := &r.FalseDead
	fmt.Fprintf(&b, "\nfalse DEAD views (of nodes that were up): %d about healthy nodes, %d about paused, %d across a partition\n",
		f.Healthy.Views, f.Paused.Views, f.Partitioned.Views)
	for _, k := range []struct {
		name string
		c    FalseDeadCount
	}{{"healthy", f.Healthy}, {"paused", f.Paused}, {"partitioned", f.Partitioned}} {
		if k.c.Views > 0 {
			fmt.Fprintf(&b, "  %s: %d views of %d nodes, %d declared by the observer itself, the rest learned by gossip\n",
				k.name, k.c.Views, k.c.Subjects, k.c.Declared)
		}
	}
	fmt.Fprintf(&b, "suspicions: %d raised, %d refuted, %d ran out (DEAD)\n",
		r.Suspicions.Raised, r.Suspicions.Refuted, r.Suspicions.Dead)
	lg := &r.Lifeguard
	fmt.Fprintf(&b, "lifeguard: local health at the end %.2f on average, %d at most (raised %d times); nacks %d sent, %d missed; %d confirmations, %d checks, %d last probes on verdicts\n",
		lg.HealthMean, lg.HealthMax, lg.HealthRaised, lg.NacksSent, lg.NacksMissed, lg.Confirmations, lg.Checks, lg.VerdictProbes)
	t := &r.Traffic
	fmt.Fprintf(&b, "traffic: %.2f packets and %.0f bytes sent per node per second (%.2f packets, %.0f bytes per period); %d lost, %d cut by partitions\n",
		t.PacketsPerNodeSec, t.BytesPerNodeSec, t.PacketsPerNodeSec*r.PeriodSeconds, t.BytesPerNodeSec*r.PeriodSeconds, t.Lost, t.Partitioned)
	fmt.Fprintf(&b, "gossip queues at the end: %.1f items per node on average, %d at most\n", t.QueueMean, t.QueueMax)
	bs := &r.Broadcast
	fmt.Fprintf(&b, "broadcasts: %d sent, %d reached every live node", bs.Sent, bs.Sent-bs.Incomplete)
	if bs.Full.N > 0 {
		fmt.Fprintf(&b, ", time to 100%%: p50 %s, max %s (%.1f periods)", secs(bs.Full.P50), secs(bs.Full.Max), bs.Full.MaxPeriods)
	}
	fmt.Fprintf(&b, "; %d deliveries missing, %d duplicates\n", bs.Missing, bs.Duplicates)
	if r.Wall != nil {
		cpu := ""
		if r.Wall.CPUSeconds > 0 {
			cpu = fmt.Sprintf(" (CPU %s)", secs(r.Wall.CPUSeconds))
		}
		fmt.Fprintf(&b, "wall: %s%s, peak memory (RSS) %.0f MiB\n", secs(r.Wall.Seconds), cpu, r.Wall.PeakRSSMiB)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// secs formats seconds briefly: 0.25 s, 3.7 s, 120 s.
func secs(s float64) string {
	switch {
	case s == 0:
		return "0 s"
	case s < 10:
		return fmt.Sprintf("%.3g s", s)
	default:
		return fmt.Sprintf("%.1f s", s)
	}
}
