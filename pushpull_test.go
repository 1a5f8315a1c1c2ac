package smudge

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
)

// Two nodes on loopback, the second joining through the first, sync their
// states over a stream right after the join, with and without keys; the
// second, syncing every second, keeps doing so.
func TestPushPullSyncsTwoClustersOverLoopback(t *testing.T) {
	key := newKey(t, 32)
	for _, keys := range [][][]byte{nil, {key}} {
		cfg := udpConfig(t)
		cfg.Keys = keys
		a, err := New(cfg)
		require.NoError(t, err)
		require.NoError(t, a.Start(context.Background()))
		t.Cleanup(func() { a.Shutdown() })

		cfg = udpConfig(t, a.LocalAddr().String())
		cfg.Keys = keys
		cfg.PushPullInterval = time.Second
		b, err := New(cfg)
		require.NoError(t, err)
		require.NoError(t, b.Start(context.Background()))
		t.Cleanup(func() { b.Shutdown() })

		waitFor(t, 10*time.Second, "two push-pulls", func() bool {
			sa, sb := a.Stats(), b.Stats() // the engine's counters lag up to a period
			return sb.Streams.PushPullsOut >= 2 && sa.Streams.PushPullsIn >= 2 && sa.StatesMerged >= 2 && sb.StatesMerged >= 2
		})
		assert.Len(t, a.HealthyMembers(), 2)
		assert.Len(t, b.HealthyMembers(), 2)
		sa, sb := a.Stats(), b.Stats()
		assert.Zero(t, sa.Streams.PushPullsFailed+sb.Streams.PushPullsFailed)
		assert.Zero(t, sa.Streams.PushPullsBusy)
		assert.Zero(t, sa.DroppedBadState+sb.DroppedBadState)
	}
}

// A bad state is answered without one, and counted on both sides.
func TestPushPullBadStateIsRefused(t *testing.T) {
	a, _, _ := streamPair(t, nil)
	b, _, _ := streamPair(t, nil)
	status, body, err := b.roundTripBody(context.Background(), a.LocalAddr(), requestPushPull, []byte("garbage"), maxStateFrame)
	require.NoError(t, err)
	assert.Equal(t, byte(statusNoTaker), status)
	assert.Empty(t, body)
	waitFor(t, 5*time.Second, "the bad state to be counted", func() bool {
		s := a.Stats()
		return s.Streams.PushPullsFailed == 1 && s.DroppedBadState == 1
	})
	assert.Equal(t, uint64(1), a.Stats().Streams.PushPullsBadState)
}

// A sync this node starts that fails is counted once in PushPullsFailed,
// and once under its reason: nobody listening (unreachable), a member
// with every sync slot taken (refused), or every slot taken here (skipped).
func TestPushPullFailuresAreCountedByReason(t *testing.T) {
	a, b, _ := streamPair(t, nil)
	start := func(to netip.AddrPort) {
		s := &b.streams
		require.True(t, s.acquirePushPull(b.cfg.Limits.MaxConcurrentPushPulls))
		s.wg.Add(1)
		var state []byte
		require.NoError(t, b.do(func(_ time.Time, e *swim.Engine) error { state = e.AppendState(nil); return nil }))
		b.pushPull(to, state)
	}

	// Nobody listens there: a port just freed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := netip.MustParseAddrPort(l.Addr().String())
	require.NoError(t, l.Close())
	start(dead)

	// a has every sync slot taken: it answers busy.
	a.streams.ppRunning.Store(int64(a.cfg.Limits.MaxConcurrentPushPulls))
	start(a.LocalAddr())
	a.streams.ppRunning.Store(0)

	// b has every sync slot taken: the engine's target is dropped.
	b.streams.ppRunning.Store(int64(b.cfg.Limits.MaxConcurrentPushPulls))
	require.NoError(t, b.do(func(now time.Time, e *swim.Engine) error {
		e.Join(now, a.LocalAddr()) // queues a sync with a
		b.startPushPulls(e)
		return nil
	}))
	b.streams.ppRunning.Store(0)

	st := b.Stats().Streams
	assert.Equal(t, uint64(1), st.PushPullsUnreachable)
	assert.Equal(t, uint64(1), st.PushPullsRefused)
	assert.Equal(t, uint64(1), st.PushPullsNoSlot)
	assert.Zero(t, st.PushPullsBadState)
	assert.Equal(t, uint64(3), st.PushPullsFailed)
	assert.Zero(t, st.PushPullsOut)
	assert.Equal(t, uint64(1), a.Stats().Streams.PushPullsBusy)
}

// A node whose first initial host is down syncs with the second right
// after joining, not an interval later.
func TestJoinSyncGoesOnToTheNextInitialHost(t *testing.T) {
	a, err := New(udpConfig(t))
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	t.Cleanup(func() { a.Shutdown() })
	l, err := net.Listen("tcp", "127.0.0.1:0") // a port just freed: nobody there
	require.NoError(t, err)
	dead := l.Addr().String()
	require.NoError(t, l.Close())

	cfg := udpConfig(t, dead, a.LocalAddr().String())
	cfg.PushPullInterval = time.Hour
	b, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background()))
	t.Cleanup(func() { b.Shutdown() })
	waitFor(t, 10*time.Second, "a sync with the second initial host", func() bool {
		return b.Stats().Streams.PushPullsOut == 1
	})
	st := b.Stats()
	assert.Equal(t, uint64(1), st.Streams.PushPullsUnreachable)
	waitFor(t, 5*time.Second, "the engine's counters (published once a period)", func() bool {
		return b.Stats().JoinSyncRetries == 1
	})
}

func TestPushPullIntervalFromEnv(t *testing.T) {
	for v, want := range map[string]time.Duration{"off": -1, "OFF": -1, "45s": 45 * time.Second, "0": DefaultPushPullInterval} {
		c, err := configFromLookup(func(k string) (string, bool) { return v, k == EnvVarPushPullInterval })
		require.NoError(t, err, v)
		assert.Equal(t, want, c.PushPullInterval, v)
	}
	for _, v := range []string{"soon", "-5s", "500ms", "25h"} {
		_, err := configFromLookup(func(k string) (string, bool) { return v, k == EnvVarPushPullInterval })
		require.Error(t, err, v)
		assert.Contains(t, err.Error(), EnvVarPushPullInterval)
	}
	c := DefaultConfig()
	assert.Equal(t, 30*time.Second, c.pushPullInterval())
	c.PushPullInterval = -1
	assert.Zero(t, c.pushPullInterval())
	c.PushPullInterval = 100 * time.Millisecond
	assert.Error(t, c.Validate())
}
