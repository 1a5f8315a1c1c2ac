package smudge

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memLogger is a Logger that keeps what it is given.
type memLogger struct {
	mu    sync.Mutex
	lines []string
}

func (m *memLogger) Log(level LogLevel, a ...interface{}) (int, error) {
	return m.Logf(level, "%s", fmt.Sprint(a...))
}

func (m *memLogger) Logf(level LogLevel, format string, a ...interface{}) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	line := level.String() + " " + fmt.Sprintf(format, a...)
	m.lines = append(m.lines, line)
	return len(line), nil
}

func (m *memLogger) text() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.lines, "\n")
}

// resetDefault puts the package-level API back as a fresh process has it.
func resetDefault(t *testing.T) *memLogger {
	t.Helper()
	stop := func() {
		if c := DefaultCluster(); c != nil {
			c.Shutdown()
		}
		std.mu.Lock()
		std.cluster, std.statusLs, std.bcastLs = nil, nil, nil
		std.mu.Unlock()
		resetDefaultConfigForTest()
		SetLogger(nil)
		stdLog.setThreshold(LogInfo)
		stdThresholdSet.Store(false)
	}
	stop()
	t.Cleanup(stop)
	log := &memLogger{}
	SetLogger(log)
	return log
}

func netipMust(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func freeUDPPort(t *testing.T) int {
	t.Helper()
	tr, err := NewUDPTransport(netipMust("127.0.0.1:0"))
	require.NoError(t, err)
	defer tr.Close()
	return int(tr.LocalAddr().Port())
}

// TestSmudgeEverythingInOnePlace runs the program from Smudge's README,
// unchanged but for the import path, against a peer.
func TestSmudgeEverythingInOnePlace(t *testing.T) {
	resetDefault(t)
	peerCfg := udpConfig(t)
	peerCfg.ClusterName = DefaultClusterName
	peer, err := New(peerCfg)
	require.NoError(t, err)
	peerRec := newRecorder()
	peer.AddBroadcastListener(peerRec)
	require.NoError(t, peer.Start(context.Background()))
	t.Cleanup(func() { peer.Shutdown() })

	// --- the Smudge program ---
	listenPort := freeUDPPort(t)
	SetListenPort(listenPort)
	SetHeartbeatMillis(250)
	SetListenIP(net.ParseIP("127.0.0.1"))
	SetMulticastEnabled(false)
	rec := newRecorder()
	AddStatusListener(rec)
	AddBroadcastListener(rec)
	node, err := CreateNodeByAddress(peer.LocalNode().Address())
	require.NoError(t, err)
	_, err = AddNode(node)
	require.NoError(t, err)
	assert.ErrorIs(t, BroadcastString("too early"), ErrNotStarted, "Smudge v1 panicked here")
	begun := make(chan struct{})
	go func() { Begin(); close(begun) }()
	// --- end ---

	waitFor(t, 10*time.Second, "Begin to join the peer", func() bool { return len(HealthyNodes()) == 2 })
	self := fmt.Sprintf("127.0.0.1:%d", listenPort)
	all := AllNodes()
	require.Len(t, all, 2)
	assert.Equal(t, self, all[0].Address(), "the local node is in AllNodes, first")
	waitFor(t, 5*time.Second, "listeners", func() bool {
		return rec.status(self) == StatusAlive && rec.status(peer.LocalNode().Address()) == StatusAlive
	})

	require.NoError(t, BroadcastString("hello from Begin"))
	waitFor(t, 10*time.Second, "the broadcast", func() bool {
		peerRec.mu.Lock()
		defer peerRec.mu.Unlock()
		return len(peerRec.broadcasts) == 1
	})
	assert.Equal(t, self+" hello from Begin", peerRec.broadcasts[0])

	// A second Begin while the first runs returns at once with an error.
	log := &memLogger{}
	SetLogger(log)
	Begin()
	assert.Contains(t, log.text(), "already started")

	require.NoError(t, DefaultCluster().Shutdown())
	select {
	case <-begun:
	case <-time.After(5 * time.Second):
		t.Fatal("Begin did not return after the default cluster stopped")
	}
}

func TestBeginWithBadEnvironmentLogsAndReturns(t *testing.T) {
	t.Setenv(EnvVarHeartbeatMillis, "abc")
	log := resetDefault(t)
	Begin() // must return, not block or panic
	assert.Contains(t, log.text(), "SMUDGE_HEARTBEAT_MILLIS")
	assert.Contains(t, log.text(), `"abc"`)
	assert.Nil(t, DefaultCluster())
}

func TestBeginWithBusyPortLogsAndReturns(t *testing.T) {
	log := resetDefault(t)
	busy, err := NewUDPTransport(netipMust("127.0.0.1:0"))
	require.NoError(t, err)
	defer busy.Close()
	SetListenPort(int(busy.LocalAddr().Port()))
	SetMulticastEnabled(false)
	Begin()
	assert.Contains(t, log.text(), "Error")
	assert.Contains(t, log.text(), busy.LocalAddr().String())
}

func TestPackageLevelCallsBeforeBegin(t *testing.T) {
	resetDefault(t)
	assert.Empty(t, AllNodes())
	assert.Empty(t, HealthyNodes())
	assert.ErrorIs(t, BroadcastBytes([]byte("x")), ErrNotStarted)
	n, err := CreateNodeByAddress("10.0.0.1:5")
	require.NoError(t, err)
	assert.ErrorIs(t, PingNode(n), ErrNotStarted)
	_, err = RemoveNode(n)
	assert.ErrorIs(t, err, ErrNotStarted)
	UpdateNodeStatus(n, StatusDead, nil) // logged, no panic
	_, err = AddNode(nil)
	assert.Error(t, err)
	added, err := AddNode(n)
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.1:5", added.Address())
	assert.Equal(t, []string{"10.0.0.1:5"}, GetInitialHosts())
	before := GetNowInMillis()
	assert.Less(t, uint32(time.Now().UnixMilli())-before, uint32(1000), "Smudge's 32-bit millisecond clock")
}

func TestBeginHonoursSmudgeLogLevel(t *testing.T) {
	t.Setenv(EnvVarLogLevel, "error")
	log := resetDefault(t)
	resetDefaultConfigForTest()
	SetListenPort(freeUDPPort(t))
	SetMulticastEnabled(false)
	begun := make(chan struct{})
	go func() { Begin(); close(begun) }()
	waitFor(t, 5*time.Second, "Begin to start", func() bool { c := DefaultCluster(); return c != nil && c.Running() })
	require.NoError(t, DefaultCluster().Shutdown())
	select {
	case <-begun:
	case <-time.After(5 * time.Second):
		t.Fatal("Begin did not return after the default cluster stopped")
	}
	assert.NotContains(t, log.text(), "listening on", "Info messages are below SMUDGE_LOG_LEVEL=error")
}
