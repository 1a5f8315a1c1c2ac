package smudge

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-c7906467/smudge/internal/flood"
)

// ErrPublishFull is returned by Publish when Limits.MaxPublications ids
// of unexpired publications are remembered: a new one is refused rather
// than risk that one is delivered twice. Try again later, or lower
// PublishTTL.
var ErrPublishFull = errors.New("smudge: too many unexpired publications remembered (Limits.MaxPublications)")

// publishGrace is how long a publication's id is remembered after it
// expired (see internal/flood).
const publishGrace = flood.DefaultGrace

// Publish driver constants.
const (
	publishWorkers    = 8    // outbound streams at once
	publishQueue      = 1024 // sends waiting for a worker
	publishInputQueue = 256  // inbound packets waiting for the driver
	maxRepairInterval = 30 * time.Second
	maxPublishTTL     = flood.DefaultMaxTTL
)

// PublicationID identifies a publication: 16 random bytes.
type PublicationID [16]byte

// String is the id in hex.
func (id PublicationID) String() string { return hex.EncodeToString(id[:]) }

// Publication is a message published by another member with Publish.
type Publication struct {
	id     PublicationID
	origin *Node
	age    time.Duration
	bytes  []byte
}

// ID identifies the publication, the same on every member.
func (p *Publication) ID() PublicationID { return p.id }

// Origin is the member that published it.
func (p *Publication) Origin() *Node { return p.origin }

// Age is how old the publication was when it arrived here (the time it
// spent on the way, as the members that passed it on measured it).
func (p *Publication) Age() time.Duration { return p.age }

// Bytes returns the payload; it is shared by every PublishListener: do not
// modify it.
func (p *Publication) Bytes() []byte { return p.bytes }

// PublishListener receives the publications of other members, each once.
// Like every listener it runs in its own goroutine, in order.
type PublishListener interface {
	OnPublish(publication *Publication)
}

type pubSub struct {
	l PublishListener
	q *listenerQueue
}

// AddPublishListener registers l. Publications that arrive before any
// PublishListener is registered are not kept for it.
func (c *Cluster) AddPublishListener(l PublishListener) {
	s := &c.streams
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pubLs = append(s.pubLs[:len(s.pubLs):len(s.pubLs)], &pubSub{l: l, q: newListenerQueue(c.cfg.Limits.ListenerBacklog)})
}

// PublishStats counts Publish's work (see internal/flood for the protocol).
type PublishStats struct {
	Published    uint64 // publications started here
	Received     uint64 // publications received for the first time
	Delivered    uint64 // handed to the PublishListeners
	Duplicates   uint64 // publications received again (the burst and repair overlap by design)
	Stale        uint64 // received for the first time but published before this node started: never delivered
	Expired      uint64 // received older than their TTL: dropped
	Invalid      uint64 // bad TTL or age, or claiming to come from this node
	Refused      uint64 // new publications refused: Limits.MaxPublications ids remembered
	BurstSends   uint64 // burst pushes sent (here, and forwarded)
	DigestsSent  uint64 // repair digests sent
	WantsSent    uint64 // repair requests for missing publications
	RepairPushes uint64 // publications sent in answer to digests and requests
	DigestsHeard uint64 // repair digests received
	WantsHeard   uint64 // requests for publications received
	SendsFailed  uint64 // sends that failed (each is retried elsewhere or left to repair)
	Evicted      uint64 // payloads dropped for Limits.MaxStoredPublicationBytes (the ids are kept)
	Forgotten    uint64 // ids forgotten after expiry

	QueueDrops    uint64 // sends dropped: the outbound queue or byte budget was full
	InputDrops    uint64 // inbound packets refused: the input queue or Limits.MaxPendingMessageBytes was full
	Malformed     uint64 // inbound packets that did not decode
	PersistErrors uint64 // failed writes to the state directory
	Remembered    int    // ids remembered now
	StoredBytes   int    // payload bytes held for repair now
}

// Publish sends payload (at most MaxMessageBytes, copied) to every other
// live member, fast, over streams: at once to GossipGroup random members,
// each of which passes it on once, on first receipt, to GossipGroup
// others; then members exchange digests of their recent publications and
// fetch what they miss, so the members the burst missed get it too. Each
// member's PublishListeners get it once, never the origin's, and only on
// members that were running when it was published: a member that starts
// (or restarts) later never gets an old publication, even within its
// PublishTTL; with StateDir set, ids also survive restarts on disk.
//
// Publish returns once the publication is queued, with its id. Like
// Broadcast, delivery to all is best effort: the repair rounds go on
// while the publication is younger than PublishTTL.
func (c *Cluster) Publish(payload []byte) (PublicationID, error) {
	var id PublicationID
	if len(payload) > c.cfg.MaxMessageBytes {
		return id, fmt.Errorf("%w: %d bytes, the limit is %d (MaxMessageBytes)", ErrMessageTooLarge, len(payload), c.cfg.MaxMessageBytes)
	}
	if err := c.streamsReady(); err != nil {
		return id, err
	}
	c.streams.mu.Lock()
	p := c.streams.pub
	c.streams.mu.Unlock()
	rand.Read(id[:])
	data := bytes.Clone(payload)
	err := p.do(func(now time.Time) error {
		return p.m.Publish(now, flood.ID(id), data, c.cfg.PublishTTL)
	})
	if errors.Is(err, flood.ErrFull) {
		return id, ErrPublishFull
	}
	return id, err
}

// publisher drives a flood.Machine over streams: one goroutine owns the
// machine; workers carry its sends.
type publisher struct {
	c    *Cluster
	self netip.AddrPort
	m    *flood.Machine
	ids  *idStore

	in     chan pubInput
	cmds   chan func(time.Time)
	failed chan flood.Send
	out    chan outSend
	quit   chan struct{}
	done   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once

	lastView *view
	outBytes atomic.Int64
	stats    atomic.Pointer[flood.Stats]

	remembered, stored                          atomic.Int64
	malformed, inputDrops, queue, persistErrors atomic.Uint64
	warnedPersist                               bool
}

type pubInput struct {
	from netip.AddrPort
	pkt  flood.Packet
	n    int64
}

type outSend struct {
	s flood.Send
	n int64
}

func newPublisher(c *Cluster, self netip.AddrPort, ids *idStore) *publisher {
	now := time.Now()
	seed1, seed2 := mrand.Uint64(), mrand.Uint64()
	if c.cfg.Seed != 0 {
		seed1, seed2 = uint64(c.cfg.Seed)^0x9e3779b97f4a7c15, uint64(c.cfg.Seed)
	}
	fc := flood.Config{
		Self:              self,
		Fanout:            c.cfg.GossipGroup,
		RepairInterval:    max(c.cfg.HeartbeatInterval/2, 10*time.Millisecond),
		MaxRepairInterval: maxRepairInterval,
		Grace:             publishGrace,
		MaxTTL:            maxPublishTTL,
		MaxIDs:            c.cfg.Limits.MaxPublications,
		MaxStoredBytes:    c.cfg.Limits.MaxStoredPublicationBytes,
		MaxDigestIDs:      min(flood.DefaultMaxDigestIDs, c.cfg.MaxMessageBytes/len(flood.ID{})),
		Start:             now,
		Rand:              mrand.New(mrand.NewPCG(seed1, seed2)),
	}
	if ids != nil {
		fc.Remembered = ids.records()
	}
	m, err := flood.New(fc)
	if err != nil {
		panic(err) // only for a missing Rand
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &publisher{
		c: c, self: self, m: m, ids: ids,
		in:     make(chan pubInput, publishInputQueue),
		cmds:   make(chan func(time.Time)),
		failed: make(chan flood.Send, publishQueue),
		out:    make(chan outSend, publishQueue),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		ctx:    ctx, cancel: cancel,
	}
}

// stop ends the driver and its workers (Shutdown waits for them through
// the stream layer's WaitGroup).
func (p *publisher) stop() {
	p.once.Do(func() {
		p.cancel()
		close(p.quit)
	})
}

// do runs f on the driver's goroutine and returns its error.
func (p *publisher) do(f func(now time.Time) error) error {
	reply := make(chan error, 1)
	select {
	case p.cmds <- func(now time.Time) { reply <- f(now) }:
	case <-p.done:
		return ErrStopped
	}
	select {
	case err := <-reply:
		return err
	case <-p.done:
		return ErrStopped
	}
}

// input takes a publish request from a stream; it returns the status to
// answer.
func (p *publisher) input(from netip.AddrPort, data []byte, took time.Duration) byte {
	s := &p.c.streams
	pkt, err := flood.Decode(data, p.c.cfg.MaxMessageBytes)
	if err != nil {
		p.malformed.Add(1)
		return statusNoTaker
	}
	if pkt.Kind == flood.KindPush {
		pkt.Msg.Age += took // the transfer counts in the age
	}
	n := int64(len(data))
	if !s.reserve(n, p.c.cfg.Limits.MaxPendingMessageBytes) {
		p.inputDrops.Add(1)
		return statusBusy
	}
	select {
	case p.in <- pubInput{from: from, pkt: pkt, n: n}:
		return statusOK
	default:
		s.pending.Add(-n)
		p.inputDrops.Add(1)
		return statusBusy
	}
}

// run is the driver's loop: the only goroutine that touches the machine.
func (p *publisher) run() {
	defer p.c.streams.wg.Done()
	defer close(p.done)
	var workers sync.WaitGroup
	for range publishWorkers {
		workers.Go(p.worker)
	}
	defer workers.Wait()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		p.flush()
		var tick <-chan time.Time
		if d := p.m.NextDeadline(); !d.IsZero() {
			timer.Reset(max(time.Until(d), 0))
			tick = timer.C
		}
		select {
		case <-p.quit:
			return
		case in := <-p.in:
			p.refresh()
			p.m.Receive(time.Now(), in.from, in.pkt)
			p.c.streams.pending.Add(-in.n)
		case f := <-p.cmds:
			p.refresh()
			f(time.Now())
		case s := <-p.failed:
			p.refresh()
			p.m.Failed(time.Now(), s)
		case <-tick:
			p.refresh()
			p.m.Tick(time.Now())
		}
		timer.Stop()
	}
}

// refresh gives the machine the live members when the view changed.
func (p *publisher) refresh() {
	v := p.c.view.Load()
	if v == p.lastView {
		return
	}
	p.lastView = v
	live := make([]netip.AddrPort, 0, len(v.nodes))
	for _, n := range v.nodes {
		if n.status == StatusAlive && !n.local {
			live = append(live, n.addr)
		}
	}
	p.m.SetMembers(live)
}

// flush stores the new ids, then delivers, then queues the sends.
func (p *publisher) flush() {
	for {
		sends, dels, recs := p.m.Outbox()
		if len(sends)+len(dels)+len(recs) == 0 {
			break
		}
		if len(recs) > 0 && p.ids != nil {
			if err := p.ids.append(time.Now(), recs); err != nil {
				p.persistErrors.Add(1)
				if !p.warnedPersist {
					p.warnedPersist = true
					p.c.log.logf(LogError, "smudge: cannot remember publication ids in the state directory (a restart could not tell old publications from new ones, though they would still not be delivered): %v", err)
				}
			}
		}
		for _, d := range dels {
			p.deliver(d)
		}
		now := time.Now()
		for _, s := range sends {
			n := int64(len(s.Packet.Msg.Payload) + 16*len(s.Packet.IDs))
			if p.outBytes.Add(n) > p.c.cfg.Limits.MaxPendingMessageBytes && n > 0 {
				p.outBytes.Add(-n)
				p.queue.Add(1)
				p.m.Failed(now, s)
				continue
			}
			select {
			case p.out <- outSend{s: s, n: n}:
			default:
				p.outBytes.Add(-n)
				p.queue.Add(1)
				p.m.Failed(now, s)
			}
		}
	}
	st := p.m.Stats()
	p.stats.Store(&st)
	p.remembered.Store(int64(p.m.Len()))
	p.stored.Store(int64(p.m.StoredBytes()))
}

// deliver hands a publication to the PublishListeners.
func (p *publisher) deliver(d flood.Message) {
	origin := p.c.view.Load().byAddr[d.Origin]
	if origin == nil {
		origin = newNodeAddr(d.Origin)
	}
	pub := &Publication{id: PublicationID(d.ID), origin: origin, age: d.Age, bytes: d.Payload}
	s := &p.c.streams
	s.mu.Lock()
	ls := s.pubLs
	s.mu.Unlock()
	for _, sub := range ls {
		l := sub.l
		p.c.enqueue(sub.q, func() { l.OnPublish(pub) })
	}
}

// worker carries sends to their members.
func (p *publisher) worker() {
	s := &p.c.streams
	for {
		select {
		case <-p.quit:
			return
		case o := <-p.out:
			ok := false
			if data, err := flood.AppendEncode(nil, o.s.Packet); err == nil {
				status, err := p.c.roundTrip(p.ctx, o.s.To, requestPublish, data)
				ok = err == nil && status == statusOK
			}
			p.outBytes.Add(-o.n)
			if ok {
				s.sent.Add(1)
				continue
			}
			s.sendErrors.Add(1)
			select {
			case p.failed <- o.s:
			default:
			}
		}
	}
}

// publishStats returns Publish's counters.
func (s *streamLayer) publishStats() PublishStats {
	s.mu.Lock()
	p := s.pub
	s.mu.Unlock()
	if p == nil {
		return PublishStats{}
	}
	var f flood.Stats
	if st := p.stats.Load(); st != nil {
		f = *st
	}
	return PublishStats{
		Published: f.Published, Received: f.Received, Delivered: f.Delivered, Duplicates: f.Duplicates,
		Stale: f.Stale, Expired: f.Expired, Invalid: f.Invalid, Refused: f.Refused,
		BurstSends: f.BurstSends, DigestsSent: f.DigestsSent, WantsSent: f.WantsSent, RepairPushes: f.RepairPushes,
		DigestsHeard: f.DigestsHeard, WantsHeard: f.WantsHeard, SendsFailed: f.SendsFailed,
		Evicted: f.PayloadsEvict, Forgotten: f.Forgotten,
		QueueDrops: p.queue.Load(), InputDrops: p.inputDrops.Load(), Malformed: p.malformed.Load(),
		PersistErrors: p.persistErrors.Load(),
		Remembered:    int(p.remembered.Load()), StoredBytes: int(p.stored.Load()),
	}
}
