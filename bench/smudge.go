package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
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
	var seed string
	var joinStart time.Time
	for i := range n {
		udp, err := smudge.NewUDPTransport(netip.MustParseAddrPort("127.0.0.1:0"))
		if err != nil {
			return result{err: err, join: -1, broadcast: -1, dead: -1}
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
			return result{err: err, join: -1, broadcast: -1, dead: -1}
		}
		l := smudgeListener{i, tr}
		cl.AddStatusListener(l)
		cl.AddBroadcastListener(l)
		if i == 1 {
			joinStart = time.Now()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = cl.Start(ctx)
		cancel()
		if err != nil {
			return result{err: fmt.Errorf("start node %d: %w", i, err), join: -1, broadcast: -1, dead: -1}
		}
		if i == 0 {
			seed = cl.LocalNode().Address()
		}
		s.nodes = append(s.nodes, cl)
	}
	return measure(s, n, tr, cnt, joinStart, p)
}
