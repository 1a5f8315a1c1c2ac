package swim_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/sim"
)

// deliveries counts, per receiving node, each broadcast payload delivered.
func deliveries(s *sim.Sim) map[netip.AddrPort]map[string]int {
	out := make(map[netip.AddrPort]map[string]int)
	for _, r := range s.Log {
		if r.Event.Kind != swim.EventBroadcast {
			continue
		}
		if out[r.Observer] == nil {
			out[r.Observer] = make(map[string]int)
		}
		b := r.Event.Broadcast
		out[r.Observer][fmt.Sprintf("%v/%d/%s", b.Origin, b.Index, b.Payload)]++
	}
	return out
}

func TestBroadcastReachesEveryOtherNodeExactlyOnce(t *testing.T) {
	const n = 30
	s := newCluster(t, n, 17, func(c *sim.Config) { c.Loss = 0.05; c.Jitter = 3 * time.Millisecond })
	require.True(t, s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, joinBound(n)))
	// Many at once, from several origins: they must share packets.
	var want []string
	for i := range 3 {
		origin := s.Node(i * 7)
		for j := range 10 {
			payload := fmt.Sprintf("msg-%d-%d", i, j)
			idx, err := s.Broadcast(origin, []byte(payload))
			require.NoError(t, err)
			assert.Equal(t, uint32(j+1), idx)
			want = append(want, fmt.Sprintf("%v/%d/%s", origin.Addr, idx, payload))
		}
	}
	s.RunFor(20 * period)
	got := deliveries(s)
	for _, nd := range s.Nodes() {
		for _, w := range want {
			fromSelf := len(w) > 0 && w[:len(nd.Addr.String())+1] == nd.Addr.String()+"/"
			if fromSelf {
				assert.Zero(t, got[nd.Addr][w], "origin %v must not receive its own %s", nd.Addr, w)
			} else {
				assert.Equal(t, 1, got[nd.Addr][w], "node %v, broadcast %s", nd.Addr, w)
			}
		}
	}
	// Long after, nothing is delivered again.
	before := len(s.Log)
	s.RunFor(2 * time.Minute)
	for _, r := range s.Log[before:] {
		assert.NotEqual(t, swim.EventBroadcast, r.Event.Kind, r.String())
	}
}

func TestRestartedOriginsBroadcastsAreNotDuplicates(t *testing.T) {
	const n = 5
	s := newCluster(t, n, 23, nil)
	require.True(t, s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, joinBound(n)))
	origin := s.Node(2)
	_, err := s.Broadcast(origin, []byte("before restart"))
	require.NoError(t, err)
	s.RunFor(10 * period)
	s.Crash(origin)
	s.RunFor(2 * time.Second)
	s.Start(origin, s.Node(0))
	require.True(t, s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, joinBound(n)))
	idx, err := s.Broadcast(origin, []byte("after restart"))
	require.NoError(t, err)
	assert.Equal(t, uint32(1), idx, "a new run numbers its broadcasts from 1 again")
	s.RunFor(10 * period)
	for _, nd := range s.Nodes() {
		if nd == origin {
			continue
		}
		got := deliveries(s)[nd.Addr]
		assert.Equal(t, 1, got[fmt.Sprintf("%v/1/before restart", origin.Addr)], "node %v", nd.Addr)
		assert.Equal(t, 1, got[fmt.Sprintf("%v/1/after restart", origin.Addr)], "node %v", nd.Addr)
	}
}

func TestBroadcastLimits(t *testing.T) {
	s := newCluster(t, 2, 1, nil)
	_, err := s.Broadcast(s.Node(0), make([]byte, 257))
	assert.ErrorIs(t, err, swim.ErrBroadcastTooLarge)
	_, err = s.Broadcast(s.Node(0), make([]byte, 256))
	assert.NoError(t, err)
	for range swim.DefaultMaxQueuedBroadcasts - 1 {
		_, err = s.Broadcast(s.Node(0), []byte("x"))
		require.NoError(t, err)
	}
	_, err = s.Broadcast(s.Node(0), []byte("x"))
	assert.ErrorIs(t, err, swim.ErrBroadcastQueue)
	s.Leave(s.Node(1))
	_, err = s.Broadcast(s.Node(1), []byte("x"))
	assert.ErrorIs(t, err, swim.ErrLeaving)
}
