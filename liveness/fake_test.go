package liveness

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge"
)

// fakeClock is a manual clock: timers fire, in order, inside Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) stopper {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// Advance moves the clock forward by d, firing every timer due on the way,
// each at its own time.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.stopped && !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool { return t.stopped })
			c.mu.Unlock()
			return
		}
		next.stopped = true
		c.now = next.at
		c.mu.Unlock()
		next.f()
	}
}

// fakeNet is an in-memory cluster with a perfect, instant membership view:
// every running node sees every node. Broadcasts and metadata changes are
// queued and handed to the stores by settle, in order.
type fakeNet struct {
	t     *testing.T
	clock *fakeClock

	mu    sync.Mutex
	nodes []*fakeNode
	queue []func()
	sent  []sentMsg                     // every broadcast, for assertions
	drop  func(from, to *fakeNode) bool // nil: deliver everything
}

type sentMsg struct {
	from    string
	payload []byte
}

type fakeNode struct {
	net    *fakeNet
	addr   netip.AddrPort
	store  *Store
	meta   []byte
	status smudge.NodeStatus
	left   bool
	run    bool
}

func newFakeNet(t *testing.T) *fakeNet {
	return &fakeNet{t: t, clock: newFakeClock()}
}

const testToken = "a-token-of-24-characters"

// add starts a node at 10.0.0.i:9999 with cfg (ID defaults to "i", the
// logger discards) and returns it running.
func (n *fakeNet) add(i int, cfg Config) *fakeNode {
	n.t.Helper()
	node, err := n.tryAdd(i, cfg)
	require.NoError(n.t, err)
	return node
}

func (n *fakeNet) tryAdd(i int, cfg Config) (*fakeNode, error) {
	if cfg.ID == "" {
		cfg.ID = fmt.Sprint(i)
	}
	if cfg.Logger == nil {
		cfg.Logger = discard
	}
	node := &fakeNode{net: n, addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 9999)}
	s, err := newStore(node, "test", 256, cfg, n.clock)
	if err != nil {
		return nil, err
	}
	node.store = s
	n.mu.Lock()
	n.nodes = slices.DeleteFunc(n.nodes, func(o *fakeNode) bool { return o.addr == node.addr }) // a restart
	node.status, node.run = smudge.StatusAlive, true
	n.nodes = append(n.nodes, node)
	n.queue = append(n.queue, s.onLocalStatus)
	n.notifyOthersLocked(node)
	n.mu.Unlock()
	return node, nil
}

// notifyOthersLocked tells the other running nodes that node changed.
func (n *fakeNet) notifyOthersLocked(node *fakeNode) {
	for _, o := range n.nodes {
		if o != node && o.run {
			n.queue = append(n.queue, o.store.evaluate)
		}
	}
}

// settle delivers everything queued, and what that causes, until nothing
// is left.
func (n *fakeNet) settle() {
	for {
		n.mu.Lock()
		if len(n.queue) == 0 {
			n.mu.Unlock()
			return
		}
		f := n.queue[0]
		n.queue = n.queue[1:]
		n.mu.Unlock()
		f()
	}
}

// waitGone waits for the node's leave (run by the store in a goroutine),
// then settles what it caused.
func (n *fakeNet) waitGone(node *fakeNode) {
	n.t.Helper()
	select {
	case <-node.store.Gone():
	case <-time.After(10 * time.Second):
		n.t.Fatalf("node %s did not leave", node.store.ID())
	}
	n.settle()
}

// crash stops a node without telling anyone; others see it DEAD.
func (n *fakeNet) crash(node *fakeNode) {
	n.mu.Lock()
	node.run, node.status = false, smudge.StatusDead
	node.store.Close()
	n.notifyOthersLocked(node)
	n.mu.Unlock()
}

// broadcasts returns the payloads broadcast so far by the node with addr
// 10.0.0.i, or by anyone for i == 0.
func (n *fakeNet) broadcasts(i int) [][]byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out [][]byte
	for _, s := range n.sent {
		if i == 0 || s.from == fmt.Sprintf("10.0.0.%d:9999", i) {
			out = append(out, s.payload)
		}
	}
	return out
}

// The cluster interface.

func (f *fakeNode) members() []member {
	n := f.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if !f.run && !f.left {
		return nil
	}
	now := n.clock.Now()
	out := []member{{addr: f.addr, status: f.status, left: f.left, local: true, lastHeard: now, meta: f.meta}}
	for _, o := range n.nodes {
		if o != f {
			out = append(out, member{addr: o.addr, status: o.status, left: o.left, lastHeard: now.Add(-1200 * time.Millisecond), meta: o.meta})
		}
	}
	return out
}

func (f *fakeNode) setMeta(meta []byte) error {
	n := f.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if !f.run {
		return smudge.ErrStopped
	}
	f.meta = append([]byte(nil), meta...)
	n.notifyOthersLocked(f)
	return nil
}

func (f *fakeNode) broadcast(p []byte) error {
	n := f.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if !f.run {
		return smudge.ErrStopped
	}
	p = append([]byte(nil), p...)
	n.sent = append(n.sent, sentMsg{from: f.addr.String(), payload: p})
	for _, o := range n.nodes {
		if o != f && o.run && (n.drop == nil || !n.drop(f, o)) {
			s := o.store
			n.queue = append(n.queue, func() { s.onBroadcast(p) })
		}
	}
	return nil
}

func (f *fakeNode) leave(context.Context) error {
	n := f.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if !f.run {
		return smudge.ErrStopped
	}
	f.run, f.status, f.left = false, smudge.StatusDead, true
	n.notifyOthersLocked(f)
	return nil
}

func (f *fakeNode) running() bool {
	f.net.mu.Lock()
	defer f.net.mu.Unlock()
	return f.run
}
