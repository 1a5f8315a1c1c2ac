package liveness

import (
	"context"
	"time"

	"github.com/seed-c7906467/smudge"
)

// New returns a store for the cluster c: it registers its listeners on c
// and, once c runs, publishes this node's id in its metadata (Node.Meta),
// which the store owns from then on. Call it before c.Start: with a state
// directory, New returns an error wrapping ErrDecommissioned when this
// node's id was decommissioned, and the node must not start.
func New(c *smudge.Cluster, cfg Config) (*Store, error) {
	cc := c.Config()
	s, err := newStore(smudgeCluster{c}, cc.ClusterName, cc.MaxBroadcastBytes, cfg, realClock{})
	if err != nil {
		return nil, err
	}
	l := listener{s}
	c.AddStatusListener(l)
	c.AddMetaListener(l)
	c.AddBroadcastListener(l)
	if c.Running() {
		s.publish()
		s.evaluate()
	}
	return s, nil
}

// smudgeCluster is the store's view of a *smudge.Cluster.
type smudgeCluster struct{ c *smudge.Cluster }

func (a smudgeCluster) members() []member {
	ns := a.c.Members()
	if len(ns) == 0 {
		return nil
	}
	now := time.Now()
	out := make([]member, len(ns))
	for i, n := range ns {
		var heard time.Time // zero: never heard from
		switch {
		case n.IsLocal():
			heard = now
		case n.Timestamp() != 0:
			heard = now.Add(-time.Duration(n.Age()) * time.Millisecond)
		}
		out[i] = member{
			addr: n.AddrPort(), status: n.Status(), left: n.Left(), local: n.IsLocal(),
			lastHeard: heard, meta: n.Meta(),
		}
	}
	return out
}

func (a smudgeCluster) setMeta(meta []byte) error       { return a.c.SetMeta(meta) }
func (a smudgeCluster) broadcast(payload []byte) error  { return a.c.Broadcast(payload) }
func (a smudgeCluster) leave(ctx context.Context) error { return a.c.Leave(ctx) }
func (a smudgeCluster) running() bool                   { return a.c.Running() }

// listener feeds the cluster's events to the store.
type listener struct{ s *Store }

// OnChange implements smudge.StatusListener.
func (l listener) OnChange(n *smudge.Node, _ smudge.NodeStatus) {
	if n.IsLocal() {
		l.s.onLocalStatus()
		return
	}
	l.s.evaluate()
}

// OnRemove implements smudge.RemovalListener.
func (l listener) OnRemove(*smudge.Node) { l.s.evaluate() }

// OnMetaChange implements smudge.MetaListener.
func (l listener) OnMetaChange(*smudge.Node) { l.s.evaluate() }

// OnBroadcast implements smudge.BroadcastListener.
func (l listener) OnBroadcast(b *smudge.Broadcast) { l.s.onBroadcast(b.Bytes()) }
