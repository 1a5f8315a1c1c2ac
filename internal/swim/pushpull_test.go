package swim_test

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
	"github.com/seed-c7906467/smudge/sim"
)

// bootstrapped returns n nodes that all know each other ALIVE, with
// metadata, and push-pull off.
func bootstrapped(t testing.TB, n int, tweak func(*swim.Config)) *sim.Sim {
	return bootstrappedMeta(t, n, 2, tweak)
}

// bootstrappedMeta is bootstrapped with metaLen bytes of metadata each.
func bootstrappedMeta(t testing.TB, n, metaLen int, tweak func(*swim.Config)) *sim.Sim {
	t.Helper()
	cfg := sim.DefaultEngineConfig()
	if tweak != nil {
		tweak(&cfg)
	}
	s := sim.New(sim.Config{Seed: 3, Latency: time.Millisecond, Engine: cfg})
	nodes := s.AddNodes(n)
	s.Bootstrap(nodes)
	for i, nd := range nodes {
		s.Do(nd, func(now time.Time, e *swim.Engine) {
			require.NoError(t, e.SetMeta(now, append([]byte{'m', byte(i)}, make([]byte, metaLen-2)...)))
		})
	}
	s.RunFor(10 * time.Second)
	return s
}

// fresh returns an engine alone, at address 10.99.0.1:7946.
func fresh(t testing.TB, tweak func(*swim.Config)) *swim.Engine {
	t.Helper()
	cfg := sim.DefaultEngineConfig()
	cfg.Self = netip.MustParseAddrPort("10.99.0.1:7946")
	cfg.Incarnation = 5
	cfg.Rand = rand.New(rand.NewPCG(9, 9))
	if tweak != nil {
		tweak(&cfg)
	}
	e, err := swim.New(cfg, sim.DefaultStart)
	require.NoError(t, err)
	return e
}

func inflate(t testing.TB, b []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(flate.NewReader(bytes.NewReader(b)))
	require.NoError(t, err)
	return out
}

func deflate(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestStateRoundTripTeachesEveryMemberAndItsMetadata(t *testing.T) {
	s := bootstrapped(t, 16, nil)
	src := s.Node(0).Engine
	e := fresh(t, nil)
	now := s.Now()
	require.NoError(t, e.MergeState(now, src.Self(), src.AppendState(nil)))
	got := map[netip.AddrPort]swim.Member{}
	for _, m := range e.Members()[1:] {
		got[m.Addr] = m
	}
	require.Len(t, got, 16)
	for _, want := range src.Members() {
		m := got[want.Addr]
		assert.Equal(t, want.Status, m.Status, "%v", want.Addr)
		assert.Equal(t, want.Incarnation, m.Incarnation, "%v", want.Addr)
		assert.Equal(t, want.Meta, m.Meta, "%v", want.Addr)
	}
	st := e.Stats()
	assert.Equal(t, uint64(1), st.StatesMerged)
	assert.Zero(t, st.DroppedBadState)
	// Merging it again is no news: nothing more is queued for gossip.
	queued := st.QueuedGossip
	require.NoError(t, e.MergeState(now, src.Self(), src.AppendState(nil)))
	assert.Equal(t, queued, e.Stats().QueuedGossip)
}

// plainState builds a plain state by hand, as AppendState encodes it.
type plainState struct {
	b []byte
}

func newPlain(cluster uint32, sender netip.AddrPort, count uint64) *plainState {
	b := []byte{'P', 'S', 2}
	b = binary.BigEndian.AppendUint32(b, cluster)
	b = wire.AppendAddr(b, sender)
	b = binary.AppendUvarint(b, count)
	return &plainState{b: b}
}

// entry appends an entry whose source is the subject, without metadata.
func (p *plainState) entry(st swim.Status, inc uint32, subject netip.AddrPort) *plainState {
	p.b = append(p.b, byte(st)|0x10)
	p.b = binary.AppendUvarint(p.b, uint64(inc))
	p.b = wire.AppendAddr(p.b, subject)
	return p
}

func TestMergeStateRejectsEveryKindOfBadState(t *testing.T) {
	cluster := sim.DefaultEngineConfig().ClusterID
	a := netip.MustParseAddrPort("10.0.0.1:7946")
	b := netip.MustParseAddrPort("10.0.0.2:7946")
	self := netip.MustParseAddrPort("10.99.0.1:7946")
	good := func() *plainState {
		return newPlain(cluster, a, 2).entry(swim.StatusAlive, 3, a).entry(swim.StatusAlive, 4, b)
	}
	// The good one merges: the cases below each break one thing of it.
	e := fresh(t, nil)
	require.NoError(t, e.MergeState(sim.DefaultStart, a, deflate(good().b)))
	require.Equal(t, 3, e.NumLive())

	over := newPlain(cluster, a, 1).entry(swim.StatusAlive, 3, a)
	over.b = append(over.b, make([]byte, swim.DefaultMaxStateBytes)...) // trailing, and too big
	cases := []struct {
		name  string
		state []byte
	}{
		{"empty", nil},
		{"not flate", []byte("hello, this is not deflate at all")},
		{"truncated flate", deflate(good().b)[:10]},
		{"bad magic", deflate(append([]byte{'X'}, good().b[1:]...))},
		{"bad version", deflate(append([]byte{'P', 'S', 9}, good().b[3:]...))},
		{"short header", deflate([]byte{'P', 'S', 1, 0})},
		{"bad sender", deflate(append(good().b[:11], 4, 0, 0, 0, 0, 0, 0))},
		{"zero count", deflate(newPlain(cluster, a, 0).b)},
		{"count past the end", deflate(newPlain(cluster, a, 3).entry(swim.StatusAlive, 3, a).entry(swim.StatusAlive, 4, b).b)},
		{"huge count", deflate(newPlain(cluster, a, 1<<40).entry(swim.StatusAlive, 3, a).b)},
		{"bad status", deflate(newPlain(cluster, a, 1).entry(swim.Status(7), 3, a).b)},
		{"unknown flag", deflate(func() []byte { p := good(); p.b[len(newPlain(cluster, a, 2).b)] |= 0x80; return p.b }())},
		{"trailing bytes", deflate(append(good().b, 0))},
		{"truncated entry", deflate(func() []byte { p := good(); return p.b[:len(p.b)-3] }())},
		{"first entry not the sender", deflate(newPlain(cluster, a, 1).entry(swim.StatusAlive, 3, b).b)},
		{"unusable subject", deflate(newPlain(cluster, a, 2).entry(swim.StatusAlive, 3, a).entry(swim.StatusAlive, 3, netip.MustParseAddrPort("0.0.0.0:7946")).b)},
		{"truncated metadata", deflate(append(newPlain(cluster, a, 1).b, byte(swim.StatusAlive)|0x10|0x08, 3, 4, 10, 0, 0, 1, 0x1f, 0x0a, 5, 'x'))},
		{"oversized", deflate(over.b)},
		{"from another than asked", deflate(newPlain(cluster, b, 1).entry(swim.StatusAlive, 3, b).b)},
	}
	for _, c := range cases {
		e := fresh(t, nil)
		from := a
		err := e.MergeState(sim.DefaultStart, from, c.state)
		require.ErrorIs(t, err, swim.ErrBadState, c.name)
		assert.Equal(t, uint64(1), e.Stats().DroppedBadState, c.name)
		assert.Equal(t, 1, e.NumLive(), "%s: something was applied", c.name)
		assert.Len(t, e.Members(), 1, c.name)
	}
	// Another cluster, and this node's own state, are counted as such.
	e = fresh(t, nil)
	require.ErrorIs(t, e.MergeState(sim.DefaultStart, netip.AddrPort{}, deflate(newPlain(cluster+1, a, 1).entry(swim.StatusAlive, 3, a).b)), swim.ErrBadState)
	require.ErrorIs(t, e.MergeState(sim.DefaultStart, netip.AddrPort{}, e.AppendState(nil)), swim.ErrBadState)
	st := e.Stats()
	assert.Equal(t, uint64(1), st.DroppedWrongCluster)
	assert.Equal(t, uint64(1), st.DroppedFromSelf)
	assert.Zero(t, st.DroppedBadState)
	_ = self
}

func TestMergeStateSuspectsRatherThanBelievesDeadAndRefutesLies(t *testing.T) {
	cluster := sim.DefaultEngineConfig().ClusterID
	a := netip.MustParseAddrPort("10.0.0.1:7946")
	b := netip.MustParseAddrPort("10.0.0.2:7946")
	e := fresh(t, nil)
	now := sim.DefaultStart
	require.NoError(t, e.MergeState(now, a, deflate(newPlain(cluster, a, 2).entry(swim.StatusAlive, 3, a).entry(swim.StatusAlive, 4, b).b)))
	// a says b is DEAD and this node SUSPECTED.
	lie := newPlain(cluster, a, 3).entry(swim.StatusAlive, 3, a).entry(swim.StatusDead, 4, b).entry(swim.StatusSuspect, 5, e.Self())
	require.NoError(t, e.MergeState(now, a, deflate(lie.b)))
	m, ok := e.Member(b)
	require.True(t, ok)
	assert.Equal(t, swim.StatusSuspect, m.Status, "DEAD believed without a probe of its own")
	assert.Equal(t, uint64(1), e.Stats().Refutations)
	assert.Equal(t, uint32(6), e.Incarnation())
}

func TestStateIsBoundedAndRotatesThroughTheMembers(t *testing.T) {
	const n = 40
	s := bootstrapped(t, n, func(c *swim.Config) { c.MaxSyncMembers = 10 })
	src := s.Node(0).Engine
	seen := map[netip.AddrPort]bool{}
	for range 4 {
		e := fresh(t, nil)
		require.NoError(t, e.MergeState(s.Now(), src.Self(), src.AppendState(nil)))
		ms := e.Members()[1:]
		require.Len(t, ms, 11, "itself and MaxSyncMembers others")
		for _, m := range ms {
			seen[m.Addr] = true
		}
	}
	assert.Len(t, seen, n, "four states of ten cover all 39 others")

	// MaxStateBytes bounds the plain encoding.
	s = bootstrappedMeta(t, n, 40, func(c *swim.Config) { c.MaxStateBytes = 1024 })
	src = s.Node(0).Engine
	plain := inflate(t, src.AppendState(nil))
	assert.LessOrEqual(t, len(plain), 1024)
	e := fresh(t, nil)
	require.NoError(t, e.MergeState(s.Now(), src.Self(), src.AppendState(nil)))
	assert.Less(t, len(e.Members()), n)
}

func TestTakePushPullsAfterJoinAndEveryInterval(t *testing.T) {
	seed := netip.MustParseAddrPort("10.0.0.1:7946")
	e := fresh(t, func(c *swim.Config) { c.PushPullInterval = 2 * time.Second })
	e.Join(sim.DefaultStart, seed, netip.MustParseAddrPort("10.0.0.2:7946"))
	assert.Equal(t, []netip.AddrPort{seed}, e.TakePushPulls(nil), "one sync with the first seed")
	assert.Empty(t, e.TakePushPulls(nil))
	// With members (that answer), one random member per interval, and
	// at most MaxPendingPushPulls waiting for the host.
	r := newRigWith(t, func(c *swim.Config) { c.PushPullInterval = 2 * time.Second })
	r.addPeers(12)
	var got []netip.AddrPort
	for range 200 { // 20 s
		r.run(100 * time.Millisecond)
		got = r.e.TakePushPulls(got)
	}
	assert.Len(t, got, 10)
	peers := map[netip.AddrPort]bool{}
	for i := range 12 {
		peers[peer(i)] = true
	}
	for _, a := range got {
		assert.True(t, peers[a], "%v is not a member", a)
	}
	r.run(40 * time.Second)
	assert.Len(t, r.e.TakePushPulls(nil), swim.MaxPendingPushPulls)
	assert.Equal(t, uint64(20-swim.MaxPendingPushPulls), r.e.Stats().PushPullsSkipped)
	// Off: never.
	e = fresh(t, nil)
	e.Join(sim.DefaultStart, seed)
	assert.Empty(t, e.TakePushPulls(nil))
	assert.Zero(t, e.PushPullInterval())
}

// The sync after Join goes on to the next seed when it fails, each seed
// once; it stops at the first that answers; other syncs are not retried.
func TestJoinSyncTriesTheNextSeedWhenOneFails(t *testing.T) {
	seeds := []netip.AddrPort{ // not the simulator's addresses (10.0.0.x)
		netip.MustParseAddrPort("10.8.0.1:7946"),
		netip.MustParseAddrPort("10.8.0.2:7946"),
		netip.MustParseAddrPort("10.8.0.3:7946"),
	}
	e := fresh(t, func(c *swim.Config) { c.PushPullInterval = time.Minute })
	e.Join(sim.DefaultStart, seeds...)
	for i, a := range seeds {
		assert.Equal(t, []netip.AddrPort{a}, e.TakePushPulls(nil), "seed %d", i)
		if i > 0 { // a failure with another than the seed under way: nothing
			e.PushPullFailed(seeds[0])
			assert.Empty(t, e.TakePushPulls(nil))
		}
		e.PushPullFailed(a)
	}
	assert.Empty(t, e.TakePushPulls(nil), "every seed tried once")
	assert.Equal(t, uint64(2), e.Stats().JoinSyncRetries)

	// The second seed answers: no more.
	s := bootstrapped(t, 2, nil)
	answer := s.Node(1).Engine.AppendState(nil)
	from := s.Node(1).Addr
	e = fresh(t, func(c *swim.Config) { c.PushPullInterval = time.Minute })
	e.Join(sim.DefaultStart, seeds[0], from, seeds[2])
	assert.Equal(t, []netip.AddrPort{seeds[0]}, e.TakePushPulls(nil))
	e.PushPullFailed(seeds[0])
	assert.Equal(t, []netip.AddrPort{from}, e.TakePushPulls(nil))
	require.NoError(t, e.MergeState(sim.DefaultStart, from, answer))
	e.PushPullFailed(from) // a later sync with it, failing
	assert.Empty(t, e.TakePushPulls(nil))
	assert.Equal(t, uint64(1), e.Stats().JoinSyncRetries)
}

// BenchmarkAppendState builds node 0's state in bootstrapped clusters
// (2 bytes of metadata per member) and reports its size, compressed and
// plain.
func BenchmarkAppendState(b *testing.B) {
	for _, n := range []int{16, 64, 1000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			s := bootstrapped(b, n, nil)
			e := s.Node(0).Engine
			state := e.AppendState(nil)
			plain := inflate(b, state)
			buf := make([]byte, 0, len(state))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				buf = e.AppendState(buf[:0])
			}
			b.ReportMetric(float64(len(state)), "state-B")
			b.ReportMetric(float64(len(plain)), "plain-B")
		})
	}
}

// BenchmarkMergeState merges node 1's state into node 0 (no news).
func BenchmarkMergeState(b *testing.B) {
	for _, n := range []int{16, 64, 1000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			s := bootstrapped(b, n, nil)
			state := s.Node(1).Engine.AppendState(nil)
			e := s.Node(0).Engine
			from := s.Node(1).Addr
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := e.MergeState(s.Now(), from, state); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
