package smudge

import (
	"net/netip"
	"sync"

	"github.com/seed-c7906467/smudge/internal/swim"
)

// StatusListener is told of every status change of every member, the local
// node included (it is ALIVE at start). Listeners run in their own goroutine,
// in order, never under a lock of the Cluster: a slow listener delays only
// its own events.
type StatusListener interface {
	OnChange(node *Node, status NodeStatus)
}

// BroadcastListener receives every broadcast from another node, once.
type BroadcastListener interface {
	OnBroadcast(broadcast *Broadcast)
}

// MetaListener is told when a member's metadata (Node.Meta) is learned or
// changes. A member may appear (StatusListener) before its metadata is
// known; this listener hears when it arrives. Like the others, it runs in
// its own goroutine, in order.
type MetaListener interface {
	OnMetaChange(node *Node)
}

// RemovalListener is an optional interface for a StatusListener (or a
// listener registered with AddRemovalListener): OnRemove is called when a
// member is forgotten, after RemoveDeadAfter as DEAD or by RemoveNode.
type RemovalListener interface {
	OnRemove(node *Node)
}

// nodeStatus maps the engine's status to Smudge's; LEFT is reported as DEAD.
func nodeStatus(st swim.Status) NodeStatus {
	switch st {
	case swim.StatusAlive:
		return StatusAlive
	case swim.StatusSuspect:
		return StatusSuspected
	case swim.StatusDead, swim.StatusLeft:
		return StatusDead
	}
	return StatusUnknown
}

// nodeFromMember snapshots an engine member as a Node.
func nodeFromMember(m swim.Member) *Node {
	n := &Node{
		addr:        m.Addr,
		status:      nodeStatus(m.Status),
		left:        m.Status == swim.StatusLeft,
		source:      m.Source,
		incarnation: m.Incarnation,
		timestamp:   millisOf(m.LastHeard),
		pingMillis:  PingNoData,
		emitCounter: int8(min(m.EmitsLeft, 127)),
		local:       m.Self,
		changed:     m.Changed,
		meta:        m.Meta,
	}
	switch {
	case m.Status == swim.StatusSuspect || m.Status == swim.StatusDead:
		n.pingMillis = PingTimedOut // it stopped answering
	case m.RTT > 0:
		n.pingMillis = int(m.RTT.Milliseconds())
	}
	if m.Self {
		n.timestamp = GetNowInMillis()
	}
	return n
}

// view is an immutable snapshot of the membership, swapped atomically.
type view struct {
	nodes  []*Node // the local node first
	byAddr map[netip.AddrPort]*Node
}

func newView(ms []swim.Member) *view {
	v := &view{nodes: make([]*Node, len(ms)), byAddr: make(map[netip.AddrPort]*Node, len(ms))}
	for i, m := range ms {
		n := nodeFromMember(m)
		v.nodes[i] = n
		v.byAddr[n.addr] = n
	}
	return v
}

// listenerQueue runs one listener's calls in order in its own goroutine.
// Past its limit (Limits.ListenerBacklog) events are dropped, counted and
// logged: a listener that blocks forever must not grow memory without bound.
type listenerQueue struct {
	limit   int
	mu      sync.Mutex
	cond    *sync.Cond
	items   []func()
	closed  bool
	dropped uint64
	idle    bool
	started bool          // the goroutine starts with the first event
	done    chan struct{} // closed once everything queued before close is delivered
}

func newListenerQueue(limit int) *listenerQueue {
	q := &listenerQueue{limit: limit, idle: true, done: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// push queues f; it reports false when the backlog is full.
func (q *listenerQueue) push(f func()) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return true
	}
	if len(q.items) >= q.limit {
		q.dropped++
		return false
	}
	q.items = append(q.items, f)
	if !q.started {
		q.started = true
		q.idle = false
		go q.run()
	}
	q.cond.Broadcast()
	return true
}

func (q *listenerQueue) run() {
	defer close(q.done)
	for {
		q.mu.Lock()
		for len(q.items) == 0 && !q.closed {
			q.idle = true
			q.cond.Broadcast()
			q.cond.Wait()
		}
		if len(q.items) == 0 {
			q.idle = true
			q.cond.Broadcast()
			q.mu.Unlock()
			return
		}
		batch := q.items
		q.items = nil
		q.idle = false
		q.mu.Unlock()
		for _, f := range batch {
			f()
		}
	}
}

// close lets the goroutine finish what is queued and exit.
func (q *listenerQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	if !q.started {
		close(q.done)
	}
	q.cond.Broadcast()
}

// wait blocks until everything queued so far has been delivered.
func (q *listenerQueue) wait() {
	q.mu.Lock()
	for len(q.items) > 0 || !q.idle {
		q.cond.Wait()
	}
	q.mu.Unlock()
}
