package sim

import (
	"net/netip"
	"time"
)

// Push-pull over a virtual stream. A real node carries states over TCP
// (smudge's stream transport); here an exchange is two events: the
// initiator's state reaches the target three one-way latencies after it
// was taken (handshake, then data), the target merges it and answers with
// its own, which arrives one latency later. TCP does not lose data: each
// lost segment (at the link's loss rate) costs a retransmission instead,
// 1 s for the handshake's and 200 ms for the data's, and five in a row
// fail the exchange, as does a partition, or a target that is down. The
// states are not subject to Sim.Filter.

const (
	synRTO      = time.Second
	dataRTO     = 200 * time.Millisecond
	maxRetrans  = 5
	handshakeTx = 2 // SYN, SYN-ACK: the request's data rides the third segment
)

// pushPull starts an exchange from n to the member at a.
func (s *Sim) pushPull(n *Node, a netip.AddrPort) {
	s.Net.PushPulls++
	to := s.byAddr[a]
	if to == nil || !to.Up || s.split && (!s.Reachable(n, to) || !s.Reachable(to, n)) {
		s.pushPullFailed(n, a)
		return
	}
	delay, ok := s.streamDelay(n, to, handshakeTx+1)
	if !ok {
		s.pushPullFailed(n, a)
		return
	}
	state := n.Engine.AppendState(nil)
	s.Net.PushPullBytes += uint64(len(state))
	s.push(simEvent{at: s.now + int64(delay) + to.inDelay, kind: evPushPullReq, node: int32(to.Index), from: int32(n.Index), data: state})
}

// answerPushPull merges the state from sent to n, and sends n's back.
func (s *Sim) answerPushPull(n, from *Node, state []byte) {
	if n.Engine.MergeState(s.Now(), netip.AddrPort{}, state) != nil {
		s.pushPullFailed(from, n.Addr)
		return
	}
	delay, ok := s.streamDelay(n, from, 1)
	if !ok || !from.Up || s.split && !s.Reachable(n, from) {
		s.pushPullFailed(from, n.Addr)
		return
	}
	resp := n.Engine.AppendState(nil)
	s.Net.PushPullBytes += uint64(len(resp))
	s.push(simEvent{at: s.now + int64(delay) + from.inDelay, kind: evPushPullResp, node: int32(from.Index), from: int32(n.Index), data: resp})
}

// pushPullFailed counts a failed exchange that n started with a, and
// tells n's engine, if n is up (it then learns of the failure when its
// stream does: this is a model, not a timeout).
func (s *Sim) pushPullFailed(n *Node, a netip.AddrPort) {
	s.Net.PushPullsFailed++
	if n.Up && n.Engine != nil {
		n.Engine.PushPullFailed(a)
		s.flush(n)
	}
}

// streamDelay is how long legs one-way segments take from a to b, with
// retransmissions of lost ones; false when one segment is lost too often.
func (s *Sim) streamDelay(a, b *Node, legs int) (time.Duration, bool) {
	loss := s.loss
	if len(s.linkLoss) > 0 {
		if l, ok := s.linkLoss[[2]int32{int32(a.Index), int32(b.Index)}]; ok {
			loss = l
		}
	}
	var d time.Duration
	for i := range legs {
		rto := dataRTO
		if i < handshakeTx && legs > 1 {
			rto = synRTO
		}
		tries := 0
		for loss > 0 && s.rng.Float64() < loss {
			if tries++; tries > maxRetrans {
				return 0, false
			}
			d += rto
			rto *= 2
		}
		d += s.latency()
	}
	return d, true
}
