package swim

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/seed-c7906467/smudge/internal/wire"
)

// Push-pull state sync closes the convergence tail.
//
// Gossip sends each update a bounded number of times (EmitLimit); under
// loss a member can miss one for good, and learns the truth only when a
// probe or a later update happens to tell it, which for a member nobody
// changes may be never. So, as memberlist does over TCP, a node now and
// then exchanges its whole member list with one random member: each sends
// its state (AppendState), each merges the other's (MergeState). It does
// so once with the first seed right after Join, then every
// PushPullInterval, stretched in big clusters (pushPullScale).
//
// The engine does no I/O: TakePushPulls says whom to sync with, and the
// host carries the states (over its stream transport) and hands the
// answer back. A state is compressed with flate and bounded by
// MaxSyncMembers and MaxStateBytes; in a bigger cluster each state starts
// where the last one stopped, so that every member is described over time.

// Defaults of push-pull.
const (
	// DefaultPushPullInterval is the interval hosts use by default (the
	// engine's own default is off: Config.PushPullInterval 0).
	DefaultPushPullInterval = 30 * time.Second
	// DefaultMaxStateBytes bounds a state's plain (uncompressed) encoding.
	DefaultMaxStateBytes = 128 << 10
	// MaxPendingPushPulls is how many push-pull targets wait for the host
	// at most; past it new ones are dropped (Stats.PushPullsSkipped), as
	// are those already waiting.
	MaxPendingPushPulls = 8
	// pushPullScaleThreshold is the cluster size above which the interval
	// grows: ×2 at 64 members, ×6 at 1000.
	pushPullScaleThreshold = 32
)

// ErrBadState is returned by MergeState for a state it cannot read or
// must not believe: corrupt, truncated, oversized, from another cluster or
// from this node.
var ErrBadState = errors.New("swim: bad push-pull state")

// State encoding (plain, before flate):
//
//	magic    2 bytes  'P' 'S'
//	version  1 byte   2 (1 had an 8-byte cluster hash, before wire version 2)
//	cluster  4 bytes  wire.ClusterID
//	sender   address (wire.AppendAddr)
//	count    uvarint, at least 1
//	entries  count times: flags (1: status in bits 0-2, entryMeta,
//	         entrySelfSourced, entryNoSource), incarnation (uvarint),
//	         subject address, source address (unless self-sourced or
//	         absent), metadata length (1) and bytes (if entryMeta)
//
// The first entry is the sender's own.
const (
	stateMagic0      = 'P'
	stateMagic1      = 'S'
	stateVersion     = 2
	entryStatusMask  = 0x07
	entryMeta        = 0x08
	entrySelfSourced = 0x10
	entryNoSource    = 0x20
	entryKnownFlags  = entryStatusMask | entryMeta | entrySelfSourced | entryNoSource
	minEntryLen      = 1 + 1 + 7 // flags, incarnation, IPv4 subject
)

// pushPullScale is the push-pull interval in a cluster of n members:
// interval × (ceil(log2 n − log2 32) + 1) above 32 members, as
// memberlist's pushPullScale.
func pushPullScale(interval time.Duration, n int) time.Duration {
	if n <= pushPullScaleThreshold {
		return interval
	}
	mult := math.Ceil(math.Log2(float64(n))-math.Log2(pushPullScaleThreshold)) + 1
	return time.Duration(mult) * interval
}

// PushPullInterval is the push-pull interval now, scaled to the members
// known; 0 when push-pull is off.
func (e *Engine) PushPullInterval() time.Duration {
	if e.cfg.PushPullInterval <= 0 {
		return 0
	}
	return pushPullScale(e.cfg.PushPullInterval, e.live+1)
}

// queuePushPull adds a target for the host, unless it is waiting already
// or MaxPendingPushPulls are.
func (e *Engine) queuePushPull(a netip.AddrPort) {
	if len(e.pushPulls) >= MaxPendingPushPulls || slicesContains(e.pushPulls, a) {
		e.stats.PushPullsSkipped++
		return
	}
	e.pushPulls = append(e.pushPulls, a)
	e.stats.PushPullsDue++
}

// pushPullTick queues a random live member when the interval is up.
func (e *Engine) pushPullTick(now time.Time) {
	if e.cfg.PushPullInterval <= 0 || now.Before(e.nextPushPullAt) {
		return
	}
	e.nextPushPullAt = now.Add(e.PushPullInterval())
	if e.leaving {
		return
	}
	if ms := e.pickRandom(1, nil); len(ms) == 1 {
		e.queuePushPull(ms[0].addr)
	}
}

// PushPullFailed tells the engine that the sync with a, which
// TakePushPulls handed out, failed (the member was unreachable, busy, or
// its state did not merge). If it was the sync after Join, the next seed
// is tried, each seed once: a node whose first seed is down or busy still
// gets a full state by stream, not only at the next interval.
func (e *Engine) PushPullFailed(a netip.AddrPort) {
	if !a.IsValid() || a != e.joinSync {
		return
	}
	e.joinSync = netip.AddrPort{}
	if e.joinSyncNext < len(e.seeds) && !e.leaving { // seeds are distinct: the next is another
		e.joinSync = e.seeds[e.joinSyncNext]
		e.joinSyncNext++
		e.queuePushPull(e.joinSync)
		e.stats.JoinSyncRetries++
	}
}

// TakePushPulls appends to dst the members (or, right after Join, the
// first seed's address) the host should sync with now, and forgets them:
// for each, the host sends AppendState's output over a stream and hands
// the answer to MergeState.
func (e *Engine) TakePushPulls(dst []netip.AddrPort) []netip.AddrPort {
	dst = append(dst, e.pushPulls...)
	clear(e.pushPulls)
	e.pushPulls = e.pushPulls[:0]
	return dst
}

// flatePool holds flate writers: each costs hundreds of kilobytes, too much
// to keep one per engine in a simulation of thousands.
var flatePool = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed)
	return w
}}

// appendWriter appends what is written to a slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// AppendState appends this node's state, compressed, to dst: itself
// first, then up to MaxSyncMembers members (ALIVE, SUSPECTED, DEAD and
// LEFT) within MaxStateBytes, starting where the previous state stopped.
func (e *Engine) AppendState(dst []byte) []byte {
	plain := e.appendPlainState(e.stateBuf[:0])
	e.stateBuf = plain[:0]
	e.stats.StatesSent++
	w := flatePool.Get().(*flate.Writer)
	aw := appendWriter{b: dst}
	w.Reset(&aw)
	w.Write(plain) // an appendWriter never fails
	w.Close()
	w.Reset(nil)
	flatePool.Put(w)
	return aw.b
}

// appendPlainState appends the uncompressed state.
func (e *Engine) appendPlainState(b []byte) []byte {
	b = append(b, stateMagic0, stateMagic1, stateVersion)
	b = binary.BigEndian.AppendUint32(b, e.cfg.ClusterID)
	b = wire.AppendAddr(b, e.cfg.Self)
	n := min(len(e.order), e.cfg.MaxSyncMembers)
	countAt := len(b)
	b = append(b, make([]byte, binary.MaxVarintLen32)...) // room for the count, fixed below
	self := e.selfUpdate()
	b = appendEntry(b, &self)
	count := 1
	if len(e.order) > 0 {
		start := e.stateCursor % len(e.order)
		for i := range n {
			m := e.order[(start+i)%len(e.order)]
			u := e.updateMsg(m)
			before := len(b)
			b = appendEntry(b, &u)
			if len(b) > e.cfg.MaxStateBytes {
				b = b[:before]
				break
			}
			count++
		}
		e.stateCursor = (start + count - 1) % len(e.order)
	}
	// Write the count as a uvarint and close the gap left for it.
	var c [binary.MaxVarintLen32]byte
	k := binary.PutUvarint(c[:], uint64(count))
	copy(b[countAt:], c[:k])
	return append(b[:countAt+k], b[countAt+binary.MaxVarintLen32:]...)
}

// appendEntry appends one state entry for u.
func appendEntry(b []byte, u *wire.Message) []byte {
	flags := byte(u.Status) & entryStatusMask
	switch {
	case !u.Source.IsValid():
		flags |= entryNoSource
	case u.Source == u.Subject:
		flags |= entrySelfSourced
	}
	if u.HasMeta {
		flags |= entryMeta
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(u.Incarnation))
	b = wire.AppendAddr(b, u.Subject)
	if flags&(entryNoSource|entrySelfSourced) == 0 {
		b = wire.AppendAddr(b, u.Source)
	}
	if u.HasMeta {
		b = append(b, byte(len(u.Meta)))
		b = append(b, u.Meta...)
	}
	return b
}

// MergeState merges a state another node sent (AppendState's output) as
// if each entry were a gossiped update: what is news here is applied and
// gossiped on, a false word about this node is refuted, and a member live
// here that the state says is DEAD is only suspected until a probe of this
// node's own fails. from is the sender's identity when the host knows it
// (the member it asked), else invalid.
//
// MergeState is strict: a state that does not decode exactly is rejected
// whole with ErrBadState (counted in Stats.DroppedBadState) and nothing of
// it is applied.
func (e *Engine) MergeState(now time.Time, from netip.AddrPort, state []byte) error {
	plain, err := e.inflate(state)
	if err != nil {
		e.stats.DroppedBadState++
		return err
	}
	sender, msgs, err := e.decodeState(plain)
	switch {
	case errors.Is(err, errStateCluster):
		e.stats.DroppedWrongCluster++
		return err
	case err != nil:
		e.stats.DroppedBadState++
		return err
	case sender == e.cfg.Self:
		e.stats.DroppedFromSelf++
		return fmt.Errorf("%w: from this node", ErrBadState)
	case from.IsValid() && from != sender:
		e.stats.DroppedBadState++
		return fmt.Errorf("%w: from another member than the one asked", ErrBadState)
	}
	e.stats.StatesMerged++
	if from.IsValid() && from == e.joinSync {
		e.joinSync = netip.AddrPort{} // the sync after Join is done
	}
	// A state answering a join is a member list, as a join answer is: not
	// gossiped back, and its members greeted (hello.go).
	joining := !e.synced && len(e.seeds) > 0
	e.synced = true
	gossip := !joining
	e.applyUpdate(now, &msgs[0], gossip, false, sender)
	if s := e.find(sender); s == nil || !s.live() {
		// Unknown, or held DEAD and not refuted: as in Receive, only its
		// word about this node is heeded.
		for i := range msgs[1:] {
			if u := &msgs[1+i]; u.Subject == e.cfg.Self {
				e.applyUpdate(now, u, true, false, sender)
			}
		}
		return nil
	}
	for i := range msgs[1:] {
		e.applyUpdate(now, &msgs[1+i], gossip, false, sender)
	}
	if joining {
		e.greetAll(now, msgs[1:])
	}
	return nil
}

var errStateCluster = fmt.Errorf("%w: from another cluster", ErrBadState)

// inflate decompresses state into e.inflateBuf, refusing more than
// MaxStateBytes.
func (e *Engine) inflate(state []byte) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(state))
	defer r.Close()
	b := e.inflateBuf[:0]
	limit := e.cfg.MaxStateBytes
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):min(cap(b), limit+1)])
		b = b[:len(b)+n]
		if len(b) > limit {
			return nil, fmt.Errorf("%w: larger than MaxStateBytes", ErrBadState)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadState, err)
		}
	}
	e.inflateBuf = b[:0]
	return b, nil
}

// decodeState parses a plain state into e.stateMsgs.
func (e *Engine) decodeState(b []byte) (netip.AddrPort, []wire.Message, error) {
	bad := func(why string) (netip.AddrPort, []wire.Message, error) {
		return netip.AddrPort{}, nil, fmt.Errorf("%w: %s", ErrBadState, why)
	}
	if len(b) < 3 || b[0] != stateMagic0 || b[1] != stateMagic1 {
		return bad("bad magic")
	}
	if b[2] != stateVersion {
		return bad(fmt.Sprintf("version %d, this node reads %d", b[2], stateVersion))
	}
	if len(b) < 3+4 {
		return bad("truncated header")
	}
	if binary.BigEndian.Uint32(b[3:7]) != e.cfg.ClusterID {
		return netip.AddrPort{}, nil, errStateCluster
	}
	sender, b, err := wire.ReadAddr(b[7:])
	if err != nil {
		return bad("bad sender address")
	}
	count, k := binary.Uvarint(b)
	if k <= 0 || count == 0 || count > uint64(len(b)/minEntryLen) {
		return bad("bad member count")
	}
	b = b[k:]
	msgs := e.stateMsgs[:0]
	for range count {
		if len(b) < 1 {
			return bad("truncated")
		}
		flags := b[0]
		u := wire.Message{Type: wire.TypeUpdate, Status: Status(flags & entryStatusMask)}
		if flags&^entryKnownFlags != 0 || !u.Status.Valid() || flags&entryNoSource != 0 && flags&entrySelfSourced != 0 {
			return bad("bad entry flags")
		}
		inc, k := binary.Uvarint(b[1:])
		if k <= 0 || inc > math.MaxUint32 {
			return bad("bad incarnation")
		}
		u.Incarnation = uint32(inc)
		if u.Subject, b, err = wire.ReadAddr(b[1+k:]); err != nil {
			return bad("bad subject address")
		}
		switch {
		case flags&entrySelfSourced != 0:
			u.Source = u.Subject
		case flags&entryNoSource == 0:
			if u.Source, b, err = wire.ReadAddr(b); err != nil {
				return bad("bad source address")
			}
		}
		if flags&entryMeta != 0 {
			if len(b) < 1 || len(b) < 1+int(b[0]) {
				return bad("truncated metadata")
			}
			n := int(b[0])
			u.HasMeta = true
			if n > 0 {
				u.Meta = b[1 : 1+n : 1+n]
			}
			b = b[1+n:]
		}
		msgs = append(msgs, u)
	}
	e.stateMsgs = msgs[:0]
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	if msgs[0].Subject != sender {
		return bad("first entry is not the sender's")
	}
	return sender, msgs, nil
}

// greetAll greets, as greet does for a join answer, the live members in
// msgs (a merged state) never heard from.
func (e *Engine) greetAll(now time.Time, msgs []wire.Message) {
	for i := range msgs {
		e.greetOne(now, &msgs[i])
	}
}
