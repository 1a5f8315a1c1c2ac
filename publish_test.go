package smudge

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// publishCluster starts n real nodes on loopback, each with an inbox.
func publishCluster(t *testing.T, n int, edit func(i int, c *Config)) ([]*Cluster, []*inbox) {
	t.Helper()
	var boxes []*inbox
	cs, _ := startCluster(t, n, func(i int, seeds ...string) Config {
		cfg := calmConfig(t, seeds...)
		if edit != nil {
			edit(i, &cfg)
		}
		return cfg
	})
	for _, c := range cs {
		b := newInbox()
		c.AddPublishListener(b)
		boxes = append(boxes, b)
	}
	return cs, boxes
}

func TestPublishReachesEveryOtherMemberOnce(t *testing.T) {
	key := newKey(t, 32)
	for _, keys := range [][][]byte{nil, {key}} {
		t.Run(fmt.Sprintf("keys=%d", len(keys)), func(t *testing.T) {
			cs, boxes := publishCluster(t, 5, func(i int, c *Config) { c.Keys = keys; c.GossipGroup = 2 })
			payload := bytes.Repeat([]byte("a check batch "), 20000) // 280 kB: more than a packet
			id, err := cs[0].Publish(payload)
			require.NoError(t, err)
			waitFor(t, 20*time.Second, "every other member to get the publication", func() bool {
				for _, b := range boxes[1:] {
					if b.times(id) == 0 {
						return false
					}
				}
				return true
			})
			// Let the repair rounds run a while: still once each.
			waitFor(t, 20*time.Second, "a few repair rounds", func() bool { return cs[0].Stats().Publish.DigestsSent >= 3 })
			for i, b := range boxes {
				want := 1
				if i == 0 {
					want = 0 // never to the origin
				}
				assert.Equal(t, want, b.times(id), "node %d", i)
			}
			b := boxes[1]
			b.mu.Lock()
			p := b.pubs[0]
			b.mu.Unlock()
			assert.Equal(t, id, p.ID())
			assert.Equal(t, payload, p.Bytes())
			assert.Equal(t, cs[0].LocalNode().Address(), p.Origin().Address())
			assert.Less(t, p.Age(), 10*time.Second)
			st := cs[0].Stats()
			assert.EqualValues(t, 1, st.Publish.Published)
			assert.EqualValues(t, 2, st.Publish.BurstSends)
			assert.Zero(t, st.Streams.DroppedUnauthentic+st.Streams.DroppedMalformed)
			_, err = cs[0].Publish(make([]byte, DefaultMaxMessageBytes+1))
			assert.ErrorIs(t, err, ErrMessageTooLarge)
		})
	}
}

// TestRestartedAndLateNodesNeverRunAnOldPublication: a member that
// restarts, with or without its state directory, and a node that joins
// after the publication, are offered it by repair and never deliver it.
func TestRestartedAndLateNodesNeverRunAnOldPublication(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()}
	cs, boxes := publishCluster(t, 4, func(i int, c *Config) {
		c.StateDir = filepath.Join(dirs[i], "state")
	})
	id, err := cs[0].Publish([]byte("batch 1"))
	require.NoError(t, err)
	waitFor(t, 20*time.Second, "delivery", func() bool {
		return boxes[1].times(id) == 1 && boxes[2].times(id) == 1 && boxes[3].times(id) == 1
	})

	restart := func(i int, stateDir string) (*Cluster, *inbox) {
		old := cs[i]
		addr := old.LocalAddr()
		require.NoError(t, old.Shutdown())
		cfg := calmConfig(t, cs[0].LocalNode().Address())
		cfg.ListenPort = int(addr.Port())
		cfg.StateDir = stateDir
		c, err := New(cfg)
		require.NoError(t, err)
		b := newInbox()
		c.AddPublishListener(b)
		require.NoError(t, c.Start(context.Background()))
		t.Cleanup(func() { c.Shutdown() })
		return c, b
	}
	withDisk, withDiskBox := restart(2, filepath.Join(dirs[2], "state"))
	noDisk, noDiskBox := restart(3, "")

	cfg := calmConfig(t, cs[0].LocalNode().Address())
	late, err := New(cfg)
	require.NoError(t, err)
	lateBox := newInbox()
	late.AddPublishListener(lateBox)
	require.NoError(t, late.Start(context.Background()))
	t.Cleanup(func() { late.Shutdown() })

	// Repair offers them the old publication: the node with its ids knows
	// it already; the others take it as stale.
	waitFor(t, 30*time.Second, "the old publication to be offered to all three", func() bool {
		return withDisk.Stats().Publish.Duplicates+withDisk.Stats().Publish.DigestsHeard > 0 &&
			noDisk.Stats().Publish.Stale > 0 && late.Stats().Publish.Stale > 0
	})
	assert.Zero(t, withDisk.Stats().Publish.Stale, "it remembered the id: never even taken as stale")
	for _, b := range []*inbox{withDiskBox, noDiskBox, lateBox} {
		assert.Zero(t, b.times(id))
	}

	// A new publication reaches them all.
	id2, err := cs[1].Publish([]byte("batch 2"))
	require.NoError(t, err)
	waitFor(t, 20*time.Second, "the new publication", func() bool {
		return boxes[0].times(id2) == 1 && withDiskBox.times(id2) == 1 && noDiskBox.times(id2) == 1 && lateBox.times(id2) == 1
	})
}
