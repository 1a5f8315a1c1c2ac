package liveness

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge"
)

// tokenCfg is a Config with the test token.
func tokenCfg() Config { return Config{Token: testToken} }

// startN starts nodes 1..n with the test token and settles.
func startN(t *testing.T, net *fakeNet, n int) []*fakeNode {
	var nodes []*fakeNode
	for i := 1; i <= n; i++ {
		nodes = append(nodes, net.add(i, tokenCfg()))
	}
	net.settle()
	return nodes
}

func ids(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID+":"+m.StatusText())
	}
	return out
}

func TestMembersShowIDsOnceMetadataIsKnown(t *testing.T) {
	net := newFakeNet(t)
	a := net.add(1, tokenCfg())
	net.add(10, tokenCfg())
	net.add(2, tokenCfg())
	// Before anything is delivered nobody has published metadata.
	ms := a.store.Members()
	require.Len(t, ms, 3)
	assert.Equal(t, []string{"1:ALIVE", ":ALIVE", ":ALIVE"}, ids(ms), "ids are unknown until the metadata arrives")
	net.settle()
	ms = a.store.Members()
	assert.Equal(t, []string{"1:ALIVE", "2:ALIVE", "10:ALIVE"}, ids(ms), "this node first, then by id, numbers by value")
	assert.True(t, ms[0].Local)
	assert.Equal(t, "10.0.0.2:9999", ms[1].Address)
	assert.Equal(t, net.clock.Now().Add(-1200*time.Millisecond), ms[1].LastHeard)
	m, ok := parseMeta(a.meta)
	require.True(t, ok)
	assert.Equal(t, "1", m.id)
	assert.Equal(t, a.store.sig.fp, m.fp)
	assert.Equal(t, setDigest(nil), m.digest)
}

func TestDecommissionSpreadsAndTheNodeLeaves(t *testing.T) {
	net := newFakeNet(t)
	var hooked atomic.Int32
	nodes := []*fakeNode{net.add(1, tokenCfg()), net.add(2, tokenCfg())}
	cfg3 := tokenCfg()
	hookDone := make(chan struct{})
	cfg3.OnDecommissioned = func() { hooked.Add(1); close(hookDone) }
	nodes = append(nodes, net.add(3, cfg3))
	net.settle()

	require.NoError(t, nodes[0].store.Decommission("3"))
	assert.Equal(t, []string{"3"}, nodes[0].store.Decommissioned(), "recorded at once where it was asked")
	net.settle()
	for _, n := range nodes {
		assert.Equal(t, []string{"3"}, n.store.Decommissioned(), "node %s", n.store.ID())
	}
	assert.True(t, nodes[2].store.Leaving())
	// Node 3 waited until the others published the new set, then left.
	net.waitGone(nodes[2])
	<-hookDone
	assert.Equal(t, int32(1), hooked.Load())
	ms := nodes[0].store.Members()
	assert.Equal(t, []string{"1:ALIVE", "2:ALIVE", "3:LEFT"}, ids(ms))
	assert.True(t, ms[2].Decommissioned)
	assert.Len(t, net.broadcasts(0), 1, "one message; nobody re-broadcast, since everyone knew")

	// Asking again is a clear error, as is an id nobody has.
	assert.ErrorIs(t, nodes[1].store.Decommission("3"), ErrAlreadyDecommissioned)
	assert.ErrorIs(t, nodes[1].store.Decommission("7"), ErrUnknownID)
	assert.ErrorIs(t, nodes[1].store.Decommission("a b"), ErrInvalidID)
	assert.ErrorIs(t, nodes[2].store.Decommission("1"), ErrNotRunning, "a node that left decommissions nothing")
}

func TestDecommissionSentToTheNodeItself(t *testing.T) {
	net := newFakeNet(t)
	nodes := startN(t, net, 3)
	require.NoError(t, nodes[1].store.Decommission("2"))
	assert.True(t, nodes[1].store.Leaving())
	select {
	case <-nodes[1].store.Gone():
		t.Fatal("it left before anyone else knew")
	default:
	}
	net.settle()
	net.waitGone(nodes[1])
	for _, n := range []*fakeNode{nodes[0], nodes[2]} {
		assert.Equal(t, []string{"2"}, n.store.Decommissioned())
	}
}

func TestDecommissionedNodeLeavesAfterLeaveTimeoutWhenAPeerNeverShowsItKnows(t *testing.T) {
	net := newFakeNet(t)
	nodes := startN(t, net, 3)
	net.drop = func(from, to *fakeNode) bool { return to == nodes[2] } // node 3 never hears
	require.NoError(t, nodes[1].store.Decommission("2"))
	net.settle()
	select {
	case <-nodes[1].store.Gone():
		t.Fatal("it left although node 3 does not know yet")
	default:
	}
	net.clock.Advance(DefaultLeaveTimeout)
	net.waitGone(nodes[1])
}

func TestLateJoinerLearnsTheDecommissionedIDsFromOneMember(t *testing.T) {
	net := newFakeNet(t)
	nodes := startN(t, net, 5)
	require.NoError(t, nodes[0].store.Decommission("4"))
	require.NoError(t, nodes[0].store.Decommission("5"))
	net.settle()
	net.waitGone(nodes[3])
	net.waitGone(nodes[4])
	before := len(net.broadcasts(0))

	late := net.add(6, tokenCfg())
	net.settle()
	assert.Empty(t, late.store.Decommissioned(), "not before SyncDelay")
	net.clock.Advance(DefaultSyncDelay)
	net.settle()
	assert.Equal(t, []string{"4", "5"}, late.store.Decommissioned())
	sent := net.broadcasts(0)[before:]
	require.Len(t, sent, 1, "one re-broadcast for the newcomer, not one per member")
	assert.Len(t, net.broadcasts(1), 3, "by the member with the lowest address holding the set")

	// Once every set matches nobody sends anything, however long it runs.
	net.clock.Advance(10 * DefaultSyncInterval)
	net.settle()
	assert.Len(t, net.broadcasts(0), before+1)
}

func TestRestartedDecommissionedNodeWithoutStateLeavesAgain(t *testing.T) {
	net := newFakeNet(t)
	nodes := startN(t, net, 3)
	require.NoError(t, nodes[0].store.Decommission("3"))
	net.settle()
	net.waitGone(nodes[2])

	again := net.add(3, tokenCfg()) // same id, no state directory
	net.settle()
	net.clock.Advance(DefaultSyncDelay)
	net.settle()
	assert.True(t, again.store.Leaving())
	net.waitGone(again)
}

func TestLostReBroadcastIsRepairedByThePeriodicComparison(t *testing.T) {
	net := newFakeNet(t)
	nodes := startN(t, net, 3)
	require.NoError(t, nodes[0].store.Decommission("3"))
	net.settle()
	net.waitGone(nodes[2])

	var late *fakeNode
	net.drop = func(from, to *fakeNode) bool { return to == late }
	late = net.add(4, tokenCfg())
	net.settle()
	net.clock.Advance(DefaultSyncDelay)
	net.settle()
	assert.Empty(t, late.store.Decommissioned(), "the re-broadcast was lost")
	net.drop = nil
	net.clock.Advance(DefaultSyncInterval)
	net.settle()
	net.clock.Advance(DefaultSyncDelay)
	net.settle()
	assert.Equal(t, []string{"3"}, late.store.Decommissioned())
}

func TestSetsMergeWhenTwoGroupsMeet(t *testing.T) {
	// Two groups that decommissioned different ids apart (say, across a
	// partition) meet: each group's lowest member sends its set, and all
	// end with the union.
	net := newFakeNet(t)
	a := net.add(1, tokenCfg())
	b := net.add(2, tokenCfg())
	c := net.add(3, tokenCfg())
	d := net.add(4, tokenCfg())
	net.settle()
	for _, n := range []*fakeNode{a, b} {
		n.store.set["x"] = net.clock.Now()
		n.store.digest = setDigest(sortedIDs(n.store.set))
		n.store.publish()
	}
	for _, n := range []*fakeNode{c, d} {
		n.store.set["y"] = net.clock.Now()
		n.store.digest = setDigest(sortedIDs(n.store.set))
		n.store.publish()
	}
	net.settle()
	net.clock.Advance(DefaultSyncDelay)
	net.settle()
	for _, n := range []*fakeNode{a, b, c, d} {
		assert.Equal(t, []string{"x", "y"}, n.store.Decommissioned(), "node %s", n.store.ID())
	}
	assert.Len(t, net.broadcasts(0), 2, "one per group: nodes 1 and 3")
	assert.Len(t, net.broadcasts(1), 1)
	assert.Len(t, net.broadcasts(3), 1)
}

func TestNodeWithoutTokenIgnoresAndCountsDecommissions(t *testing.T) {
	net := newFakeNet(t)
	a := net.add(1, tokenCfg())
	b := net.add(2, Config{}) // no token
	net.settle()
	assert.ErrorIs(t, b.store.Decommission("1"), ErrNoToken)
	require.NoError(t, a.store.Decommission("2"))
	net.settle()
	assert.Empty(t, b.store.Decommissioned())
	assert.False(t, b.store.Leaving(), "it cannot check the message, so it does not obey it")
	assert.Equal(t, uint64(1), b.store.Stats().IgnoredNoToken)
	// Its metadata carries no fingerprint: it takes no part in comparing sets.
	m, ok := parseMeta(b.meta)
	require.True(t, ok)
	assert.Equal(t, memberMeta{id: "2"}, m)
}

func TestForgedMalformedAndReplayedMessages(t *testing.T) {
	net := newFakeNet(t)
	nodes := startN(t, net, 3)
	a := nodes[0].store

	stranger := newSigner("another-token-of-24-chars", "test")
	for _, m := range stranger.encode(net.clock.Now(), []string{"1"}, 256) {
		a.onBroadcast(m)
	}
	otherCluster := newSigner(testToken, "other")
	for _, m := range otherCluster.encode(net.clock.Now(), []string{"1"}, 256) {
		a.onBroadcast(m)
	}
	assert.Equal(t, uint64(2), a.Stats().Unauthentic, "wrong token, and the right token for another cluster")

	a.onBroadcast([]byte(prefix + "garbage"))
	a.onBroadcast([]byte(prefix + "12x " + strings.Repeat("A", macChars) + " 1"))
	assert.Equal(t, uint64(2), a.Stats().Malformed)
	a.onBroadcast([]byte("hello, a user's own broadcast"))
	assert.Equal(t, Stats{Unauthentic: 2, Malformed: 2}, a.Stats(), "other broadcasts are not counted")
	assert.False(t, a.Leaving())

	// A genuine message captured and replayed after MaxMessageAge is ignored.
	old := nodes[1].store.sig.encode(net.clock.Now(), []string{"1"}, 256)[0]
	net.clock.Advance(DefaultMaxMessageAge + time.Second)
	a.onBroadcast(old)
	assert.Equal(t, uint64(1), a.Stats().Stale)
	future := nodes[1].store.sig.encode(net.clock.Now().Add(DefaultMaxMessageAge+time.Second), []string{"1"}, 256)[0]
	a.onBroadcast(future)
	assert.Equal(t, uint64(2), a.Stats().Stale)
	assert.False(t, a.Leaving())
	assert.Empty(t, a.Decommissioned())

	// Within the window a replay only repeats what the message did.
	require.NoError(t, nodes[1].store.Decommission("3"))
	net.settle()
	msg := net.broadcasts(2)[0]
	net.waitGone(nodes[2])
	a.onBroadcast(msg)
	assert.Equal(t, []string{"3"}, a.Decommissioned())
	assert.False(t, a.Leaving())
}

func TestMaxDecommissionedBoundsTheSet(t *testing.T) {
	net := newFakeNet(t)
	cfg := tokenCfg()
	cfg.MaxDecommissioned = 2
	a := net.add(1, cfg)
	b := net.add(2, tokenCfg())
	net.settle()
	for _, m := range b.store.sig.encode(net.clock.Now(), []string{"x", "y", "z"}, 256) {
		a.store.onBroadcast(m)
	}
	assert.Equal(t, []string{"x", "y"}, a.store.Decommissioned())
	assert.Equal(t, uint64(1), a.store.Stats().Overflow)
	assert.ErrorIs(t, a.store.Decommission("2"), ErrTooMany)
}

func TestNewRejectsBadConfig(t *testing.T) {
	net := newFakeNet(t)
	_, err := net.tryAdd(1, Config{ID: "has space"})
	assert.ErrorIs(t, err, ErrInvalidID)
	_, err = net.tryAdd(1, Config{ID: "1", Token: "short"})
	assert.ErrorContains(t, err, "the token is 5 bytes: use at least 16")
	_, err = newStore(&fakeNode{net: net}, "test", 100, Config{ID: "1"}, net.clock)
	assert.ErrorContains(t, err, "MaxBroadcastBytes is 100: decommission messages need at least")
}

func TestStatePersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	net := newFakeNet(t)
	cfg := func(i int) Config {
		c := tokenCfg()
		c.StateDir = filepath.Join(dir, "node", string(rune('0'+i)))
		return c
	}
	nodes := []*fakeNode{net.add(1, cfg(1)), net.add(2, cfg(2)), net.add(3, cfg(3))}
	net.settle()
	require.NoError(t, nodes[0].store.Decommission("2"))
	net.settle()
	net.waitGone(nodes[1])
	for i := 1; i <= 3; i++ {
		set, err := loadState(cfg(i).StateDir)
		require.NoError(t, err)
		assert.Contains(t, set, "2", "node %d saved it", i)
		entries, _ := os.ReadDir(cfg(i).StateDir)
		assert.Len(t, entries, 1, "no temporary file left behind")
	}

	// Node 2 started again, with its state: it refuses at once.
	_, err := net.tryAdd(2, cfg(2))
	require.ErrorIs(t, err, ErrDecommissioned)
	assert.Contains(t, err.Error(), `this node's id "2" is decommissioned (since `)
	assert.Contains(t, err.Error(), filepath.Join(cfg(2).StateDir, StateFile))

	// Node 1 restarted remembers, and tells a newcomer.
	net.crash(nodes[0])
	net.settle()
	again := net.add(1, cfg(1))
	assert.Equal(t, []string{"2"}, again.store.Decommissioned())
}

func TestBadStateFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	net := newFakeNet(t)
	write := func(s string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, StateFile), []byte(s), 0o600))
	}
	cfg := Config{StateDir: dir}
	for _, tc := range []struct{ file, want string }{
		{"{", "fix the file, or remove it"},
		{`{"version":2,"decommissioned":{}}`, "version 2, this program reads version 1"},
		{`{"version":1,"decommissioned":{"a b":"2026-01-01T00:00:00Z"}}`, "invalid id"},
		{`{"version":1,"extra":1}`, "unknown field"},
	} {
		write(tc.file)
		_, err := net.tryAdd(1, cfg)
		assert.ErrorContains(t, err, tc.want, "file %s", tc.file)
	}
}

func TestPersistErrorsAreCounted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	net := newFakeNet(t)
	cfg := tokenCfg()
	cfg.StateDir = dir
	a := net.add(1, cfg)
	net.add(2, tokenCfg())
	net.settle()
	require.NoError(t, os.WriteFile(dir, nil, 0o600)) // the directory cannot be created now
	require.NoError(t, a.store.Decommission("2"))
	assert.Equal(t, uint64(1), a.store.Stats().PersistErrors)
}

func TestCloseStopsTheStore(t *testing.T) {
	net := newFakeNet(t)
	nodes := startN(t, net, 2)
	nodes[1].store.Close()
	require.NoError(t, nodes[0].store.Decommission("2"))
	net.settle()
	assert.Empty(t, nodes[1].store.Decommissioned(), "a closed store ignores what it hears")
	assert.Equal(t, smudge.StatusAlive, nodes[1].status)
}
