package smudge

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is a StatusListener, RemovalListener and BroadcastListener that
// remembers everything it is told.
type recorder struct {
	mu         sync.Mutex
	changes    []string
	statuses   map[string]NodeStatus
	removed    []string
	broadcasts []string
	updated    chan struct{}
}

func newRecorder() *recorder {
	return &recorder{statuses: map[string]NodeStatus{}, updated: make(chan struct{}, 1)}
}

func (r *recorder) poke() {
	select {
	case r.updated <- struct{}{}:
	default:
	}
}

func (r *recorder) OnChange(n *Node, st NodeStatus) {
	r.mu.Lock()
	r.changes = append(r.changes, n.Address()+" "+st.String())
	r.statuses[n.Address()] = st
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) OnRemove(n *Node) {
	r.mu.Lock()
	r.removed = append(r.removed, n.Address())
	delete(r.statuses, n.Address())
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) OnBroadcast(b *Broadcast) {
	r.mu.Lock()
	r.broadcasts = append(r.broadcasts, fmt.Sprintf("%s %s", b.Origin().Address(), b.Bytes()))
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) count(st NodeStatus) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.statuses {
		if s == st {
			n++
		}
	}
	return n
}

func (r *recorder) status(addr string) NodeStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.statuses[addr]
}

// waitFor polls cond whenever a listener hears something, until the
// deadline. Real-socket tests are bounded this way, never by sleeping.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, rs ...*recorder) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

func udpConfig(t *testing.T, seeds ...string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ListenIP = net.ParseIP("127.0.0.1")
	cfg.ListenPort = 0
	cfg.MulticastEnabled = false
	cfg.InitialHosts = seeds
	cfg.ClusterName = "udp-test-" + t.Name()
	cfg.LogThreshold = LogWarn
	return cfg
}

func TestUDPClusterOfTenConvergesAndDetectsACrash(t *testing.T) {
	const n = 10
	ctx := context.Background()
	var clusters []*Cluster
	var recs []*recorder
	start := time.Now()
	for i := range n {
		var seeds []string
		if i > 0 {
			seeds = []string{clusters[0].LocalAddr().String()}
		}
		c, err := New(udpConfig(t, seeds...))
		require.NoError(t, err)
		r := newRecorder()
		c.AddStatusListener(r)
		c.AddBroadcastListener(r)
		require.NoError(t, c.Start(ctx))
		t.Cleanup(func() { c.Shutdown() })
		clusters = append(clusters, c)
		recs = append(recs, r)
	}
	healthyEverywhere := func(want int) func() bool {
		return func() bool {
			for _, c := range clusters {
				if c.Running() && len(c.HealthyMembers()) != want {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, 20*time.Second, "10 nodes to converge", healthyEverywhere(n))
	t.Logf("10 UDP nodes converged in %v", time.Since(start))
	waitFor(t, 10*time.Second, "round trips to be measured", func() bool {
		for _, m := range clusters[0].Members()[1:] {
			if m.PingMillis() < 0 {
				return false
			}
		}
		return true
	})

	// A broadcast reaches every other node exactly once, never the origin.
	sent := time.Now()
	require.NoError(t, clusters[3].Broadcast([]byte("hello")))
	origin := clusters[3].LocalNode().Address()
	waitFor(t, 10*time.Second, "the broadcast to reach all", func() bool {
		for i, r := range recs {
			r.mu.Lock()
			got := len(r.broadcasts)
			r.mu.Unlock()
			if i != 3 && got != 1 {
				return false
			}
		}
		return true
	})
	t.Logf("broadcast reached all 9 in %v", time.Since(sent))
	for i, r := range recs {
		r.mu.Lock()
		if i == 3 {
			assert.Empty(t, r.broadcasts, "the origin must not receive its own broadcast")
		} else {
			assert.Equal(t, []string{origin + " hello"}, r.broadcasts)
		}
		r.mu.Unlock()
	}

	// Kill one without a word: all the others see it DEAD.
	victim := clusters[5].LocalNode().Address()
	require.NoError(t, clusters[5].Shutdown())
	killed := time.Now()
	waitFor(t, 20*time.Second, "the crash to be detected by all", func() bool {
		for i, c := range clusters {
			if i == 5 {
				continue
			}
			if m := c.Member(victim); m == nil || m.Status() != StatusDead {
				return false
			}
		}
		return true
	})
	t.Logf("kill to DEAD at all 9 survivors: %v", time.Since(killed))
	// Under load (-race, two cores) a survivor may be suspected for a moment
	// and refute; wait for that to pass rather than assert an instant.
	waitFor(t, 10*time.Second, "the 9 survivors to see each other ALIVE", func() bool {
		for i, c := range clusters {
			if i != 5 && len(c.HealthyMembers()) != n-1 {
				return false
			}
		}
		return true
	})
	for i, c := range clusters {
		if i == 5 {
			continue
		}
		c.waitListeners()
		assert.Equal(t, StatusDead, recs[i].status(victim), "listener of node %d", i)
		assert.False(t, c.Member(victim).Left())
		assert.Equal(t, PingTimedOut, c.Member(victim).PingMillis())
	}
}
