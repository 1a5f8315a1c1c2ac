package smudge

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/wire"
)

func newKey(t *testing.T, n int) []byte {
	t.Helper()
	k := make([]byte, n)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}

// calmConfig is a UDP config with generous probe timeouts: these tests are
// about what gets through, and a starved scheduler (-race on two cores)
// must not be mistaken for a lost packet.
func calmConfig(t *testing.T, seeds ...string) Config {
	cfg := udpConfig(t, seeds...)
	cfg.MinPingTime = time.Second
	cfg.PingHistoryFrontload = time.Second
	return cfg
}

// startCluster starts n nodes with cfgFor(i), nodes 1.. joining node 0.
func startCluster(t *testing.T, n int, cfgFor func(i int, seeds ...string) Config) ([]*Cluster, []*recorder) {
	t.Helper()
	var cs []*Cluster
	var rs []*recorder
	for i := range n {
		var seeds []string
		if i > 0 {
			seeds = []string{cs[0].LocalNode().Address()}
		}
		c, err := New(cfgFor(i, seeds...))
		require.NoError(t, err)
		r := newRecorder()
		c.AddStatusListener(r)
		require.NoError(t, c.Start(context.Background()))
		t.Cleanup(func() { c.Shutdown() })
		cs = append(cs, c)
		rs = append(rs, r)
	}
	waitFor(t, 20*time.Second, "the cluster to converge", allHealthy(cs, n))
	return cs, rs
}

// suspicions counts SUSPECTED and DEAD reports heard by the recorders.
func suspicions(rs []*recorder) int {
	n := 0
	for _, r := range rs {
		r.mu.Lock()
		for _, ch := range r.changes {
			if bytes.HasSuffix([]byte(ch), []byte(" SUSPECTED")) || bytes.HasSuffix([]byte(ch), []byte(" DEAD")) {
				n++
			}
		}
		r.mu.Unlock()
	}
	return n
}

func TestStrangersCannotJoinAnEncryptedCluster(t *testing.T) {
	key := newKey(t, 32)
	name := "secure-" + t.Name()
	cs, rs := startCluster(t, 3, func(i int, seeds ...string) Config {
		cfg := calmConfig(t, seeds...)
		cfg.ClusterName, cfg.Keys = name, [][]byte{key}
		return cfg
	})
	seed := cs[0].LocalNode().Address()

	strangers := map[string]Config{}
	noKey := calmConfig(t, seed)
	noKey.ClusterName = name
	strangers["no key"] = noKey
	wrongKey := calmConfig(t, seed)
	wrongKey.ClusterName, wrongKey.Keys = name, [][]byte{newKey(t, 32)}
	strangers["wrong key"] = wrongKey
	otherCluster := calmConfig(t, seed)
	otherCluster.ClusterName, otherCluster.Keys = name+"-other", [][]byte{key}
	strangers["same key, other cluster name"] = otherCluster

	before := cs[0].Stats()
	var started []*Cluster
	for what, cfg := range strangers {
		s, err := New(cfg)
		require.NoError(t, err, what)
		require.NoError(t, s.Start(context.Background()), what)
		t.Cleanup(func() { s.Shutdown() })
		started = append(started, s)
	}
	// Wait until the seed has refused every stranger several times.
	waitFor(t, 10*time.Second, "the strangers' join attempts to be dropped", func() bool {
		st := cs[0].Stats()
		return st.DroppedPlaintext >= before.DroppedPlaintext+2 && st.DroppedUnauthentic >= before.DroppedUnauthentic+4
	})
	for _, s := range started {
		assert.Len(t, s.Members(), 1, "a stranger learns nothing")
	}
	for i, c := range cs {
		assert.Len(t, c.Members(), 3, "node %d: no stranger became a member", i)
		assert.Len(t, c.HealthyMembers(), 3)
	}
	assert.Zero(t, suspicions(rs), "nobody's view changed")
	// The cluster's own nodes never see each other's traffic refused.
	assert.Zero(t, cs[1].Stats().DroppedUnauthentic)
}

func TestRollingKeyRotationRaisesNoSuspicion(t *testing.T) {
	oldKey, newKeyBytes := newKey(t, 16), newKey(t, 32)
	name := "rotate-" + t.Name()
	cs, rs := startCluster(t, 5, func(i int, seeds ...string) Config {
		cfg := calmConfig(t, seeds...)
		cfg.ClusterName, cfg.Keys = name, [][]byte{oldKey}
		return cfg
	})
	// settle lets every node exchange a few more packets.
	settle := func() {
		marks := make([]uint64, len(cs))
		for i, c := range cs {
			marks[i] = c.Stats().PacketsReceived
		}
		waitFor(t, 10*time.Second, "traffic", func() bool {
			for i, c := range cs {
				if c.Stats().PacketsReceived < marks[i]+3 {
					return false
				}
			}
			return true
		})
	}
	for _, c := range cs {
		require.NoError(t, c.InstallKey(newKeyBytes))
		settle()
	}
	for _, c := range cs {
		require.NoError(t, c.UseKey(newKeyBytes))
		settle()
	}
	for _, c := range cs {
		require.ErrorContains(t, c.RemoveKey(newKeyBytes), "primary")
		require.NoError(t, c.RemoveKey(oldKey))
		settle()
	}
	for i, c := range cs {
		assert.Equal(t, [][]byte{newKeyBytes}, c.Keys(), "node %d", i)
		assert.Len(t, c.HealthyMembers(), 5)
		assert.Zero(t, c.Stats().DroppedUnauthentic, "node %d refused a packet during the rotation", i)
	}
	assert.Zero(t, suspicions(rs), "a rolling rotation must not raise any suspicion")

	// A node still on the old key alone is now a stranger.
	cfg := calmConfig(t, cs[0].LocalNode().Address())
	cfg.ClusterName, cfg.Keys = name, [][]byte{oldKey}
	late, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, late.Start(context.Background()))
	t.Cleanup(func() { late.Shutdown() })
	waitFor(t, 10*time.Second, "the old key to be refused", func() bool { return cs[0].Stats().DroppedUnauthentic > 0 })
	assert.Len(t, cs[0].Members(), 5)

	plain, err := New(calmConfig(t))
	require.NoError(t, err)
	assert.ErrorIs(t, plain.InstallKey(newKeyBytes), ErrEncryptionOff)
	assert.Nil(t, plain.Keys())
}

// recordingTransport keeps a copy of every datagram it sends.
type recordingTransport struct {
	Transport
	mu   sync.Mutex
	sent [][]byte
}

func (r *recordingTransport) WriteTo(b []byte, to netip.AddrPort) error {
	r.mu.Lock()
	r.sent = append(r.sent, bytes.Clone(b))
	r.mu.Unlock()
	return r.Transport.WriteTo(b, to)
}

func TestReplayedPacketsDoNotResurrectADeadNode(t *testing.T) {
	key := newKey(t, 16)
	name := "replay-" + t.Name()
	var rec *recordingTransport
	cs, _ := startCluster(t, 3, func(i int, seeds ...string) Config {
		cfg := udpConfig(t, seeds...)
		cfg.ClusterName, cfg.Keys = name, [][]byte{key}
		cfg.RemoveDeadAfter = 2 * time.Second
		if i == 2 {
			udp, err := NewUDPTransport(netip.MustParseAddrPort("127.0.0.1:0"))
			require.NoError(t, err)
			rec = &recordingTransport{Transport: udp}
			cfg.Transport = rec
		}
		return cfg
	})
	victim := cs[2].LocalNode().Address()
	require.NoError(t, cs[2].Shutdown())
	rec.mu.Lock()
	captured := rec.sent
	rec.mu.Unlock()
	require.NotEmpty(t, captured)

	attacker, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer attacker.Close()
	target := net.UDPAddrFromAddrPort(cs[0].LocalAddr())
	replay := func() {
		for _, p := range captured {
			attacker.WriteToUDP(p, target)
		}
	}

	waitFor(t, 20*time.Second, "the victim to be DEAD", func() bool {
		m := cs[0].Member(victim)
		return m != nil && m.Status() == StatusDead
	})
	replay()
	waitFor(t, 5*time.Second, "the replay to arrive", func() bool { return cs[0].Stats().PacketsReceived > 0 })
	m := cs[0].Member(victim)
	require.NotNil(t, m)
	assert.Equal(t, StatusDead, m.Status(), "old packets cannot revive it")

	waitFor(t, 20*time.Second, "the victim to be removed", func() bool { return cs[0].Member(victim) == nil })
	before := cs[0].Stats().DroppedStale
	replay()
	waitFor(t, 5*time.Second, "the replay to be dropped as stale", func() bool { return cs[0].Stats().DroppedStale > before })
	assert.Nil(t, cs[0].Member(victim), "old packets cannot bring back a removed node")
	assert.Len(t, cs[0].Members(), 2)
}

func TestFloodOfGarbageRaisesNoSuspicion(t *testing.T) {
	const floodSize = 100_000
	name := "flood-" + t.Name()
	cs, rs := startCluster(t, 5, func(i int, seeds ...string) Config {
		cfg := udpConfig(t, seeds...) // default probe timeouts
		if raceEnabled {
			cfg = calmConfig(t, seeds...) // -race makes every step ~10x slower
		}
		cfg.ClusterName = name
		return cfg
	})
	target := cs[2]
	// A real packet to truncate: a join ping from a node of this cluster.
	valid := mustCapturePacket(t, name)

	var mem runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&mem)
	heapBefore := mem.HeapInuse
	before := target.Stats()
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()

	conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(target.LocalAddr()))
	require.NoError(t, err)
	defer conn.Close()
	buf := make([]byte, 1500)
	// The cuts of the real packet that are themselves valid packets (its
	// first message alone is a join ping) would be real traffic, not garbage.
	var cuts []int
	var pkt wire.Packet
	for n := range len(valid) {
		if pkt.Decode(valid[:n]) != nil {
			cuts = append(cuts, n)
		}
	}
	for i := range floodSize {
		var d []byte
		switch i % 3 {
		case 0: // random bytes, random length
			d = buf[:int(buf[0])*5%1500]
			rand.Read(d)
		case 1: // a real packet cut short
			d = valid[:cuts[i%len(cuts)]]
		default: // a real header followed by garbage
			d = append(append(buf[:0], valid[:min(31, len(valid))]...), byte(i), byte(i>>8), 0xff, 0xff)
		}
		conn.Write(d)
	}
	sendTime := time.Since(start)
	// Every datagram the reader took is accounted for once the loop has
	// caught up (what it did not take was lost in the kernel's buffer).
	// The check is on totals since the start, not on differences from
	// before: the reader's counters are live but the engine's are published
	// once a protocol period, so a snapshot taken mid-period holds a stale
	// PacketsReceived and its differences overcount the engine by the
	// packets of that period.
	var read uint64
	waitFor(t, 20*time.Second, "every datagram read to be counted", func() bool {
		st := target.Stats()
		read = st.DatagramsRead - before.DatagramsRead
		accounted := st.DroppedEarly + st.ReceiveQueueDrops + st.PacketsReceived
		// The few real packets of the last period may not show yet.
		return time.Since(start) > time.Second && accounted <= st.DatagramsRead && st.DatagramsRead-accounted <= 50
	})
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	st := target.Stats()
	t.Logf("flood of %d datagrams sent in %v; %d read (the kernel dropped the rest), all counted: malformed %d, queue drops %d; process CPU %v (%.1f µs per datagram, sender included)",
		floodSize, sendTime, read, st.DroppedMalformed-before.DroppedMalformed, st.ReceiveQueueDrops-before.ReceiveQueueDrops,
		cpu, float64(cpu.Microseconds())/floodSize)
	assert.Greater(t, read, uint64(floodSize/2), "most of the flood reached the node")

	runtime.GC()
	runtime.ReadMemStats(&mem)
	assert.Less(t, int64(mem.HeapInuse)-int64(heapBefore), int64(64<<20), "memory stays bounded")
	// Let a few protocol periods pass with the flood over, then check views.
	settleUntil := time.Now().Add(2 * time.Second)
	waitFor(t, 5*time.Second, "a moment of calm", func() bool { return time.Now().After(settleUntil) })
	assert.Zero(t, suspicions(rs), "the flood must not make anyone suspect anyone")
	for _, c := range cs {
		assert.Len(t, c.HealthyMembers(), 5)
	}
}

// mustCapturePacket returns a real packet of the named cluster.
func mustCapturePacket(t *testing.T, cluster string) []byte {
	t.Helper()
	udp, err := NewUDPTransport(netip.MustParseAddrPort("127.0.0.1:0"))
	require.NoError(t, err)
	rec := &recordingTransport{Transport: udp}
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer sink.Close()
	cfg := udpConfig(t, sink.LocalAddr().String())
	cfg.ClusterName, cfg.Transport = cluster, rec
	c, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	defer c.Shutdown()
	waitFor(t, 5*time.Second, "a packet", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.sent) > 0
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.sent[0]
}
