package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/seed-c7906467/smudge"
)

// countingTransport counts what a smudge node sends.
type countingTransport struct {
	*smudge.UDPTransport
	c *counters
}

func (t countingTransport) WriteTo(b []byte, addr netip.AddrPort) error {
	t.c.packets.Add(1)
	t.c.bytes.Add(uint64(len(b)))
	return t.UDPTransport.WriteTo(b, addr)
}

type smudgeListener struct {
	i  int
	tr *tracker
}

func (l smudgeListener) OnChange(n *smudge.Node, st smudge.NodeStatus) {
	if st == smudge.StatusDead && !n.Left() {
		l.tr.sawDead(l.i, n.Address())
	}
}

func (l smudgeListener) OnBroadcast(b *smudge.Broadcast) { l.tr.deliver(l.i, string(b.Bytes())) }

type smudgeCluster struct{ nodes []*smudge.Cluster }

func (s *smudgeCluster) liveMembers(i int) int {
	n := 0
	for _, m := range s.nodes[i].Members() {
		if st := m.Status(); st == smudge.StatusAlive || st == smudge.StatusSuspected {
			n++
		}
	}
	return n
}

// streams is how many TCP streams the nodes opened (Send and Publish use
// them; membership does not).
func (s *smudgeCluster) streams() uint64 {
	var k uint64
	for _, c := range s.nodes {
		st := c.Stats().Streams
		k += st.Sent + st.SendErrors
	}
	return k
}

func (s *smudgeCluster) broadcast(i int, payload string) error {
	return s.nodes[i].Broadcast([]byte(payload))
}

func (s *smudgeCluster) kill(i int) string {
	addr := s.nodes[i].LocalNode().Address()
	s.nodes[i].Shutdown()
	return addr
}

func (s *smudgeCluster) stop() {
	for _, c := range s.nodes {
		c.Shutdown()
	}
}

func runSmudge(n int, cfg config, p params) result {
	tr, cnt := newTracker(), &counters{}
	s := &smudgeCluster{}
	defer s.stop()
	fail := func(err error) result { return result{err: err, join: -1, broadcast: -1, dead: -1} }
	// Every node is made first; node 0 starts, then the others start
	// together, each joining through node 0, as memberlist's nodes do.
	var seed string
	for i := range n {
		udp, err := smudge.NewUDPTransport(netip.MustParseAddrPort("127.0.0.1:0"))
		if err != nil {
			return fail(err)
		}
		c := smudge.DefaultConfig()
		c.ListenIP = net.ParseIP("127.0.0.1")
		c.ListenPort = int(udp.LocalAddr().Port())
		c.MulticastEnabled = false
		c.LogThreshold = smudge.LogOff
		c.ClusterName = "bench"
		c.Transport = countingTransport{udp, cnt}
		if cfg.smudgeInterval > 0 {
			c.HeartbeatInterval = cfg.smudgeInterval
		}
		if i > 0 {
			c.InitialHosts = []string{seed}
		}
		cl, err := smudge.New(c)
		if err != nil {
			udp.Close()
			return fail(err)
		}
		l := smudgeListener{i, tr}
		cl.AddStatusListener(l)
		cl.AddBroadcastListener(l)
		if i == 0 {
			seed = udp.LocalAddr().String()
		}
		s.nodes = append(s.nodes, cl)
	}
	start := func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.nodes[i].Start(ctx); err != nil {
			return fmt.Errorf("start node %d: %w", i, err)
		}
		return nil
	}
	if err := start(0); err != nil {
		return fail(err)
	}
	joinStart := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := start(i); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fail(err)
	}
	return measure(s, n, tr, cnt, joinStart, p)
}
