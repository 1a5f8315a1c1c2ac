package swim_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/sim"
)

func TestJoinRetriesUntilTheSeedAnswers(t *testing.T) {
	s := sim.New(sim.Config{Seed: 4, Latency: time.Millisecond, Engine: sim.DefaultEngineConfig()})
	nodes := s.AddNodes(3)
	s.Start(nodes[1], nodes[0]) // the seed is not up yet
	s.Start(nodes[2], nodes[0])
	s.RunFor(5 * time.Second)
	// An unanswered seed is never reported as a member.
	for _, r := range s.Log {
		assert.NotEqual(t, nodes[0].Addr, r.Event.Member.Addr, "phantom member: %s", r)
	}
	s.Start(nodes[0])
	// Retries back off to at most 30 s; here the next is due within 5 s.
	ok := s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, 10*time.Second)
	require.True(t, ok)
	assert.Zero(t, countStatus(s, swim.StatusSuspect))
}

func TestIsolatedNodeFindsItsSeedsAgainAfterRemoval(t *testing.T) {
	const n = 4
	s := newCluster(t, n, 31, nil)
	require.True(t, s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, joinBound(n)))
	lonely := s.Node(3)
	s.Partition([]*sim.Node{lonely}, s.Nodes()[:3])
	// Longer than detection plus RemoveDeadAfter: each side forgets the other.
	require.True(t, s.RunUntil(func() bool {
		return lonely.Engine.NumLive() == 1 && allSee(s, lonely, 0)
	}, 100*time.Millisecond, 60*time.Second))
	s.Heal()
	// The isolated node asks its seed again (backoff capped at 30 s).
	ok := s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, 35*time.Second)
	require.True(t, ok, "the cluster should be whole again")
}

func TestAnnouncementIsAnsweredByEveryListener(t *testing.T) {
	const n = 4
	s := newCluster(t, n, 5, nil)
	require.True(t, s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, joinBound(n)))
	newcomer := s.AddNodes(1)[0]
	s.Start(newcomer) // no seeds: it only announces
	var pkt []byte
	s.Do(newcomer, func(now time.Time, e *swim.Engine) {
		pkt = append([]byte(nil), e.Announcement(now)...)
	})
	// The "multicast group" delivers it to every other node.
	for _, nd := range s.Nodes()[:n] {
		s.Do(nd, func(now time.Time, e *swim.Engine) { e.Receive(now, netip.AddrPort{}, pkt) })
	}
	ok := s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, 20*period)
	require.True(t, ok)
	assert.Zero(t, newcomer.Engine.Stats().UnexpectedAcks, "every answer to the announcement was expected")
	assert.Equal(t, uint64(1), newcomer.Engine.Stats().Announcements)
}
