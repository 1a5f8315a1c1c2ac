package swim_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/sim"
)

// period is the default protocol period used by these tests.
const period = 250 * time.Millisecond

// newCluster starts n nodes at the same virtual instant, every one joining
// through node 0, on a network with 1 ms latency.
func newCluster(t testing.TB, n int, seed uint64, tweak func(*sim.Config)) *sim.Sim {
	t.Helper()
	cfg := sim.Config{Seed: seed, Latency: time.Millisecond, Engine: sim.DefaultEngineConfig()}
	if tweak != nil {
		tweak(&cfg)
	}
	s := sim.New(cfg)
	nodes := s.AddNodes(n)
	s.Start(nodes[0])
	for _, nd := range nodes[1:] {
		s.Start(nd, nodes[0])
	}
	return s
}

// statusOf is what observer believes about subject (0 when unknown).
func statusOf(observer, subject *sim.Node) swim.Status {
	m, ok := observer.Engine.Member(subject.Addr)
	if !ok {
		return 0
	}
	return m.Status
}

// allSee reports whether every up node other than subject sees subject in
// status st.
func allSee(s *sim.Sim, subject *sim.Node, st swim.Status) bool {
	for _, o := range s.Nodes() {
		if o == subject || !o.Up {
			continue
		}
		if statusOf(o, subject) != st {
			return false
		}
	}
	return true
}

// converged reports whether every up node sees every other up node ALIVE.
func converged(s *sim.Sim) bool {
	for _, o := range s.Nodes() {
		if !o.Up {
			continue
		}
		for _, x := range s.Nodes() {
			if x != o && x.Up && statusOf(o, x) != swim.StatusAlive {
				return false
			}
		}
	}
	return true
}

// statusRecords returns, per observer, the statuses it reported for subject.
func statusRecords(s *sim.Sim, subject netip.AddrPort) map[netip.AddrPort][]swim.Status {
	out := make(map[netip.AddrPort][]swim.Status)
	for _, r := range s.Log {
		if r.Event.Kind == swim.EventStatus && r.Event.Member.Addr == subject {
			out[r.Observer] = append(out[r.Observer], r.Event.Member.Status)
		}
	}
	return out
}

// countStatus counts EventStatus records reporting st, about anyone.
func countStatus(s *sim.Sim, st swim.Status) int {
	n := 0
	for _, r := range s.Log {
		if r.Event.Kind == swim.EventStatus && r.Event.Member.Status == st {
			n++
		}
	}
	return n
}

func dumpLog(t testing.TB, s *sim.Sim) {
	t.Helper()
	for _, r := range s.Log {
		t.Log(r.String())
	}
}

func periods(d time.Duration) string { return fmt.Sprintf("%.1f periods", float64(d)/float64(period)) }
