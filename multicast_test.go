package smudge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/ipv4"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
	"github.com/seed-c7906467/smudge/memnet"
)

// ---- the group ----

func TestMulticastGroupDefaults(t *testing.T) {
	g, err := multicastGroup("", netip.MustParseAddr("10.0.0.1"))
	require.NoError(t, err)
	assert.Equal(t, DefaultMulticastAddressIPv4, g.String())
	g, err = multicastGroup("", netip.MustParseAddr("::ffff:10.0.0.1"))
	require.NoError(t, err)
	assert.Equal(t, DefaultMulticastAddressIPv4, g.String(), "an IPv4-mapped identity is IPv4")
	g, err = multicastGroup("", netip.MustParseAddr("fd00::5"))
	require.NoError(t, err)
	assert.Equal(t, DefaultMulticastAddressIPv6, g.String())

	g, err = multicastGroup("[ff05::1:3]", netip.MustParseAddr("10.0.0.1"))
	require.NoError(t, err)
	assert.Equal(t, "ff05::1:3", g.String(), "a set group wins over the family of the identity")
	_, err = multicastGroup("10.0.0.1", netip.MustParseAddr("10.0.0.1"))
	assert.ErrorContains(t, err, EnvVarMulticastAddress)

	v4, v6 := netip.MustParseAddr(DefaultMulticastAddressIPv4), netip.MustParseAddr(DefaultMulticastAddressIPv6)
	assert.True(t, netip.MustParsePrefix("239.255.0.0/16").Contains(v4), "IPv4 Local Scope (RFC 2365)")
	assert.True(t, v6.IsLinkLocalMulticast())
	assert.GreaterOrEqual(t, v6.As16()[12], byte(0x80), "a dynamic group ID (RFC 3307)")
	assert.NotEqual(t, "224.0.0.0", v4.String())
	assert.NotEqual(t, "ff02::1", v6.String())

	for _, a := range []string{DefaultMulticastAddressIPv4, DefaultMulticastAddressIPv6, "[" + DefaultMulticastAddressIPv6 + "]"} {
		cfg := DefaultConfig()
		cfg.MulticastAddress = a
		assert.NoError(t, cfg.Validate(), a)
		env, err := configFromLookup(func(k string) (string, bool) {
			if k == EnvVarMulticastAddress {
				return a, true
			}
			return "", false
		})
		assert.NoError(t, err, a)
		assert.Equal(t, strings.Trim(a, "[]"), env.MulticastAddress)
	}
}

// ---- choosing interfaces ----

func fakeIface(index int, name string, flags net.Flags, addrs ...string) ifaceAddrs {
	ia := ifaceAddrs{ifi: net.Interface{Index: index, Name: name, Flags: flags}}
	for _, a := range addrs {
		ia.addrs = append(ia.addrs, netip.MustParseAddr(a))
	}
	return ia
}

func names(ifs []net.Interface) []string {
	out := []string{}
	for _, ifi := range ifs {
		out = append(out, ifi.Name)
	}
	return out
}

func TestPickInterfaces(t *testing.T) {
	up, mc, lo := net.FlagUp, net.FlagMulticast, net.FlagLoopback
	host := []ifaceAddrs{
		fakeIface(1, "lo", up|lo, "127.0.0.1", "::1"),
		fakeIface(2, "eth0", up|mc, "10.0.0.5", "fe80::1"),
		fakeIface(3, "eth1", up|mc, "192.168.1.5", "fd00::5", "fe80::2"),
		fakeIface(4, "wg0", up, "10.9.0.1"),      // point-to-point, no multicast
		fakeIface(5, "eth2", mc, "172.16.0.1"),   // down
		fakeIface(6, "v6only", up|mc, "fd01::1"), // no IPv4 address
		fakeIface(7, "bare", up|mc),              // no address at all
	}
	ip := netip.MustParseAddr
	for _, tc := range []struct {
		name        string
		v6          bool
		listen, adv string
		join, send  []string
		problem     string
	}{
		{"listen IPv4 address: its interface", false, "10.0.0.5", "10.0.0.5", []string{"eth0"}, []string{"eth0"}, ""},
		{"listen loopback: tried without the multicast flag", false, "127.0.0.1", "127.0.0.1", []string{"lo"}, []string{"lo"}, ""},
		{"listen IPv6 address: its interface", true, "fd00::5", "fd00::5", []string{"eth1"}, []string{"eth1"}, ""},
		{"listen on all, IPv4: every multicast interface, sent where the identity is", false, "0.0.0.0", "192.168.1.5",
			[]string{"eth0", "eth1"}, []string{"eth1"}, ""},
		{"listen on all, identity elsewhere: sent on every joined interface", false, "0.0.0.0", "203.0.113.7",
			[]string{"eth0", "eth1"}, []string{"eth0", "eth1"}, ""},
		{"listen on all, IPv6: link-local addresses count", true, "::", "fd01::1",
			[]string{"eth0", "eth1", "v6only"}, []string{"v6only"}, ""},
		{"listen address on no interface", false, "10.1.1.1", "10.1.1.1", nil, nil, "no interface has the listen address 10.1.1.1"},
		{"listen address on an interface that is down", false, "172.16.0.1", "172.16.0.1", nil, nil, "interface eth2 of the listen address 172.16.0.1 is down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			join, send, problem := pickInterfaces(host, tc.v6, ip(tc.listen), ip(tc.adv))
			assert.Equal(t, append([]string{}, tc.join...), names(join))
			assert.Equal(t, append([]string{}, tc.send...), names(send))
			assert.Equal(t, tc.problem, problem)
		})
	}
	_, _, problem := pickInterfaces(host[:1], false, ip("0.0.0.0"), ip("127.0.0.1"))
	assert.Equal(t, "no interface is up, multicast-capable and has an IPv4 address", problem)
}

// ---- the receiving path ----

var (
	testGroup    = netip.MustParseAddr(DefaultMulticastAddressIPv4)
	listenerSelf = netip.MustParseAddrPort("10.0.0.1:9999")
)

// testEngine returns an engine of cluster for self, as a Cluster would
// build it with the default configuration.
func testEngine(t testing.TB, self netip.AddrPort, cluster string, now time.Time) *swim.Engine {
	t.Helper()
	cfg := DefaultConfig()
	e, err := swim.New(swim.Config{
		Self:                 self,
		ClusterID:            wire.ClusterID(cluster),
		Incarnation:          1000,
		BootID:               7,
		ProbeInterval:        cfg.HeartbeatInterval,
		MinProbeTimeout:      cfg.MinPingTime,
		PingHistoryFrontload: cfg.PingHistoryFrontload,
		IndirectChecks:       cfg.IndirectChecks,
		SuspicionMult:        cfg.SuspicionMult,
		RemoveDeadAfter:      cfg.RemoveDeadAfter,
		MaxPacketBytes:       cfg.MaxPacketBytes,
		MaxBroadcastBytes:    cfg.MaxBroadcastBytes,
		BroadcastTTL:         cfg.BroadcastTTL,
		Rand:                 rand.New(rand.NewPCG(1, 2)),
	}, now)
	require.NoError(t, err)
	return e
}

// announcementOf returns a copy of the announcement an engine of cluster
// for self sends.
func announcementOf(t testing.TB, self netip.AddrPort, cluster string) []byte {
	t.Helper()
	now := time.Unix(1_700_000_000, 0)
	return append([]byte(nil), testEngine(t, self, cluster, now).Announcement(now)...)
}

// packet builds a packet of cluster from sender with msgs.
func packet(cluster string, sender netip.AddrPort, msgs ...wire.Message) []byte {
	b := wire.AppendHeader(nil, wire.Header{Cluster: wire.ClusterID(cluster), Sender: sender, Incarnation: 3})
	for _, m := range msgs {
		b = m.AppendTo(b)
	}
	return b
}

// testListener is the receiving side of a multicast without sockets: what
// it delivers is collected.
func testListener(t testing.TB, cluster string) (*multicast, *[][]byte) {
	m := newMulticast(newLevelLogger(nil, LogOff), wire.ClusterID(cluster), listenerSelf, testGroup, 9998)
	var got [][]byte
	m.deliver = func(bp *[]byte) bool {
		got = append(got, append([]byte(nil), *bp...))
		bufPool.Put(bp)
		return true
	}
	return m, &got
}

func TestMulticastReceiveDropsAndCounts(t *testing.T) {
	peer := netip.MustParseAddrPort("10.0.0.2:9999")
	good := announcementOf(t, peer, "blue")
	m, got := testListener(t, "blue")
	m.joined[2] = net.Interface{Index: 2, Name: "eth0"}

	m.receive(good, testGroup, 2)
	require.Len(t, *got, 1, "a well-formed announcement of the cluster is delivered")
	assert.Equal(t, good, (*got)[0])
	m.receive(good, netip.Addr{}, 0) // no control messages on this system
	assert.Len(t, *got, 2)

	m.receive(good, netip.MustParseAddr("239.255.1.1"), 2)                                  // another group on the port
	m.receive(good, testGroup, 3)                                                           // an interface not joined
	m.receive(announcementOf(t, peer, "green"), testGroup, 2)                               // another cluster
	m.receive(announcementOf(t, listenerSelf, "blue"), testGroup, 2)                        // its own, looped back
	m.receive(good[:len(good)-1], testGroup, 2)                                             // truncated
	m.receive([]byte("hello"), testGroup, 2)                                                // not smudge
	m.receive(nil, testGroup, 2)                                                            // empty
	m.receive(packet("blue", peer, wire.Message{Type: wire.TypeAck, Seq: 1}), testGroup, 2) // not a ping
	m.receive(packet("blue", peer, wire.Message{Type: wire.TypePing, Seq: 1, Target: listenerSelf}), testGroup, 2)
	m.receive(packet("blue", peer, wire.Message{Type: wire.TypePing, Seq: 1, Flags: wire.PingFlagJoin}), testGroup, 2)
	m.receive(packet("blue", peer, wire.Message{Type: wire.TypePing, Seq: 1},
		wire.Message{Type: wire.TypeUpdate, Status: wire.StatusDead, Incarnation: 9, Subject: listenerSelf}), testGroup, 2)
	m.receive(packet("blue", peer, wire.Message{Type: wire.TypePing, Seq: 1}, // its own update, but not at its incarnation
		wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 9, Subject: peer, HasMeta: true}), testGroup, 2)
	m.receive(packet("blue", peer, wire.Message{Type: wire.TypePing, Seq: 1}, // its own update, then gossip
		wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 3, Subject: peer, HasMeta: true},
		wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 3, Subject: listenerSelf}), testGroup, 2)

	m.deliver = func(bp *[]byte) bool { return false } // the protocol loop is behind
	m.receive(good, testGroup, 2)
	m.open = func(dst, b []byte) ([]byte, bool) { return nil, false } // refused by encryption
	m.receive(good, testGroup, 2)

	assert.Len(t, *got, 2)
	assert.Equal(t, MulticastStats{
		AnnouncementsReceived: 2,
		DroppedOtherGroup:     2,
		DroppedWrongCluster:   1,
		OwnEchoes:             1,
		DroppedMalformed:      9,
		DroppedQueueFull:      1,
		DroppedByEncryption:   1,
		Interfaces:            0, // counted by refresh only
	}, m.stats())
}

// A delivered announcement, given to the listener's engine as the protocol
// loop does (no source address), makes it add the announcer and ack it at
// its identity; the announcer learns of the listener from the ack.
func TestMulticastAnnouncementIntroducesBothWays(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	announcer := testEngine(t, netip.MustParseAddrPort("10.0.0.2:9999"), "blue", now)
	listener := testEngine(t, listenerSelf, "blue", now)
	m, got := testListener(t, "blue")

	m.receive(announcer.Announcement(now), testGroup, 0)
	require.Len(t, *got, 1)
	listener.Receive(now, netip.AddrPort{}, (*got)[0])
	pkts, _ := listener.Outbox()
	require.NotEmpty(t, pkts)
	_, ok := listener.Member(announcer.Self())
	assert.True(t, ok, "the listener added the announcer")
	for _, p := range pkts {
		assert.Equal(t, announcer.Self(), p.To, "answers go to the identity in the header")
		announcer.Receive(now, listenerSelf, p.Data)
	}
	_, ok = announcer.Member(listenerSelf)
	assert.True(t, ok, "the announcer learned of the listener from its ack")
	assert.Zero(t, announcer.Stats().UnexpectedAcks)
}

// ---- interfaces coming and going ----

// fakeGroupConn records joins, leaves and sends; joining twice fails as
// the system's call does.
type fakeGroupConn struct {
	member  map[int]bool
	joins   []string
	leaves  []string
	sent    []string
	failOn  map[string]error // interface name: join and send fail with this
	sendErr error
}

func newFakeGroupConn() *fakeGroupConn {
	return &fakeGroupConn{member: map[int]bool{}, failOn: map[string]error{}}
}

func (f *fakeGroupConn) join(ifi *net.Interface) error {
	if err := f.failOn[ifi.Name]; err != nil {
		return err
	}
	if f.member[ifi.Index] {
		return syscall.EADDRINUSE
	}
	f.member[ifi.Index] = true
	f.joins = append(f.joins, ifi.Name)
	return nil
}

func (f *fakeGroupConn) leave(ifi *net.Interface) error {
	delete(f.member, ifi.Index)
	f.leaves = append(f.leaves, ifi.Name)
	return nil
}

func (f *fakeGroupConn) send(b []byte, ifi *net.Interface) error {
	if err := f.failOn[ifi.Name]; err != nil {
		return err
	}
	f.sent = append(f.sent, ifi.Name)
	return nil
}

func (f *fakeGroupConn) read([]byte) (int, netip.Addr, int, error) {
	return 0, netip.Addr{}, 0, net.ErrClosed
}
func (f *fakeGroupConn) close() error { return nil }

func TestMulticastRefreshFollowsInterfaces(t *testing.T) {
	log := &memLogger{}
	m := newMulticast(newLevelLogger(log, LogInfo), wire.ClusterID("blue"), netip.MustParseAddrPort("10.0.0.5:9999"), testGroup, 9998)
	conn := newFakeGroupConn()
	m.conn = conn
	m.listenIP = netip.IPv4Unspecified()
	up := net.FlagUp | net.FlagMulticast
	ifs := []ifaceAddrs{fakeIface(1, "lo", net.FlagUp|net.FlagLoopback, "127.0.0.1"), fakeIface(2, "eth0", up, "10.0.0.5")}
	m.interfaces = func() ([]ifaceAddrs, error) { return ifs, nil }

	assert.False(t, m.refresh(true))
	assert.Equal(t, []string{"eth0"}, conn.joins)
	assert.Contains(t, log.text(), "multicast discovery on 239.255.99.98:9998: joined on eth0, announcing on eth0, once, at start")
	assert.Equal(t, 1, m.stats().Interfaces)

	assert.False(t, m.refresh(false), "nothing changed: nothing to announce")
	assert.Equal(t, []string{"eth0"}, conn.joins, "the system refused the second join: still a member")

	// The network is disconnected: eth0 goes away.
	ifs = ifs[:1]
	assert.False(t, m.refresh(false))
	assert.Equal(t, []string{"eth0"}, conn.leaves, "left, to clean the socket's membership")
	assert.Contains(t, log.text(), "Warn smudge: multicast discovery on 239.255.99.98:9998: no interface is up, multicast-capable and has an IPv4 address")
	assert.False(t, m.refresh(false))
	assert.Equal(t, 1, strings.Count(log.text(), "no interface is up"), "warned once, not at every look")
	assert.Equal(t, 0, m.stats().Interfaces)

	// Reconnected: a new eth0 (another index), joined and worth announcing.
	ifs = append(ifs, fakeIface(9, "eth0", up, "10.0.0.5"))
	assert.True(t, m.refresh(false))
	assert.Equal(t, []string{"eth0", "eth0"}, conn.joins)
	assert.Contains(t, log.text(), "interfaces available again")
	assert.Contains(t, log.text(), "joined 239.255.99.98 on eth0")
	st := m.stats()
	assert.Equal(t, uint64(1), st.InterfacesJoined)
	assert.Equal(t, uint64(1), st.InterfacesLeft)
	assert.Equal(t, 1, st.Interfaces)

	// A membership the system lost while the interface kept its index is
	// joined again too.
	delete(conn.member, 9)
	assert.True(t, m.refresh(false))

	// A join that fails is a warning, once.
	conn.failOn["eth1"] = errors.New("no buffer space")
	ifs = append(ifs, fakeIface(10, "eth1", up, "10.1.0.5"))
	assert.False(t, m.refresh(false))
	assert.False(t, m.refresh(false))
	assert.Equal(t, 1, strings.Count(log.text(), "Warn smudge: multicast discovery: cannot join 239.255.99.98 on eth1: no buffer space"))
}

func TestMulticastAnnounceSendsThroughTheEngine(t *testing.T) {
	log := &memLogger{}
	now := time.Unix(1_700_000_000, 0)
	self := netip.MustParseAddrPort("10.0.0.5:9999")
	e := testEngine(t, self, "blue", now)
	m := newMulticast(newLevelLogger(log, LogInfo), wire.ClusterID("blue"), self, testGroup, 9998)
	conn := newFakeGroupConn()
	m.conn = conn
	m.listenIP = netip.IPv4Unspecified()
	m.interfaces = func() ([]ifaceAddrs, error) {
		return []ifaceAddrs{
			fakeIface(2, "eth0", net.FlagUp|net.FlagMulticast, "10.0.0.5"),
			fakeIface(3, "eth1", net.FlagUp|net.FlagMulticast, "10.1.0.5"),
		}, nil
	}
	var sealed int
	m.seal = func(_, b []byte) []byte { sealed++; return b }
	m.do = func(f func(time.Time, *swim.Engine) error) error { return f(now, e) }
	m.refresh(true)

	m.announce()
	assert.Equal(t, []string{"eth0"}, conn.sent, "sent through the interface of the identity only")
	assert.Equal(t, 1, sealed, "sealed (when encryption is on) before it is sent")
	assert.Equal(t, uint64(1), e.Stats().Announcements)
	assert.Equal(t, uint64(1), m.stats().AnnouncementsSent)

	conn.failOn["eth0"] = errors.New("network is unreachable")
	m.announce()
	m.announce()
	assert.Equal(t, uint64(2), m.stats().SendErrors)
	assert.Equal(t, 1, strings.Count(log.text(), "Warn smudge: multicast discovery: cannot announce on eth0"), "warned once")
	delete(conn.failOn, "eth0")
	m.announce()
	assert.Contains(t, log.text(), "announcing on eth0 works again")

	e.Leave(now)
	m.announce()
	assert.Equal(t, uint64(2), m.stats().AnnouncementsSent, "a leaving node does not announce")
}

// ---- real clusters on loopback ----

// loopbackMulticast skips the test unless IPv4 multicast works on the
// loopback interface here, as it does on Linux.
func loopbackMulticast(t *testing.T, group netip.Addr, port int) {
	t.Helper()
	if testing.Short() {
		t.Skip("real sockets: skipped in -short mode")
	}
	lo, err := loopbackInterface()
	if err != nil {
		t.Skipf("no loopback interface: %v", err)
	}
	c, err := net.ListenPacket("udp4", netip.AddrPortFrom(group, uint16(port)).String())
	if err != nil {
		t.Skipf("cannot listen on the group's port: %v", err)
	}
	defer c.Close()
	p := ipv4.NewPacketConn(c)
	dst := &net.UDPAddr{IP: group.AsSlice(), Port: port}
	if err := p.JoinGroup(lo, dst); err != nil {
		t.Skipf("IPv4 multicast on loopback is not available here: join: %v", err)
	}
	if err := p.SetMulticastInterface(lo); err != nil {
		t.Skipf("IPv4 multicast on loopback is not available here: %v", err)
	}
	if _, err := p.WriteTo([]byte("probe"), nil, dst); err != nil {
		t.Skipf("IPv4 multicast on loopback is not available here: send: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, _, err := p.ReadFrom(make([]byte, 16)); err != nil {
		t.Skipf("IPv4 multicast on loopback is not available here: nothing came back: %v", err)
	}
}

func loopbackInterface() (*net.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for i := range ifs {
		if ifs[i].Flags&net.FlagLoopback != 0 && ifs[i].Flags&net.FlagUp != 0 {
			return &ifs[i], nil
		}
	}
	return nil, errors.New("none is up")
}

// privateGroup returns a group and port of this test alone, so that tests
// running at the same time (or other smudge nodes on this host) are not
// heard.
func privateGroup(t *testing.T) (netip.Addr, int) {
	t.Helper()
	c, err := net.ListenPacket("udp4", "0.0.0.0:0")
	require.NoError(t, err)
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	return netip.AddrFrom4([4]byte{239, 255, byte(1 + rand.IntN(254)), byte(1 + rand.IntN(254))}), port
}

// multicastConfig is a loopback node that discovers by multicast only.
func multicastConfig(t *testing.T, cluster string, group netip.Addr, port int) Config {
	cfg := udpConfig(t)
	cfg.ClusterName = cluster
	cfg.MulticastEnabled = true
	cfg.MulticastAddress = group.String()
	cfg.MulticastPort = port
	cfg.MinPingTime = time.Second // a starved scheduler (-race, 2 cores) must not raise suspicion
	cfg.PingHistoryFrontload = time.Second
	return cfg
}

func startMcastNode(t *testing.T, cfg Config) (*Cluster, *memLogger) {
	t.Helper()
	log := &memLogger{}
	cfg.Logger = log
	cfg.LogThreshold = LogInfo
	c, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() { c.Shutdown() })
	return c, log
}

func healthyAddrs(c *Cluster) []string {
	var out []string
	for _, n := range c.HealthyMembers() {
		out = append(out, n.Address())
	}
	return out
}

func TestMulticastDiscoveryOnLoopback(t *testing.T) {
	group, port := privateGroup(t)
	loopbackMulticast(t, group, port)
	cluster := fmt.Sprintf("mc-%s-%d", t.Name(), rand.Int())
	var cs []*Cluster
	for range 3 {
		c, log := startMcastNode(t, multicastConfig(t, cluster, group, port))
		assert.Contains(t, log.text(), fmt.Sprintf("multicast discovery on %v:%d: joined on lo, announcing on lo, once, at start", group, port))
		assert.NotContains(t, log.text(), "waiting to be contacted")
		cs = append(cs, c)
	}
	// A node of another cluster on the same group is heard and ignored.
	stranger, _ := startMcastNode(t, multicastConfig(t, cluster+"-other", group, port))

	waitFor(t, 10*time.Second, "3 nodes to find each other by multicast", func() bool {
		for _, c := range cs {
			if len(c.HealthyMembers()) != 3 {
				return false
			}
		}
		return true
	})
	waitFor(t, 5*time.Second, "the stranger's announcement to be dropped for its cluster", func() bool {
		return cs[0].Stats().Multicast.DroppedWrongCluster > 0
	})
	waitFor(t, 5*time.Second, "a node to hear its own announcement loop back", func() bool {
		return cs[2].Stats().Multicast.OwnEchoes > 0
	})
	for _, c := range cs {
		st := c.Stats().Multicast
		assert.Equal(t, uint64(1), st.AnnouncementsSent, "announced once, at start")
		assert.Equal(t, 1, st.Interfaces)
		assert.Zero(t, st.DroppedMalformed)
		assert.NotContains(t, healthyAddrs(c), stranger.LocalNode().Address())
	}
	assert.Len(t, stranger.HealthyMembers(), 1)
}

// Two nodes forget each other (as after a partition longer than
// RemoveDeadAfter); their periodic announcements bring them together
// again.
func TestMulticastPeriodicAnnouncementsFindTheClusterAgain(t *testing.T) {
	group, port := privateGroup(t)
	loopbackMulticast(t, group, port)
	cluster := fmt.Sprintf("mc-%s-%d", t.Name(), rand.Int())
	cfg := multicastConfig(t, cluster, group, port)
	cfg.MulticastAnnounceInterval = 200 * time.Millisecond
	a, _ := startMcastNode(t, cfg)
	b, _ := startMcastNode(t, cfg)
	both := func() bool { return len(a.HealthyMembers()) == 2 && len(b.HealthyMembers()) == 2 }
	waitFor(t, 10*time.Second, "2 nodes to find each other", both)

	_, err := a.RemoveNode(b.LocalNode())
	require.NoError(t, err)
	_, err = b.RemoveNode(a.LocalNode())
	require.NoError(t, err)
	sent := a.Stats().Multicast.AnnouncementsSent
	waitFor(t, 10*time.Second, "the 2 nodes to find each other again", both)
	waitFor(t, 5*time.Second, "another announcement", func() bool { return a.Stats().Multicast.AnnouncementsSent > sent })
}

// With encryption, announcements are sealed: nodes with the cluster's key
// find each other, a node with another key is not let in.
func TestMulticastDiscoveryWithEncryption(t *testing.T) {
	group, port := privateGroup(t)
	loopbackMulticast(t, group, port)
	cluster := fmt.Sprintf("mc-%s-%d", t.Name(), rand.Int())
	cfg := multicastConfig(t, cluster, group, port)
	cfg.Keys = [][]byte{[]byte("0123456789abcdef")}
	a, _ := startMcastNode(t, cfg)
	b, _ := startMcastNode(t, cfg)
	waitFor(t, 10*time.Second, "2 nodes with the key to find each other", func() bool {
		return len(a.HealthyMembers()) == 2 && len(b.HealthyMembers()) == 2
	})
	cfg.Keys = [][]byte{[]byte("fedcba9876543210")}
	intruder, _ := startMcastNode(t, cfg)
	waitFor(t, 5*time.Second, "the intruder's announcement to be refused", func() bool {
		return a.Stats().Multicast.DroppedByEncryption > 0 && b.Stats().Multicast.DroppedByEncryption > 0
	})
	assert.Len(t, a.HealthyMembers(), 2)
	assert.Len(t, intruder.HealthyMembers(), 1)
}

func TestMulticastOffWithoutUDP(t *testing.T) {
	network := memnet.New()
	defer network.Close()
	ep, err := network.Listen(netip.MustParseAddrPort("10.0.0.1:9999"))
	require.NoError(t, err)
	cfg := DefaultConfig()
	cfg.Transport = ep
	cfg.MulticastEnabled = true
	c, log := startMcastNode(t, cfg)
	assert.Contains(t, log.text(), "multicast discovery is off: it works over UDP, not over a *memnet.Endpoint transport")
	assert.Contains(t, log.text(), "no initial hosts and no multicast discovery: waiting to be contacted")
	assert.Nil(t, c.mcast.Load())
	assert.Equal(t, MulticastStats{}, c.Stats().Multicast)
}

func TestMulticastFailureDoesNotStopTheNode(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets: skipped in -short mode")
	}
	cfg := udpConfig(t)
	cfg.MulticastEnabled = true
	cfg.MulticastAddress = "ff02::8000:1" // an IPv6 group on an IPv4 loopback interface: no route
	_, cfg.MulticastPort = privateGroup(t)
	c, log := startMcastNode(t, cfg)
	// Depending on the system's IPv6 support, the socket, the join or the
	// announcement fails.
	waitFor(t, 5*time.Second, "a warning about multicast discovery", func() bool {
		return strings.Contains(log.text(), "Warn smudge: multicast discovery")
	})
	assert.True(t, c.Running())
	t.Log(log.text())

	require.NoError(t, c.Shutdown())
	_, ok := <-c.Done()
	assert.False(t, ok)
}

// Shutdown racing with Start never leaves discovery running (its socket
// open, its goroutines alive) nor panics.
func TestMulticastShutdownRacingStart(t *testing.T) {
	group, port := privateGroup(t)
	loopbackMulticast(t, group, port)
	for range 20 {
		cfg := multicastConfig(t, fmt.Sprintf("mc-%s-%d", t.Name(), rand.Int()), group, port)
		cfg.LogThreshold = LogOff
		c, err := New(cfg)
		require.NoError(t, err)
		started := make(chan error, 1)
		go func() { started <- c.Start(context.Background()) }()
		require.NoError(t, c.Shutdown())
		if err := <-started; err == nil {
			require.NoError(t, c.Shutdown()) // Start won: stop it now
		}
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed")
		}
		if m := c.mcast.Load(); m != nil {
			select {
			case <-m.stop:
			default:
				t.Fatal("discovery still running after Shutdown")
			}
		}
	}
}
