package sim

import (
	"runtime"
	"slices"
	"sync"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
)

// Bootstrap starts every node of nodes that is not up and gives each of
// them a full view: every other one ALIVE at its current incarnation, as if
// the cluster had formed long ago and the join gossip had died down. This is
// how very large clusters are simulated without simulating their formation.
//
// The view is handed over as join answers (sync packets) from the others,
// so the engines take the path they take for a real join, minus the
// network: no packet is counted, nothing is lost, and the engines' events
// about it are not reported (observers get one ActBootstrap instead). The
// engines first reserve room for the whole view and are quiet while they
// take it (swim.Engine.Reserve, SetQuiet): they queue no gossip about it,
// output no events, and their member tables are sized once.
//
// The engines take their views in parallel, one goroutine per CPU: each
// engine is touched by one goroutine only and gets the same packets in the
// same order whatever the schedule, and what they output is then taken in
// node order, so the run stays reproducible from its seed.
func (s *Sim) Bootstrap(nodes []*Node) {
	for _, n := range nodes {
		if !n.Up {
			s.boot(n)
		}
	}
	if len(nodes) < 2 {
		s.act(&Action{Kind: ActBootstrap, Nodes: nodes})
		for _, n := range nodes {
			s.quietFlush(n)
		}
		return
	}
	// Cut the nodes into packets of updates. Each packet is sent by one of
	// its own subjects; a node never receives a packet from itself, so each
	// packet has a second version sent by another of its subjects.
	type chunk struct {
		first, second []byte
		sender        int // node index of first's sender
	}
	limit := s.cfg.Engine.MaxPacketBytes
	if limit == 0 {
		limit = 1400
	}
	var chunks []chunk
	for i := 0; i < len(nodes); {
		j := i
		hdr := func(k int) []byte {
			h := wire.Header{Flags: wire.HeaderFlagSync, Cluster: s.cfg.Engine.ClusterID,
				Sender: nodes[k].Addr, Incarnation: nodes[k].Engine.Incarnation()}
			return wire.AppendHeader(make([]byte, 0, limit), h)
		}
		a := hdr(i)
		for ; j < len(nodes); j++ {
			u := wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive,
				Incarnation: nodes[j].Engine.Incarnation(), Subject: nodes[j].Addr}
			if len(a)+u.EncodedLen() > limit {
				break
			}
			a = u.AppendTo(a)
		}
		c := chunk{first: a, sender: nodes[i].Index}
		if j-i >= 2 {
			b := hdr(i + 1)
			c.second = append(b, a[len(hdr(i)):]...)
		} else if len(chunks) > 0 || j < len(nodes) {
			// A chunk of one node: the other version comes from any other.
			k := i - 1
			if k < 0 {
				k = j
			}
			b := hdr(k)
			c.second = append(b, a[len(hdr(i)):]...)
		}
		chunks = append(chunks, c)
		i = j
	}
	now := s.Now()
	// Engines answer join answers with nothing but events, which are
	// dropped; any packet is kept and sent below, in order.
	held := make([][]swim.Packet, len(nodes))
	feed := func(k int) {
		n := nodes[k]
		n.Engine.Reserve(len(nodes) - 1)
		n.Engine.SetQuiet(true)
		defer n.Engine.SetQuiet(false)
		for _, c := range chunks {
			p := c.first
			if c.sender == n.Index {
				p = c.second
			}
			if p != nil {
				n.Engine.Receive(now, nodes[0].Addr, p)
			}
			pkts, _ := n.Engine.Outbox()
			for _, pk := range pkts {
				pk.Data = slices.Clone(pk.Data)
				held[k] = append(held[k], pk)
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(nodes))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w; k < len(nodes); k += workers {
				feed(k)
			}
		}()
	}
	wg.Wait()
	s.quiet = true
	for k, n := range nodes {
		for i := range held[k] {
			s.send(n, &held[k][i])
		}
		s.flush(n)
	}
	s.quiet = false
	s.act(&Action{Kind: ActBootstrap, Nodes: nodes})
}

// quietFlush drops n's output (there is none but events) and schedules its
// tick.
func (s *Sim) quietFlush(n *Node) {
	q := s.quiet
	s.quiet = true
	s.flush(n)
	s.quiet = q
}
