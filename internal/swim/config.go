package swim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/seed-c7906467/smudge/internal/wire"
)

// Config holds everything the engine needs. Every timing value comes from
// here: the engine never reads a clock or a global.
type Config struct {
	// Self is this node's advertised address: its identity in the cluster.
	Self netip.AddrPort
	// ClusterID is wire.ClusterID of the cluster name; packets carrying
	// another value are dropped.
	ClusterID uint32
	// Incarnation is the starting incarnation. Starting from a value that
	// grows across restarts (such as ClockIncarnation) lets a restarted
	// node be ALIVE again at once everywhere.
	Incarnation uint32
	// BootID distinguishes this run's broadcasts from a previous run's.
	BootID uint32
	// Meta is this node's metadata (at most wire.MaxMetaBytes), gossiped
	// with its state; SetMeta changes it.
	Meta []byte

	// ProbeInterval is the protocol period: one member is probed per period.
	ProbeInterval time.Duration
	// MinProbeTimeout floors the adaptive probe timeout.
	MinProbeTimeout time.Duration
	// PingHistoryFrontload fills the RTT history before real samples exist.
	PingHistoryFrontload time.Duration
	// IndirectChecks caps k, the number of ping-req relays.
	IndirectChecks int
	// SuspicionMult scales the suspicion timeout:
	// SuspicionMult * max(1, log10(n)) * ProbeInterval. With dynamic
	// suspicion (Lifeguard, the default) this is the timeout of a
	// suspicion nobody else confirms; it shrinks with confirmations.
	SuspicionMult int

	// Lifeguard (see lifeguard.go). Each part can be switched off.

	// SuspicionMinMult is the floor of a confirmed suspicion's timeout, in
	// the same unit as SuspicionMult (it may be fractional). 0 means
	// DefaultSuspicionMinMult; it is capped at SuspicionMult.
	SuspicionMinMult float64
	// SuspicionConfirmations is how many independent accusers, besides the
	// first, bring a suspicion's timeout down to its floor (at most
	// MaxSuspicionConfirmations). 0 means DefaultSuspicionConfirmations.
	SuspicionConfirmations int
	// SuspicionChecks is how many random members a suspicion this node
	// raises is pushed to at once, for them to probe the suspect. 0 means
	// DefaultSuspicionChecks; negative turns checks off.
	SuspicionChecks int
	// MaxLocalHealth caps the local health score: this node's probe period
	// and timeout stretch up to 1+MaxLocalHealth times. 0 means
	// DefaultMaxLocalHealth.
	MaxLocalHealth int
	// NoLocalHealth turns the local health score off.
	NoLocalHealth bool
	// NoNacks turns nacks off: this node neither sends nor expects them.
	NoNacks bool
	// NoDynamicSuspicion turns dynamic suspicion off: every suspicion
	// lasts SuspicionMult periods (times log10 n) here, a DEAD verdict
	// from another node only starts one, and no confirmed suspicion is
	// spread.
	NoDynamicSuspicion bool
	// NoBuddy turns the buddy system off: pings to suspects do not carry
	// the suspicion.
	NoBuddy bool
	// RemoveDeadAfter is how long a dead or left member is kept (and a dead
	// one re-probed with backoff) before it is forgotten.
	RemoveDeadAfter time.Duration
	// MaxPacketBytes bounds every packet the engine builds.
	MaxPacketBytes int
	// MaxBroadcastBytes bounds a user broadcast's payload.
	MaxBroadcastBytes int
	// BroadcastTTL is how long a broadcast may circulate; it is remembered
	// for twice as long so that it is delivered at most once.
	BroadcastTTL time.Duration
	// MaxSeenBroadcasts bounds the broadcast deduplication table. When it is
	// full of unexpired entries, new broadcasts are dropped and counted.
	MaxSeenBroadcasts int
	// MaxQueuedBroadcasts bounds the broadcasts waiting to be piggybacked.
	MaxQueuedBroadcasts int
	// PushFanout is how many random members a new broadcast, or a member's
	// death or leave, is pushed to at once, by the node that has the news
	// first and by each node it is news to; piggybacking goes on as before. 0 means DefaultPushFanout; negative turns pushing
	// off.
	PushFanout int
	// GossipInterval is the time between gossip rounds (gossip.go): after
	// news (a broadcast, a death, a leave, a newcomer) this node sends its
	// gossip to GossipNodes random live members, at once and twice more
	// GossipInterval apart, besides piggybacking it on probes. 0 means a
	// quarter of the probe period, at most DefaultMaxGossipInterval (25 ms).
	GossipInterval time.Duration
	// GossipNodes is how many members a gossip round sends to. 0 means
	// DefaultGossipNodes; negative turns gossip rounds off.
	GossipNodes int
	// MaxRetainedBroadcasts bounds the recent broadcasts kept for the
	// repair round (see repair.go); past it the oldest are forgotten.
	// Negative turns the repair round off.
	MaxRetainedBroadcasts int
	// MaxSyncMembers bounds how many members a join answer describes.
	MaxSyncMembers int
	// PushPullInterval is the time between two push-pull state syncs with
	// a random member (pushpull.go), stretched above 32 members (×2 at 64,
	// ×6 at 1000); with it, one sync with the first seed follows Join. 0 or
	// negative turns push-pull off (hosts use DefaultPushPullInterval).
	PushPullInterval time.Duration
	// MaxStateBytes bounds a push-pull state's plain encoding, built or
	// merged. 0 means DefaultMaxStateBytes.
	MaxStateBytes int
	// MaxSyncsPerPeriod bounds how many join answers are sent per protocol
	// period, so that a flood of join pings cannot be amplified.
	MaxSyncsPerPeriod int
	// MaxHellos bounds how many members a joining node greets (see
	// hello.go): those the member list it was sent describes and that it
	// never heard from. 0 means DefaultMaxHellos; negative turns greetings
	// off.
	MaxHellos int
	// MaxMembers bounds the member table. Packets from, and rumours of, new
	// members beyond it are dropped and counted.
	MaxMembers int
	// MaxPendingProbes bounds the probes in flight, relayed ones included;
	// ping-reqs beyond it are dropped and counted. It is at most
	// MaxSeqsInFlight (a larger value is lowered to it).
	MaxPendingProbes int
	// TombstoneTTL is how long a removed member is remembered: packets from
	// it, or rumours of it alive, at its last incarnation or lower are
	// dropped (so a replayed packet cannot bring it back), and it is told
	// to refute. A restarted node has a higher incarnation and is welcome.
	TombstoneTTL time.Duration
	// MaxTombstones bounds the removed members remembered; the oldest go
	// first.
	MaxTombstones int

	// Rand is the engine's only source of randomness.
	Rand *rand.Rand
}

// Defaults for the engine-only limits.
const (
	DefaultMaxSeenBroadcasts   = 65536
	DefaultMaxQueuedBroadcasts = 1024
	DefaultMaxRetained         = 1024
	DefaultPushFanout          = 3
	DefaultMaxSyncMembers      = 1024
	DefaultMaxSyncsPerPeriod   = 64
	DefaultMaxHellos           = 128
	DefaultMaxMembers          = 1 << 17
	DefaultMaxPendingProbes    = 4096
	// MaxSeqsInFlight caps MaxPendingProbes at half the 16-bit sequence
	// numbers, so that a new probe always finds a free one near.
	MaxSeqsInFlight      = 1 << 15
	DefaultTombstoneTTL  = time.Hour
	DefaultMaxTombstones = 1 << 16
)

func (c *Config) setDefaults() {
	if c.MaxSeenBroadcasts == 0 {
		c.MaxSeenBroadcasts = DefaultMaxSeenBroadcasts
	}
	if c.MaxQueuedBroadcasts == 0 {
		c.MaxQueuedBroadcasts = DefaultMaxQueuedBroadcasts
	}
	if c.PushFanout == 0 {
		c.PushFanout = DefaultPushFanout
	}
	if c.MaxRetainedBroadcasts == 0 {
		c.MaxRetainedBroadcasts = DefaultMaxRetained
	}
	if c.MaxSyncMembers == 0 {
		c.MaxSyncMembers = DefaultMaxSyncMembers
	}
	if c.MaxSyncsPerPeriod == 0 {
		c.MaxSyncsPerPeriod = DefaultMaxSyncsPerPeriod
	}
	if c.MaxStateBytes == 0 {
		c.MaxStateBytes = DefaultMaxStateBytes
	}
	if c.MaxHellos == 0 {
		c.MaxHellos = DefaultMaxHellos
	}
	if c.MaxMembers == 0 {
		c.MaxMembers = DefaultMaxMembers
	}
	if c.MaxPendingProbes == 0 {
		c.MaxPendingProbes = DefaultMaxPendingProbes
	}
	c.MaxPendingProbes = min(c.MaxPendingProbes, MaxSeqsInFlight)
	if c.TombstoneTTL == 0 {
		c.TombstoneTTL = DefaultTombstoneTTL
	}
	if c.MaxTombstones == 0 {
		c.MaxTombstones = DefaultMaxTombstones
	}
	if c.SuspicionMinMult == 0 {
		c.SuspicionMinMult = DefaultSuspicionMinMult
	}
	c.SuspicionMinMult = min(c.SuspicionMinMult, float64(c.SuspicionMult))
	if c.SuspicionConfirmations == 0 {
		c.SuspicionConfirmations = DefaultSuspicionConfirmations
	}
	if c.SuspicionChecks == 0 {
		c.SuspicionChecks = DefaultSuspicionChecks
	}
	if c.MaxLocalHealth == 0 {
		c.MaxLocalHealth = DefaultMaxLocalHealth
	}
	if c.GossipNodes == 0 {
		c.GossipNodes = DefaultGossipNodes
	}
}

// validate reports the first problem that would make the engine misbehave.
func (c *Config) validate() error {
	switch {
	case !c.Self.IsValid() || c.Self.Addr().IsUnspecified() || c.Self.Port() == 0:
		return fmt.Errorf("swim: Self %v is not a concrete address", c.Self)
	case c.ProbeInterval <= 0:
		return errors.New("swim: ProbeInterval must be positive")
	case c.MinProbeTimeout <= 0 || c.PingHistoryFrontload <= 0:
		return errors.New("swim: MinProbeTimeout and PingHistoryFrontload must be positive")
	case c.IndirectChecks < 0:
		return errors.New("swim: IndirectChecks must not be negative")
	case c.SuspicionMult < 1:
		return errors.New("swim: SuspicionMult must be at least 1")
	case !(c.SuspicionMinMult > 0) || math.IsInf(c.SuspicionMinMult, 0):
		return fmt.Errorf("swim: SuspicionMinMult %v must be a positive number", c.SuspicionMinMult)
	case c.SuspicionConfirmations < 0 || c.SuspicionConfirmations > MaxSuspicionConfirmations:
		return fmt.Errorf("swim: SuspicionConfirmations %d must be between 0 and %d", c.SuspicionConfirmations, MaxSuspicionConfirmations)
	case c.GossipInterval < 0:
		return errors.New("swim: GossipInterval must not be negative")
	case c.MaxLocalHealth < 0 || c.MaxLocalHealth > 64:
		return fmt.Errorf("swim: MaxLocalHealth %d must be between 0 and 64", c.MaxLocalHealth)
	case c.RemoveDeadAfter <= 0 || c.BroadcastTTL <= 0:
		return errors.New("swim: RemoveDeadAfter and BroadcastTTL must be positive")
	case c.MaxPacketBytes < 256:
		return errors.New("swim: MaxPacketBytes must be at least 256")
	case c.MaxBroadcastBytes < 1 || c.MaxBroadcastBytes+PacketOverhead > c.MaxPacketBytes:
		return fmt.Errorf("swim: MaxBroadcastBytes %d does not fit in a %d-byte packet", c.MaxBroadcastBytes, c.MaxPacketBytes)
	case c.MaxStateBytes < 1024:
		return fmt.Errorf("swim: MaxStateBytes %d must be at least 1024", c.MaxStateBytes)
	case c.Rand == nil:
		return errors.New("swim: Rand is required")
	case len(c.Meta) > wire.MaxMetaBytes:
		return fmt.Errorf("swim: Meta is %d bytes, more than %d", len(c.Meta), wire.MaxMetaBytes)
	}
	return nil
}

// PacketOverhead is the most a packet needs besides one broadcast payload:
// header (12+19+4), a ping (3+5+19) and the broadcast's own fields (3+19+12).
// A broadcast of MaxBroadcastBytes always fits in a packet with this much
// room to spare.
const PacketOverhead = 35 + 27 + 34

// EmitLimit is how many times each update and broadcast is sent by a node
// that knows n members (itself included): int(2.5*ln(n)+0.5), as in Smudge.
func EmitLimit(n int) int {
	if n < 1 {
		return 0
	}
	return int(2.5*math.Log(float64(n)) + 0.5)
}

// SuspicionTimeout is how long a member stays SUSPECTED before it is declared
// DEAD in a cluster of n members.
func SuspicionTimeout(mult, n int, interval time.Duration) time.Duration {
	scale := math.Max(1, math.Log10(float64(max(n, 1))))
	return time.Duration(float64(mult) * scale * float64(interval))
}

// IncarnationEpoch is when ClockIncarnation counts from.
var IncarnationEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// ClockIncarnation is a starting incarnation that grows across restarts:
// the whole seconds from IncarnationEpoch to t, at least 1. On the wire it
// takes 4 bytes until 2034 (the Unix time would take 5).
func ClockIncarnation(t time.Time) uint32 {
	d := t.Sub(IncarnationEpoch) / time.Second
	return uint32(min(max(d, 1), math.MaxUint32))
}
