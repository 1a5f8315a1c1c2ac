package liveness_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge"
	"github.com/seed-c7906467/smudge/liveness"
	"github.com/seed-c7906467/smudge/memnet"
)

const token = "a-token-of-24-characters"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// memNode is one node of an in-memory cluster with its store.
type memNode struct {
	c       *smudge.Cluster
	s       *liveness.Store
	left    atomic.Bool // OnDecommissioned was called
	handler http.Handler
}

// startNode starts node i (10.0.0.i:9999, id "i") on network, joining
// seed when given. cfg's ID, Token and Logger default to "i", the test
// token and a quiet logger.
func startNode(t *testing.T, network *memnet.Network, i int, seed string, cfg liveness.Config) (*memNode, error) {
	t.Helper()
	ep, err := network.Listen(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 9999))
	require.NoError(t, err)
	sc := smudge.DefaultConfig()
	sc.Transport = ep
	sc.MulticastEnabled = false
	sc.LogThreshold = smudge.LogWarn
	sc.HeartbeatInterval = 100 * time.Millisecond
	// Generous probe timeouts: a starved scheduler (-race on two cores)
	// must not raise suspicion.
	sc.MinPingTime, sc.PingHistoryFrontload = time.Second, time.Second
	sc.Seed = int64(i)
	if seed != "" {
		sc.InitialHosts = []string{seed}
	}
	c, err := smudge.New(sc)
	require.NoError(t, err)
	n := &memNode{c: c}
	if cfg.ID == "" {
		cfg.ID = fmt.Sprint(i)
	}
	if cfg.Token == "" {
		cfg.Token = token
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	cfg.OnDecommissioned = func() { n.left.Store(true) }
	n.s, err = liveness.New(c, cfg)
	if err != nil {
		ep.Close()
		return nil, err
	}
	n.handler = n.s.Handler()
	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() { c.Shutdown(); n.s.Close() })
	return n, nil
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// get serves a request with h and returns the status and body.
func get(h http.Handler, method, target, auth string) (int, string) {
	r := httptest.NewRequest(method, target, nil)
	if auth != "" {
		r.Header.Set("Authorization", "Bearer "+auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// helloLine returns line i (0-based) of GET /hello.
func helloLine(n *memNode, i int) string {
	_, body := get(n.handler, "GET", "/hello", "")
	lines := strings.Split(body, "\n")
	if i >= len(lines) {
		return ""
	}
	return lines[i]
}

func memberStatus(n *memNode, id string) string {
	for _, m := range n.s.Members() {
		if m.ID == id {
			return m.StatusText()
		}
	}
	return ""
}

func TestDecommissionInAClusterThroughHTTP(t *testing.T) {
	network := memnet.New(memnet.WithLatency(time.Millisecond, time.Millisecond), memnet.WithSeed(7))
	t.Cleanup(func() { network.Close() })
	var nodes []*memNode
	for i := 1; i <= 4; i++ {
		seed := ""
		if i > 1 {
			seed = "10.0.0.1:9999"
		}
		n, err := startNode(t, network, i, seed, liveness.Config{})
		require.NoError(t, err)
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		waitFor(t, 20*time.Second, "every id at node "+n.s.ID(), func() bool { return len(strings.Fields(helloLine(n, 1))) == 4 })
	}
	assert.Equal(t, "1 2 3 4", helloLine(nodes[0], 1))

	// Decommission 3 through node 1.
	code, body := get(nodes[0].handler, "POST", "/bye?id=3", token)
	require.Equal(t, http.StatusAccepted, code, body)
	waitFor(t, 15*time.Second, "node 3 to leave", func() bool { return nodes[2].left.Load() })
	assert.False(t, nodes[2].c.Running())
	for _, i := range []int{0, 1, 3} {
		n := nodes[i]
		waitFor(t, 10*time.Second, "node "+n.s.ID()+" to see 3 LEFT", func() bool { return memberStatus(n, "3") == "LEFT" })
		assert.Equal(t, []string{"3"}, n.s.Decommissioned())
		assert.Equal(t, "3", helloLine(n, 2))
		assert.NotContains(t, strings.Fields(helloLine(n, 1)), "3")
	}

	// Decommission 2 through node 2 itself.
	code, body = get(nodes[1].handler, "POST", "/bye?id=2", token)
	require.Equal(t, http.StatusAccepted, code, body)
	assert.Contains(t, body, "this node")
	waitFor(t, 15*time.Second, "node 2 to leave", func() bool { return nodes[1].left.Load() })
	for _, i := range []int{0, 3} {
		n := nodes[i]
		waitFor(t, 10*time.Second, "node "+n.s.ID()+" to know 2", func() bool { return slices.Contains(n.s.Decommissioned(), "2") })
	}

	// A newcomer learns both.
	syncsBefore := nodes[0].s.Stats().Syncs + nodes[3].s.Stats().Syncs
	late, err := startNode(t, network, 5, "10.0.0.1:9999", liveness.Config{})
	require.NoError(t, err)
	waitFor(t, 15*time.Second, "the newcomer to learn 2 and 3", func() bool {
		return slices.Equal(late.s.Decommissioned(), []string{"2", "3"})
	})
	waitFor(t, 10*time.Second, "the newcomer's /hello", func() bool { return helloLine(late, 1) == "5 1 4" })
	assert.Equal(t, "2 3", helloLine(late, 2))
	syncs := nodes[0].s.Stats().Syncs + nodes[3].s.Stats().Syncs - syncsBefore
	// One re-broadcast by the lowest member, or none when the newcomer
	// heard the recent messages still being gossiped (the fake-cluster
	// tests pin the re-broadcast down exactly).
	assert.LessOrEqual(t, syncs, uint64(1), "at most one re-broadcast for the newcomer")
}

func TestDecommissionedNodeStaysGone(t *testing.T) {
	network := memnet.New(memnet.WithLatency(time.Millisecond, time.Millisecond), memnet.WithSeed(8))
	t.Cleanup(func() { network.Close() })
	dir := t.TempDir()
	state := func(i int) liveness.Config { return liveness.Config{StateDir: filepath.Join(dir, fmt.Sprint(i))} }
	a, err := startNode(t, network, 1, "", state(1))
	require.NoError(t, err)
	b, err := startNode(t, network, 2, "10.0.0.1:9999", state(2))
	require.NoError(t, err)
	waitFor(t, 20*time.Second, "ids", func() bool { return helloLine(a, 1) == "1 2" })
	require.NoError(t, a.s.Decommission("2"))
	waitFor(t, 15*time.Second, "node 2 to leave", func() bool { return b.left.Load() })

	// Started again with its state directory: it refuses at once.
	_, err = startNode(t, network, 2, "10.0.0.1:9999", state(2))
	require.ErrorIs(t, err, liveness.ErrDecommissioned)
	assert.Contains(t, err.Error(), `this node's id "2" is decommissioned (since `)

	// Started again without it: it learns from the cluster and leaves again.
	again, err := startNode(t, network, 2, "10.0.0.1:9999", liveness.Config{})
	require.NoError(t, err)
	waitFor(t, 15*time.Second, "node 2 to leave again", func() bool { return again.left.Load() })
}
