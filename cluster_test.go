package smudge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/memnet"
)

// memCluster starts n Clusters on an in-memory network, all joining the
// first, and returns them with one recorder each.
func memCluster(t *testing.T, network *memnet.Network, n int) ([]*Cluster, []*recorder) {
	t.Helper()
	var cs []*Cluster
	var rs []*recorder
	for i := range n {
		ep, err := network.Listen(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 9999))
		require.NoError(t, err)
		cfg := DefaultConfig()
		cfg.Transport = ep
		cfg.MulticastEnabled = false
		cfg.LogThreshold = LogWarn
		cfg.Seed = int64(i + 1)
		// Generous probe timeouts: these tests are about the API, and a
		// starved scheduler (-race on two cores) must not raise suspicion.
		cfg.MinPingTime = time.Second
		cfg.PingHistoryFrontload = time.Second
		if i > 0 {
			cfg.InitialHosts = []string{cs[0].LocalAddr().String()}
		}
		c, err := New(cfg)
		require.NoError(t, err)
		r := newRecorder()
		c.AddStatusListener(r)
		c.AddBroadcastListener(r)
		require.NoError(t, c.Start(context.Background()))
		t.Cleanup(func() { c.Shutdown() })
		cs = append(cs, c)
		rs = append(rs, r)
	}
	return cs, rs
}

func allHealthy(cs []*Cluster, want int) func() bool {
	return func() bool {
		for _, c := range cs {
			if c.Running() && len(c.HealthyMembers()) != want {
				return false
			}
		}
		return true
	}
}

func TestTenClustersInOneProcessLeaveGracefully(t *testing.T) {
	network := memnet.New(memnet.WithLatency(time.Millisecond, time.Millisecond), memnet.WithSeed(3))
	t.Cleanup(func() { network.Close() })
	cs, rs := memCluster(t, network, 10)
	waitFor(t, 20*time.Second, "convergence", allHealthy(cs, 10))

	leaver := cs[4].LocalNode().Address()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, cs[4].Leave(ctx))
	assert.False(t, cs[4].Running())
	assert.ErrorIs(t, cs[4].Broadcast([]byte("x")), ErrStopped)

	waitFor(t, 10*time.Second, "everyone to see the leave", func() bool {
		for i, c := range cs {
			if i == 4 {
				continue
			}
			if m := c.Member(leaver); m == nil || m.Status() != StatusDead || !m.Left() {
				return false
			}
		}
		return true
	})
	for i, c := range cs {
		if i == 4 {
			continue
		}
		c.waitListeners()
		rs[i].mu.Lock()
		var seen []string
		for _, ch := range rs[i].changes {
			if len(ch) > len(leaver) && ch[:len(leaver)+1] == leaver+" " {
				seen = append(seen, ch[len(leaver)+1:])
			}
		}
		rs[i].mu.Unlock()
		assert.Equal(t, []string{"ALIVE", "DEAD"}, seen, "node %d heard of the leaver: no SUSPECTED on a graceful leave", i)
	}
}

func TestMembersAreImmutableSnapshots(t *testing.T) {
	network := memnet.New()
	t.Cleanup(func() { network.Close() })
	cs, _ := memCluster(t, network, 3)
	waitFor(t, 10*time.Second, "convergence", allHealthy(cs, 3))
	snap := cs[0].Members()
	require.Len(t, snap, 3)
	assert.True(t, snap[0].IsLocal())
	assert.Equal(t, cs[0].LocalNode().Address(), snap[0].Address())
	victim := cs[2].LocalNode().Address()
	require.NoError(t, cs[2].Shutdown())
	waitFor(t, 20*time.Second, "the crash to be seen", func() bool {
		m := cs[0].Member(victim)
		return m != nil && m.Status() == StatusDead
	})
	for _, n := range snap {
		assert.Equal(t, StatusAlive, n.Status(), "a snapshot handed out earlier must not change")
	}
}

// blockingListener blocks on its first event until released.
type blockingListener struct {
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	got     []string
}

func (b *blockingListener) OnChange(n *Node, st NodeStatus) {
	b.once.Do(func() { <-b.release })
	b.mu.Lock()
	b.got = append(b.got, n.Address()+" "+st.String())
	b.mu.Unlock()
}

func TestSlowListenerDelaysOnlyItself(t *testing.T) {
	network := memnet.New()
	t.Cleanup(func() { network.Close() })
	slow := &blockingListener{release: make(chan struct{})}
	ep, err := network.Listen(netip.MustParseAddrPort("10.0.1.1:9999"))
	require.NoError(t, err)
	cfg := DefaultConfig()
	cfg.Transport, cfg.MulticastEnabled, cfg.LogThreshold = ep, false, LogWarn
	c0, err := New(cfg)
	require.NoError(t, err)
	c0.AddStatusListener(slow)
	fast := newRecorder()
	c0.AddStatusListener(fast)
	require.NoError(t, c0.Start(context.Background()))
	t.Cleanup(func() { c0.Shutdown() })

	ep2, err := network.Listen(netip.MustParseAddrPort("10.0.1.2:9999"))
	require.NoError(t, err)
	cfg2 := cfg
	cfg2.Transport, cfg2.InitialHosts = ep2, []string{"10.0.1.1:9999"}
	c1, err := New(cfg2)
	require.NoError(t, err)
	require.NoError(t, c1.Start(context.Background()))
	t.Cleanup(func() { c1.Shutdown() })

	// The protocol and the other listener go on while slow is stuck.
	waitFor(t, 10*time.Second, "convergence with a stuck listener", allHealthy([]*Cluster{c0, c1}, 2))
	waitFor(t, 5*time.Second, "the fast listener", func() bool { return fast.status("10.0.1.2:9999") == StatusAlive })
	slow.mu.Lock()
	assert.Empty(t, slow.got)
	slow.mu.Unlock()

	close(slow.release)
	c0.waitListeners()
	slow.mu.Lock()
	defer slow.mu.Unlock()
	assert.Equal(t, []string{"10.0.1.1:9999 ALIVE", "10.0.1.2:9999 ALIVE"}, slow.got, "in order, once released")
}

func TestStartErrors(t *testing.T) {
	// A bind failure is returned, naming the address.
	busy, err := NewUDPTransport(netip.MustParseAddrPort("127.0.0.1:0"))
	require.NoError(t, err)
	defer busy.Close()
	cfg := udpConfig(t)
	cfg.ListenPort = int(busy.LocalAddr().Port())
	c, err := New(cfg)
	require.NoError(t, err)
	err = c.Start(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), busy.LocalAddr().String())
	assert.False(t, c.Running())

	// Not started: clear errors, no panic.
	c2, err := New(udpConfig(t))
	require.NoError(t, err)
	assert.ErrorIs(t, c2.Broadcast([]byte("x")), ErrNotStarted)
	assert.ErrorIs(t, c2.PingNode(newNodeAddr(netip.MustParseAddrPort("127.0.0.1:1"))), ErrNotStarted)
	assert.Empty(t, c2.Members())
	assert.Nil(t, c2.LocalNode())
	require.NoError(t, c2.Start(context.Background()))
	assert.ErrorIs(t, c2.Start(context.Background()), ErrAlreadyStarted)
	require.NoError(t, c2.Shutdown())
	require.NoError(t, c2.Shutdown())
	assert.ErrorIs(t, c2.Start(context.Background()), ErrStopped)

	// A bad configuration is refused by New.
	bad := DefaultConfig()
	bad.HeartbeatInterval = 0
	_, err = New(bad)
	assert.Error(t, err)
}

func TestBroadcastErrors(t *testing.T) {
	network := memnet.New()
	t.Cleanup(func() { network.Close() })
	cs, _ := memCluster(t, network, 1)
	err := cs[0].Broadcast(make([]byte, DefaultMaxBroadcastBytes+1))
	assert.ErrorIs(t, err, ErrBroadcastTooLarge)
	assert.Contains(t, err.Error(), "257 bytes")
	assert.NoError(t, cs[0].Broadcast(make([]byte, DefaultMaxBroadcastBytes)))
	// The caller's slice is copied.
	buf := []byte("abc")
	require.NoError(t, cs[0].Broadcast(buf))
	buf[0] = 'X'
}

func TestListenOnAllInterfacesWithAdvertiseAddress(t *testing.T) {
	var cs []*Cluster
	for i := range 2 {
		cfg := udpConfig(t)
		cfg.ListenIP = net.IPv4zero
		probe, err := NewUDPTransport(netip.MustParseAddrPort("127.0.0.1:0"))
		require.NoError(t, err)
		port := probe.LocalAddr().Port()
		probe.Close()
		cfg.ListenPort = int(port)
		cfg.AdvertiseAddr = fmt.Sprintf("127.0.0.1:%d", port)
		if i > 0 {
			cfg.InitialHosts = []string{cs[0].LocalNode().Address()}
		}
		c, err := New(cfg)
		require.NoError(t, err)
		require.NoError(t, c.Start(context.Background()))
		t.Cleanup(func() { c.Shutdown() })
		assert.Equal(t, cfg.AdvertiseAddr, c.LocalNode().Address())
		assert.True(t, c.LocalAddr().Addr().IsUnspecified())
		cs = append(cs, c)
	}
	waitFor(t, 10*time.Second, "two nodes bound to 0.0.0.0 to converge", allHealthy(cs, 2))
}

func TestDualStackBindServesIPv4Members(t *testing.T) {
	probe, err := NewUDPTransport(netip.MustParseAddrPort("[::]:0"))
	if err != nil {
		t.Skipf("cannot bind [::]: %v", err)
	}
	port := probe.LocalAddr().Port()
	probe.Close()
	cfg := udpConfig(t)
	cfg.ListenIP = net.IPv6unspecified
	cfg.ListenPort = int(port)
	cfg.AdvertiseAddr = "127.0.0.1"
	a, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	t.Cleanup(func() { a.Shutdown() })
	assert.Equal(t, fmt.Sprintf("127.0.0.1:%d", port), a.LocalNode().Address(), "the bound port is advertised")

	b, err := New(udpConfig(t, a.LocalNode().Address()))
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background()))
	t.Cleanup(func() { b.Shutdown() })
	waitFor(t, 10*time.Second, "a [::]-bound node and an IPv4 node to converge", allHealthy([]*Cluster{a, b}, 2))
}

func TestIPv6Cluster(t *testing.T) {
	probe, err := NewUDPTransport(netip.MustParseAddrPort("[::1]:0"))
	if err != nil {
		t.Skipf("IPv6 loopback unavailable: %v", err)
	}
	probe.Close()
	var cs []*Cluster
	for i := range 3 {
		cfg := udpConfig(t)
		cfg.ListenIP = net.IPv6loopback
		if i > 0 {
			cfg.InitialHosts = []string{cs[0].LocalNode().Address()}
		}
		c, err := New(cfg)
		require.NoError(t, err)
		require.NoError(t, c.Start(context.Background()))
		t.Cleanup(func() { c.Shutdown() })
		assert.Regexp(t, `^\[::1\]:\d+$`, c.LocalNode().Address())
		cs = append(cs, c)
	}
	waitFor(t, 10*time.Second, "an IPv6 cluster to converge", allHealthy(cs, 3))
}

func TestCreateNodeByAddress(t *testing.T) {
	resetDefaultConfigForTest()
	SetListenPort(9999)
	t.Cleanup(resetDefaultConfigForTest)
	good := map[string]string{
		"10.1.2.3":        "10.1.2.3:9999",
		"10.1.2.3:10000":  "10.1.2.3:10000",
		"[::1]:10000":     "[::1]:10000",
		"[fe80::1]":       "[fe80::1]:9999",
		"::ffff:10.0.0.1": "10.0.0.1:9999",
		"localhost:10000": "127.0.0.1:10000",
		"localhost":       "127.0.0.1:9999",
	}
	for in, want := range good {
		n, err := CreateNodeByAddress(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, n.Address(), in)
			assert.NotNil(t, n.IP(), in)
			assert.Equal(t, StatusUnknown, n.Status())
		}
	}
	for _, in := range []string{"", "10.1.2.3:0", "10.1.2.3:70000", "[1.2.3.4]:5", "host name:1", "no-such-host.invalid:5"} {
		n, err := CreateNodeByAddress(in)
		assert.Error(t, err, in)
		assert.Nil(t, n, in)
	}
	n, err := CreateNodeByIP(net.ParseIP("10.0.0.9"), 0)
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.9:9999", n.Address())
	_, err = CreateNodeByIP(nil, 1)
	assert.Error(t, err)
	_, err = CreateNodeByIP(net.IPv4zero, 1)
	assert.Error(t, err)
}

func TestGetLocalIPIsNeverLoopbackOrLinkLocal(t *testing.T) {
	ip, err := GetLocalIP()
	if err != nil {
		t.Skipf("no usable interface here: %v", err)
	}
	assert.False(t, ip.IsLoopback())
	assert.False(t, ip.IsLinkLocalUnicast())
	assert.True(t, ip.IsGlobalUnicast())
}

func TestNodeStatusStrings(t *testing.T) {
	assert.Equal(t, "UNKNOWN", StatusUnknown.String())
	assert.Equal(t, "ALIVE", StatusAlive.String())
	assert.Equal(t, "SUSPECTED", StatusSuspected.String())
	assert.Equal(t, "DEAD", StatusDead.String())
	assert.Equal(t, "FORWARD_TO", StatusForwardTo.String())
	assert.Equal(t, NodeStatus(0), StatusUnknown)
	assert.Equal(t, NodeStatus(4), StatusForwardTo)
	assert.Equal(t, -1, PingNoData)
	assert.Equal(t, -2, PingTimedOut)
}

func TestNilNodeArguments(t *testing.T) {
	network := memnet.New()
	t.Cleanup(func() { network.Close() })
	cs, _ := memCluster(t, network, 1)
	_, err := cs[0].AddNode(nil)
	assert.Error(t, err)
	_, err = cs[0].RemoveNode(nil)
	assert.Error(t, err)
	assert.Error(t, cs[0].PingNode(nil))
	assert.Error(t, cs[0].UpdateNodeStatus(nil, StatusDead, nil))
	stranger := newNodeAddr(netip.MustParseAddrPort("10.9.9.9:1"))
	assert.ErrorIs(t, cs[0].PingNode(stranger), ErrUnknownNode)
	_, err = cs[0].RemoveNode(stranger)
	assert.ErrorIs(t, err, ErrUnknownNode)
	assert.True(t, errors.Is(cs[0].UpdateNodeStatus(stranger, StatusDead, nil), ErrUnknownNode))
	assert.Error(t, cs[0].UpdateNodeStatus(stranger, StatusForwardTo, nil))
}

func TestUnansweredSeedsAreReported(t *testing.T) {
	log := &memLogger{}
	cfg := udpConfig(t, "127.0.0.1:1")
	cfg.Logger = log
	cfg.HeartbeatInterval = 20 * time.Millisecond
	c, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() { c.Shutdown() })
	waitFor(t, 10*time.Second, "a warning about the silent seed", func() bool {
		return strings.Contains(log.text(), "no answer yet from the initial hosts [127.0.0.1:1]")
	})
	assert.Len(t, c.Members(), 1, "a seed that never answered is not a member")
}

// A node of an older smudge (wire version 1) is told apart from garbage:
// its packets are counted in DroppedVersion and the log says, once, what
// to do about it.
func TestPacketsOfAnotherWireVersionAreCountedAndReportedOnce(t *testing.T) {
	log := &memLogger{}
	cfg := udpConfig(t)
	cfg.Logger = log
	c, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() { c.Shutdown() })
	conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(c.LocalAddr()))
	require.NoError(t, err)
	defer conn.Close()
	v1 := []byte("SW\x01\x00" + "7^F\x8c\xe5\xb1\x11D" + "\x04\n\x00\x00\x01'\x0f" + "\x00\x00\x00\x03" +
		"\x01\x00\x0c" + "\x00\x00\x03\xe9\x00" + "\x04\n\x00\x00\x02'\x0f")
	for range 3 {
		_, err := conn.Write(v1)
		require.NoError(t, err)
	}
	waitFor(t, 10*time.Second, "three version 1 packets counted", func() bool {
		return c.Stats().DroppedVersion == 3
	})
	st := c.Stats()
	assert.Equal(t, uint64(3), st.DroppedEarly)
	assert.Zero(t, st.DroppedMalformed)
	assert.Equal(t, 1, strings.Count(log.text(), "dropping packets of another wire version (this node speaks version 2)"), log.text())
}

func TestListenerBacklogIsBoundedAndCounted(t *testing.T) {
	network := memnet.New()
	t.Cleanup(func() { network.Close() })
	ep, err := network.Listen(netip.MustParseAddrPort("10.0.2.1:9999"))
	require.NoError(t, err)
	cfg := DefaultConfig()
	cfg.Transport, cfg.MulticastEnabled, cfg.LogThreshold = ep, false, LogOff
	cfg.Limits.ListenerBacklog = 2
	c, err := New(cfg)
	require.NoError(t, err)
	stuck := &blockingListener{release: make(chan struct{})}
	c.AddStatusListener(stuck)
	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() { c.Shutdown() })
	for i := range 6 {
		n, _ := CreateNodeByIP(net.IPv4(10, 0, 3, byte(i+1)), 9999)
		_, err := c.AddNode(n)
		require.NoError(t, err)
	}
	waitFor(t, 5*time.Second, "drops to be counted", func() bool { return c.Stats().ListenerEventsDropped > 0 })
	close(stuck.release)
	c.waitListeners()
	stuck.mu.Lock()
	defer stuck.mu.Unlock()
	assert.LessOrEqual(t, len(stuck.got), 4, "a batch of at most two in hand, and two more queued")
	assert.Less(t, len(stuck.got), 7, "some of the 7 events were dropped")
	assert.Equal(t, DefaultReceiveQueue, cap(c.recv))
}

func TestShutdownBeforeStartClosesDone(t *testing.T) {
	c, err := New(udpConfig(t))
	require.NoError(t, err)
	require.NoError(t, c.Shutdown())
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done never closed")
	}
	assert.ErrorIs(t, c.Start(context.Background()), ErrStopped)
}

func TestEngineErrorsAreSmudgeErrors(t *testing.T) {
	network := memnet.New()
	t.Cleanup(func() { network.Close() })
	cs, _ := memCluster(t, network, 1)
	_, err := cs[0].AddNode(cs[0].LocalNode())
	assert.ErrorIs(t, err, ErrLocalNode)
	for range DefaultConfig().Limits.withDefaults().MaxQueuedBroadcasts {
		require.NoError(t, cs[0].Broadcast([]byte("x")))
	}
	assert.ErrorIs(t, cs[0].Broadcast([]byte("x")), ErrBroadcastQueueFull)
}
