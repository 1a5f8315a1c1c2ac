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

type smudgeCluster struct {
	nodes []*smudge.Cluster
	ports []int
	udps  []*smudge.UDPTransport // closed by stop too: Shutdown of a node never started does not
}

func (s *smudgeCluster) size() int         { return len(s.nodes) }
func (s *smudgeCluster) addr(i int) string { return s.nodes[i].LocalNode().Address() }
func (s *smudgeCluster) port(i int) int    { return s.ports[i] }

func (s *smudgeCluster) liveMembers(i int) int {
	n := 0
	for _, m := range s.nodes[i].Members() {
		if st := m.Status(); st == smudge.StatusAlive || st == smudge.StatusSuspected {
			n++
		}
	}
	return n
}

// sent is the nodes' own count (Cluster.Stats, as of each node's last
// protocol period) of the UDP packets and bytes they sent, and of the TCP
// streams they opened (Send and Publish use them; membership does not).
// smudge does not count stream bytes.
func (s *smudgeCluster) sent() payload {
	var p payload
	for _, c := range s.nodes {
		st := c.Stats()
		p.udpPkts += st.PacketsSent
		p.udpBytes += st.BytesSent
		p.streams += st.Streams.Sent + st.Streams.SendErrors
	}
	return p
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
	for _, u := range s.udps {
		_ = u.Close() // an error for those Shutdown closed
	}
}

// smudgeConfig is smudge's configuration for cfg.
func smudgeConfig(cfg config) smudge.Config {
	c := smudge.DefaultConfig()
	if cfg.smudgeInterval > 0 {
		c.HeartbeatInterval = cfg.smudgeInterval
	}
	return c
}

// startSmudge makes n nodes, each on a raw *smudge.UDPTransport (so that
// its streams, TCP on the same port, are on, as in a real deployment),
// starts node 0, then the others together, each joining through node 0, as
// memberlist's nodes do. On error the nodes made are stopped.
func startSmudge(n int, cfg config, tr *tracker) (*smudgeCluster, time.Time, error) {
	s := &smudgeCluster{}
	fail := func(err error) (*smudgeCluster, time.Time, error) {
		s.stop()
		return nil, time.Time{}, err
	}
	var seed string
	for i := range n {
		udp, err := smudge.NewUDPTransport(netip.MustParseAddrPort("127.0.0.1:0"))
		if err != nil {
			return fail(err)
		}
		c := smudgeConfig(cfg)
		c.ListenIP = net.ParseIP("127.0.0.1")
		c.ListenPort = int(udp.LocalAddr().Port())
		c.MulticastEnabled = false
		c.LogThreshold = smudge.LogOff
		c.ClusterName = "bench"
		c.Transport = udp
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
		s.ports = append(s.ports, c.ListenPort)
		s.udps = append(s.udps, udp)
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
	return s, joinStart, nil
}
