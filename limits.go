package smudge

import (
	"time"

	"github.com/seed-c7906467/smudge/internal/swim"
)

// Limits bounds every table and queue that the network can feed, so that no
// sender, however hostile, can grow a node's memory without bound. What is
// refused at a limit is dropped and counted in Stats. A zero field means its
// default.
type Limits struct {
	// MaxMembers bounds the member table; new members past it are ignored
	// (Stats.DroppedMemberLimit). Default 131072.
	MaxMembers int
	// MaxPendingProbes bounds the probes in flight, those relayed for
	// others included (Stats.DroppedProbeLimit). Default 4096, at most
	// 32768 (a larger value is lowered to it).
	MaxPendingProbes int
	// MaxSyncsPerPeriod bounds the join answers (member lists) sent per
	// protocol period, so that join pings cannot be used to amplify traffic
	// (Stats.SyncsSkipped). Default 64.
	MaxSyncsPerPeriod int
	// MaxSyncMembers bounds the members described in one join answer.
	// Default 1024.
	MaxSyncMembers int
	// MaxSeenBroadcasts bounds the broadcasts remembered for
	// deduplication; when it is full of unexpired ones, new broadcasts are
	// refused (Stats.BroadcastsDropped) rather than risk a double delivery.
	// Default 65536.
	MaxSeenBroadcasts int
	// MaxQueuedBroadcasts bounds the broadcasts waiting to be forwarded;
	// Broadcast returns an error past it. Default 1024.
	MaxQueuedBroadcasts int
	// MaxRetainedBroadcasts bounds the recent broadcasts kept for the
	// repair round, which sends them to members that missed them; past it
	// the oldest are forgotten early (Stats.RetainedEvicted). Default 1024.
	MaxRetainedBroadcasts int
	// TombstoneTTL is how long a removed member is remembered, so that a
	// replayed packet cannot bring it back. Default 1h.
	TombstoneTTL time.Duration
	// MaxTombstones bounds the removed members remembered. Default 65536.
	MaxTombstones int
	// ReceiveQueue bounds the datagrams waiting for the protocol loop
	// (Stats.ReceiveQueueDrops). Default 1024.
	ReceiveQueue int
	// ListenerBacklog bounds the events waiting for each listener
	// (Stats.ListenerEventsDropped). Default 65536.
	ListenerBacklog int

	// MaxInboundStreams bounds the streams (Send, Publish) served at once;
	// more are closed at once (Stats.Streams.Refused). Default 64.
	MaxInboundStreams int
	// StreamTimeout bounds every stream, in and out: a request not read
	// whole within it is dropped (Stats.Streams.DroppedTimeout), so a slow
	// sender holds a slot no longer; a Send not answered within it fails.
	// Default 10s.
	StreamTimeout time.Duration
	// MaxConcurrentPushPulls bounds the push-pull state syncs served at
	// once; more are answered busy (Stats.Streams.PushPullsBusy). It bounds
	// those this node starts as well. Default 4.
	MaxConcurrentPushPulls int
	// MaxPendingMessageBytes bounds the payload bytes received and waiting
	// for listeners or Publish's driver (past it requests are answered busy:
	// Stats.Streams.Busy, Stats.Publish.InputDrops), and separately the
	// bytes waiting to be sent by Publish (Stats.Publish.QueueDrops).
	// Default 64 MiB.
	MaxPendingMessageBytes int64
	// MaxPublications bounds the publication ids remembered (unexpired, and
	// for a minute after); past it new publications are refused
	// (ErrPublishFull, Stats.Publish.Refused). Default 65536.
	MaxPublications int
	// MaxStoredPublicationBytes bounds the payloads of publications held
	// for repair; past it the oldest are dropped (Stats.Publish.Evicted),
	// their ids kept. Default 64 MiB.
	MaxStoredPublicationBytes int
}

// Default limits.
const (
	DefaultReceiveQueue    = 1024
	DefaultListenerBacklog = 1 << 16
)

// withDefaults fills the zero fields.
func (l Limits) withDefaults() Limits {
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxMembers, swim.DefaultMaxMembers)
	set(&l.MaxPendingProbes, swim.DefaultMaxPendingProbes)
	set(&l.MaxSyncsPerPeriod, swim.DefaultMaxSyncsPerPeriod)
	set(&l.MaxSyncMembers, swim.DefaultMaxSyncMembers)
	set(&l.MaxSeenBroadcasts, swim.DefaultMaxSeenBroadcasts)
	set(&l.MaxQueuedBroadcasts, swim.DefaultMaxQueuedBroadcasts)
	set(&l.MaxRetainedBroadcasts, swim.DefaultMaxRetained)
	set(&l.MaxTombstones, swim.DefaultMaxTombstones)
	set(&l.ReceiveQueue, DefaultReceiveQueue)
	set(&l.ListenerBacklog, DefaultListenerBacklog)
	if l.TombstoneTTL <= 0 {
		l.TombstoneTTL = swim.DefaultTombstoneTTL
	}
	l.streamDefaults()
	return l
}

// apply copies the engine's limits into its configuration.
func (l Limits) apply(e *swim.Config) {
	e.MaxMembers = l.MaxMembers
	e.MaxPendingProbes = l.MaxPendingProbes
	e.MaxSyncsPerPeriod = l.MaxSyncsPerPeriod
	e.MaxSyncMembers = l.MaxSyncMembers
	e.MaxSeenBroadcasts = l.MaxSeenBroadcasts
	e.MaxQueuedBroadcasts = l.MaxQueuedBroadcasts
	e.MaxRetainedBroadcasts = l.MaxRetainedBroadcasts
	e.TombstoneTTL = l.TombstoneTTL
	e.MaxTombstones = l.MaxTombstones
}
