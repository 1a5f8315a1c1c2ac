package smudge

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
