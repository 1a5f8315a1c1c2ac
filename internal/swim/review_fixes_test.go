package swim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/sim"
)

func TestLeaveIsReportedForTheLocalNode(t *testing.T) {
	r := newRig(t)
	r.addPeers(2)
	r.events = nil
	r.e.Leave(r.now)
	r.collect()
	require.NotEmpty(t, r.events)
	ev := r.events[0]
	assert.Equal(t, swim.EventStatus, ev.Kind)
	assert.True(t, ev.Member.Self)
	assert.Equal(t, swim.StatusLeft, ev.Member.Status)
	assert.Equal(t, swim.StatusAlive, ev.Previous)
}

func TestAnIsolatedNodeBacksOffItsJoinRounds(t *testing.T) {
	const n = 8
	s := newCluster(t, n, 41, nil)
	require.True(t, s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, joinBound(n)))
	lonely := s.Node(n - 1)
	s.Partition([]*sim.Node{lonely}, s.Nodes()[:n-1])
	before := lonely.Engine.Stats().JoinRounds
	s.RunFor(2 * time.Minute)
	rounds := lonely.Engine.Stats().JoinRounds - before
	// Removals of its 7 peers must not each restart the backoff: rounds at
	// 0.25, 0.5, 1, 2, 4, 8, 16, 30, 30, ... s after it is alone.
	assert.LessOrEqual(t, rounds, uint64(12), "join rounds in two minutes alone")
	assert.Positive(t, rounds)
}
