// Package flood is the protocol behind Cluster.Publish: fast, cluster-wide
// dissemination of messages too large for a packet, as a pure state machine.
//
// A Machine owns no goroutine, socket, clock or global random source. Its
// inputs are the time (Tick), packets from other nodes (Receive), the live
// members (SetMembers) and the local node's messages (Publish); its outputs,
// taken with Outbox, are packets to send, messages to deliver to the
// application, and ids to remember on disk. NextDeadline says when Tick must
// next be called. The driver in package smudge carries the packets over
// streams; the tests run hundreds of Machines on a virtual clock.
//
// # The protocol
//
// Burst: the origin sends the message (a Push with Forward set) to Fanout
// random live members at once; every node forwards it the same way once, on
// first receipt, to Fanout random live members other than the sender and
// the origin. About e^-Fanout of the nodes (0.7% with 5) are missed by the
// burst even without loss.
//
// Repair: a node that holds unexpired messages periodically sends a Digest,
// the ids of its most recent unexpired messages, to one random live member.
// The receiver asks for the ids it lacks (Want, answered with Pushes) and
// pushes the messages it holds that the digest lacks. The first repair round
// comes RepairInterval after the node learned a message, and the next
// FastRepairRounds too; then the interval doubles up to MaxRepairInterval.
// An idle node (nothing unexpired) sends nothing.
//
// When the driver reports a failed send (Failed), a burst push goes to
// another member instead and a digest to another member at once.
//
// Deduplication and expiry: a message is identified by its ID, chosen at
// random by its origin. It carries its age (each node adds the time it held
// it) and its time to live, so no clocks need agree. A node delivers a
// message at most once, and only if it was published after the node
// started: a node that starts (or restarts) late never runs an old message.
// Ids are remembered until Grace after their expiry and a message older than
// its TTL is refused, so a message can never come back once forgotten; the
// driver also stores the ids on disk (Outbox's records) and hands them back
// after a restart (Config.Remembered).
//
// An ID table full of unexpired ids (Config.MaxIDs) refuses new messages
// rather than risk delivering one twice.
package flood

import (
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/netip"
	"time"
)

// ID identifies a message: 16 random bytes chosen by its origin.
type ID [16]byte

// String is the ID in hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Message is one published message.
type Message struct {
	ID     ID
	Origin netip.AddrPort
	// Age is how old the message is: at the sender when it sends it, at
	// the receiver when it arrives (the receiver adds the time the transfer
	// took before Receive).
	Age time.Duration
	// TTL is the message's time to live: past it the message is neither
	// delivered nor forwarded.
	TTL     time.Duration
	Payload []byte
}

// Kind says what a Packet carries.
type Kind uint8

// Packet kinds.
const (
	// KindPush carries a message. With Forward set (the burst), the
	// receiver forwards it once, on first receipt.
	KindPush Kind = 1
	// KindDigest carries the ids of the sender's recent unexpired messages.
	KindDigest Kind = 2
	// KindWant carries ids the sender lacks and asks to be pushed.
	KindWant Kind = 3
)

// Packet is one unit sent to one node.
type Packet struct {
	Kind    Kind
	Forward bool    // KindPush: forward on first receipt (burst)
	Msg     Message // KindPush
	IDs     []ID    // KindDigest, KindWant
}

// Send is a packet to send.
type Send struct {
	To     netip.AddrPort
	Packet Packet
}

// Record is an id to remember across restarts: until Expires+Grace it
// must not be delivered again.
type Record struct {
	ID      ID
	Expires time.Time
}

// Defaults of the Config fields left zero.
const (
	DefaultFanout             = 5
	DefaultRepairInterval     = 125 * time.Millisecond
	DefaultMaxRepairInterval  = 30 * time.Second
	DefaultGrace              = time.Minute
	DefaultMaxTTL             = 24 * time.Hour
	DefaultMaxIDs             = 1 << 16
	DefaultMaxStoredBytes     = 64 << 20
	DefaultMaxDigestIDs       = 1024
	DefaultMaxPushesPerDigest = 16
)

// FastRepairRounds is how many repair rounds follow a new message at
// RepairInterval before the interval starts doubling.
const FastRepairRounds = 8

// MaxIDsPerPacket bounds the ids of a Digest or Want, whatever the
// configuration, so that decoding is bounded.
const MaxIDsPerPacket = 4096

// Config configures a Machine.
type Config struct {
	// Self is this node's address; messages it publishes carry it.
	Self netip.AddrPort
	// Fanout is the size of the burst's gossip group: how many members
	// the origin, then every node on first receipt, sends a message to.
	Fanout int
	// RepairInterval is the time from learning a message to the first
	// repair round; the interval then doubles, up to MaxRepairInterval.
	RepairInterval    time.Duration
	MaxRepairInterval time.Duration
	// Grace is how long an id is remembered after its message expired:
	// more than the transfer time a message's age does not count.
	Grace time.Duration
	// MaxTTL is the longest TTL accepted.
	MaxTTL time.Duration
	// MaxIDs bounds the ids remembered (unexpired, and expired within
	// Grace); new messages past it are refused (Stats.Refused).
	MaxIDs int
	// MaxStoredBytes bounds the payload bytes held for repair; past it
	// the oldest payloads are dropped (their ids are kept).
	MaxStoredBytes int
	// MaxDigestIDs bounds the ids of a digest (the most recent first).
	MaxDigestIDs int
	// MaxPushesPerDigest bounds the messages pushed in answer to one
	// Digest or Want.
	MaxPushesPerDigest int
	// Start is when this node started: messages published before it are
	// remembered and passed on, never delivered.
	Start time.Time
	// Remembered are ids stored by an earlier run, never delivered again.
	Remembered []Record
	// Rand is the random source (members are chosen with it); required.
	Rand *rand.Rand
}

func (c *Config) withDefaults() {
	set := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	set(&c.Fanout, DefaultFanout)
	set(&c.MaxIDs, DefaultMaxIDs)
	set(&c.MaxStoredBytes, DefaultMaxStoredBytes)
	set(&c.MaxDigestIDs, DefaultMaxDigestIDs)
	set(&c.MaxPushesPerDigest, DefaultMaxPushesPerDigest)
	c.MaxDigestIDs = min(c.MaxDigestIDs, MaxIDsPerPacket)
	setD(&c.RepairInterval, DefaultRepairInterval)
	setD(&c.MaxRepairInterval, DefaultMaxRepairInterval)
	setD(&c.Grace, DefaultGrace)
	setD(&c.MaxTTL, DefaultMaxTTL)
	c.MaxRepairInterval = max(c.MaxRepairInterval, c.RepairInterval)
}

// Errors of Publish.
var (
	ErrDuplicate = errors.New("flood: a message with this id exists")
	ErrFull      = errors.New("flood: too many messages remembered (MaxIDs)")
	ErrTTL       = errors.New("flood: TTL must be positive and at most MaxTTL")
	ErrNoRand    = errors.New("flood: Config.Rand is required")
)

// Stats counts a Machine's work.
type Stats struct {
	Published  uint64 // messages published here
	Received   uint64 // messages received for the first time
	Delivered  uint64 // messages handed to the application
	Duplicates uint64 // pushes of a message already known
	Stale      uint64 // first received here, but published before this node started: not delivered
	Expired    uint64 // pushes of a message older than its TTL: dropped
	Invalid    uint64 // pushes with a bad TTL or age, or from this node's own address
	Refused    uint64 // new messages refused because MaxIDs ids are remembered

	BurstSends    uint64 // pushes sent by the burst (origin and forwards)
	DigestsSent   uint64
	WantsSent     uint64
	RepairPushes  uint64 // pushes sent in answer to a Digest or Want
	DigestsHeard  uint64
	WantsHeard    uint64
	SendsFailed   uint64 // sends reported by Failed
	PayloadsEvict uint64 // payloads dropped for MaxStoredBytes (the ids are kept)
	Forgotten     uint64 // ids forgotten after expiry and Grace
}

type entry struct {
	id      ID
	origin  netip.AddrPort
	recvAt  time.Time
	age     time.Duration // at recvAt
	ttl     time.Duration
	expires time.Time // recvAt + ttl - age
	forget  time.Time // expires + Grace
	payload []byte    // nil once expired, evicted, or for ids from disk
	held    bool      // payload is held (and counted in stored)
	seq     uint64

	burstTo  []netip.AddrPort // where this node's burst went (and who sent it)
	replaced int              // burst targets replaced after failures
}

// Machine is the protocol state of one node. Not safe for concurrent use.
type Machine struct {
	cfg     Config
	rng     *rand.Rand
	members []netip.AddrPort
	scratch []netip.AddrPort

	entries map[ID]*entry
	recent  []*entry // in arrival order; forgotten entries are removed by scans
	seq     uint64
	stored  int
	next    time.Time // next expiry or forget time to act on; zero: none

	repairAt      time.Time // zero: idle
	repairStep    int
	digestRetries int // digests resent this round after failures

	out      []Send
	delivery []Message
	records  []Record
	stats    Stats
}

// New returns a Machine.
func New(cfg Config) (*Machine, error) {
	if cfg.Rand == nil {
		return nil, ErrNoRand
	}
	cfg.withDefaults()
	m := &Machine{cfg: cfg, rng: cfg.Rand, entries: make(map[ID]*entry)}
	for _, r := range cfg.Remembered {
		if _, ok := m.entries[r.ID]; ok || len(m.entries) >= cfg.MaxIDs {
			continue
		}
		e := &entry{id: r.ID, expires: r.Expires, forget: r.Expires.Add(cfg.Grace), recvAt: cfg.Start}
		m.add(e)
	}
	m.cfg.Remembered = nil
	return m, nil
}

// SetMembers sets the live members to send to (this node is ignored).
func (m *Machine) SetMembers(members []netip.AddrPort) {
	m.members = m.members[:0]
	for _, a := range members {
		if a != m.cfg.Self {
			m.members = append(m.members, a)
		}
	}
}

// Publish starts disseminating payload (kept, not copied) under id.
func (m *Machine) Publish(now time.Time, id ID, payload []byte, ttl time.Duration) error {
	if ttl <= 0 || ttl > m.cfg.MaxTTL {
		return ErrTTL
	}
	if _, ok := m.entries[id]; ok {
		return ErrDuplicate
	}
	if len(m.entries) >= m.cfg.MaxIDs {
		m.scan(now)
		if len(m.entries) >= m.cfg.MaxIDs {
			return ErrFull
		}
	}
	e := &entry{id: id, origin: m.cfg.Self, recvAt: now, ttl: ttl, expires: now.Add(ttl), forget: now.Add(ttl + m.cfg.Grace)}
	m.add(e)
	m.hold(e, payload)
	m.records = append(m.records, Record{ID: id, Expires: e.expires})
	m.stats.Published++
	m.burst(now, e, netip.AddrPort{})
	m.learned(now)
	return nil
}

// Receive handles a packet from another node.
func (m *Machine) Receive(now time.Time, from netip.AddrPort, p Packet) {
	switch p.Kind {
	case KindPush:
		m.receivePush(now, from, p)
	case KindDigest:
		m.stats.DigestsHeard++
		m.receiveDigest(now, from, p.IDs)
	case KindWant:
		m.stats.WantsHeard++
		m.receiveWant(now, from, p.IDs)
	}
}

func (m *Machine) receivePush(now time.Time, from netip.AddrPort, p Packet) {
	msg := p.Msg
	if _, ok := m.entries[msg.ID]; ok {
		m.stats.Duplicates++
		return
	}
	switch {
	case msg.TTL <= 0 || msg.TTL > m.cfg.MaxTTL || msg.Age < 0 || msg.Origin == m.cfg.Self || !msg.Origin.IsValid():
		m.stats.Invalid++
		return
	case msg.Age >= msg.TTL:
		m.stats.Expired++ // it only gets older: no need to remember it
		return
	}
	if len(m.entries) >= m.cfg.MaxIDs {
		m.scan(now)
		if len(m.entries) >= m.cfg.MaxIDs {
			m.stats.Refused++
			return
		}
	}
	expires := now.Add(msg.TTL - msg.Age)
	e := &entry{id: msg.ID, origin: msg.Origin, recvAt: now, age: msg.Age, ttl: msg.TTL, expires: expires, forget: expires.Add(m.cfg.Grace)}
	m.add(e)
	m.hold(e, msg.Payload)
	m.records = append(m.records, Record{ID: e.id, Expires: e.expires})
	m.stats.Received++
	if published := now.Add(-msg.Age); published.Before(m.cfg.Start) {
		m.stats.Stale++
	} else {
		m.stats.Delivered++
		m.delivery = append(m.delivery, Message{ID: e.id, Origin: e.origin, Age: msg.Age, TTL: msg.TTL, Payload: msg.Payload})
	}
	if p.Forward {
		m.burst(now, e, from)
	}
	m.learned(now)
}

// receiveDigest asks for what the sender has and this node lacks, and
// pushes what this node holds and the sender lacks.
func (m *Machine) receiveDigest(now time.Time, from netip.AddrPort, ids []ID) {
	if len(ids) > MaxIDsPerPacket {
		ids = ids[:MaxIDsPerPacket]
	}
	theirs := make(map[ID]struct{}, len(ids))
	var want []ID
	for _, id := range ids {
		theirs[id] = struct{}{}
		if _, ok := m.entries[id]; !ok && len(want) < m.cfg.MaxDigestIDs {
			want = append(want, id)
		}
	}
	if len(want) > 0 {
		m.out = append(m.out, Send{To: from, Packet: Packet{Kind: KindWant, IDs: want}})
		m.stats.WantsSent++
	}
	pushed, looked := 0, 0
	for i := len(m.recent) - 1; i >= 0 && pushed < m.cfg.MaxPushesPerDigest && looked < m.cfg.MaxDigestIDs; i-- {
		e := m.recent[i]
		if !now.Before(e.expires) {
			continue
		}
		looked++
		if _, ok := theirs[e.id]; ok || !e.held || e.origin == from {
			continue
		}
		m.push(now, from, e)
		pushed++
	}
}

// receiveWant pushes the wanted messages this node holds.
func (m *Machine) receiveWant(now time.Time, from netip.AddrPort, ids []ID) {
	pushed := 0
	for _, id := range ids {
		if pushed >= m.cfg.MaxPushesPerDigest {
			return
		}
		if e, ok := m.entries[id]; ok && e.held && now.Before(e.expires) {
			m.push(now, from, e)
			pushed++
		}
	}
}

// push sends e to one node, as repair (not forwarded by the receiver).
func (m *Machine) push(now time.Time, to netip.AddrPort, e *entry) {
	m.out = append(m.out, Send{To: to, Packet: Packet{Kind: KindPush, Msg: m.message(now, e)}})
	m.stats.RepairPushes++
}

func (m *Machine) message(now time.Time, e *entry) Message {
	return Message{ID: e.id, Origin: e.origin, Age: e.age + now.Sub(e.recvAt), TTL: e.ttl, Payload: e.payload}
}

// burst sends e with Forward set to Fanout random members other than
// except, the origin and this node.
func (m *Machine) burst(now time.Time, e *entry, except netip.AddrPort) {
	msg := m.message(now, e)
	for _, to := range m.choose(m.cfg.Fanout, except, e.origin) {
		m.out = append(m.out, Send{To: to, Packet: Packet{Kind: KindPush, Forward: true, Msg: msg}})
		e.burstTo = append(e.burstTo, to)
		m.stats.BurstSends++
	}
	if except.IsValid() {
		e.burstTo = append(e.burstTo, except) // not a replacement target either
	}
}

// choose returns up to k distinct random members other than a and b. The
// result is valid until the next call.
func (m *Machine) choose(k int, a, b netip.AddrPort) []netip.AddrPort {
	m.scratch = m.scratch[:0]
	n := len(m.members)
	if n == 0 || k <= 0 {
		return nil
	}
	if n <= 4*k+2 {
		m.scratch = append(m.scratch, m.members...)
		out := m.scratch[:0]
		for i := 0; i < len(m.scratch); i++ {
			j := i + m.rng.IntN(len(m.scratch)-i)
			m.scratch[i], m.scratch[j] = m.scratch[j], m.scratch[i]
			if c := m.scratch[i]; c != a && c != b {
				out = append(out, c)
				if len(out) == k {
					break
				}
			}
		}
		return out
	}
	// Many members: draw at random, skipping repeats and exclusions.
	for tries := 0; len(m.scratch) < k && tries < 8*k; tries++ {
		c := m.members[m.rng.IntN(n)]
		if c == a || c == b || contains(m.scratch, c) {
			continue
		}
		m.scratch = append(m.scratch, c)
	}
	return m.scratch
}

func contains(s []netip.AddrPort, a netip.AddrPort) bool {
	for _, x := range s {
		if x == a {
			return true
		}
	}
	return false
}

// learned (re)starts the repair rounds after a new message.
func (m *Machine) learned(now time.Time) {
	m.repairStep = 0
	at := now.Add(m.cfg.RepairInterval)
	if m.repairAt.IsZero() || at.Before(m.repairAt) {
		m.repairAt = at
	}
}

// add inserts e in the tables.
func (m *Machine) add(e *entry) {
	m.seq++
	e.seq = m.seq
	m.entries[e.id] = e
	m.recent = append(m.recent, e)
	at := e.expires
	if !e.held {
		at = e.forget
	}
	if m.next.IsZero() || at.Before(m.next) {
		m.next = at
	}
}

// hold keeps e's payload for repair, dropping the oldest payloads to stay
// within MaxStoredBytes.
func (m *Machine) hold(e *entry, payload []byte) {
	if len(payload) > m.cfg.MaxStoredBytes {
		m.stats.PayloadsEvict++
		return
	}
	for i := 0; m.stored+len(payload) > m.cfg.MaxStoredBytes && i < len(m.recent); i++ {
		if old := m.recent[i]; old.held {
			m.drop(old)
			m.stats.PayloadsEvict++
		}
	}
	e.payload, e.held = payload, true
	m.stored += len(payload)
	if m.next.IsZero() || e.expires.Before(m.next) {
		m.next = e.expires
	}
}

func (m *Machine) drop(e *entry) {
	if e.held {
		m.stored -= len(e.payload)
		e.payload, e.held, e.burstTo = nil, false, nil
	}
}

// scan drops the payloads of expired messages and forgets ids past Grace.
func (m *Machine) scan(now time.Time) {
	m.next = time.Time{}
	kept := m.recent[:0]
	for _, e := range m.recent {
		if !now.Before(e.forget) {
			delete(m.entries, e.id)
			m.drop(e)
			m.stats.Forgotten++
			continue
		}
		if e.held && !now.Before(e.expires) {
			m.drop(e)
		}
		kept = append(kept, e)
		at := e.forget
		if e.held {
			at = e.expires
		}
		if m.next.IsZero() || at.Before(m.next) {
			m.next = at
		}
	}
	clear(m.recent[len(kept):])
	m.recent = kept
}

// Tick does what is due at now: expiry, and a repair round.
func (m *Machine) Tick(now time.Time) {
	if !m.next.IsZero() && !now.Before(m.next) {
		m.scan(now)
	}
	if m.repairAt.IsZero() || now.Before(m.repairAt) {
		return
	}
	ids := m.digest(now)
	if len(ids) == 0 {
		m.repairAt = time.Time{} // idle until a new message
		return
	}
	if to := m.choose(1, netip.AddrPort{}, netip.AddrPort{}); len(to) == 1 {
		m.out = append(m.out, Send{To: to[0], Packet: Packet{Kind: KindDigest, IDs: ids}})
		m.stats.DigestsSent++
	}
	m.repairStep++
	m.digestRetries = 0
	d := m.cfg.MaxRepairInterval
	if back := m.repairStep - FastRepairRounds; back <= 0 {
		d = m.cfg.RepairInterval
	} else if back < 30 {
		d = min(m.cfg.RepairInterval<<back, m.cfg.MaxRepairInterval)
	}
	m.repairAt = now.Add(d)
}

// Failed tells the machine that a send it asked for did not go through
// (the stream could not be opened, or was not accepted). A burst push is
// sent to another member instead, so that the burst keeps its fanout; a
// digest goes to another member at once (twice at most per round).
// Silent losses need no call: repair covers them.
func (m *Machine) Failed(now time.Time, s Send) {
	switch s.Packet.Kind {
	case KindPush:
		m.stats.SendsFailed++
		e, ok := m.entries[s.Packet.Msg.ID]
		if !s.Packet.Forward || !ok || !e.held || !now.Before(e.expires) || e.replaced >= m.cfg.Fanout {
			return
		}
		e.replaced++
		for _, to := range m.chooseExcept(e.burstTo, e.origin) {
			e.burstTo = append(e.burstTo, to)
			m.out = append(m.out, Send{To: to, Packet: Packet{Kind: KindPush, Forward: true, Msg: m.message(now, e)}})
			m.stats.BurstSends++
		}
	case KindDigest:
		m.stats.SendsFailed++
		if m.digestRetries >= 2 {
			return
		}
		m.digestRetries++
		if to := m.chooseExcept([]netip.AddrPort{s.To}, netip.AddrPort{}); len(to) == 1 {
			m.out = append(m.out, Send{To: to[0], Packet: s.Packet})
			m.stats.DigestsSent++
		}
	default:
		m.stats.SendsFailed++
	}
}

// chooseExcept returns one random member that is not in except nor b, if
// there is one.
func (m *Machine) chooseExcept(except []netip.AddrPort, b netip.AddrPort) []netip.AddrPort {
	n := len(m.members)
	for tries := 0; tries < 16 && n > 0; tries++ {
		c := m.members[m.rng.IntN(n)]
		if c != b && !contains(except, c) {
			m.scratch = append(m.scratch[:0], c)
			return m.scratch
		}
	}
	// Few members: look at them all.
	for _, c := range m.members {
		if c != b && !contains(except, c) {
			m.scratch = append(m.scratch[:0], c)
			return m.scratch
		}
	}
	return nil
}

// digest lists the unexpired ids known here, the most recent first.
func (m *Machine) digest(now time.Time) []ID {
	var ids []ID
	for i := len(m.recent) - 1; i >= 0 && len(ids) < m.cfg.MaxDigestIDs; i-- {
		if e := m.recent[i]; now.Before(e.expires) {
			ids = append(ids, e.id)
		}
	}
	return ids
}

// NextDeadline is when Tick must next be called; zero if nothing is due.
func (m *Machine) NextDeadline() time.Time {
	d := m.next
	if !m.repairAt.IsZero() && (d.IsZero() || m.repairAt.Before(d)) {
		d = m.repairAt
	}
	return d
}

// Outbox returns, and clears, what happened since the last call: packets
// to send, messages to deliver, and ids to store (before delivering: a
// node that crashes right after must not deliver again). The slices belong
// to the caller.
func (m *Machine) Outbox() (sends []Send, deliveries []Message, records []Record) {
	sends, deliveries, records = m.out, m.delivery, m.records
	m.out, m.delivery, m.records = nil, nil, nil
	return sends, deliveries, records
}

// Known reports whether id is remembered.
func (m *Machine) Known(id ID) bool { _, ok := m.entries[id]; return ok }

// Len is the number of ids remembered.
func (m *Machine) Len() int { return len(m.entries) }

// StoredBytes is the payload bytes held for repair.
func (m *Machine) StoredBytes() int { return m.stored }

// Stats returns the counters.
func (m *Machine) Stats() Stats { return m.stats }
