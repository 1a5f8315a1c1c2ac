package smudge

// Multicast discovery.
//
// A node announces itself to a multicast group (MulticastAddress,
// MulticastPort) when discovery starts and then every
// MulticastAnnounceInterval. An announcement is the engine's Announcement:
// an ordinary packet whose header carries the cluster ID (the hash of the
// cluster name), the sender's identity and its incarnation, with one ping
// addressed to nobody in particular. Every node that listens on the group
// checks the datagram (receive), and hands a well-formed announcement of its
// own cluster to its engine with no source address: the engine adds the
// announcer, gossips it, and acks it by unicast to the identity in the
// header. The announcer learns of every listener from those acks. Nothing is
// multicast in reply, so announcements cause no storm.
//
// The group is joined on the interface of the listen address, or, when the
// node listens on 0.0.0.0 or [::], on every interface that is up and
// multicast-capable. Announcements leave through the interface of the listen
// address, or, when listening on all, through the interface that holds the
// advertised address (through every joined one if none does). Interfaces are
// looked at again every announcement (at least every 5 s): an interface that
// appears, or comes back, is joined and announced on at once, so that a
// node whose network was disconnected and reconnected finds the cluster
// again.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
)

// MulticastStats counts the work of multicast discovery. It is all zero
// when discovery is off.
type MulticastStats struct {
	AnnouncementsSent     uint64 // announcements sent, one per interface
	SendErrors            uint64 // announcements that could not be sent on an interface
	AnnouncementsReceived uint64 // announcements of other members handed to the protocol
	OwnEchoes             uint64 // this node's own announcements looped back (expected, not an error)
	DroppedMalformed      uint64 // datagrams on the group that are not a well-formed announcement
	DroppedWrongCluster   uint64 // announcements of other clusters
	DroppedOtherGroup     uint64 // datagrams for another group, or from an interface not joined, that share the port
	DroppedByEncryption   uint64 // refused by the encryption settings (also counted in Stats.DroppedPlaintext, DroppedSealed, DroppedUnauthentic)
	DroppedQueueFull      uint64 // announcements dropped because the protocol loop was behind
	ReadErrors            uint64 // failed reads from the group socket
	Interfaces            int    // interfaces the group is joined on now
	InterfaceRefreshes    uint64 // times the interfaces were looked at
	InterfacesJoined      uint64 // joins after start: interfaces that are new, or came back
	InterfacesLeft        uint64 // interfaces left because they went away
}

// multicastRefresh is the longest time between two looks at the interfaces.
const multicastRefresh = 5 * time.Second

// multicastGroup returns the group to use: the configured one, or the
// default group of the family of the advertised address.
func multicastGroup(configured string, self netip.Addr) (netip.Addr, error) {
	s := configured
	if s == "" {
		s = DefaultMulticastAddressIPv6
		if self.Unmap().Is4() {
			s = DefaultMulticastAddressIPv4
		}
	}
	ip := parseIPLiteral(s)
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}, fmt.Errorf("multicast address %q (%s) is not an IP address", s, EnvVarMulticastAddress)
	}
	a = a.Unmap()
	if !a.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("multicast address %q (%s) is not a multicast address", s, EnvVarMulticastAddress)
	}
	return a, nil
}

// ifaceAddrs is an interface with its addresses.
type ifaceAddrs struct {
	ifi   net.Interface
	addrs []netip.Addr
}

func (ia *ifaceAddrs) has(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, b := range ia.addrs {
		if b == a {
			return true
		}
	}
	return false
}

func (ia *ifaceAddrs) hasFamily(v6 bool) bool {
	for _, b := range ia.addrs {
		if b.Is6() == v6 {
			return true
		}
	}
	return false
}

// systemInterfaces lists the system's interfaces with their addresses.
func systemInterfaces() ([]ifaceAddrs, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]ifaceAddrs, 0, len(ifs))
	for _, ifi := range ifs {
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		ia := ifaceAddrs{ifi: ifi}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				ia.addrs = append(ia.addrs, ip.Unmap())
			}
		}
		out = append(out, ia)
	}
	return out, nil
}

// pickInterfaces chooses the interfaces to join the group on and to send
// announcements through. listen is the unicast socket's bound IP and adv the
// advertised one. problem says why there are none.
func pickInterfaces(all []ifaceAddrs, v6 bool, listen, adv netip.Addr) (join, send []net.Interface, problem string) {
	listen = listen.Unmap()
	if !listen.IsUnspecified() {
		for i := range all {
			ia := &all[i]
			if !ia.has(listen) {
				continue
			}
			if ia.ifi.Flags&net.FlagUp == 0 {
				return nil, nil, fmt.Sprintf("interface %s of the listen address %v is down", ia.ifi.Name, listen)
			}
			// Tried even without the multicast flag: loopback has none on
			// Linux, yet carries IPv4 multicast between local processes.
			return []net.Interface{ia.ifi}, []net.Interface{ia.ifi}, ""
		}
		return nil, nil, fmt.Sprintf("no interface has the listen address %v", listen)
	}
	family := "IPv4"
	if v6 {
		family = "IPv6"
	}
	for i := range all {
		ia := &all[i]
		if ia.ifi.Flags&net.FlagUp == 0 || ia.ifi.Flags&net.FlagMulticast == 0 || !ia.hasFamily(v6) {
			continue
		}
		join = append(join, ia.ifi)
		if adv.IsValid() && ia.has(adv) {
			send = []net.Interface{ia.ifi}
		}
	}
	if len(join) == 0 {
		return nil, nil, fmt.Sprintf("no interface is up, multicast-capable and has an %s address", family)
	}
	if send == nil {
		send = join
	}
	return join, send, ""
}

// groupConn is a socket that has joined, or can join, one multicast group.
type groupConn interface {
	// join joins the group on ifi; joining again is an error.
	join(ifi *net.Interface) error
	// leave leaves the group on ifi.
	leave(ifi *net.Interface) error
	// send sends b to the group through ifi.
	send(b []byte, ifi *net.Interface) error
	// read reads one datagram with, where the system tells, the
	// destination address and the interface it arrived on (0 if unknown).
	read(b []byte) (n int, dst netip.Addr, ifIndex int, err error)
	close() error
}

// listenGroup opens a socket on the group's port. Binding a multicast
// address makes the net package bind the wildcard address with
// SO_REUSEADDR (and SO_REUSEPORT where needed), so that every node of the
// host can listen on the same port. Announcements are sent with TTL (hop
// limit) 1, and loop back to the other listeners of this host.
func listenGroup(group netip.Addr, port uint16) (groupConn, error) {
	dst := &net.UDPAddr{IP: group.AsSlice(), Port: int(port)}
	if group.Is4() {
		c, err := net.ListenPacket("udp4", netip.AddrPortFrom(group, port).String())
		if err != nil {
			return nil, err
		}
		p := ipv4.NewPacketConn(c)
		_ = p.SetMulticastTTL(1)
		_ = p.SetMulticastLoopback(true)
		cm := p.SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true) == nil
		return &groupConn4{c: c, p: p, dst: dst, cm: cm}, nil
	}
	c, err := net.ListenPacket("udp6", netip.AddrPortFrom(group, port).String())
	if err != nil {
		return nil, err
	}
	p := ipv6.NewPacketConn(c)
	_ = p.SetMulticastHopLimit(1)
	_ = p.SetMulticastLoopback(true)
	cm := p.SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true) == nil
	scoped := group.IsLinkLocalMulticast() || group.IsInterfaceLocalMulticast()
	return &groupConn6{c: c, p: p, dst: dst, scoped: scoped, cm: cm}, nil
}

type groupConn4 struct {
	c   net.PacketConn
	p   *ipv4.PacketConn
	dst *net.UDPAddr
	cm  bool // control messages are available
}

func (g *groupConn4) join(ifi *net.Interface) error  { return g.p.JoinGroup(ifi, g.dst) }
func (g *groupConn4) leave(ifi *net.Interface) error { return g.p.LeaveGroup(ifi, g.dst) }
func (g *groupConn4) close() error                   { return g.c.Close() }

func (g *groupConn4) send(b []byte, ifi *net.Interface) error {
	if err := g.p.SetMulticastInterface(ifi); err != nil {
		return err
	}
	_, err := g.p.WriteTo(b, nil, g.dst)
	return err
}

func (g *groupConn4) read(b []byte) (int, netip.Addr, int, error) {
	n, cm, _, err := g.p.ReadFrom(b)
	if err != nil || cm == nil {
		return n, netip.Addr{}, 0, err
	}
	dst, _ := netip.AddrFromSlice(cm.Dst)
	return n, dst.Unmap(), cm.IfIndex, nil
}

type groupConn6 struct {
	c      net.PacketConn
	p      *ipv6.PacketConn
	dst    *net.UDPAddr
	scoped bool // a link- or interface-local group: the destination names the interface
	cm     bool
}

func (g *groupConn6) join(ifi *net.Interface) error  { return g.p.JoinGroup(ifi, g.dst) }
func (g *groupConn6) leave(ifi *net.Interface) error { return g.p.LeaveGroup(ifi, g.dst) }
func (g *groupConn6) close() error                   { return g.c.Close() }

func (g *groupConn6) send(b []byte, ifi *net.Interface) error {
	if err := g.p.SetMulticastInterface(ifi); err != nil {
		return err
	}
	dst := g.dst
	if g.scoped {
		d := *g.dst
		d.Zone = ifi.Name
		dst = &d
	}
	_, err := g.p.WriteTo(b, nil, dst)
	return err
}

func (g *groupConn6) read(b []byte) (int, netip.Addr, int, error) {
	n, cm, _, err := g.p.ReadFrom(b)
	if err != nil || cm == nil {
		return n, netip.Addr{}, 0, err
	}
	dst, _ := netip.AddrFromSlice(cm.Dst)
	return n, dst, cm.IfIndex, nil
}

// verdict is what announceFilter decides about a datagram.
type verdict uint8

const (
	announceOK verdict = iota
	announceMalformed
	announceWrongCluster
	announceOwn
)

// announceFilter checks that a datagram read from the group is an
// announcement of this node's cluster by another node: a valid packet
// whose first message of a known type is a ping addressed to nobody, without
// the join flag (a join would make every listener send its member list),
// followed by nothing else or by the announcer's own ALIVE update at its
// current incarnation (which carries its metadata).
// Messages of unknown types are allowed, as the engine allows them.
type announceFilter struct {
	cluster uint32
	self    netip.AddrPort
	pkt     wire.Packet
}

func (f *announceFilter) check(b []byte) verdict {
	if f.pkt.Decode(b) != nil {
		return announceMalformed
	}
	if f.pkt.Cluster != f.cluster {
		return announceWrongCluster
	}
	if f.pkt.Sender == f.self {
		return announceOwn
	}
	if n := len(f.pkt.Messages); n < 1 || n > 2 {
		return announceMalformed
	}
	m := &f.pkt.Messages[0]
	if m.Type != wire.TypePing || m.Target.IsValid() || m.Flags&wire.PingFlagJoin != 0 {
		return announceMalformed
	}
	if len(f.pkt.Messages) == 2 { // the announcer's own update, with its metadata
		u := &f.pkt.Messages[1]
		if u.Type != wire.TypeUpdate || u.Subject != f.pkt.Sender || u.Status != wire.StatusAlive || u.Incarnation != f.pkt.Incarnation {
			return announceMalformed
		}
	}
	return announceOK
}

// multicast is a Cluster's multicast discovery.
type multicast struct {
	log      *levelLogger
	group    netip.Addr
	port     uint16
	listenIP netip.Addr // the unicast socket's IP; unspecified: every interface
	advIP    netip.Addr // the advertised IP: picks the sending interface
	interval time.Duration
	conn     groupConn

	// interfaces lists the system's interfaces (a variable for tests).
	interfaces func() ([]ifaceAddrs, error)
	// do runs f on the protocol loop (Cluster.do).
	do func(f func(now time.Time, e *swim.Engine) error) error
	// open turns a received datagram into a packet (decrypting it when
	// encryption is on), appending to dst; false drops it.
	open func(dst, datagram []byte) ([]byte, bool)
	// seal turns a packet into the datagram to send (encrypting it when
	// encryption is on).
	seal func(dst, packet []byte) []byte
	// deliver hands an accepted announcement to the protocol loop, which
	// then owns bp; false means the loop's queue is full.
	deliver func(bp *[]byte) bool

	filter announceFilter // the reading goroutine's

	mu       sync.Mutex
	joined   map[int]net.Interface // by index
	sendIfs  []net.Interface
	joinErrs map[string]string // interface name: the last join error logged
	sendErrs map[string]string // interface name: the last send error logged
	problem  string            // why no interface is usable, as last logged

	stop      chan struct{}
	closeOnce sync.Once

	sent, sendFailed, received, own, malformed, wrongCluster, otherGroup,
	refused, queueFull, readErrs, refreshes, rejoined, left atomic.Uint64
	nJoined atomic.Int64
}

// newMulticast returns discovery state for group:port without a socket:
// the caller sets conn and the hooks. Encryption is off (open and seal copy).
func newMulticast(log *levelLogger, cluster uint32, self netip.AddrPort, group netip.Addr, port uint16) *multicast {
	return &multicast{
		log:        log,
		group:      group,
		port:       port,
		advIP:      self.Addr(),
		interfaces: systemInterfaces,
		open:       func(dst, b []byte) ([]byte, bool) { return append(dst, b...), true },
		seal:       func(_, b []byte) []byte { return b },
		filter:     announceFilter{cluster: cluster, self: self},
		joined:     map[int]net.Interface{},
		joinErrs:   map[string]string{},
		sendErrs:   map[string]string{},
		stop:       make(chan struct{}),
	}
}

// startMulticast starts multicast discovery if it is enabled and the
// transport is UDP, and reports whether it did. Failures are logged at
// Warn and leave the node running without discovery. Start calls it without
// holding c.mu, once the protocol loop runs; a Shutdown that comes first
// wins.
func (c *Cluster) startMulticast(tr Transport, self netip.AddrPort) bool {
	if !c.cfg.MulticastEnabled {
		return false
	}
	udp, ok := tr.(*UDPTransport)
	if !ok {
		c.log.logf(LogInfo, "smudge: multicast discovery is off: it works over UDP, not over a %T transport", tr)
		return false
	}
	group, err := multicastGroup(c.cfg.MulticastAddress, self.Addr())
	if err != nil {
		c.log.logf(LogWarn, "smudge: multicast discovery is off: %v", err)
		return false
	}
	port := uint16(c.cfg.MulticastPort)
	conn, err := listenGroup(group, port)
	if err != nil {
		c.log.logf(LogWarn, "smudge: multicast discovery is off: cannot listen on %v: %v",
			netip.AddrPortFrom(group, port), err)
		return false
	}
	m := newMulticast(c.log, wire.ClusterID(c.cfg.ClusterName), self, group, port)
	m.conn = conn
	m.listenIP = udp.LocalAddr().Addr()
	m.interval = c.cfg.MulticastAnnounceInterval
	m.do = c.do
	m.open = c.open
	m.seal = c.seal
	m.deliver = func(bp *[]byte) bool {
		select {
		case c.recv <- datagram{buf: bp}: // no source: answers go to the header's sender
			return true
		default:
			return false
		}
	}
	m.refresh(true)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != clusterRunning { // Shutdown already ran, or runs: it must see all or nothing
		m.close()
		return false
	}
	c.mcast.Store(m)
	c.wg.Add(2)
	go m.readLoop(&c.wg)
	go m.announceLoop(&c.wg)
	return true
}

// close stops discovery; its goroutines end soon after.
func (m *multicast) close() {
	m.closeOnce.Do(func() {
		close(m.stop)
		m.conn.close()
	})
}

// stats returns the counters.
func (m *multicast) stats() MulticastStats {
	return MulticastStats{
		AnnouncementsSent:     m.sent.Load(),
		SendErrors:            m.sendFailed.Load(),
		AnnouncementsReceived: m.received.Load(),
		OwnEchoes:             m.own.Load(),
		DroppedMalformed:      m.malformed.Load(),
		DroppedWrongCluster:   m.wrongCluster.Load(),
		DroppedOtherGroup:     m.otherGroup.Load(),
		DroppedByEncryption:   m.refused.Load(),
		DroppedQueueFull:      m.queueFull.Load(),
		ReadErrors:            m.readErrs.Load(),
		Interfaces:            int(m.nJoined.Load()),
		InterfaceRefreshes:    m.refreshes.Load(),
		InterfacesJoined:      m.rejoined.Load(),
		InterfacesLeft:        m.left.Load(),
	}
}

// describe lists interface names.
func describe(ifs []net.Interface) string {
	if len(ifs) == 0 {
		return "none"
	}
	names := make([]string, len(ifs))
	for i, ifi := range ifs {
		names[i] = ifi.Name
	}
	return strings.Join(names, ", ")
}

// refresh looks at the interfaces: it leaves the group on those that went
// away and joins it on those that are new or came back. It reports whether
// it joined any (after the first call), which is worth an announcement.
func (m *multicast) refresh(first bool) (joinedNew bool) {
	m.refreshes.Add(1)
	all, err := m.interfaces()
	var join, send []net.Interface
	var problem string
	if err != nil {
		problem = "cannot list the network interfaces: " + err.Error()
	} else {
		join, send, problem = pickInterfaces(all, m.group.Is6(), m.listenIP, m.advIP)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	for idx, ifi := range m.joined {
		if slices.ContainsFunc(join, func(j net.Interface) bool { return j.Index == idx && j.Name == ifi.Name }) {
			continue
		}
		_ = m.conn.leave(&ifi) // cleans the socket's membership list even when the interface is gone
		delete(m.joined, idx)
		m.left.Add(1)
		m.log.logf(LogInfo, "smudge: multicast discovery: left %v on %s (interface gone)", m.group, ifi.Name)
	}
	var added []net.Interface
	for i := range join {
		ifi := &join[i]
		_, had := m.joined[ifi.Index]
		err := m.conn.join(ifi)
		switch {
		case err == nil:
			// Joined; if it was joined already, the system had lost the
			// membership (the interface went away and came back).
			m.joined[ifi.Index] = *ifi
			delete(m.joinErrs, ifi.Name)
			added = append(added, *ifi)
		case had:
			// Still a member: the system refuses a second join.
		default:
			if m.joinErrs[ifi.Name] != err.Error() {
				m.joinErrs[ifi.Name] = err.Error()
				m.log.logf(LogWarn, "smudge: multicast discovery: cannot join %v on %s: %v", m.group, ifi.Name, err)
			}
		}
	}
	m.sendIfs = send
	m.nJoined.Store(int64(len(m.joined)))

	switch {
	case problem != "" && problem != m.problem:
		m.log.logf(LogWarn, "smudge: multicast discovery on %v: %s; members will not be found by multicast until there is one (interfaces are checked again every %v)",
			netip.AddrPortFrom(m.group, m.port), problem, m.refreshEvery())
	case problem == "" && m.problem != "":
		m.log.logf(LogInfo, "smudge: multicast discovery on %v: interfaces available again", netip.AddrPortFrom(m.group, m.port))
	}
	m.problem = problem

	if first {
		when := "once, at start"
		if m.interval > 0 {
			when = fmt.Sprintf("at start and every %v", m.interval)
		}
		joinedIfs := make([]net.Interface, 0, len(m.joined))
		for _, ifi := range m.joined {
			joinedIfs = append(joinedIfs, ifi)
		}
		slices.SortFunc(joinedIfs, func(a, b net.Interface) int { return a.Index - b.Index })
		m.log.logf(LogInfo, "smudge: multicast discovery on %v: joined on %s, announcing on %s, %s",
			netip.AddrPortFrom(m.group, m.port), describe(joinedIfs), describe(send), when)
		return false
	}
	if len(added) > 0 {
		m.rejoined.Add(uint64(len(added)))
		m.log.logf(LogInfo, "smudge: multicast discovery: joined %v on %s", m.group, describe(added))
	}
	return len(added) > 0
}

// refreshEvery is how often the interfaces are looked at.
func (m *multicast) refreshEvery() time.Duration {
	if m.interval > 0 && m.interval < multicastRefresh {
		return m.interval
	}
	return multicastRefresh
}

// announceLoop announces at once, then every interval, and looks at the
// interfaces at every announcement and at least every multicastRefresh. It
// also announces when it joins the group on a new interface.
func (m *multicast) announceLoop(wg *sync.WaitGroup) {
	defer wg.Done()
	m.announce()
	var refreshC, announceC <-chan time.Time
	if m.interval > 0 {
		t := time.NewTicker(m.interval)
		defer t.Stop()
		announceC = t.C
	}
	if m.interval == 0 || m.interval > multicastRefresh {
		t := time.NewTicker(multicastRefresh)
		defer t.Stop()
		refreshC = t.C
	}
	for {
		select {
		case <-m.stop:
			return
		case <-refreshC:
			if m.refresh(false) {
				m.announce()
			}
		case <-announceC:
			m.refresh(false)
			m.announce()
		}
	}
}

// announce sends one announcement through every sending interface, from
// the protocol loop (the engine's packet is valid only until its next
// Outbox). A leaving node does not announce.
func (m *multicast) announce() {
	m.mu.Lock()
	ifs := m.sendIfs
	m.mu.Unlock()
	if len(ifs) == 0 {
		return
	}
	m.do(func(now time.Time, e *swim.Engine) error {
		if e.Leaving() {
			return nil
		}
		b := m.seal(nil, e.Announcement(now))
		for i := range ifs {
			m.sendOn(b, &ifs[i])
		}
		return nil
	})
}

// sendOn sends b through ifi, logging the first failure (and the recovery)
// of each interface.
func (m *multicast) sendOn(b []byte, ifi *net.Interface) {
	err := m.conn.send(b, ifi)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.sendFailed.Add(1)
		if m.sendErrs[ifi.Name] != err.Error() {
			m.sendErrs[ifi.Name] = err.Error()
			m.log.logf(LogWarn, "smudge: multicast discovery: cannot announce on %s to %v: %v",
				ifi.Name, netip.AddrPortFrom(m.group, m.port), err)
		}
		return
	}
	m.sent.Add(1)
	if _, failed := m.sendErrs[ifi.Name]; failed {
		delete(m.sendErrs, ifi.Name)
		m.log.logf(LogInfo, "smudge: multicast discovery: announcing on %s works again", ifi.Name)
	}
}

// readLoop reads the group until the socket is closed.
func (m *multicast) readLoop(wg *sync.WaitGroup) {
	defer wg.Done()
	buf := make([]byte, maxUDPPayload)
	for {
		n, dst, ifIndex, err := m.conn.read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-m.stop:
				return
			default:
			}
			m.readErrs.Add(1)
			continue
		}
		m.receive(buf[:n], dst, ifIndex)
	}
}

// receive is the path of every datagram read from the group, up to the
// protocol loop: it drops and counts what is not for this node (another
// group or an interface not joined, when the system tells), what the
// encryption settings refuse, and what is not a well-formed announcement of
// another member of this cluster.
func (m *multicast) receive(b []byte, dst netip.Addr, ifIndex int) {
	if dst.IsValid() && dst.WithZone("") != m.group {
		m.otherGroup.Add(1)
		return
	}
	if ifIndex > 0 && !m.isJoined(ifIndex) {
		m.otherGroup.Add(1)
		return
	}
	bp := bufPool.Get().(*[]byte)
	plain, ok := m.open((*bp)[:0], b)
	if !ok {
		m.refused.Add(1)
		bufPool.Put(bp)
		return
	}
	*bp = plain
	switch m.filter.check(plain) {
	case announceOK:
	case announceOwn:
		m.own.Add(1)
		bufPool.Put(bp)
		return
	case announceWrongCluster:
		m.wrongCluster.Add(1)
		bufPool.Put(bp)
		return
	default:
		m.malformed.Add(1)
		bufPool.Put(bp)
		return
	}
	if !m.deliver(bp) {
		m.queueFull.Add(1)
		bufPool.Put(bp)
		return
	}
	m.received.Add(1)
}

func (m *multicast) isJoined(ifIndex int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.joined[ifIndex]
	return ok
}
