package main

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// countingML counts what a memberlist node sends: UDP packets by WriteTo,
// stream bytes by wrapping every connection it dials or accepts, and the
// streams it dials.
type countingML struct {
	*memberlist.NetTransport
	c       *counters
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
}

func newCountingML(c *counters) (*countingML, error) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"}, BindPort: 0, Logger: nil,
	})
	if err != nil {
		return nil, err
	}
	t := &countingML{NetTransport: nt, c: c, streams: make(chan net.Conn), done: make(chan struct{})}
	go func() {
		for {
			select {
			case conn := <-nt.StreamCh():
				select {
				case t.streams <- countingConn{conn, c}:
				case <-t.done:
					conn.Close()
					return
				}
			case <-t.done:
				return
			}
		}
	}()
	return t, nil
}

// Shutdown stops the stream forwarder, then the transport (memberlist calls
// it from its own Shutdown).
func (t *countingML) Shutdown() error {
	t.once.Do(func() { close(t.done) })
	return t.NetTransport.Shutdown()
}

func (t *countingML) WriteTo(b []byte, addr string) (time.Time, error) {
	t.c.packets.Add(1)
	t.c.bytes.Add(uint64(len(b)))
	return t.NetTransport.WriteTo(b, addr)
}

// WriteToAddress and DialAddressTimeout are what memberlist calls on a
// NodeAwareTransport (the embedded NetTransport is one).
func (t *countingML) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	t.c.packets.Add(1)
	t.c.bytes.Add(uint64(len(b)))
	return t.NetTransport.WriteToAddress(b, addr)
}

func (t *countingML) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	t.c.streams.Add(1)
	conn, err := t.NetTransport.DialAddressTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return countingConn{conn, t.c}, nil
}

func (t *countingML) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	t.c.streams.Add(1)
	conn, err := t.NetTransport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return countingConn{conn, t.c}, nil
}

func (t *countingML) StreamCh() <-chan net.Conn { return t.streams }

// mlNode is one memberlist node and the delegates that report to the
// tracker. User broadcasts spread as Serf's do: queued at the origin, and
// re-queued by each node the first time it receives them.
type mlNode struct {
	i     int
	tr    *tracker
	ml    *memberlist.Memberlist
	live  atomic.Pointer[memberlist.Memberlist] // ml, for the queue's callbacks
	queue *memberlist.TransmitLimitedQueue
}

type mlBroadcast []byte

func (b mlBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b mlBroadcast) Message() []byte                       { return b }
func (b mlBroadcast) Finished()                             {}

func (d *mlNode) NodeMeta(int) []byte { return nil }
func (d *mlNode) NotifyMsg(b []byte) {
	if d.tr.deliver(d.i, string(b)) {
		d.queue.QueueBroadcast(mlBroadcast(append([]byte(nil), b...)))
	}
}
func (d *mlNode) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}
func (d *mlNode) LocalState(bool) []byte             { return nil }
func (d *mlNode) MergeRemoteState([]byte, bool)      {}
func (d *mlNode) NotifyJoin(*memberlist.Node)        {}
func (d *mlNode) NotifyUpdate(*memberlist.Node)      {}
func (d *mlNode) NotifyLeave(n *memberlist.Node)     { d.tr.sawDead(d.i, n.Address()) }
func (d *mlNode) liveMembers() int                   { return d.ml.NumMembers() }
func (d *mlNode) String() string                     { return fmt.Sprintf("ml%d", d.i) }
func (d *mlNode) shutdown()                          { d.ml.Shutdown() }
func (d *mlNode) broadcast(payload string)           { d.queue.QueueBroadcast(mlBroadcast(payload)) }
func (d *mlNode) addr() string                       { return d.ml.LocalNode().Address() }
func (d *mlNode) notifyOwn(payload string) (ok bool) { return d.tr.deliver(d.i, payload) }

type mlCluster struct {
	nodes []*mlNode
	cnt   *counters
}

func (m *mlCluster) streams() uint64 { return m.cnt.streams.Load() }

func (m *mlCluster) liveMembers(i int) int { return m.nodes[i].liveMembers() }

func (m *mlCluster) broadcast(i int, payload string) error {
	m.nodes[i].notifyOwn(payload) // the origin does not deliver its own
	m.nodes[i].broadcast(payload)
	return nil
}

func (m *mlCluster) kill(i int) string {
	addr := m.nodes[i].addr()
	m.nodes[i].shutdown()
	return addr
}

func (m *mlCluster) stop() {
	for _, n := range m.nodes {
		n.shutdown()
	}
}

func runMemberlist(n int, cfg config, p params) result {
	tr, cnt := newTracker(), &counters{}
	m := &mlCluster{cnt: cnt}
	defer m.stop()
	for i := range n {
		t, err := newCountingML(cnt)
		if err != nil {
			return result{err: err, join: -1, broadcast: -1, dead: -1}
		}
		c := memberlist.DefaultLANConfig()
		c.Name = fmt.Sprintf("node%d", i)
		c.Transport = t
		c.BindAddr = "127.0.0.1"
		c.BindPort = t.GetAutoBindPort()
		c.AdvertisePort = c.BindPort
		c.LogOutput = io.Discard
		if cfg.memberlistInterval > 0 {
			c.ProbeInterval = cfg.memberlistInterval
			c.ProbeTimeout = 150 * time.Millisecond
		}
		c.AdvertiseAddr = "127.0.0.1"
		node := &mlNode{i: i, tr: tr}
		node.queue = &memberlist.TransmitLimitedQueue{RetransmitMult: c.RetransmitMult, NumNodes: func() int {
			if ml := node.live.Load(); ml != nil {
				return ml.NumMembers()
			}
			return 1
		}}
		c.Delegate = node
		c.Events = node
		ml, err := memberlist.Create(c)
		if err != nil {
			t.Shutdown()
			return result{err: fmt.Errorf("create node %d: %w", i, err), join: -1, broadcast: -1, dead: -1}
		}
		node.ml = ml
		node.live.Store(ml)
		m.nodes = append(m.nodes, node)
	}
	seed := m.nodes[0].addr()
	joinStart := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, node := range m.nodes[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := node.ml.Join([]string{seed}); err != nil {
				errs <- fmt.Errorf("join %v: %w", node, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return result{err: err, join: -1, broadcast: -1, dead: -1}
	}
	return measure(m, n, tr, cnt, joinStart, p)
}
