// Package swim is smudge's protocol engine: a pure state machine for the SWIM
// membership protocol with suspicion, incarnation numbers and piggybacked
// dissemination.
//
// The engine owns no goroutine, socket, clock or global random source. Its
// inputs are the current time and packets (Tick, Receive) and requests (Join,
// Leave, Broadcast, ...); its outputs are packets to send and events, taken
// with Outbox. NextDeadline says when Tick must next be called. This makes
// the protocol testable with a fake clock and runnable by the thousand in a
// simulator, in the manner of etcd-io/raft.
//
// An Engine is not safe for concurrent use: one goroutine owns it.
package swim

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/seed-c7906467/smudge/internal/wire"
)

// Status is a member's state; at equal incarnation a higher value wins.
type Status = wire.Status

// Member states.
const (
	StatusAlive   = wire.StatusAlive
	StatusSuspect = wire.StatusSuspect
	StatusDead    = wire.StatusDead
	StatusLeft    = wire.StatusLeft
)

// Member is a snapshot of what this node knows about one member.
type Member struct {
	Addr        netip.AddrPort // identity: the advertised address
	Meta        []byte         // its metadata as last learned; nil if none or not yet known; do not modify
	Status      Status
	Incarnation uint32
	Source      netip.AddrPort // who declared the current status
	Changed     time.Time      // when Status last changed here
	LastHeard   time.Time      // when a packet from it last arrived; zero if never
	RTT         time.Duration  // last direct round trip; 0 if none yet
	EmitsLeft   int            // how many more times this node will gossip its state
	Self        bool           // this node
}

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// EventStatus: a member was added or its status changed.
	EventStatus EventKind = iota + 1
	// EventRemoved: a dead or left member was forgotten, or removed by request.
	EventRemoved
	// EventBroadcast: a broadcast from another node arrived for the first time.
	EventBroadcast
	// EventMeta: a member's metadata was learned after the member was
	// added, or changed (this node's own included, by SetMeta).
	EventMeta
)

// Event is one output for the application.
type Event struct {
	Kind      EventKind
	Member    Member    // EventStatus, EventRemoved: the member's state
	Previous  Status    // EventStatus: the status before; 0 for a new member
	Broadcast Broadcast // EventBroadcast
}

// Broadcast is a user message delivered to every other live member once.
type Broadcast struct {
	Origin  netip.AddrPort
	Boot    uint32 // the origin's boot id: its broadcasts restart at index 1
	Index   uint32
	Payload []byte // shared with the forwarding queue: do not modify
}

// Packet is one datagram to send.
type Packet struct {
	To   netip.AddrPort
	Data []byte
}

// Stats counts what the engine did and dropped. Every dropped input is
// counted under exactly one reason.
type Stats struct {
	PacketsReceived      uint64
	BytesReceived        uint64
	PacketsSent          uint64
	BytesSent            uint64
	DroppedMalformed     uint64 // undecodable packets
	DroppedVersion       uint64 // packets of another wire version (an older or newer smudge)
	DroppedWrongCluster  uint64 // packets from another cluster
	DroppedFromSelf      uint64 // packets claiming to be from this node
	DroppedMisdirected   uint64 // pings meant for another identity
	UnknownMessages      uint64 // messages of an unknown type, skipped
	UnexpectedAcks       uint64 // acks for no pending probe (late or forged)
	ProbesSent           uint64
	IndirectProbes       uint64 // probes that went to the ping-req phase
	ProbesFailed         uint64 // probes with no ack at all
	SuspicionsRaised     uint64 // members this node suspected itself
	SuspicionsDeferred   uint64 // suspicions this node alone held given more time, its health raised
	DeadDeclared         uint64 // suspicions that ran out here
	Refutations          uint64 // times this node refuted a rumour about itself
	BroadcastsSent       uint64 // originated here
	BroadcastsDelivered  uint64
	BroadcastsDuplicate  uint64
	BroadcastsExpired    uint64 // too old to deliver or forward
	BroadcastsDropped    uint64 // oversized, or the dedup table or queue was full
	BroadcastsOwnEchoed  uint64 // this node's own broadcasts coming back
	BroadcastsRepaired   uint64 // broadcasts sent to members whose digest lacked them
	RetainedEvicted      uint64 // broadcasts forgotten by the repair round early (MaxRetainedBroadcasts)
	QueuedGossip         int    // updates and broadcasts waiting to be piggybacked
	RemovedMembers       uint64
	JoinRounds           uint64 // rounds of join pings sent to the seeds
	JoinSyncRetries      uint64 // push-pulls after Join tried with the next seed, the previous having failed
	Announcements        uint64 // multicast announcements built
	DroppedStale         uint64 // packets from removed members at their old incarnation (replays)
	DroppedMemberLimit   uint64 // packets and rumours of new members past MaxMembers
	DroppedProbeLimit    uint64 // ping-reqs past MaxPendingProbes
	DroppedReplayedBcast uint64 // broadcasts older than what was already forgotten
	SyncsSkipped         uint64 // join answers not sent (MaxSyncsPerPeriod)
	TimerCompactions     uint64 // times the timer heap was rid of cancelled timers
	DroppedIncJump       uint64 // packets and updates claiming an incarnation too far above the known one
	DroppedRelayUnknown  uint64 // ping-reqs for a target that is not a member
	SyncsDeferred        uint64 // join answers held until the joiner acked a ping (anti-amplification)
	TombstoneRetries     uint64 // join pings sent to removed members' addresses (partition healing)
	Pushes               uint64 // packets pushed at once with news (PushFanout)
	PushesSkipped        uint64 // pushes not sent: the bound per period was reached (the news went by gossip)
	GossipPackets        uint64 // packets of gossip rounds (gossip.go)
	Hellos               uint64 // greetings sent while joining to members never heard from (hello.go)
	HellosSkipped        uint64 // greetings not sent: MaxHellos was reached
	// Push-pull (pushpull.go).
	PushPullsDue     uint64 // push-pull targets handed to the host (TakePushPulls)
	PushPullsSkipped uint64 // push-pull targets dropped: already waiting, or MaxPendingPushPulls were
	StatesSent       uint64 // states built (AppendState)
	StatesMerged     uint64 // states merged (MergeState)
	DroppedBadState  uint64 // states rejected as malformed or oversized (ErrBadState)
	// Lifeguard (lifeguard.go).
	LocalHealth            int    // the local health score now: probe period and timeout are stretched 1+LocalHealth times
	HealthRaised           uint64 // total raises of the score (failed probes, missed nacks, refutations)
	NacksSent              uint64 // nacks sent as a ping-req relay whose ping went unanswered
	NacksReceived          uint64 // nacks received for this node's ping-reqs
	NacksMissed            uint64 // nacks expected but not received by the end of a failed probe
	UnexpectedNacks        uint64 // nacks for no probe in its indirect phase (late or forged)
	ProbesEndedByNacks     uint64 // failed probes cut short because every relay nacked (see handleNack)
	SuspicionConfirmations uint64 // independent accusers counted for suspicions held here
	ChecksRequested        uint64 // suspicions pushed to members for them to probe the suspect
	ChecksRun              uint64 // probes started here at another's request
	VerdictProbes          uint64 // last probes started at once on another's DEAD verdict
	LoneRechecks           uint64 // checks of this node's lone suspicions when its health recovered (recheckLoneSuspicions)
	ConfirmedSpread        uint64 // packets telling members a suspicion is confirmed (spreadConfirmed)
	PendingTimers          int    // timers in the heap, cancelled ones included
	CurrentProbeTimeout    time.Duration
	CurrentEmitLimit       int
	CurrentSuspicionTime   time.Duration
}

// Errors returned by the engine's requests.
var (
	ErrUnknownMember     = errors.New("swim: unknown member")
	ErrBroadcastTooLarge = errors.New("swim: broadcast larger than MaxBroadcastBytes")
	ErrBroadcastQueue    = errors.New("swim: broadcast queue full")
	ErrLeaving           = errors.New("swim: node is leaving")
	ErrSelf              = errors.New("swim: that is this node")
	ErrMetaTooLarge      = errors.New("swim: metadata larger than wire.MaxMetaBytes")
	// ErrIncarnationExhausted: the incarnation is at its 32-bit top and
	// cannot be raised to carry a change; restart the node.
	ErrIncarnationExhausted = errors.New("swim: incarnation at its maximum")
)

// member is one entry of the member table. A node keeps one per member, so
// a simulation of 10,000 nodes keeps 10^8 of them: the fields are ordered
// and sized to fit 96 bytes (times are nanoseconds since the engine's epoch,
// the source a shared pointer).
type member struct {
	addr        netip.AddrPort
	inc         uint32
	gen         uint32 // bumped on every status change: cancels timers
	orderIdx    int32
	status      Status
	inProbeList bool
	removed     bool
	metaFresh   bool            // meta is the member's metadata at inc (else as last known, or unknown)
	source      *netip.AddrPort // who declared the current status; nil: the member itself
	meta        *metaData       // nil: never learned
	changed     int64           // when status last changed here (see Engine.at)
	lastHeard   int64           // when a packet from it last arrived; never if none
	nextNotice  int64           // rate limit for telling it what we think of it
	rttMicros   int32           // last direct round trip; 0 if none yet
	backoffExp  uint8           // dead re-probe interval: ProbeInterval << backoffExp, capped
	verified    bool            // it acked a ping sent to its address: answers to it cannot be reflected
	syncOwed    bool            // it asked to join before it was verified: send the member list then
	greeted     bool            // this node, joining, introduced itself to it (hello.go)
}

// metaData is a member's metadata, shared by the member and the updates
// about it in the gossip queue, and never modified.
type metaData struct{ b []byte }

// noMeta is the metadata of a member known to have none.
var noMeta = &metaData{}

func newMetaData(b []byte) *metaData {
	if len(b) == 0 {
		return noMeta
	}
	return &metaData{b: bytes.Clone(b)}
}

func (d *metaData) bytes() []byte {
	if d == nil {
		return nil
	}
	return d.b
}

func (m *member) live() bool { return m.status == StatusAlive || m.status == StatusSuspect }

// sourceAddr is who declared m's current status.
func (m *member) sourceAddr() netip.AddrPort {
	if m.source == nil {
		return m.addr
	}
	return *m.source
}

// never is the engine time of something that has not happened.
const never = math.MinInt64

// ns converts t to engine time: nanoseconds since the engine's epoch.
func (e *Engine) ns(t time.Time) int64 { return int64(t.Sub(e.epoch)) }

// at converts engine time back; never is the zero time.
func (e *Engine) at(ns int64) time.Time {
	if ns == never {
		return time.Time{}
	}
	return e.epoch.Add(time.Duration(ns))
}

// sourceRef is how a member stores src, the declarer of its status: nil for
// itself, else a pointer shared with this node's or the declarer's own
// entry when there is one.
func (e *Engine) sourceRef(m *member, src netip.AddrPort) *netip.AddrPort {
	switch {
	case src == m.addr:
		return nil
	case src == e.cfg.Self:
		return &e.cfg.Self
	}
	if d := e.find(src); d != nil {
		return &d.addr
	}
	p := new(netip.AddrPort) // not &src: that would move src to the heap on every call
	*p = src
	return p
}

// find returns the member with address a, or nil.
func (e *Engine) find(a netip.AddrPort) *member { return e.members.find(e.order, a) }

type probe struct {
	seq       uint16  // on the wire: unique among the probes in flight
	serial    uint32  // unique for 2^32 probes: a timer carries it (as gen)
	target    *member // nil for relayed probes
	addr      netip.AddrPort
	sentAt    time.Time
	indirect  bool // in the ping-req phase
	reprobe   bool // a re-probe of a dead member: failure changes nothing
	relay     bool // on behalf of requester
	requester netip.AddrPort
	reqSeq    uint16
	join      bool  // a join ping to a seed: no member yet
	nacksWant uint8 // relays asked in the indirect phase that send nacks (at most maxNackRelays)
	nacks     uint8 // nacks received from them
	nacked    uint8 // which of relays have nacked (bit i: relays[i])
	relays    [maxNackRelays]netip.AddrPort
	announce  bool   // a multicast announcement: any number of acks until it times out
	confirm   bool   // the last probe of a suspect whose suspicion ran out
	check     bool   // a suspicion check (runCheck) asked by an accuser
	gen       uint32 // confirm: the target's generation when it started
	// indirectAt is when the indirect phase started.
	indirectAt time.Time
	// notBefore: a last probe at this node's own suspicion timeout ends no
	// sooner than the suspicion's full timeout (see handleNack).
	notBefore time.Time
}

type bcastKey struct {
	origin netip.AddrPort
	boot   uint32
	index  uint32
}

type seenEntry struct {
	key     bcastKey
	expires time.Time
}

type outbox struct {
	packets []Packet
	events  []Event
	bufs    [][]byte
	used    int
}

// Engine is one node's SWIM state machine.
type Engine struct {
	cfg     Config
	hdr     wire.Header
	inc     uint32
	meta    *metaData
	leaving bool

	epoch   time.Time   // engine time zero (see ns and at)
	members memberTable // indexes order by address
	order   []*member   // members in a stable order, for deterministic iteration
	live    int         // alive + suspect members, this node excluded

	probeList   []*member
	probeIdx    int
	nextProbeAt time.Time
	probes      map[uint32]*probe // by seq, widened: 32-bit keys hash faster than 16-bit ones
	freeProbes  []*probe          // for reuse (see dropProbe)
	picked      []*member         // pickRandom's result, reused
	seq         uint16            // the last sequence number given out (see track)
	serial      uint32            // the last probe serial given out
	timers      timerHeap
	rtt         *rttHistory

	tombs      tombstones
	syncTokens int
	floors     broadcastFloors

	seeds       []netip.AddrPort
	joinBackoff time.Duration
	joinGen     uint32
	joinPending bool // a round of join pings is scheduled
	// joinSync is the seed the push-pull after Join is with (invalid once
	// it is done, or every seed failed); joinSyncNext indexes the seed to
	// try next if it fails (see PushPullFailed).
	joinSync     netip.AddrPort
	joinSyncNext int
	pushTokens   int // pushes left this period

	nextGossipAt time.Time // the next gossip round (gossip.go)
	urgentUntil  time.Time // gossip rounds run until then
	synced       bool      // a join answer (the member list) arrived
	hellosLeft   int       // greetings this node may still send (hello.go)

	nextTombRetry time.Time // when to try a removed member's address next

	// Push-pull (pushpull.go).
	nextPushPullAt time.Time
	pushPulls      []netip.AddrPort // targets waiting for the host
	stateCursor    int              // where the next state starts in order
	stateBuf       []byte           // AppendState's plain encoding (reused)
	inflateBuf     []byte           // MergeState's plain state (reused)
	stateMsgs      []wire.Message   // MergeState's decoded entries (reused)

	// Lifeguard (lifeguard.go).
	health int // local health score, 0 (healthy) to MaxLocalHealth
	// lateAcks: this node's latest probes in a row (up to maxLateAcks)
	// whose ack came from the target itself, but only after the relays
	// were asked (see directPhase).
	lateAcks       int
	suspicions     map[*member]*suspicion
	freeSuspicions []*suspicion

	queue      *gossipQueue
	bcastIndex uint32
	seen       map[bcastKey]time.Time
	seenFIFO   []seenEntry
	seenHead   int

	// The repair round (repair.go).
	retained      []retainedBcast
	retainHead    int
	digestDirty   bool
	digestMsg     wire.Message
	digestCutoff  int64
	digestOrder   []int32
	digestKeys    []bcastKey
	digestGroups  []digestGroup
	digestInclude []bool
	digestBuf     []byte
	digestBitmap  []byte
	peerDigest    []wire.DigestEntry // a pinger's digest, decoded (reused)

	out   [2]outbox
	cur   int
	pkt   wire.Packet
	stats Stats

	quiet bool     // see SetQuiet
	slab  []member // members allocated by Reserve, not yet used
}

// New returns an engine for cfg, started at now. Its first output is an
// EventStatus announcing this node ALIVE.
func New(cfg Config, now time.Time) (*Engine, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:     cfg,
		hdr:     wire.Header{Cluster: cfg.ClusterID, Sender: cfg.Self},
		inc:     cfg.Incarnation,
		epoch:   now,
		members: newMemberTable(),
		probes:  make(map[uint32]*probe),
		rtt:     newRTTHistory(cfg.PingHistoryFrontload, cfg.MinProbeTimeout),
		queue:   newGossipQueue(),
		seen:    make(map[bcastKey]time.Time),

		suspicions: make(map[*member]*suspicion),
		seq:        uint16(cfg.Rand.Uint32()),
		tombs:      newTombstones(),

		syncTokens: cfg.MaxSyncsPerPeriod,
		pushTokens: 4 * cfg.PushFanout,
		floors:     newBroadcastFloors(),
		meta:       newMetaData(cfg.Meta),
	}
	// Spread nodes' probe periods so that they do not tick in lockstep.
	e.nextProbeAt = now.Add(time.Duration(cfg.Rand.Int64N(int64(cfg.ProbeInterval))))
	if cfg.PushPullInterval > 0 { // staggered too; no draw when off, so runs without it replay as before
		e.nextPushPullAt = now.Add(time.Duration(cfg.Rand.Int64N(int64(cfg.PushPullInterval))))
	}
	e.event(Event{Kind: EventStatus, Member: e.selfMember()})
	return e, nil
}

// Self is this node's address.
func (e *Engine) Self() netip.AddrPort { return e.cfg.Self }

// Incarnation is this node's current incarnation number.
func (e *Engine) Incarnation() uint32 { return e.inc }

// Leaving reports whether Leave was called.
func (e *Engine) Leaving() bool { return e.leaving }

// NumLive is the number of ALIVE and SUSPECTED members, this node included.
func (e *Engine) NumLive() int { return e.live + 1 }

// Stats returns the counters.
func (e *Engine) Stats() Stats {
	s := e.stats
	s.QueuedGossip = e.queue.len
	s.PendingTimers = len(e.timers)
	s.CurrentProbeTimeout = e.ownProbeTimeout()
	s.CurrentEmitLimit = e.emitLimit()
	s.CurrentSuspicionTime = e.suspicionTimeout()
	return s
}

func (e *Engine) emitLimit() int { return EmitLimit(e.live + 1) }

// suspicionTimeout is the timeout of a suspicion nobody confirms.
func (e *Engine) suspicionTimeout() time.Duration { return e.suspicionTimeoutAfter(0) }

// NextDeadline is the time by which Tick must be called next.
func (e *Engine) NextDeadline() time.Time {
	d := e.nextProbeAt
	if len(e.timers) > 0 && e.timers[0].at.Before(d) {
		d = e.timers[0].at
	}
	if e.cfg.PushPullInterval > 0 && e.nextPushPullAt.Before(d) {
		d = e.nextPushPullAt
	}
	return e.gossipDeadline(d)
}

// Outbox returns the packets to send and the events produced since the last
// call. The slices and packet data stay valid until the next call to Outbox.
func (e *Engine) Outbox() ([]Packet, []Event) {
	ob := &e.out[e.cur]
	e.cur ^= 1
	next := &e.out[e.cur]
	clear(next.packets)
	clear(next.events)
	next.packets, next.events, next.used = next.packets[:0], next.events[:0], 0
	return ob.packets, ob.events
}

// Members returns a snapshot of every known member, this node first.
func (e *Engine) Members() []Member {
	out := make([]Member, 0, len(e.order)+1)
	out = append(out, e.selfMember())
	for _, m := range e.order {
		out = append(out, e.snapshot(m))
	}
	return out
}

// Member returns the snapshot of one member.
func (e *Engine) Member(addr netip.AddrPort) (Member, bool) {
	if addr == e.cfg.Self {
		return e.selfMember(), true
	}
	m := e.find(addr)
	if m == nil {
		return Member{}, false
	}
	return e.snapshot(m), true
}

func (e *Engine) selfMember() Member {
	st := StatusAlive
	if e.leaving {
		st = StatusLeft
	}
	return Member{
		Addr: e.cfg.Self, Meta: e.meta.bytes(), Status: st, Incarnation: e.inc, Source: e.cfg.Self,
		EmitsLeft: e.queue.pending(e.cfg.Self, e.emitLimit()), Self: true,
	}
}

func (e *Engine) snapshot(m *member) Member {
	return Member{
		Addr: m.addr, Meta: m.meta.bytes(), Status: m.status, Incarnation: m.inc, Source: m.sourceAddr(),
		Changed: e.at(m.changed), LastHeard: e.at(m.lastHeard), RTT: time.Duration(m.rttMicros) * time.Microsecond,
		EmitsLeft: e.queue.pending(m.addr, e.emitLimit()),
	}
}

// ---- requests ----

// Join asks each address (a seed) for its member list. A seed is not a
// member until it answers: the answer's header says who it really is. While
// this node knows no live member, it asks the seeds again with backoff, and
// it does so again whenever it finds itself alone (every member removed).
func (e *Engine) Join(now time.Time, addrs ...netip.AddrPort) {
	for _, a := range addrs {
		if a == e.cfg.Self || !a.IsValid() || slicesContains(e.seeds, a) {
			continue
		}
		e.seeds = append(e.seeds, a)
	}
	e.joinBackoff = 0
	e.hellosLeft = max(e.cfg.MaxHellos, 0)
	e.sendJoins(now)
	if e.cfg.PushPullInterval > 0 && !e.leaving {
		// One full sync with the first seed, besides the join pings; if it
		// fails, with the next (PushPullFailed).
		for _, a := range addrs {
			if a != e.cfg.Self && a.IsValid() {
				e.queuePushPull(a)
				e.joinSync, e.joinSyncNext = a, slices.Index(e.seeds, a)+1
				break
			}
		}
	}
}

// sendJoins pings every seed with the join flag and schedules a retry.
func (e *Engine) sendJoins(now time.Time) {
	if len(e.seeds) == 0 || e.leaving {
		return
	}
	for _, a := range e.seeds {
		e.joinPing(now, a, e.find(a), true)
	}
	e.stats.JoinRounds++
	e.joinBackoff = min(max(2*e.joinBackoff, e.cfg.ProbeInterval), maxJoinBackoff)
	e.joinGen++
	e.joinPending = true
	e.schedule(timer{at: now.Add(e.joinBackoff), kind: timerJoin, seq: e.joinGen})
}

// Announcement returns a packet for the caller to send to a multicast group:
// a ping addressed to nobody in particular, without piggybacked gossip.
// Every member of the cluster that hears it feeds it to its own engine
// (Receive with an invalid from address, so that answers go to the
// announcer's identity), learns of the announcer from its header, and
// acks: the announcer learns of each of them in turn, with no storm of
// multicast answers. The packet stays valid until the next Outbox call.
func (e *Engine) Announcement(now time.Time) []byte {
	p := e.newProbe()
	*p = probe{sentAt: now, announce: true}
	e.track(p)
	e.scheduleProbe(now.Add(2*e.cfg.ProbeInterval), p)
	b := e.startPacket(0)
	ping := wire.Message{Type: wire.TypePing, Seq: p.seq}
	e.stats.Announcements++
	b = ping.AppendTo(b)
	u := e.selfUpdate() // introduce this node, metadata included
	return u.AppendTo(b)
}

// TombstoneRetry is how often a node tries the address of one member it
// removed for being DEAD (picked at random among those removed within
// TombstoneTTL): if the member is alive after all, on the other side of a
// partition that outlasted RemoveDeadAfter, the two sides meet again (each
// tells the other it is dead here, each refutes, and the join answers and
// gossip merge the views). It costs one small packet per interval.
const TombstoneRetry = time.Second

// joinPing sends a join ping to address a (m: its member, if any), whose
// failure changes nothing.
func (e *Engine) joinPing(now time.Time, a netip.AddrPort, m *member, gossip bool) {
	p := e.newProbe()
	*p = probe{addr: a, sentAt: now, join: true}
	e.track(p)
	e.sendPing(now, a, netip.AddrPort{}, p.seq, wire.PingFlagJoin, m, gossip)
	e.scheduleProbe(now.Add(e.rtt.timeout()), p)
}

// maxJoinBackoff caps the time between two rounds of join attempts.
const maxJoinBackoff = 30 * time.Second

func slicesContains(s []netip.AddrPort, a netip.AddrPort) bool {
	for _, x := range s {
		if x == a {
			return true
		}
	}
	return false
}

// AddMember adds addr as an ALIVE member at once (listeners are told, as
// Smudge's AddNode did) and pings it, asking for its member list.
func (e *Engine) AddMember(now time.Time, addr netip.AddrPort) error {
	if addr == e.cfg.Self {
		return ErrSelf
	}
	if !addr.IsValid() || addr.Addr().IsUnspecified() || addr.Port() == 0 {
		return fmt.Errorf("swim: %v is not a concrete address", addr)
	}
	e.tombs.remove(addr) // the application knows better
	m := e.find(addr)
	if m == nil {
		m = e.addMember(now, addr, StatusAlive, 0, e.cfg.Self, nil)
	}
	e.startProbe(now, m, wire.PingFlagJoin, false)
	return nil
}

// RemoveMember forgets addr at once (an EventRemoved follows). It will be
// added again if it is heard from.
func (e *Engine) RemoveMember(now time.Time, addr netip.AddrPort) error {
	m := e.find(addr)
	if m == nil {
		return ErrUnknownMember
	}
	e.removeMember(now, m, false)
	return nil
}

// SetStatus sets addr's status by local decision, at its current
// incarnation, and gossips it. Other nodes apply their usual precedence.
func (e *Engine) SetStatus(now time.Time, addr netip.AddrPort, st Status, source netip.AddrPort) error {
	if !st.Valid() {
		return fmt.Errorf("swim: invalid status %d", st)
	}
	m := e.find(addr)
	if m == nil {
		return ErrUnknownMember
	}
	if !source.IsValid() {
		source = e.cfg.Self
	}
	e.setState(now, m, st, m.inc, source)
	e.queueUpdate(e.updateMsg(m))
	return nil
}

// Ping probes addr now, out of turn; the result takes the normal course.
func (e *Engine) Ping(now time.Time, addr netip.AddrPort) error {
	m := e.find(addr)
	if m == nil {
		return ErrUnknownMember
	}
	e.startProbe(now, m, 0, !m.live())
	return nil
}

// Broadcast queues payload for every other live member and returns its
// index. The engine keeps its own copy.
func (e *Engine) Broadcast(now time.Time, payload []byte) (uint32, error) {
	if e.leaving {
		return 0, ErrLeaving
	}
	if len(payload) > e.cfg.MaxBroadcastBytes {
		return 0, fmt.Errorf("%w: %d > %d bytes", ErrBroadcastTooLarge, len(payload), e.cfg.MaxBroadcastBytes)
	}
	if e.queue.broadcasts >= e.cfg.MaxQueuedBroadcasts {
		return 0, ErrBroadcastQueue
	}
	e.bcastIndex++
	msg := wire.Message{
		Type: wire.TypeBroadcast, Subject: e.cfg.Self, Boot: e.cfg.BootID,
		Index: e.bcastIndex, Payload: append([]byte(nil), payload...),
	}
	e.queue.addBroadcast(msg, now, netip.AddrPort{})
	e.retain(now, msg, 0)
	e.push(now, msg, netip.AddrPort{}, netip.AddrPort{})
	e.stats.BroadcastsSent++
	return e.bcastIndex, nil
}

// Leave announces that this node is leaving: its LEFT state (at a new
// incarnation) is sent at once to several members and then gossiped. The node
// stops probing; it keeps answering until the caller stops it.
func (e *Engine) Leave(now time.Time) {
	if e.leaving {
		return
	}
	e.leaving = true
	if e.inc < math.MaxUint32 { // LEFT beats ALIVE at the same incarnation anyway
		e.inc++
	}
	e.queueUpdate(e.selfUpdate())
	e.event(Event{Kind: EventStatus, Member: e.selfMember(), Previous: StatusAlive})
	fanout := max(8, 2*e.cfg.IndirectChecks)
	for _, m := range e.pickRandom(fanout, nil) {
		b := e.startPacket(wire.HeaderFlagPush)
		u := e.selfUpdate()
		b = u.AppendTo(b)
		e.emit(m.addr, e.piggyback(b, now, m.addr))
	}
}

// ---- time ----

// Tick runs everything due at now: probe deadlines, suspicion timeouts, dead
// re-probes, removals and the next protocol period.
func (e *Engine) Tick(now time.Time) {
	for len(e.timers) > 0 && !now.Before(e.timers[0].at) {
		t := e.timers.pop()
		switch t.kind {
		case timerProbe:
			e.probeTimeout(now, uint16(t.seq), t.gen)
		case timerSuspect:
			if t.m.gen == t.gen && t.m.status == StatusSuspect && !t.m.removed && e.suspicionDue(&t) && e.lastProbeOf(t.m) == nil && !e.deferLoneSuspicion(now, t.m) {
				// DEAD only if a last probe fails too (one a verdict
				// started may be under way already).
				e.confirmProbe(now, t.m, false)
			}
		case timerReprobe:
			if t.m.gen == t.gen && t.m.status == StatusDead && !t.m.removed {
				e.startProbe(now, t.m, 0, true)
				e.schedule(timer{at: now.Add(e.nextReprobe(t.m)), kind: timerReprobe, m: t.m, gen: t.m.gen})
			}
		case timerRemove:
			if t.m.gen == t.gen && !t.m.live() && !t.m.removed {
				e.removeMember(now, t.m, true)
				if e.live == 0 && !e.joinPending { // alone: look for the cluster again, once
					e.joinBackoff = 0
					e.sendJoins(now)
				}
			}
		case timerJoin:
			if t.seq == e.joinGen {
				e.joinPending = false
				// Ask again while alone, or while no seed has sent the
				// member list (it may have had no join answer left for this
				// period, in a join storm): a few times, with backoff.
				if e.live == 0 || !e.synced && e.joinBackoff < maxJoinBackoff/2 {
					e.sendJoins(now)
				}
			}
		}
	}
	e.expireSeen(now)
	e.expireRetained(now)
	e.tombs.expire(now)
	if !now.Before(e.nextTombRetry) {
		e.nextTombRetry = now.Add(max(TombstoneRetry, e.cfg.ProbeInterval))
		if a, ok := e.tombs.pickRetry(now, e.cfg.Rand); ok && !e.leaving {
			e.joinPing(now, a, nil, false) // a removed member's address
			e.stats.TombstoneRetries++
		}
	}
	e.gossipRound(now)
	e.pushPullTick(now)
	if !now.Before(e.nextProbeAt) {
		e.syncTokens = e.cfg.MaxSyncsPerPeriod
		e.pushTokens = e.pushesPerPeriod()
		if !e.leaving {
			if m := e.nextProbeTarget(); m != nil {
				e.startProbe(now, m, wire.PingFlagDigest, false)
			}
		}
		period := e.cfg.ProbeInterval * e.healthFactor()
		e.nextProbeAt = e.nextProbeAt.Add(period)
		if !e.nextProbeAt.After(now) { // we were not called for a while
			e.nextProbeAt = now.Add(period)
		}
	}
}

// ---- membership ----

// addMember adds a member; u, if not nil, is an update carrying its
// metadata at inc.
func (e *Engine) addMember(now time.Time, addr netip.AddrPort, st Status, inc uint32, source netip.AddrPort, u *wire.Message) *member {
	m := e.newMember()
	*m = member{addr: addr, status: st, inc: inc, changed: e.ns(now), lastHeard: never, nextNotice: never,
		orderIdx: int32(len(e.order))}
	if u != nil && u.HasMeta && u.Incarnation == inc {
		m.meta, m.metaFresh = newMetaData(u.Meta), true
	}
	m.source = e.sourceRef(m, source)
	e.order = append(e.order, m)
	e.members.insert(e.order, len(e.order)-1)
	if m.live() {
		e.live++
		e.insertProbe(m)
	}
	e.event(Event{Kind: EventStatus, Member: e.snapshot(m)})
	return m
}

// removeMember forgets m. Its tombstone keeps its address for retries
// (partition healing) if it was removed for being DEAD, not for leaving or
// at the application's request.
func (e *Engine) removeMember(now time.Time, m *member, retry bool) {
	e.tombs.add(m.addr, m.inc, now.Add(e.cfg.TombstoneTTL), e.cfg.MaxTombstones, retry && m.status == StatusDead)
	m.removed = true
	m.gen++
	e.endSuspicion(m)
	e.members.remove(e.order, int(m.orderIdx))
	lastIdx := len(e.order) - 1
	last := e.order[lastIdx]
	if last != m {
		e.members.moved(last.addr, lastIdx, int(m.orderIdx))
	}
	e.order[m.orderIdx] = last
	last.orderIdx = m.orderIdx
	e.order[lastIdx] = nil
	e.order = e.order[:lastIdx]
	e.members.shrink(e.order)
	if m.live() {
		e.live--
	}
	e.queue.removeSubject(m.addr)
	e.stats.RemovedMembers++
	e.event(Event{Kind: EventRemoved, Member: e.snapshot(m)})
}

// setState moves m to (st, inc), scheduling the timers of its new status.
func (e *Engine) setState(now time.Time, m *member, st Status, inc uint32, source netip.AddrPort) {
	prev, prevInc := m.status, m.inc
	m.inc, m.source = inc, e.sourceRef(m, source)
	if inc != prevInc {
		m.metaFresh = false // until an update at inc says what it is
	}
	if prev == st {
		if st == StatusSuspect && inc > prevInc {
			// A new suspicion (the old one was refuted): a full timeout again.
			m.gen++
			e.startSuspicion(now, m, source)
		}
		return
	}
	if prev == StatusSuspect {
		e.endSuspicion(m)
	}
	wasLive := m.live()
	m.status, m.changed = st, e.ns(now)
	m.gen++
	switch {
	case wasLive && !m.live():
		e.live--
	case !wasLive && m.live():
		e.live++
	}
	switch st {
	case StatusAlive:
		if !m.inProbeList {
			e.insertProbe(m)
		}
	case StatusSuspect:
		if !m.inProbeList { // back from DEAD at a higher incarnation: probe it, so it can refute
			e.insertProbe(m)
		}
		e.startSuspicion(now, m, source)
	case StatusDead:
		m.backoffExp = 0
		e.schedule(timer{at: now.Add(e.cfg.ProbeInterval), kind: timerReprobe, m: m, gen: m.gen})
		e.schedule(timer{at: now.Add(e.cfg.RemoveDeadAfter), kind: timerRemove, m: m, gen: m.gen})
	case StatusLeft:
		e.schedule(timer{at: now.Add(e.cfg.RemoveDeadAfter), kind: timerRemove, m: m, gen: m.gen})
	}
	e.event(Event{Kind: EventStatus, Member: e.snapshot(m), Previous: prev})
}

// nextReprobe doubles a dead member's re-probe interval, up to
// max(ProbeInterval, RemoveDeadAfter/8), and returns it.
func (e *Engine) nextReprobe(m *member) time.Duration {
	limit := max(e.cfg.ProbeInterval, e.cfg.RemoveDeadAfter/8)
	d := e.cfg.ProbeInterval << m.backoffExp
	if d < limit/2 && m.backoffExp < 62 {
		m.backoffExp++
		return 2 * d
	}
	return limit
}

// MaxIncarnationJump bounds how far above the incarnation known here a
// packet header or an update may put a member's (this node's included). A
// member raises its own by one per refutation, and a restarted one starts
// from the clock, so real jumps are small; a claim of more is a forgery or a
// corruption, and believing it could push the member's incarnation to the
// top of its 32 bits, where it could no longer refute.
const MaxIncarnationJump = 1 << 24

// incJump reports whether claimed is too far above known (0 means unknown:
// a member added by address only).
func incJump(known, claimed uint32) bool {
	return known != 0 && claimed > known && claimed-known > MaxIncarnationJump
}

func supersedes(inc uint32, st Status, curInc uint32, cur Status) bool {
	return inc > curInc || (inc == curInc && st > cur)
}

// heardFrom handles the sender's implicit claim, in every packet header, to
// be alive at its incarnation.
// It returns nil when the packet must be dropped: its sender was removed
// and speaks at its old incarnation (a replay, or a node cut off for long,
// which is told to refute), or the member table is full.
//
// self, if not nil, is the sender's own update in the packet, with its
// metadata.
func (e *Engine) heardFrom(now time.Time, addr netip.AddrPort, inc uint32, gossip bool, self *wire.Message) *member {
	m := e.find(addr)
	if m == nil {
		if !e.admit(now, addr, inc) {
			e.noticeStale(now, addr, inc)
			return nil
		}
		m = e.addMember(now, addr, StatusAlive, inc, addr, self)
		if gossip {
			e.queueUpdate(e.updateMsg(m))
		}
	} else if incJump(m.inc, inc) {
		e.stats.DroppedIncJump++
		return nil
	} else if inc > m.inc {
		// A member suspected or dead here that speaks at a higher
		// incarnation refutes: its refutation is news as refutationNews
		// says, as if it had come as an update.
		rounds, push := false, false
		if m.status != StatusAlive {
			rounds, push = e.refutationNews(m)
		}
		e.setState(now, m, StatusAlive, inc, addr)
		e.learnMeta(m, self)
		if gossip {
			e.queueUpdate(e.updateMsg(m))
		}
		if rounds {
			e.urgent(now)
		}
		if push {
			e.push(now, e.updateMsg(m), addr, netip.AddrPort{})
		}
	} else {
		e.learnMeta(m, self)
	}
	m.lastHeard = e.ns(now)
	return m
}

// refutationNews says how far the refutation of m's state here (m alive
// at a new incarnation, in an update or in a header of m's) is news:
// whether it starts gossip rounds, and whether it is pushed on however it
// came. (The suspect pushes every refutation of its own to PushFanout
// members; they push it on only as this says.) The refutation of a mere
// suspicion heard of does neither (loss makes many): it rides on probes,
// and on the suspect's own push. That of a death, of a
// suspicion another node's verdict backs (a death on its way), or of a
// confirmed one (every member holding it runs its last probe now), races
// the verdict: it is pushed, and starts rounds. That of a suspicion this
// node raised or confirmed itself (its own probe failed) starts rounds:
// others are confirming that suspicion and will soon run it out.
func (e *Engine) refutationNews(m *member) (rounds, push bool) {
	switch m.status {
	case StatusDead, StatusLeft:
		return true, true
	case StatusSuspect:
		if s := e.suspicions[m]; s != nil {
			if s.verdict || e.confirmed(s) {
				return true, true
			}
			return slices.Contains(s.accusers[:s.n], e.cfg.Self), false
		}
	}
	return false, false
}

// noticeStale tells addr, removed here at an incarnation not below inc, that
// it is dead here, at most once per period, so that it can refute.
func (e *Engine) noticeStale(now time.Time, addr netip.AddrPort, inc uint32) {
	if t := e.tombs.stale(now, addr, inc); t != nil && !now.Before(t.nextNotice) {
		t.nextNotice = now.Add(e.cfg.ProbeInterval)
		b := e.startPacket(0)
		u := wire.Message{Type: wire.TypeUpdate, Status: StatusDead, Incarnation: t.inc, Subject: addr, Source: e.cfg.Self}
		e.emit(addr, u.AppendTo(b))
	}
}

// applyUpdate applies one gossiped update. It reports whether the update was
// about this node and made it refute.
//
// An update pushed to this node (pushed) that is news here, a member newly
// dead or left or the refutation of that, is pushed on to a few members (not
// back to from).
func (e *Engine) applyUpdate(now time.Time, u *wire.Message, gossip, pushed bool, from netip.AddrPort) (refuted bool) {
	if u.Subject == e.cfg.Self {
		if e.leaving || u.Incarnation < e.inc || (u.Incarnation == e.inc && u.Status == StatusAlive) {
			return false
		}
		if incJump(e.inc, u.Incarnation) || u.Incarnation == math.MaxUint32 {
			e.stats.DroppedIncJump++ // never refute past the top: it would wrap to 0
			return false
		}
		e.inc = u.Incarnation + 1
		e.adjustHealth(1) // accused: perhaps this node is the slow one
		e.queueUpdate(e.selfUpdate())
		// The answer is pushed, whatever the accusation: it races the
		// accusers' checks and last probes, which may run everywhere at
		// once (see spreadConfirmed), and a member that reaches the accusers
		// by another way than they reach it (a link broken one way) has
		// no other way to stop them in time.
		e.push(now, e.selfUpdate(), netip.AddrPort{}, netip.AddrPort{})
		e.stats.Refutations++
		return true
	}
	m := e.find(u.Subject)
	if m == nil {
		// Rumours of the suspicion or death of a member we never knew
		// would only resurrect it here; ignore them.
		if u.Status == StatusAlive {
			if !e.admit(now, u.Subject, u.Incarnation) {
				// Others say it is alive, at an incarnation this node
				// buried: tell it, so that it refutes and is welcome
				// again. Otherwise two nodes that removed each other
				// during a long partition, and that nobody else tells
				// about the other's refutation, would never meet again.
				e.noticeStale(now, u.Subject, u.Incarnation)
				return false
			}
			m = e.addMember(now, u.Subject, StatusAlive, u.Incarnation, u.Subject, u)
			if gossip {
				e.queueUpdate(e.updateMsg(m))
			}
			e.urgent(now)
			if pushed { // a newcomer's arrival, flooding: pass it on once
				e.push(now, *u, from, u.Subject)
			}
		}
		return false
	}
	if !supersedes(u.Incarnation, u.Status, m.inc, m.status) {
		e.learnMeta(m, u)
		if u.Status == StatusSuspect && m.status == StatusSuspect && u.Incarnation == m.inc {
			e.confirmSuspicion(now, m, u.Source) // another accuser, perhaps
			if pushed {
				e.runCheck(now, m)
			}
		}
		return false
	}
	if incJump(m.inc, u.Incarnation) {
		e.stats.DroppedIncJump++
		return false
	}
	source := u.Source
	if u.Status == StatusAlive || !source.IsValid() {
		source = u.Subject
	}
	st := u.Status
	lastProbe := false
	if st == StatusDead && m.live() {
		// A rumour of death about a member live here starts a suspicion
		// here (or lets one run on): this node declares it DEAD only when
		// a probe of its own fails, so a stale verdict cannot kill a
		// healthy member everywhere at once (when a partition heals, the
		// side that was cut off gossips the death of every node of the
		// other side, at the incarnation those nodes still have). With
		// dynamic suspicion that last probe starts at once, and a member
		// alive after all refutes in its ack.
		st = StatusSuspect
		lastProbe = e.dynamicSuspicion()
		if m.status == StatusSuspect && u.Incarnation == m.inc {
			if !e.firstVerdict(now, m, source) {
				return false
			}
			if lastProbe {
				e.probeLast(now, m)
			}
			if pushed && m.status != StatusDead { // else declareDead pushed it
				e.push(now, *u, from, netip.AddrPort{})
			}
			return false
		}
	}
	wasAlive := m.status == StatusAlive
	refuteRounds, refutePush := e.refutationNews(m)
	e.setState(now, m, st, u.Incarnation, source)
	e.learnMeta(m, u)
	if gossip {
		e.queueUpdate(e.updateMsg(m))
	}
	if lastProbe {
		e.firstVerdict(now, m, source)
		e.probeLast(now, m)
	} else if pushed && u.Status == StatusSuspect {
		e.runCheck(now, m) // a check requested by the accuser
	}
	// Push on what came pushed and is news here: a death or leave (as it
	// came, though a death is only a suspicion here). However it came, such
	// news starts gossip rounds. A refutation starts rounds and is pushed
	// on as refutationNews says, however it came.
	if u.Status == StatusDead || u.Status == StatusLeft || u.Status == StatusAlive && !wasAlive {
		if u.Status != StatusAlive || refuteRounds {
			e.urgent(now)
		}
		if u.Status != StatusAlive && pushed || u.Status == StatusAlive && refutePush {
			e.push(now, *u, from, netip.AddrPort{})
		}
	}
	return false
}

// queueUpdate queues u for gossip, unless the engine is quiet.
func (e *Engine) queueUpdate(u wire.Message) {
	if !e.quiet {
		e.queue.addUpdate(u)
	}
}

// learnMeta takes the metadata in u, an update about m, if it is m's at its
// current incarnation and m's is not known yet; a change is an EventMeta.
func (e *Engine) learnMeta(m *member, u *wire.Message) {
	if u == nil || !u.HasMeta || u.Incarnation != m.inc || m.metaFresh {
		return
	}
	m.metaFresh = true
	if m.meta != nil && bytes.Equal(m.meta.b, u.Meta) {
		return
	}
	m.meta = newMetaData(u.Meta)
	e.event(Event{Kind: EventMeta, Member: e.snapshot(m)})
}

// updateMsg is the update this node gossips about m: its metadata rides
// along when this node knows it at m's incarnation.
func (e *Engine) updateMsg(m *member) wire.Message {
	u := wire.Message{Type: wire.TypeUpdate, Status: m.status, Incarnation: m.inc, Subject: m.addr, Source: m.sourceAddr()}
	if m.metaFresh {
		u.HasMeta, u.Meta = true, m.meta.bytes()
	}
	return u
}

func (e *Engine) selfUpdate() wire.Message {
	st := StatusAlive
	if e.leaving {
		st = StatusLeft
	}
	return wire.Message{Type: wire.TypeUpdate, Status: st, Incarnation: e.inc, Subject: e.cfg.Self, Source: e.cfg.Self,
		HasMeta: true, Meta: e.meta.bytes()}
}

// SetMeta changes this node's metadata (at most wire.MaxMetaBytes): it is
// gossiped at a new incarnation.
func (e *Engine) SetMeta(now time.Time, meta []byte) error {
	if len(meta) > wire.MaxMetaBytes {
		return fmt.Errorf("%w: %d > %d bytes", ErrMetaTooLarge, len(meta), wire.MaxMetaBytes)
	}
	if e.leaving {
		return ErrLeaving
	}
	if e.inc == math.MaxUint32 {
		return ErrIncarnationExhausted
	}
	e.meta = newMetaData(meta)
	e.inc++
	e.queueUpdate(e.selfUpdate())
	e.event(Event{Kind: EventMeta, Member: e.selfMember()})
	return nil
}

// ---- probing ----

// insertProbe puts a newcomer at a random place among the members not yet
// probed in this pass, so it is probed within this pass.
func (e *Engine) insertProbe(m *member) {
	m.inProbeList = true
	e.probeList = append(e.probeList, m)
	rest := len(e.probeList) - e.probeIdx
	j := e.probeIdx + e.cfg.Rand.IntN(rest)
	last := len(e.probeList) - 1
	e.probeList[j], e.probeList[last] = e.probeList[last], e.probeList[j]
}

// nextProbeTarget walks the shuffled list, reshuffling after each pass, so
// every live member is probed once per pass: at most 2n-1 periods apart.
func (e *Engine) nextProbeTarget() *member {
	for pass := 0; pass < 2; pass++ {
		for e.probeIdx < len(e.probeList) {
			m := e.probeList[e.probeIdx]
			e.probeIdx++
			if !m.removed && m.live() {
				return m
			}
		}
		e.reshuffle()
	}
	return nil
}

func (e *Engine) reshuffle() {
	for _, m := range e.probeList {
		m.inProbeList = false
	}
	clear(e.probeList)
	e.probeList = e.probeList[:0]
	for _, m := range e.order {
		if m.live() {
			m.inProbeList = true
			e.probeList = append(e.probeList, m)
		}
	}
	e.cfg.Rand.Shuffle(len(e.probeList), func(i, j int) {
		e.probeList[i], e.probeList[j] = e.probeList[j], e.probeList[i]
	})
	e.probeIdx = 0
}

// track gives p a sequence number and a serial and records it as in
// flight. Sequence numbers are 16 bits on the wire and wrap, so the next one
// skips those still in flight; MaxPendingProbes (at most MaxSeqsInFlight)
// bounds the relayed probes, and this node's own are one or two a member at
// most, so a free one is always near. The serial tells a probe's timers from
// those of an earlier probe that had the same sequence number.
func (e *Engine) track(p *probe) {
	for range 1 << 16 {
		e.seq++
		if _, busy := e.probes[uint32(e.seq)]; !busy {
			break
		}
	}
	e.serial++
	p.seq, p.serial = e.seq, e.serial
	e.probes[uint32(p.seq)] = p
}

// scheduleProbe sets p's next deadline.
func (e *Engine) scheduleProbe(at time.Time, p *probe) {
	e.schedule(timer{at: at, kind: timerProbe, seq: uint32(p.seq), gen: p.serial})
}

func (e *Engine) startProbe(now time.Time, m *member, flags uint8, reprobe bool) {
	e.startProbeGossip(now, m, flags, reprobe, true)
}

// startProbeGossip is startProbe, with gossip piggybacked or not.
func (e *Engine) startProbeGossip(now time.Time, m *member, flags uint8, reprobe, gossip bool) {
	p := e.newProbe()
	*p = probe{target: m, addr: m.addr, sentAt: now, reprobe: reprobe}
	e.track(p)
	target := m.addr
	if flags&wire.PingFlagJoin != 0 {
		target = netip.AddrPort{} // a seed's identity may differ from the address we were given
	}
	if !m.metaFresh {
		flags |= wire.PingFlagWantSelf
	}
	e.sendPing(now, m.addr, target, p.seq, flags, m, gossip)
	if reprobe {
		e.scheduleProbe(now.Add(e.ownProbeTimeout()), p)
	} else {
		e.scheduleProbe(now.Add(e.directPhase()), p)
	}
	e.stats.ProbesSent++
}

// directShare: a probe asks its relays once its direct ping has gone
// unanswered for 1/directShare of the probe timeout (or for the longest
// round trip the history knows, if that is longer).
const directShare = 8

// directPhase is how long a probe (not a re-probe of a dead member, nor a
// check or last probe, which ask their relays at once) waits for the ack to
// its ping before it asks relays as well: the longest round trip the
// history knows, but at least 1/directShare of the probe timeout (so that a
// hiccup of a few milliseconds does not send relays out), at most the
// timeout. The direct ping is not given up then: the probe ends a whole
// timeout after the relays were asked (when they have all nacked; two if
// they have not), and its ack counts until then, so it is still waited for
// longer than the timeout. An answer slower than usual costs 3 packets a
// relay; a crashed member is suspected most of a timeout sooner.
//
// A node whose local health is raised (it may be the slow one) does not
// hurry: it waits its whole stretched timeout first, as it did before
// relays were asked early, so that its probes last twice that.
//
// Only round trips answered before the relays were asked enter the
// history: after that, an ack may answer the probe's second ping, and
// such samples (the direct phase plus a round trip) would feed the
// direct phase back into itself. So, lest round trips that grow past the
// direct phase all at once (a new route, congestion) go unlearnt and
// every probe ask relays, each probe in a row whose ack came from the
// target only after the relays were asked doubles the direct phase, up
// to the timeout; the first ack in time resets it. Loss alone makes such
// a late ack now and then, rarely twice in a row.
func (e *Engine) directPhase() time.Duration {
	if e.health > 0 {
		return e.ownProbeTimeout()
	}
	est := e.rtt.estimate()
	t := max(est, e.rtt.floor) // e.rtt.timeout()
	return min(max(est, t/directShare)<<e.lateAcks, t)
}

// maxLateAcks bounds lateAcks: 2^3 = directShare, the direct phase is then
// the whole timeout.
const maxLateAcks = 3

// sendPing sends a ping to addr. If the target is suspected or dead here, its
// state goes first in the packet so that it can refute at once.
//
// Gossip rides along only when gossip is set and the target is not held
// DEAD: it is not set for pings to members that did not answer (a probe's
// second try, a ping on another's behalf, the last probe of a suspect), and
// a member held dead is most likely gone: every item sent to it would use
// up one of the item's few sends for nothing. With many dead members (a partition, a mass failure)
// re-probes alone would drain the queue and stall dissemination,
// refutations included. If the member is alive after all, the ping makes it
// refute, and it learns the news once it is back.
func (e *Engine) sendPing(now time.Time, addr, target netip.AddrPort, seq uint16, flags uint8, m *member, gossip bool) {
	b := e.startPacket(0)
	ping := wire.Message{Type: wire.TypePing, Seq: seq, Flags: flags, Target: target}
	b = ping.AppendTo(b)
	if flags&wire.PingFlagJoin != 0 { // introduce this node, metadata included
		u := e.selfUpdate()
		b = u.AppendTo(b)
	}
	if flags&wire.PingFlagDigest != 0 {
		if d := e.digest(now); d != nil {
			b = d.AppendTo(b)
		}
	}
	if m != nil && !m.removed && e.tellsState(m) {
		u := e.updateMsg(m)
		b = u.AppendTo(b)
		gossip = gossip && m.status != StatusDead
	}
	if gossip {
		b = e.piggyback(b, now, addr)
	}
	e.emit(addr, b)
}

func (e *Engine) probeTimeout(now time.Time, seq uint16, serial uint32) {
	p := e.probes[uint32(seq)]
	if p == nil || p.serial != serial {
		return // answered
	}
	m := p.target
	if p.relay {
		e.sendNack(p.requester, p.reqSeq)
	}
	if p.relay || p.reprobe || p.join || p.announce || m.removed || !m.live() {
		e.dropProbe(seq, p)
		return
	}
	if !p.indirect {
		e.probeIndirect(now, p, m)
		return
	}
	confirm, check, gen, want, got := p.confirm, p.check, p.gen, p.nacksWant, p.nacks
	e.dropProbe(seq, p)
	e.stats.ProbesFailed++
	// Local health: relays that did not even nack point at this node; with
	// none to ask, any failure does. Only this node's own round of probes
	// counts: last probes and checks are of members others already failed
	// to reach, many at once after a crash or a partition, and under loss
	// their missed nacks would raise the health of every node together.
	switch {
	case want > 0:
		e.stats.NacksMissed += uint64(want - got)
		if !confirm && !check {
			e.adjustHealth(int(want - got))
		}
	case !confirm && !check:
		e.adjustHealth(1)
	}
	switch {
	case m.status == StatusAlive:
		e.setState(now, m, StatusSuspect, m.inc, e.cfg.Self)
		e.queueUpdate(e.updateMsg(m))
		e.stats.SuspicionsRaised++
		e.requestChecks(m)
	case confirm && m.status == StatusSuspect && m.gen == gen:
		e.declareDead(now, m)
	case m.status == StatusSuspect && !confirm:
		e.accuse(now, m)
	}
}

func (e *Engine) declareDead(now time.Time, m *member) {
	e.setState(now, m, StatusDead, m.inc, e.cfg.Self)
	e.queueUpdate(e.updateMsg(m))
	e.push(now, e.updateMsg(m), netip.AddrPort{}, netip.AddrPort{})
	e.stats.DeadDeclared++
}

// confirmProbe probes a suspect whose suspicion ran out here one last time,
// directly and through others, before declaring it DEAD: its ping carries
// the suspicion, so a member that is alive after all (it was cut off, or
// every refutation was lost) refutes in its ack. The ping carries no other
// gossip: the member is most likely gone.
//
// It goes straight to the indirect phase: the member has already failed a
// probe, so the relays are asked at once, with the direct ping.
func (e *Engine) confirmProbe(now time.Time, m *member, onVerdict bool) {
	p := e.newProbe()
	*p = probe{target: m, addr: m.addr, sentAt: now, confirm: true, gen: m.gen}
	if !onVerdict {
		p.notBefore = now.Add(e.lastProbeTime())
		if s := e.suspicions[m]; s != nil {
			p.notBefore = e.suspicionEnd(s)
		}
	}
	e.track(p)
	e.stats.ProbesSent++
	e.probeIndirect(now, p, m)
}

// lastProbeTime is how long a last probe (confirmProbe) takes to fail.
func (e *Engine) lastProbeTime() time.Duration { return 2 * e.ownProbeTimeout() }

// probeIndirect starts the indirect phase of probe p of m: it asks k others
// to ping m (k = min(EmitLimit, IndirectChecks), twice that for a last
// probe, whose failure is final), and pings m once more itself (in a
// cluster of two there is nobody to ask, and one lost packet must not
// suspect). Any ack within two timeouts ends the probe; so do nacks from
// every relay (see handleNack).
func (e *Engine) probeIndirect(now time.Time, p *probe, m *member) {
	p.indirect = true
	p.indirectAt = now
	e.stats.IndirectProbes++
	k := min(e.emitLimit(), e.cfg.IndirectChecks)
	if p.confirm {
		k *= 2
	}
	for _, r := range e.pickRandom(k, m) {
		b := e.startPacket(0)
		req := wire.Message{Type: wire.TypePingReq, Seq: p.seq, Target: m.addr}
		b = req.AppendTo(b)
		e.emit(r.addr, e.piggyback(b, now, r.addr))
		if !e.cfg.NoNacks && p.nacksWant < maxNackRelays {
			p.relays[p.nacksWant] = r.addr
			p.nacksWant++
		}
	}
	e.sendPing(now, m.addr, m.addr, p.seq, 0, m, false)
	e.scheduleProbe(now.Add(2*e.ownProbeTimeout()), p)
}

// pickRandom returns up to k distinct random live members other than
// exclude, by rejection sampling over the member list.
func (e *Engine) pickRandom(k int, exclude *member) []*member {
	avail := e.live
	if exclude != nil && exclude.live() {
		avail--
	}
	k = min(k, avail)
	if k <= 0 {
		return nil
	}
	picked := e.picked[:0]
	defer func() { e.picked = picked[:0] }() // reused: callers use the result at once
	if k*2 >= avail {                        // small cluster: walk a shuffled copy
		for _, m := range e.order {
			if m.live() && m != exclude {
				picked = append(picked, m)
			}
		}
		e.cfg.Rand.Shuffle(len(picked), func(i, j int) { picked[i], picked[j] = picked[j], picked[i] })
		return picked[:k]
	}
	for tries := 0; len(picked) < k && tries < 8*k+16; tries++ {
		m := e.order[e.cfg.Rand.IntN(len(e.order))]
		if !m.live() || m == exclude || containsMember(picked, m) {
			continue
		}
		picked = append(picked, m)
	}
	return picked
}

// newProbe returns a zeroed probe, reused if one is free.
func (e *Engine) newProbe() *probe {
	if n := len(e.freeProbes); n > 0 {
		p := e.freeProbes[n-1]
		e.freeProbes[n-1] = nil
		e.freeProbes = e.freeProbes[:n-1]
		return p
	}
	return new(probe)
}

// dropProbe forgets the probe seq, p, and keeps p for reuse: probing a
// member every period then allocates nothing.
func (e *Engine) dropProbe(seq uint16, p *probe) {
	delete(e.probes, uint32(seq))
	if len(e.freeProbes) < maxFreeProbes {
		*p = probe{}
		e.freeProbes = append(e.freeProbes, p)
	}
}

// maxFreeProbes bounds the probes kept for reuse.
const maxFreeProbes = 64

func containsMember(ms []*member, m *member) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

// ---- receiving ----

// Receive handles one datagram that arrived from the network address from.
// Bad packets are dropped and counted; Receive never panics on any input.
func (e *Engine) Receive(now time.Time, from netip.AddrPort, data []byte) {
	e.stats.PacketsReceived++
	e.stats.BytesReceived += uint64(len(data))
	if err := e.pkt.Decode(data); err != nil {
		if errors.Is(err, wire.ErrVersion) {
			e.stats.DroppedVersion++
		} else {
			e.stats.DroppedMalformed++
		}
		return
	}
	h := &e.pkt.Header
	if h.Cluster != e.cfg.ClusterID {
		e.stats.DroppedWrongCluster++
		return
	}
	if h.Sender == e.cfg.Self {
		e.stats.DroppedFromSelf++
		return
	}
	e.stats.UnknownMessages += uint64(e.pkt.Skipped)
	reply := from
	if !reply.IsValid() {
		reply = h.Sender
	}
	gossip := h.Flags&wire.HeaderFlagSync == 0
	if !gossip {
		e.synced = true
	}
	pushed := h.Flags&wire.HeaderFlagPush != 0 // its first message is news pushed; the rest is gossip
	var self *wire.Message                     // the sender's own update, carrying its metadata
	for i := range e.pkt.Messages {
		if m := &e.pkt.Messages[i]; m.Type == wire.TypeUpdate && m.Subject == h.Sender && m.HasMeta && m.Incarnation == h.Incarnation {
			self = m
			break
		}
	}
	known := e.find(h.Sender) != nil
	sender := e.heardFrom(now, h.Sender, h.Incarnation, gossip, self)
	if sender != nil && !known && e.hasJoinPing() {
		// A newcomer: its arrival is flooded at once, as a death is, so
		// that every member knows it within a few hops (each forwards it
		// once, on first receipt) instead of within the periods gossip
		// takes; a join storm then converges in milliseconds.
		e.push(now, e.updateMsg(sender), h.Sender, netip.AddrPort{})
	}
	if sender == nil {
		// Dropped (counted by admit); only news about this node itself is
		// heeded, so that two sides that forgot each other can each refute
		// and meet again. At worst a replay makes this node refute.
		refuted := false
		for i := range e.pkt.Messages {
			if m := &e.pkt.Messages[i]; m.Type == wire.TypeUpdate && m.Subject == e.cfg.Self {
				refuted = e.applyUpdate(now, m, true, false, h.Sender) || refuted
			}
		}
		if refuted && e.live == 0 { // alone and now refuted: ask the seeds again at once
			e.joinBackoff = 0
			e.sendJoins(now)
		}
		return
	}

	// State first, so that answers carry what this packet taught us. A
	// sender held DEAD here (its header did not refute) has been out of
	// touch for a suspicion timeout at least: its news about others is as
	// stale as ours about it, and only its news about this node is heeded.
	// When it refutes, its packets are heard again in full.
	refuted := false
	stale := !sender.live()
	for i := range e.pkt.Messages {
		m := &e.pkt.Messages[i]
		switch m.Type {
		case wire.TypeUpdate:
			if stale && m.Subject != e.cfg.Self {
				continue
			}
			if e.applyUpdate(now, m, gossip, pushed && i == 0, h.Sender) {
				refuted = true
			}
		case wire.TypeBroadcast:
			e.receiveBroadcast(now, m, h.Sender, pushed && i == 0)
		}
	}
	if !gossip {
		e.greet(now)
	}
	answered := false
	for i := range e.pkt.Messages {
		m := &e.pkt.Messages[i]
		switch m.Type {
		case wire.TypePing:
			if m.Target.IsValid() && m.Target != e.cfg.Self {
				e.stats.DroppedMisdirected++
				continue
			}
			e.answerPing(now, reply, sender, m, len(data), refuted)
			answered = true
		case wire.TypeAck:
			e.handleAck(now, m.Seq, sender, from)
		case wire.TypeNack:
			e.handleNack(now, m.Seq, h.Sender)
		case wire.TypePingReq:
			e.relayPing(now, reply, m)
		}
	}
	if answered {
		return
	}
	// Tell the sender news about itself that no ack is carrying: our
	// refutation, or that we hold it suspected or dead.
	if refuted || e.tellsState(sender) && e.ns(now) >= sender.nextNotice {
		b := e.startPacket(0)
		var u wire.Message
		if refuted {
			u = e.selfUpdate()
		} else {
			u = e.updateMsg(sender)
			sender.nextNotice = e.ns(now) + int64(e.cfg.ProbeInterval)
		}
		b = u.AppendTo(b)
		e.emit(reply, e.piggyback(b, now, reply))
	}
}

// hasJoinPing reports whether the packet being received holds a join ping.
func (e *Engine) hasJoinPing() bool {
	for i := range e.pkt.Messages {
		if m := &e.pkt.Messages[i]; m.Type == wire.TypePing && m.Flags&wire.PingFlagJoin != 0 {
			return true
		}
	}
	return false
}

// maxUnverifiedAnswer bounds the bytes answered to a ping from a sender
// not yet verified, as a multiple of the ping's size: a forged source
// address must not turn this node into an amplifier.
const maxUnverifiedAnswer = 3

// answerPing acks a ping of reqLen bytes. To a sender that has not yet
// proved it receives at its address (verified), the answer is at most
// maxUnverifiedAnswer times the ping, and a join is answered with the member
// list only once it has acked a ping of this node's (sent at once). If the
// packet made this node refute (refuted), the ack carries the refutation.
func (e *Engine) answerPing(now time.Time, reply netip.AddrPort, sender *member, ping *wire.Message, reqLen int, refuted bool) {
	limit := e.cfg.MaxPacketBytes
	if !sender.verified {
		limit = min(limit, maxUnverifiedAnswer*reqLen)
	}
	b := e.startPacket(0)
	ack := wire.Message{Type: wire.TypeAck, Seq: ping.Seq}
	b = ack.AppendTo(b)
	if e.tellsState(sender) {
		u := e.updateMsg(sender)
		b = u.AppendTo(b)
	}
	if refuted || ping.Flags&wire.PingFlagWantSelf != 0 {
		// The refutation goes in the ack itself, not left to the gossip
		// queue: the refutation's push may have used up its sends to the
		// pinger, and the ack is what a relay brings back to an accuser.
		u := e.selfUpdate()
		b = u.AppendTo(b)
	}
	if ping.Flags&wire.PingFlagDigest != 0 {
		var d *wire.Message
		for i := range e.pkt.Messages {
			if m := &e.pkt.Messages[i]; m.Type == wire.TypeDigest {
				d = m
				break
			}
		}
		b = e.appendRepairs(b, now, d, sender.addr, (limit-len(b))/2)
	}
	e.emit(reply, e.piggybackUpTo(b, now, reply, limit))
	if ping.Flags&wire.PingFlagJoin == 0 {
		return
	}
	switch {
	case e.syncTokens == 0:
		e.stats.SyncsSkipped++
	case sender.verified:
		e.syncTokens--
		e.sendSync(reply)
	case !sender.syncOwed:
		e.syncTokens--
		sender.syncOwed = true
		e.stats.SyncsDeferred++
		e.startProbeGossip(now, sender, 0, !sender.live(), false) // small: it may be a forged address
	}
}

// verify records that m acked a ping sent to its address, and sends it the
// member list it asked for before.
func (e *Engine) verify(m *member) {
	if m.verified {
		return
	}
	m.verified = true
	if m.syncOwed {
		m.syncOwed = false
		e.sendSync(m.addr)
	}
}

// sendSync answers a join with what this node knows, in packets marked so
// that the joiner does not gossip it all back.
func (e *Engine) sendSync(to netip.AddrPort) {
	b := e.startPacket(wire.HeaderFlagSync)
	empty := len(b)
	self := e.selfUpdate()
	b = self.AppendTo(b)
	for i, m := range e.order {
		if i >= e.cfg.MaxSyncMembers {
			break
		}
		u := e.updateMsg(m)
		if len(b)+u.EncodedLen() > e.cfg.MaxPacketBytes {
			e.emit(to, b)
			b = e.startPacket(wire.HeaderFlagSync)
		}
		b = u.AppendTo(b)
	}
	if len(b) > empty {
		e.emit(to, b)
	}
}

// handleAck takes an ack from sender, which arrived from the network
// address from (invalid: sender's own address).
func (e *Engine) handleAck(now time.Time, seq uint16, sender *member, from netip.AddrPort) {
	p := e.probes[uint32(seq)]
	if p == nil {
		e.stats.UnexpectedAcks++
		return
	}
	if !from.IsValid() {
		from = sender.addr
	}
	if p.addr == from {
		e.verify(sender) // it saw our ping's seq: it receives at its address
	}
	if p.announce {
		return // every member that heard it answers; the header taught us who
	}
	done := *p // a copy: p goes back to the free list
	e.dropProbe(seq, p)
	if done.relay {
		b := e.startPacket(0)
		ack := wire.Message{Type: wire.TypeAck, Seq: done.reqSeq}
		b = ack.AppendTo(b)
		e.emit(done.requester, e.piggyback(b, now, done.requester))
		return
	}
	if !done.join && !done.reprobe && !done.confirm && !done.check { // this node's own round of probes
		was := e.health
		e.adjustHealth(-1) // as failures
		if was > 0 && e.health == 0 {
			e.recheckLoneSuspicions(now)
		}
		switch {
		case !done.indirect:
			e.lateAcks = 0
		case from == done.addr:
			e.lateAcks = min(e.lateAcks+1, maxLateAcks)
		}
	}
	if m := done.target; done.confirm && m != nil && !m.removed && m.status == StatusSuspect && m.gen == done.gen {
		// It answered without refuting (its refutation is on its way, or
		// was lost): give it another suspicion timeout.
		e.restartSuspicion(now, m)
	}
	if !done.indirect {
		rtt := now.Sub(done.sentAt)
		e.rtt.add(rtt)
		if done.target != nil && !done.target.removed {
			done.target.rttMicros = int32(min(rtt.Microseconds(), math.MaxInt32))
		}
	}
}

func (e *Engine) relayPing(now time.Time, requester netip.AddrPort, req *wire.Message) {
	if req.Target == e.cfg.Self {
		b := e.startPacket(0)
		ack := wire.Message{Type: wire.TypeAck, Seq: req.Seq}
		b = ack.AppendTo(b)
		e.emit(requester, e.piggyback(b, now, requester))
		return
	}
	if len(e.probes) >= e.cfg.MaxPendingProbes {
		e.stats.DroppedProbeLimit++
		return
	}
	if e.find(req.Target) == nil { // never ping an address that is not a member for whoever asks
		e.stats.DroppedRelayUnknown++
		return
	}
	p := e.newProbe()
	*p = probe{addr: req.Target, sentAt: now, relay: true, requester: requester, reqSeq: req.Seq}
	e.track(p)
	e.sendPing(now, req.Target, req.Target, p.seq, 0, e.find(req.Target), false) // it did not answer the requester
	e.scheduleProbe(now.Add(e.rtt.timeout()), p)
}

// ---- broadcasts ----

func (e *Engine) receiveBroadcast(now time.Time, m *wire.Message, from netip.AddrPort, pushed bool) {
	if m.Subject == e.cfg.Self {
		e.stats.BroadcastsOwnEchoed++
		return
	}
	key := bcastKey{origin: m.Subject, boot: m.Boot, index: m.Index}
	if _, dup := e.seen[key]; dup {
		e.stats.BroadcastsDuplicate++
		return
	}
	if e.floors.covers(originBoot{m.Subject, m.Boot}, m.Index) {
		e.stats.DroppedReplayedBcast++
		return
	}
	switch {
	case int64(m.AgeMillis) > e.cfg.BroadcastTTL.Milliseconds():
		e.stats.BroadcastsExpired++
		return
	case len(m.Payload) > e.cfg.MaxBroadcastBytes, len(e.seen) >= e.cfg.MaxSeenBroadcasts:
		e.stats.BroadcastsDropped++
		return
	}
	expires := now.Add(2 * e.cfg.BroadcastTTL)
	e.seen[key] = expires
	e.seenFIFO = append(e.seenFIFO, seenEntry{key: key, expires: expires})
	msg := *m
	msg.Payload = append([]byte(nil), m.Payload...)
	e.stats.BroadcastsDelivered++
	e.event(Event{Kind: EventBroadcast, Broadcast: Broadcast{
		Origin: m.Subject, Boot: m.Boot, Index: m.Index, Payload: msg.Payload,
	}})
	e.retain(now, msg, m.AgeMillis)
	e.urgent(now) // news: gossip rounds, however it came
	// Forwarded once, on first receipt, however it came while it is fresh:
	// most nodes first get a broadcast from a gossip round, not a push,
	// and a flood carried on only by pushed copies reaches a quarter of
	// the members it would.
	if pushed || int64(m.AgeMillis) < e.cfg.ProbeInterval.Milliseconds() {
		e.push(now, msg, from, m.Subject)
	}
	if e.queue.broadcasts < e.cfg.MaxQueuedBroadcasts {
		e.queue.addBroadcast(msg, now, from)
	} else {
		e.stats.BroadcastsDropped++
	}
}

// expireSeen forgets broadcasts older than twice their time to live. Entries
// expire in the order they were added.
func (e *Engine) expireSeen(now time.Time) {
	for e.seenHead < len(e.seenFIFO) && !now.Before(e.seenFIFO[e.seenHead].expires) {
		k := e.seenFIFO[e.seenHead].key
		e.floors.raise(originBoot{k.origin, k.boot}, k.index, e.cfg.MaxSeenBroadcasts)
		delete(e.seen, k)
		e.seenFIFO[e.seenHead] = seenEntry{}
		e.seenHead++
	}
	if e.seenHead > 1024 && e.seenHead*2 > len(e.seenFIFO) {
		n := copy(e.seenFIFO, e.seenFIFO[e.seenHead:])
		clear(e.seenFIFO[n:])
		e.seenFIFO = e.seenFIFO[:n]
		e.seenHead = 0
	}
}

// push sends msg at once, in a packet of its own marked HeaderFlagPush, to
// PushFanout random live members other than skip1 and skip2. The rest of
// the packet carries gossip as any other. Pushes are bounded per period
// (pushesPerPeriod): past the bound, news goes by gossip only, so that a
// storm of news (a thousand nodes joining at once) costs a few packets per
// period, each carrying many items, not a few per item.
func (e *Engine) push(now time.Time, msg wire.Message, skip1, skip2 netip.AddrPort) {
	if e.cfg.PushFanout < 0 || e.leaving {
		return
	}
	e.urgent(now)
	sent := e.fanOut(2, nil, skip1, skip2, func(to netip.AddrPort) []byte {
		b := e.startPacket(wire.HeaderFlagPush)
		b = msg.AppendTo(b)
		return e.piggyback(b, now, to)
	})
	e.stats.Pushes += uint64(sent)
}

// fanOut sends the packet build makes for each of up to PushFanout random
// live members other than exclude, skip1 and skip2 (extra more are drawn,
// for those skipped), within this period's push tokens (pushesPerPeriod).
// It reports how many it sent.
func (e *Engine) fanOut(extra int, exclude *member, skip1, skip2 netip.AddrPort, build func(to netip.AddrPort) []byte) int {
	if e.cfg.PushFanout < 0 || e.leaving {
		return 0
	}
	sent := 0
	for _, m := range e.pickRandom(e.cfg.PushFanout+extra, exclude) {
		if sent == e.cfg.PushFanout {
			break
		}
		if m.addr == skip1 || m.addr == skip2 {
			continue
		}
		if e.pushTokens <= 0 {
			e.stats.PushesSkipped++
			break
		}
		e.pushTokens--
		e.emit(m.addr, build(m.addr))
		sent++
	}
	return sent
}

// pushesPerPeriod is how many packets a node pushes per protocol period at
// most.
func (e *Engine) pushesPerPeriod() int { return 4 * e.cfg.PushFanout }

// ---- output ----

func (e *Engine) event(ev Event) {
	if e.quiet {
		return
	}
	ob := &e.out[e.cur]
	ob.events = append(ob.events, ev)
}

func (e *Engine) startPacket(flags uint8) []byte {
	ob := &e.out[e.cur]
	var b []byte
	if ob.used < len(ob.bufs) {
		b = ob.bufs[ob.used][:0]
	} else {
		b = make([]byte, 0, e.cfg.MaxPacketBytes)
		ob.bufs = append(ob.bufs, b)
	}
	ob.used++
	e.hdr.Incarnation = e.inc
	e.hdr.Flags = flags
	return wire.AppendHeader(b, e.hdr)
}

func (e *Engine) piggyback(b []byte, now time.Time, to netip.AddrPort) []byte {
	return e.piggybackUpTo(b, now, to, e.cfg.MaxPacketBytes)
}

// piggybackUpTo fills b with gossip up to limit bytes in all.
func (e *Engine) piggybackUpTo(b []byte, now time.Time, to netip.AddrPort, limit int) []byte {
	if len(b) >= limit {
		return b
	}
	b, expired := e.queue.fill(b, limit-len(b), now, e.emitLimit(), e.cfg.BroadcastTTL, to)
	e.stats.BroadcastsExpired += uint64(expired)
	return b
}

func (e *Engine) emit(to netip.AddrPort, b []byte) {
	ob := &e.out[e.cur]
	ob.packets = append(ob.packets, Packet{To: to, Data: b})
	e.stats.PacketsSent++
	e.stats.BytesSent += uint64(len(b))
}
