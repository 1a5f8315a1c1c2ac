// Package smudge is a cluster membership, failure detection and broadcast
// library built on the SWIM gossip protocol, with suspicion and refutation
// by incarnation numbers.
//
// It keeps the API of Smudge (github.com/clockworksoul/smudge): a program
// written for Smudge builds and runs after changing its import path. That
// API is a set of package-level functions over one default Cluster, as
// http.Get is over http.DefaultClient:
//
//	smudge.SetListenPort(9999)
//	smudge.AddStatusListener(myListener{})
//	if node, err := smudge.CreateNodeByAddress("10.0.0.1:9999"); err == nil {
//		smudge.AddNode(node)
//	}
//	smudge.Begin() // blocks
//
// New code can use Clusters directly, as many per process as it likes:
//
//	c, err := smudge.New(cfg)
//	err = c.Start(ctx)
//	defer c.Leave(ctx)
package smudge

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// std is the default Cluster behind the package-level API, with what was
// registered before Begin.
var std struct {
	mu       sync.Mutex
	cluster  *Cluster
	statusLs []StatusListener
	bcastLs  []BroadcastListener
}

// stdLog is the logger of the package-level API and of the default Cluster.
var stdLog = newLevelLogger(nil, LogInfo)

// stdThresholdSet records a SetLogThreshold call, which then wins over
// SMUDGE_LOG_LEVEL.
var stdThresholdSet atomic.Bool

// running returns the default Cluster if it is running.
func running() *Cluster {
	std.mu.Lock()
	defer std.mu.Unlock()
	if std.cluster != nil && std.cluster.Running() {
		return std.cluster
	}
	return nil
}

// DefaultCluster returns the Cluster started by Begin, or nil before Begin.
// Use it to Leave or Shutdown the default node.
func DefaultCluster() *Cluster {
	std.mu.Lock()
	defer std.mu.Unlock()
	return std.cluster
}

// Begin starts the default node with the configuration set through the
// Set* functions and SMUDGE_* variables, and blocks while it runs. A bad
// configuration or a bind failure is logged at LogError and Begin returns.
func Begin() {
	ctx, cancel := context.WithTimeout(context.Background(), beginResolveTimeout)
	c, err := startDefault(ctx)
	cancel()
	if err != nil {
		stdLog.logf(LogError, "smudge: Begin: %v", err)
		return
	}
	<-c.Done()
}

// beginResolveTimeout bounds the name lookups of the initial hosts in Begin.
const beginResolveTimeout = 10 * time.Second

// startDefault creates and starts the default Cluster. No package lock is
// held while it starts (it may resolve names), so the package-level API
// stays usable meanwhile.
func startDefault(ctx context.Context) (*Cluster, error) {
	cfg, err := defaultConfigSnapshot()
	if err != nil {
		return nil, err
	}
	std.mu.Lock()
	if std.cluster != nil && (std.cluster.Running() || std.cluster.starting()) {
		std.mu.Unlock()
		return nil, ErrAlreadyStarted
	}
	c, err := New(cfg)
	if err != nil {
		std.mu.Unlock()
		return nil, err
	}
	if !stdThresholdSet.Load() {
		stdLog.setThreshold(cfg.LogThreshold)
	}
	c.log = stdLog
	for _, l := range std.statusLs {
		c.AddStatusListener(l)
	}
	for _, l := range std.bcastLs {
		c.AddBroadcastListener(l)
	}
	std.cluster = c
	std.mu.Unlock()

	if err := c.Start(ctx); err != nil {
		std.mu.Lock()
		if std.cluster == c {
			std.cluster = nil
		}
		std.mu.Unlock()
		return nil, err
	}
	return c, nil
}

// SetLogger sets the logger of the package-level API and the default node.
// nil restores DefaultLogger.
func SetLogger(l Logger) { stdLog.setLogger(l) }

// SetLogThreshold drops log messages below level (default LogInfo, or
// SMUDGE_LOG_LEVEL). It wins over SMUDGE_LOG_LEVEL.
func SetLogThreshold(level LogLevel) {
	stdThresholdSet.Store(true)
	stdLog.setThreshold(level)
}

// AddStatusListener registers l with the default node (before or after
// Begin). See StatusListener and RemovalListener.
func AddStatusListener(l StatusListener) {
	std.mu.Lock()
	std.statusLs = append(std.statusLs, l)
	c := std.cluster
	std.mu.Unlock()
	if c != nil && c.Running() {
		c.AddStatusListener(l)
	}
}

// AddBroadcastListener registers l with the default node (before or after
// Begin).
func AddBroadcastListener(l BroadcastListener) {
	std.mu.Lock()
	std.bcastLs = append(std.bcastLs, l)
	c := std.cluster
	std.mu.Unlock()
	if c != nil && c.Running() {
		c.AddBroadcastListener(l)
	}
}

// AllNodes returns a snapshot of every node the default node knows, itself
// and dead nodes included; empty before Begin.
func AllNodes() []*Node {
	if c := running(); c != nil {
		return c.Members()
	}
	return []*Node{}
}

// HealthyNodes returns the ALIVE nodes (not SUSPECTED), the local one
// included; empty before Begin.
func HealthyNodes() []*Node {
	if c := running(); c != nil {
		return c.HealthyMembers()
	}
	return []*Node{}
}

// AddNode adds a node to the default node's members: it becomes ALIVE
// (listeners are told) and is pinged at once. Before Begin it is recorded
// as an initial host and added when Begin runs.
func AddNode(node *Node) (*Node, error) {
	if c := running(); c != nil {
		return c.AddNode(node)
	}
	if node == nil || !node.addr.IsValid() {
		return nil, errNilNode
	}
	addDefaultInitialHost(node.Address())
	n := *node
	return &n, nil
}

// RemoveNode makes the default node forget node (RemovalListeners are
// told). It returns ErrNotStarted before Begin.
func RemoveNode(node *Node) (*Node, error) {
	if c := running(); c != nil {
		return c.RemoveNode(node)
	}
	return nil, ErrNotStarted
}

// PingNode probes node now, out of turn.
func PingNode(node *Node) error {
	if c := running(); c != nil {
		return c.PingNode(node)
	}
	return ErrNotStarted
}

// UpdateNodeStatus sets node's status by local decision and gossips it.
// Errors (unknown node, not started) are logged.
func UpdateNodeStatus(node *Node, status NodeStatus, statusSource *Node) {
	c := running()
	if c == nil {
		stdLog.logf(LogWarn, "smudge: UpdateNodeStatus: %v", ErrNotStarted)
		return
	}
	if err := c.UpdateNodeStatus(node, status, statusSource); err != nil {
		stdLog.logf(LogWarn, "smudge: UpdateNodeStatus: %v", err)
	}
}

// BroadcastBytes sends bytes to every other live node once. It returns
// ErrNotStarted before Begin and ErrBroadcastTooLarge past
// GetMaxBroadcastBytes. The slice is copied.
func BroadcastBytes(bytes []byte) error {
	c := running()
	if c == nil {
		return ErrNotStarted
	}
	return c.Broadcast(bytes)
}

// BroadcastString is BroadcastBytes for a string.
func BroadcastString(str string) error { return BroadcastBytes([]byte(str)) }
