package smudge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-c7906467/smudge/internal/keyring"
	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
)

// Errors returned by a Cluster.
var (
	// ErrNotStarted: the Cluster (or the default one, before Begin) is not running yet.
	ErrNotStarted = errors.New("smudge: cluster not started")
	// ErrStopped: the Cluster was shut down.
	ErrStopped = errors.New("smudge: cluster stopped")
	// ErrAlreadyStarted: Start was called twice.
	ErrAlreadyStarted = errors.New("smudge: cluster already started")
	// ErrBroadcastTooLarge: the payload is longer than MaxBroadcastBytes.
	ErrBroadcastTooLarge = errors.New("smudge: broadcast too large")
	// ErrUnknownNode: the node is not a member.
	ErrUnknownNode = errors.New("smudge: unknown node")
	// ErrLocalNode: the node is this one (AddNode of one's own address).
	ErrLocalNode = errors.New("smudge: that is the local node")
	// ErrBroadcastQueueFull: too many broadcasts are waiting to be sent
	// (Limits.MaxQueuedBroadcasts); try again later.
	ErrBroadcastQueueFull = errors.New("smudge: broadcast queue full")
	// ErrLeaving: the node is leaving the cluster.
	ErrLeaving = errors.New("smudge: node is leaving")
	// ErrMetaTooLarge: the metadata is longer than MaxMetaBytes.
	ErrMetaTooLarge = errors.New("smudge: metadata too large")
)

// Stats counts a Cluster's work: the engine's counters plus the I/O loop's.
type Stats struct {
	swim.Stats
	// DatagramsRead counts the datagrams the reader took from the transport.
	// Each one is then exactly one of: dropped by the reader (DroppedEarly:
	// bad seal, unsealed, bad header, other wire version, other cluster;
	// each also counted under its reason), dropped because the loop was
	// behind (ReceiveQueueDrops), or handed to the protocol
	// (PacketsReceived).
	DatagramsRead         uint64
	DroppedEarly          uint64
	ReceiveQueueDrops     uint64 // datagrams dropped because the protocol loop was behind
	ReadErrors            uint64 // failed or truncated reads
	SendErrors            uint64 // failed writes
	ListenerEventsDropped uint64 // events not delivered to a listener whose backlog was full
	DroppedPlaintext      uint64 // unsealed datagrams while encryption is on
	DroppedSealed         uint64 // sealed datagrams while encryption is off here
	DroppedUnauthentic    uint64 // sealed datagrams no key in the ring opens (wrong key, other cluster, tampered)

	// Multicast counts multicast discovery's work (all zero when it is off).
	Multicast MulticastStats

	// Streams counts the streams of Send and Publish; Publish, Publish's
	// dissemination (all zero when streams are off).
	Streams StreamStats
	Publish PublishStats
}

const (
	clusterNew = iota
	clusterStarting
	clusterRunning
	clusterStopped
)

// Cluster is one member of a cluster: a SWIM engine driven by the real clock
// over a Transport. Create it with New, then Start it. Several Clusters can
// run in one process. All methods are safe for concurrent use.
type Cluster struct {
	cfg Config
	log *levelLogger

	mu       sync.Mutex // guards state and the listener lists
	state    int
	statusLs []*statusSub
	bcastLs  []*bcastSub
	metaLs   []*metaSub
	// startMeta, when startMetaSet, replaces Config.Meta at Start: SetMeta
	// was called before it.
	startMeta    []byte
	startMetaSet bool
	transport    Transport
	self         netip.AddrPort

	view     atomic.Pointer[view]
	stats    atomic.Pointer[swim.Stats]
	cmds     chan func(time.Time, *swim.Engine)
	recv     chan datagram
	stop     chan struct{}
	done     chan struct{}
	doneOnce sync.Once
	wg       sync.WaitGroup

	receiveDrops  atomic.Uint64
	datagramsRead atomic.Uint64
	readErrors    atomic.Uint64
	sendErrors    atomic.Uint64
	listenerDrops atomic.Uint64
	mcast         atomic.Pointer[multicast] // nil: multicast discovery is not running

	ring                   atomic.Pointer[keyring.Ring] // nil: encryption off
	ringMu                 sync.Mutex                   // serialises key changes
	sealBuf                []byte                       // loop only
	droppedPlain           atomic.Uint64
	droppedSealed          atomic.Uint64
	droppedUnauthenticated atomic.Uint64
	clusterID              uint32
	// Garbage and other clusters' packets are dropped by the reader, so
	// that a flood cannot crowd real packets out of the protocol loop.
	droppedMalformedEarly    atomic.Uint64
	droppedVersionEarly      atomic.Uint64
	warnedVersion            atomic.Bool
	droppedWrongClusterEarly atomic.Uint64
	warnedRounds             uint64 // join rounds already warned about (loop only)

	streams   streamLayer      // Send, Publish, push-pull (stream.go, publish.go, pushpull.go)
	ppTargets []netip.AddrPort // push-pull targets (loop only)
}

type statusSub struct {
	l StatusListener
	q *listenerQueue
}

type bcastSub struct {
	l BroadcastListener
	q *listenerQueue
}

type metaSub struct {
	l MetaListener
	q *listenerQueue
}

type datagram struct {
	from netip.AddrPort
	buf  *[]byte
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// New checks cfg and returns a Cluster that is not started yet.
func New(cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.InitialHosts = append([]string(nil), cfg.InitialHosts...)
	cfg.Limits = cfg.Limits.withDefaults()
	cfg.streamDefaults()
	c := &Cluster{
		cfg:  cfg,
		log:  newLevelLogger(cfg.Logger, cfg.LogThreshold),
		cmds: make(chan func(time.Time, *swim.Engine)),
		recv: make(chan datagram, cfg.Limits.ReceiveQueue),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	c.view.Store(&view{byAddr: map[netip.AddrPort]*Node{}})
	c.clusterID = wire.ClusterID(cfg.ClusterName)
	if len(cfg.Keys) > 0 {
		r, err := keyring.New(cfg.ClusterName, cfg.Keys...)
		if err != nil {
			return nil, fmt.Errorf("smudge: Keys: %w", err)
		}
		c.ring.Store(r)
	}
	return c, nil
}

// Start binds the transport, starts the protocol, and contacts the initial
// hosts. It returns once the node is running; bind errors are returned.
// Host names among the initial hosts are resolved with ctx.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	switch c.state {
	case clusterRunning, clusterStarting:
		c.mu.Unlock()
		return ErrAlreadyStarted
	case clusterStopped:
		c.mu.Unlock()
		return ErrStopped
	}
	c.state = clusterStarting // no lock is held while binding and resolving names
	c.mu.Unlock()
	err := c.start(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.abortStreams()
		if c.state == clusterStarting {
			c.state = clusterNew
		}
		return err
	}
	return nil
}

func (c *Cluster) start(ctx context.Context) error {
	tr := c.cfg.Transport
	if tr == nil {
		ip, ok := netip.AddrFromSlice(c.cfg.ListenIP)
		if !ok {
			return fmt.Errorf("smudge: start: bad listen IP %v", c.cfg.ListenIP)
		}
		udp, err := c.bindUDPAndStreams(netip.AddrPortFrom(ip.Unmap(), uint16(c.cfg.ListenPort)))
		if err != nil {
			return err // "smudge: bind udp ADDR: ..."
		}
		tr = udp
	}
	if err := c.prepareStreams(tr); err != nil {
		tr.Close()
		return err
	}
	self, err := advertiseAddr(c.cfg.AdvertiseAddr, tr.LocalAddr())
	if err != nil {
		tr.Close()
		return fmt.Errorf("smudge: start: %w", err)
	}
	seeds := c.resolveHosts(ctx, c.cfg.InitialHosts, self.Port())

	seed1, seed2 := rand.Uint64(), rand.Uint64()
	if c.cfg.Seed != 0 {
		seed1, seed2 = uint64(c.cfg.Seed), uint64(c.cfg.Seed)^0x5deece66d
	}
	rng := rand.New(rand.NewPCG(seed1, seed2))
	now := time.Now()
	ecfg := swim.Config{
		Self:                 self,
		ClusterID:            c.clusterID,
		Incarnation:          swim.ClockIncarnation(now),
		BootID:               rand.Uint32(), // never from Seed: a restarted node's broadcasts must not look old
		ProbeInterval:        c.cfg.HeartbeatInterval,
		MinProbeTimeout:      c.cfg.MinPingTime,
		PingHistoryFrontload: c.cfg.PingHistoryFrontload,
		IndirectChecks:       c.cfg.IndirectChecks,
		SuspicionMult:        c.cfg.SuspicionMult,
		RemoveDeadAfter:      c.cfg.RemoveDeadAfter,
		MaxPacketBytes:       c.cfg.MaxPacketBytes - c.sealOverhead(),
		MaxBroadcastBytes:    c.cfg.MaxBroadcastBytes,
		BroadcastTTL:         c.cfg.BroadcastTTL,
		Meta:                 c.metaAtStart(),
		Rand:                 rng,
	}
	c.cfg.Limits.apply(&ecfg)
	c.cfg.Lifeguard.apply(&ecfg)
	c.streams.mu.Lock()
	if c.streams.ln != nil { // push-pull needs streams
		ecfg.PushPullInterval = c.cfg.pushPullInterval()
	}
	c.streams.mu.Unlock()
	e, err := swim.New(ecfg, now)
	if err != nil {
		tr.Close()
		return fmt.Errorf("smudge: start: %w", err)
	}
	e.Join(now, seeds...)
	c.view.Store(newView(e.Members()))
	c.mu.Lock()
	if c.state != clusterStarting { // Shutdown while starting
		c.mu.Unlock()
		tr.Close()
		c.doneOnce.Do(func() { close(c.done) })
		return ErrStopped
	}
	c.transport, c.self, c.state = tr, self, clusterRunning
	c.wg.Add(2)
	go c.readLoop(tr)
	go c.run(e)
	c.startStreams(self)
	c.mu.Unlock()
	c.log.logf(LogInfo, "smudge: listening on %v as %v in cluster %q", tr.LocalAddr(), self, c.cfg.ClusterName)
	discovering := c.startMulticast(tr, self) // logs what it does, or why not
	if len(seeds) == 0 && !discovering {
		c.log.logf(LogInfo, "smudge: no initial hosts and no multicast discovery: waiting to be contacted")
	}
	return nil
}

// advertiseAddr is the identity other members will know this node by.
func advertiseAddr(adv string, local netip.AddrPort) (netip.AddrPort, error) {
	if adv != "" {
		ip, port, err := parseAdvertiseAddr(adv)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("advertise address %q: %w", adv, err)
		}
		a, _ := netip.AddrFromSlice(ip)
		if port == 0 {
			port = int(local.Port())
		}
		return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
	}
	ip := local.Addr().Unmap()
	if ip.IsUnspecified() {
		found, err := GetLocalIP()
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("listening on %v: set an advertise address: %w", local, err)
		}
		ip, _ = netip.AddrFromSlice(found)
		ip = ip.Unmap()
	}
	return netip.AddrPortFrom(ip, local.Port()), nil
}

// resolveHosts turns host strings into addresses, logging the ones that fail.
func (c *Cluster) resolveHosts(ctx context.Context, hosts []string, defaultPort uint16) []netip.AddrPort {
	var out []netip.AddrPort
	for _, h := range hosts {
		a, err := resolveAddress(ctx, h, defaultPort)
		if err != nil {
			c.log.logf(LogWarn, "smudge: initial host %q: %v", h, err)
			continue
		}
		out = append(out, a)
	}
	return out
}

// readLoop moves datagrams from the transport to the protocol loop.
func (c *Cluster) readLoop(tr Transport) {
	defer c.wg.Done()
	big := make([]byte, maxUDPPayload)
	for {
		n, from, err := tr.ReadFrom(big)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-c.stop:
				return
			default:
			}
			c.readErrors.Add(1)
			continue
		}
		c.datagramsRead.Add(1)
		bp := bufPool.Get().(*[]byte)
		plain, ok := c.open((*bp)[:0], big[:n])
		if ok {
			ok = c.precheck(plain)
		}
		if !ok {
			bufPool.Put(bp)
			continue
		}
		*bp = plain
		select {
		case c.recv <- datagram{from: from, buf: bp}:
		default:
			c.receiveDrops.Add(1)
			bufPool.Put(bp)
		}
	}
}

// precheck drops, in the reader, what the engine would drop anyway for its
// header: the check is cheap and keeps a flood out of the protocol loop.
func (c *Cluster) precheck(p []byte) bool {
	h, _, err := wire.DecodeHeader(p)
	switch {
	case errors.Is(err, wire.ErrVersion):
		c.droppedVersionEarly.Add(1)
		if !c.warnedVersion.Swap(true) {
			c.log.logf(LogWarn, "smudge: dropping packets of another wire version (this node speaks version %d): a node runs a smudge older or newer than this one; every node of a cluster must be upgraded together (Stats.DroppedVersion counts them)", wire.Version)
		}
		return false
	case err != nil:
		c.droppedMalformedEarly.Add(1)
		return false
	case h.Cluster != c.clusterID:
		c.droppedWrongClusterEarly.Add(1)
		return false
	}
	return true
}

// run is the protocol loop: the only goroutine that touches the engine.
func (c *Cluster) run(e *swim.Engine) {
	defer c.wg.Done()
	defer c.doneOnce.Do(func() { close(c.done) })
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	lastView := time.Time{}
	for {
		c.flush(e, &lastView)
		wait := time.Until(e.NextDeadline())
		if wait <= 0 {
			// Overdue (a GC pause, CPU throttling): first take what has
			// arrived meanwhile, lest a refutation or ack that is already
			// here be missed by a timer.
			c.drainReceived(e, 64)
			e.Tick(time.Now())
			continue
		}
		timer.Reset(wait)
		select {
		case <-c.stop:
			return
		case d := <-c.recv:
			e.Receive(time.Now(), d.from, *d.buf)
			bufPool.Put(d.buf)
		case f := <-c.cmds:
			f(time.Now(), e)
		case <-timer.C:
			e.Tick(time.Now())
		}
	}
}

// drainReceived hands up to max waiting datagrams to the engine, without
// blocking.
func (c *Cluster) drainReceived(e *swim.Engine, max int) {
	for range max {
		select {
		case d := <-c.recv:
			e.Receive(time.Now(), d.from, *d.buf)
			bufPool.Put(d.buf)
		default:
			return
		}
	}
}

// flush sends the engine's packets, hands its events to the listeners, and
// refreshes the membership snapshot when it changed (and at least once a
// protocol period, for the last-heard times).
func (c *Cluster) flush(e *swim.Engine, lastView *time.Time) {
	c.startPushPulls(e)
	pkts, evs := e.Outbox()
	for _, p := range pkts {
		data := p.Data
		if r := c.ring.Load(); r != nil {
			c.sealBuf = r.Seal(c.sealBuf[:0], p.Data)
			data = c.sealBuf
		}
		if err := c.transport.WriteTo(data, p.To); err != nil {
			c.sendErrors.Add(1)
			c.log.logf(LogDebug, "smudge: send to %v: %v", p.To, err)
		}
	}
	changed := false
	for i := range evs {
		if evs[i].Kind != swim.EventBroadcast {
			changed = true
		}
	}
	now := time.Now()
	if changed || now.Sub(*lastView) >= c.cfg.HeartbeatInterval {
		c.view.Store(newView(e.Members()))
		st := e.Stats()
		c.stats.Store(&st)
		*lastView = now
		if st.JoinRounds > 1 && st.JoinRounds > c.warnedRounds && e.NumLive() == 1 {
			c.warnedRounds = st.JoinRounds
			c.log.logf(LogWarn, "smudge: no answer yet from the initial hosts %v (%d attempts); still trying", c.cfg.InitialHosts, st.JoinRounds)
		}
	}
	if len(evs) == 0 {
		return
	}
	c.mu.Lock()
	ls := listeners{status: c.statusLs, bcast: c.bcastLs, meta: c.metaLs}
	c.mu.Unlock()
	for i := range evs {
		c.dispatch(&evs[i], &ls)
	}
}

// listeners is a snapshot of the registered listeners.
type listeners struct {
	status []*statusSub
	bcast  []*bcastSub
	meta   []*metaSub
}

func (c *Cluster) dispatch(ev *swim.Event, ls *listeners) {
	statusLs, bcastLs := ls.status, ls.bcast
	switch ev.Kind {
	case swim.EventMeta:
		n := nodeFromMember(ev.Member)
		for _, s := range ls.meta {
			l := s.l
			c.enqueue(s.q, func() { l.OnMetaChange(n) })
		}
	case swim.EventStatus:
		n := nodeFromMember(ev.Member)
		c.log.logf(LogDebug, "smudge: %v is %v", n.Address(), ev.Member.Status)
		for _, s := range statusLs {
			l := s.l
			c.enqueue(s.q, func() { l.OnChange(n, n.status) })
		}
	case swim.EventRemoved:
		n := nodeFromMember(ev.Member)
		n.status = StatusUnknown
		c.log.logf(LogDebug, "smudge: %v removed", n.Address())
		for _, s := range statusLs {
			if r, ok := s.l.(RemovalListener); ok {
				c.enqueue(s.q, func() { r.OnRemove(n) })
			}
		}
	case swim.EventBroadcast:
		origin := c.view.Load().byAddr[ev.Broadcast.Origin]
		if origin == nil {
			origin = newNodeAddr(ev.Broadcast.Origin)
		}
		b := &Broadcast{origin: origin, boot: ev.Broadcast.Boot, index: ev.Broadcast.Index, bytes: ev.Broadcast.Payload}
		for _, s := range bcastLs {
			l := s.l
			c.enqueue(s.q, func() { l.OnBroadcast(b) })
		}
	}
}

func (c *Cluster) enqueue(q *listenerQueue, f func()) {
	if !q.push(f) {
		if c.listenerDrops.Add(1) == 1 {
			c.log.logf(LogError, "smudge: a listener is not keeping up; events are being dropped")
		}
	}
}

// do runs f on the protocol loop and waits for it.
func (c *Cluster) do(f func(now time.Time, e *swim.Engine) error) error {
	c.mu.Lock()
	state := c.state
	c.mu.Unlock()
	switch state {
	case clusterNew, clusterStarting:
		return ErrNotStarted
	case clusterStopped:
		return ErrStopped
	}
	reply := make(chan error, 1)
	select {
	case c.cmds <- func(now time.Time, e *swim.Engine) { reply <- f(now, e) }:
	case <-c.done:
		return ErrStopped
	}
	select {
	case err := <-reply:
		return err
	case <-c.done:
		return ErrStopped
	}
}

// Leave announces to the cluster that this node is leaving, gives the news
// up to two protocol periods (or until ctx ends) to spread, and shuts down.
// Peers mark the node DEAD with Left() true, without a suspicion phase.
func (c *Cluster) Leave(ctx context.Context) error {
	err := c.do(func(now time.Time, e *swim.Engine) error { e.Leave(now); return nil })
	if err != nil {
		return err
	}
	t := time.NewTimer(2 * c.cfg.HeartbeatInterval)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	return c.Shutdown()
}

// listenerDrainTimeout bounds how long Shutdown waits for listeners to
// receive the events already queued for them.
const listenerDrainTimeout = 2 * time.Second

// Shutdown stops the node at once, without telling anyone (peers will find
// it dead), and closes the transport. It returns once every listener has
// received the events already queued for it, or after 2 s if a listener is
// stuck (or is the caller). Shutdown is idempotent.
func (c *Cluster) Shutdown() error {
	c.mu.Lock()
	if c.state != clusterRunning {
		if c.state == clusterNew {
			c.doneOnce.Do(func() { close(c.done) }) // nothing will run: Done must not hang
		}
		c.state = clusterStopped // a Start in progress sees it and gives up
		c.mu.Unlock()
		return nil
	}
	c.state = clusterStopped
	tr := c.transport
	c.mu.Unlock()
	close(c.stop)
	c.stopStreams()
	err := tr.Close()
	if m := c.mcast.Load(); m != nil {
		m.close()
	}
	c.wg.Wait()
	queues := c.listenerQueues()
	drain := time.NewTimer(listenerDrainTimeout)
	defer drain.Stop()
	for _, q := range queues {
		q.close()
	}
	for _, q := range queues {
		select {
		case <-q.done:
		case <-drain.C:
			c.log.logf(LogWarn, "smudge: shutdown: a listener did not finish its queued events within %v", listenerDrainTimeout)
			return err
		}
	}
	c.log.logf(LogInfo, "smudge: %v stopped", c.self)
	return err
}

// Done is closed when the Cluster has stopped.
func (c *Cluster) Done() <-chan struct{} { return c.done }

// Running reports whether the Cluster is started and not stopped.
func (c *Cluster) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == clusterRunning
}

// starting reports whether Start is in progress.
func (c *Cluster) starting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == clusterStarting
}

// Config returns the Cluster's configuration.
func (c *Cluster) Config() Config { return c.cfg }

// LocalAddr is the transport's bound address (zero before Start).
func (c *Cluster) LocalAddr() netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.transport == nil {
		return netip.AddrPort{}
	}
	return c.transport.LocalAddr()
}

// LocalNode is this node's snapshot; nil before Start.
func (c *Cluster) LocalNode() *Node {
	v := c.view.Load()
	if len(v.nodes) == 0 {
		return nil
	}
	return v.nodes[0]
}

// Members returns a snapshot of every known member: this node first, then
// the others, dead ones included until they are removed.
func (c *Cluster) Members() []*Node {
	return append([]*Node(nil), c.view.Load().nodes...)
}

// HealthyMembers returns the ALIVE members (SUSPECTED ones excluded), this
// node included.
func (c *Cluster) HealthyMembers() []*Node {
	v := c.view.Load()
	out := make([]*Node, 0, len(v.nodes))
	for _, n := range v.nodes {
		if n.status == StatusAlive {
			out = append(out, n)
		}
	}
	return out
}

// Member returns the snapshot of the member with the given address
// ("ip:port" or "[ip]:port"), or nil.
func (c *Cluster) Member(address string) *Node {
	a, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil
	}
	return c.view.Load().byAddr[netip.AddrPortFrom(a.Addr().Unmap(), a.Port())]
}

// Stats returns the counters as of the last protocol period.
func (c *Cluster) Stats() Stats {
	var s Stats
	if p := c.stats.Load(); p != nil {
		s.Stats = *p
	}
	s.DatagramsRead = c.datagramsRead.Load()
	s.ReceiveQueueDrops = c.receiveDrops.Load()
	s.ReadErrors = c.readErrors.Load()
	s.SendErrors = c.sendErrors.Load()
	s.ListenerEventsDropped = c.listenerDrops.Load()
	s.DroppedMalformed += c.droppedMalformedEarly.Load()
	s.DroppedVersion += c.droppedVersionEarly.Load()
	s.DroppedWrongCluster += c.droppedWrongClusterEarly.Load()
	s.DroppedPlaintext = c.droppedPlain.Load()
	s.DroppedSealed = c.droppedSealed.Load()
	s.DroppedUnauthentic = c.droppedUnauthenticated.Load()
	if m := c.mcast.Load(); m != nil {
		s.Multicast = m.stats()
	}
	s.Streams, s.Publish = c.streams.stats(), c.streams.publishStats()
	s.DroppedEarly = s.DroppedPlaintext + s.DroppedSealed + s.DroppedUnauthentic + c.droppedMalformedEarly.Load() + c.droppedVersionEarly.Load() + c.droppedWrongClusterEarly.Load()
	return s
}

// Broadcast sends payload to every other live member, once each. The
// payload is copied. It returns ErrBroadcastTooLarge for a payload longer
// than MaxBroadcastBytes.
func (c *Cluster) Broadcast(payload []byte) error {
	if len(payload) > c.cfg.MaxBroadcastBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d (MaxBroadcastBytes)", ErrBroadcastTooLarge, len(payload), c.cfg.MaxBroadcastBytes)
	}
	return c.do(func(now time.Time, e *swim.Engine) error {
		_, err := e.Broadcast(now, payload)
		switch {
		case errors.Is(err, swim.ErrBroadcastQueue):
			return fmt.Errorf("%w (%d waiting)", ErrBroadcastQueueFull, c.cfg.Limits.MaxQueuedBroadcasts)
		case errors.Is(err, swim.ErrLeaving):
			return ErrLeaving
		}
		return err
	})
}

// AddStatusListener registers l. A listener added before Start hears the
// local node become ALIVE. If l also implements RemovalListener it is told
// of removals.
func (c *Cluster) AddStatusListener(l StatusListener) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.statusLs = append(c.statusLs[:len(c.statusLs):len(c.statusLs)], &statusSub{l: l, q: newListenerQueue(c.cfg.Limits.ListenerBacklog)})
}

// AddBroadcastListener registers l.
func (c *Cluster) AddBroadcastListener(l BroadcastListener) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bcastLs = append(c.bcastLs[:len(c.bcastLs):len(c.bcastLs)], &bcastSub{l: l, q: newListenerQueue(c.cfg.Limits.ListenerBacklog)})
}

// AddMetaListener registers l: it is told when a member's metadata is
// learned after the member first appeared, or changes (the local node's own
// included, after SetMeta).
func (c *Cluster) AddMetaListener(l MetaListener) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.metaLs = append(c.metaLs[:len(c.metaLs):len(c.metaLs)], &metaSub{l: l, q: newListenerQueue(c.cfg.Limits.ListenerBacklog)})
}

// SetMeta changes this node's metadata (at most MaxMetaBytes; see
// Config.Meta). It spreads through the cluster at a new incarnation. Before
// Start it replaces Config.Meta (Config() still shows the original).
func (c *Cluster) SetMeta(meta []byte) error {
	if len(meta) > MaxMetaBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrMetaTooLarge, len(meta), MaxMetaBytes)
	}
	c.mu.Lock()
	if c.state == clusterNew {
		c.startMeta, c.startMetaSet = bytes.Clone(meta), true
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	return c.do(func(now time.Time, e *swim.Engine) error {
		if err := e.SetMeta(now, meta); errors.Is(err, swim.ErrLeaving) {
			return ErrLeaving
		} else if err != nil {
			return err
		}
		return nil
	})
}

// metaAtStart is the metadata the engine starts with.
func (c *Cluster) metaAtStart() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.startMetaSet {
		return c.startMeta
	}
	return c.cfg.Meta
}

// waitListeners blocks until every listener has received everything queued
// so far. For tests.
func (c *Cluster) waitListeners() {
	for _, q := range c.listenerQueues() {
		q.wait()
	}
}

// listenerQueues returns every listener's queue.
func (c *Cluster) listenerQueues() []*listenerQueue {
	c.mu.Lock()
	defer c.mu.Unlock()
	qs := make([]*listenerQueue, 0, len(c.statusLs)+len(c.bcastLs)+len(c.metaLs))
	for _, s := range c.statusLs {
		qs = append(qs, s.q)
	}
	for _, s := range c.bcastLs {
		qs = append(qs, s.q)
	}
	for _, s := range c.metaLs {
		qs = append(qs, s.q)
	}
	return qs
}

// Join contacts more members (addresses as for InitialHosts) and adds them.
func (c *Cluster) Join(ctx context.Context, hosts ...string) error {
	var addrs []netip.AddrPort
	var errs []error
	for _, h := range hosts {
		a, err := resolveAddress(ctx, h, c.LocalAddr().Port())
		if err != nil {
			errs = append(errs, fmt.Errorf("smudge: join %q: %w", h, err))
			continue
		}
		addrs = append(addrs, a)
	}
	if err := c.do(func(now time.Time, e *swim.Engine) error { e.Join(now, addrs...); return nil }); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// AddNode adds a node not yet known as ALIVE (listeners are told) and pings
// it at once. Adding a known node only pings it.
func (c *Cluster) AddNode(n *Node) (*Node, error) {
	if n == nil || !n.addr.IsValid() {
		return nil, fmt.Errorf("smudge: AddNode: %w", errNilNode)
	}
	err := c.do(func(now time.Time, e *swim.Engine) error {
		if err := e.AddMember(now, n.addr); err != nil {
			if errors.Is(err, swim.ErrSelf) {
				return fmt.Errorf("smudge: AddNode %v: %w", n.addr, ErrLocalNode)
			}
			return fmt.Errorf("smudge: AddNode %v: not a concrete address (unspecified IP or port 0)", n.addr)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c.nodeNow(n.addr), nil
}

// RemoveNode forgets a node at once; RemovalListeners are told. It will be
// added again if it is heard from.
func (c *Cluster) RemoveNode(n *Node) (*Node, error) {
	if n == nil {
		return nil, fmt.Errorf("smudge: RemoveNode: %w", errNilNode)
	}
	err := c.do(func(now time.Time, e *swim.Engine) error {
		if err := e.RemoveMember(now, n.addr); err != nil {
			return fmt.Errorf("%w: %v", ErrUnknownNode, n.addr)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	removed := *n
	removed.status = StatusUnknown
	return &removed, nil
}

// PingNode probes a member now, out of turn. The result takes the normal
// course (an answer keeps it ALIVE, silence leads to suspicion).
func (c *Cluster) PingNode(n *Node) error {
	if n == nil {
		return fmt.Errorf("smudge: PingNode: %w", errNilNode)
	}
	return c.do(func(now time.Time, e *swim.Engine) error {
		if err := e.Ping(now, n.addr); err != nil {
			return fmt.Errorf("%w: %v", ErrUnknownNode, n.addr)
		}
		return nil
	})
}

// UpdateNodeStatus sets a member's status by local decision and gossips it.
// Other members apply the usual precedence, and a living node refutes a
// SUSPECTED or DEAD verdict about itself.
func (c *Cluster) UpdateNodeStatus(n *Node, status NodeStatus, source *Node) error {
	if n == nil {
		return fmt.Errorf("smudge: UpdateNodeStatus: %w", errNilNode)
	}
	var st swim.Status
	switch status {
	case StatusAlive:
		st = swim.StatusAlive
	case StatusSuspected:
		st = swim.StatusSuspect
	case StatusDead:
		st = swim.StatusDead
	default:
		return fmt.Errorf("smudge: UpdateNodeStatus: cannot set status %v", status)
	}
	var src netip.AddrPort
	if source != nil {
		src = source.addr
	}
	return c.do(func(now time.Time, e *swim.Engine) error {
		if err := e.SetStatus(now, n.addr, st, src); err != nil {
			return fmt.Errorf("%w: %v", ErrUnknownNode, n.addr)
		}
		return nil
	})
}

// nodeNow returns the member's current snapshot, taken on the loop.
func (c *Cluster) nodeNow(a netip.AddrPort) *Node {
	var n *Node
	c.do(func(now time.Time, e *swim.Engine) error {
		if m, ok := e.Member(a); ok {
			n = nodeFromMember(m)
		}
		return nil
	})
	return n
}

var errNilNode = errors.New("nil node")
