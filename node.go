package smudge

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// NodeStatus is a member's status as Smudge reports it.
type NodeStatus byte

// Node statuses, with Smudge's values.
const (
	// StatusUnknown: not (or no longer) known.
	StatusUnknown NodeStatus = iota
	// StatusAlive: answering, or refuted every suspicion.
	StatusAlive
	// StatusSuspected: missed a probe and all indirect probes; it will be
	// DEAD after the suspicion timeout unless it refutes.
	StatusSuspected
	// StatusDead: declared dead, or left the cluster (see Node.Left).
	StatusDead
	// StatusForwardTo is a Smudge v1 wire-only value. It is kept for
	// source compatibility and never reported.
	StatusForwardTo
)

// String names the status: UNKNOWN, ALIVE, SUSPECTED, DEAD or FORWARD_TO.
func (s NodeStatus) String() string {
	switch s {
	case StatusUnknown:
		return "UNKNOWN"
	case StatusAlive:
		return "ALIVE"
	case StatusSuspected:
		return "SUSPECTED"
	case StatusDead:
		return "DEAD"
	case StatusForwardTo:
		return "FORWARD_TO"
	}
	return fmt.Sprintf("NodeStatus(%d)", byte(s))
}

// Ping results reported by Node.PingMillis.
const (
	// PingNoData: no round trip measured yet.
	PingNoData = -1
	// PingTimedOut: the last probe got no answer.
	PingTimedOut = -2
)

// Node is a snapshot of one member, taken when it was handed out: later
// changes to the member produce new Nodes, never changes to this one.
// Its identity is Address().
type Node struct {
	addr        netip.AddrPort
	status      NodeStatus
	left        bool
	source      netip.AddrPort
	incarnation uint32
	timestamp   uint32
	pingMillis  int
	emitCounter int8
	local       bool
	changed     time.Time
	meta        []byte
}

// newNodeAddr returns an UNKNOWN node for addr.
func newNodeAddr(addr netip.AddrPort) *Node {
	return &Node{addr: addr, pingMillis: PingNoData}
}

// Meta is the node's metadata as last learned (see Config.Meta): nil when
// it has none or it is not known yet. Do not modify it.
func (n *Node) Meta() []byte { return n.meta }

// Address is the node's identity: "ip:port", or "[ip]:port" for IPv6.
func (n *Node) Address() string { return n.addr.String() }

// AddrPort is the node's address as a netip.AddrPort.
func (n *Node) AddrPort() netip.AddrPort { return n.addr }

// IP is the node's IP address.
func (n *Node) IP() net.IP { return net.IP(n.addr.Addr().AsSlice()) }

// Port is the node's UDP port.
func (n *Node) Port() uint16 { return n.addr.Port() }

// Status is the node's status when the snapshot was taken.
func (n *Node) Status() NodeStatus { return n.status }

// Left reports whether a DEAD node left gracefully rather than failed.
func (n *Node) Left() bool { return n.left }

// StatusSource is the node that declared the current status: the node
// itself for ALIVE, its accuser for SUSPECTED and DEAD. It may be nil.
func (n *Node) StatusSource() *Node {
	if !n.source.IsValid() {
		return nil
	}
	if n.source == n.addr {
		return n
	}
	return newNodeAddr(n.source)
}

// Incarnation is the node's incarnation number: it rises each time the node
// refutes a suspicion, leaves, or restarts.
func (n *Node) Incarnation() uint32 { return n.incarnation }

// IsLocal reports whether this is the node running this Cluster.
func (n *Node) IsLocal() bool { return n.local }

// Age is the time in milliseconds since the node was last heard from (as
// of Timestamp).
func (n *Node) Age() uint32 { return GetNowInMillis() - n.timestamp }

// Timestamp is when the node was last heard from, in GetNowInMillis time.
func (n *Node) Timestamp() uint32 { return n.timestamp }

// PingMillis is the last measured round trip in milliseconds; PingNoData
// before any, PingTimedOut while the node is SUSPECTED or DEAD (not left).
func (n *Node) PingMillis() int { return n.pingMillis }

// EmitCounter is how many more times this node's current status will be
// gossiped by the local node.
func (n *Node) EmitCounter() int8 { return n.emitCounter }

// Touch sets this snapshot's Timestamp to now. It changes only this copy.
func (n *Node) Touch() { n.timestamp = GetNowInMillis() }

// String is the node's address and status.
func (n *Node) String() string { return n.Address() + " " + n.status.String() }

// GetNowInMillis is a millisecond clock, as Smudge's: Unix milliseconds
// truncated to 32 bits (it wraps every 49.7 days; differences stay right).
func GetNowInMillis() uint32 { return uint32(time.Now().UnixMilli()) }

func millisOf(t time.Time) uint32 {
	if t.IsZero() {
		return 0
	}
	return uint32(t.UnixMilli())
}
