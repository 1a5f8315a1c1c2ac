package main

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

// countingML counts what a memberlist node sends: UDP packets by WriteTo,
// stream bytes by wrapping every connection it dials or accepts, and the
// streams it dials. With mark set, the sockets it dials carry its port as
// SO_MARK, so that iptables can cut them off when the node is paused.
type countingML struct {
	*memberlist.NetTransport
	c       *counters
	mark    int
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
}

func newCountingML(c *counters, mark bool) (*countingML, error) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"}, BindPort: 0, Logger: nil,
	})
	if err != nil {
		return nil, err
	}
	t := &countingML{NetTransport: nt, c: c, streams: make(chan net.Conn), done: make(chan struct{})}
	if mark {
		t.mark = nt.GetAutoBindPort()
	}
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

// DialAddressTimeout dials as NetTransport does (a net.Dialer with the
// timeout), marking the socket when asked to.
func (t *countingML) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	t.c.streams.Add(1)
	d := net.Dialer{Timeout: timeout}
	if t.mark != 0 {
		mark := t.mark
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, mark)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	conn, err := d.Dial("tcp", addr.Addr)
	if err != nil {
		return nil, err
	}
	return countingConn{conn, t.c}, nil
}

func (t *countingML) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *countingML) StreamCh() <-chan net.Conn { return t.streams }

// mlNode is one memberlist node and the delegates that report to the
// tracker. User broadcasts spread as Serf's do: queued at the origin, and
// re-queued by each node the first time it receives them.
type mlNode struct {
	i     int
	tr    *tracker
	ml    *memberlist.Memberlist
	port  int
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
	// pushPull is the push-pull period memberlist uses at this size.
	pushPull time.Duration
}

func (m *mlCluster) size() int             { return len(m.nodes) }
func (m *mlCluster) liveMembers(i int) int { return m.nodes[i].liveMembers() }
func (m *mlCluster) addr(i int) string     { return m.nodes[i].addr() }
func (m *mlCluster) port(i int) int        { return m.nodes[i].port }

// sent is what the nodes handed their transports: UDP payloads, and the
// payload bytes of TCP streams.
func (m *mlCluster) sent() payload {
	return payload{udpPkts: m.cnt.packets.Load(), udpBytes: m.cnt.bytes.Load() - m.cnt.tcpBytes.Load(),
		tcpBytes: m.cnt.tcpBytes.Load(), streams: m.cnt.streams.Load()}
}

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

// mlConfig is memberlist's configuration for cfg.
func mlConfig(cfg config) *memberlist.Config {
	c := memberlist.DefaultLANConfig()
	if cfg.memberlistInterval > 0 {
		c.ProbeInterval = cfg.memberlistInterval
		c.ProbeTimeout = cfg.memberlistTimeout
	}
	return c
}

// startMemberlist makes n nodes and has nodes 1..n-1 join node 0 at once.
// It returns when every Join call has returned; the join began at the
// returned time. On error the nodes made are stopped.
func startMemberlist(n int, cfg config, tr *tracker, mark bool) (*mlCluster, time.Time, error) {
	cnt := &counters{}
	m := &mlCluster{cnt: cnt, pushPull: pushPullPeriod(n)}
	fail := func(err error) (*mlCluster, time.Time, error) {
		m.stop()
		return nil, time.Time{}, err
	}
	for i := range n {
		t, err := newCountingML(cnt, mark)
		if err != nil {
			return fail(err)
		}
		c := mlConfig(cfg)
		c.Name = fmt.Sprintf("node%d", i)
		c.Transport = t
		c.BindAddr = "127.0.0.1"
		c.BindPort = t.GetAutoBindPort()
		c.AdvertisePort = c.BindPort
		c.LogOutput = io.Discard
		c.AdvertiseAddr = "127.0.0.1"
		node := &mlNode{i: i, tr: tr, port: c.BindPort}
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
			return fail(fmt.Errorf("create node %d: %w", i, err))
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
		return fail(err)
	}
	return m, joinStart, nil
}

// pushPullPeriod is memberlist's push-pull period at n nodes with
// DefaultLANConfig (30 s), scaled as its pushPullScale does: unchanged up
// to 32 nodes, then one more period per doubling.
func pushPullPeriod(n int) time.Duration {
	base := memberlist.DefaultLANConfig().PushPullInterval
	mult := 1
	for k := 32; k < n; k *= 2 {
		mult++
	}
	return time.Duration(mult) * base
}
