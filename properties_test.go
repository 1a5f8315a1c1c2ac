package smudge

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// resetProps clears the SMUDGE_* environment, applies env, reloads the
// default configuration and reloads it again once the test is over.
func resetProps(t *testing.T, env map[string]string) {
	t.Helper()
	clearSmudgeEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
	resetDefaultConfigForTest()
	t.Cleanup(resetDefaultConfigForTest)
}

func TestPropertiesDefaults(t *testing.T) {
	resetProps(t, nil)
	assert.Equal(t, DefaultClusterName, GetClusterName())
	assert.Equal(t, DefaultHeartbeatMillis, GetHeartbeatMillis())
	assert.Empty(t, GetInitialHosts())
	assert.Equal(t, DefaultListenPort, GetListenPort())
	assert.Equal(t, DefaultListenIP, GetListenIP().String())
	assert.Equal(t, DefaultMaxBroadcastBytes, GetMaxBroadcastBytes())
	assert.Equal(t, DefaultMinPingTime, GetMinPingTime())
	assert.Equal(t, DefaultPingHistoryFrontload, GetPingHistoryFrontload())
	assert.True(t, GetMulticastEnabled())
	assert.Equal(t, DefaultMulticastAnnounceIntervalSeconds, GetMulticastAnnounceIntervalSeconds())
	assert.Equal(t, DefaultMulticastAddress, GetMulticastAddress())
	assert.Equal(t, DefaultMulticastPort, GetMulticastPort())

	c, err := defaultConfigSnapshot()
	require.NoError(t, err)
	assert.Equal(t, DefaultConfig(), c)
}

func TestPropertiesFromEnvironment(t *testing.T) {
	resetProps(t, everyVariable)
	assert.Equal(t, "prod", GetClusterName())
	assert.Equal(t, 500, GetHeartbeatMillis())
	assert.Equal(t, []string{"10.0.0.1:9999", "10.0.0.2", "[::1]:7000", "db.example.com", "localhost:1234"}, GetInitialHosts())
	assert.Equal(t, 10000, GetListenPort())
	assert.True(t, GetListenIP().Equal(net.IPv4zero))
	assert.Equal(t, 512, GetMaxBroadcastBytes())
	assert.Equal(t, 100, GetMinPingTime())
	assert.Equal(t, 300, GetPingHistoryFrontload())
	assert.False(t, GetMulticastEnabled())
	assert.Equal(t, 10, GetMulticastAnnounceIntervalSeconds())
	assert.Equal(t, "239.1.2.3", GetMulticastAddress())
	assert.Equal(t, 9000, GetMulticastPort())

	c, err := defaultConfigSnapshot()
	require.NoError(t, err)
	checkEveryVariable(t, c)
}

func TestPropertiesLoadedLazilyOnce(t *testing.T) {
	resetProps(t, map[string]string{EnvVarClusterName: "first"})
	assert.Equal(t, "first", GetClusterName())
	// Later changes to the environment are not seen until a reset.
	t.Setenv(EnvVarClusterName, "second")
	assert.Equal(t, "first", GetClusterName())
	resetDefaultConfigForTest()
	assert.Equal(t, "second", GetClusterName())
}

func TestPropertiesSetters(t *testing.T) {
	resetProps(t, nil)
	SetClusterName("mine")
	SetHeartbeatMillis(100)
	SetListenPort(12345)
	SetListenIP(net.ParseIP("::1"))
	SetMaxBroadcastBytes(300)
	SetMinPingTime(50)
	SetPingHistoryFrontload(75)
	SetMulticastEnabled(false)
	SetMulticastAnnounceIntervalSeconds(30)
	SetMulticastAddress("[ff02::1]")
	SetMulticastPort(8888)

	assert.Equal(t, "mine", GetClusterName())
	assert.Equal(t, 100, GetHeartbeatMillis())
	assert.Equal(t, 12345, GetListenPort())
	assert.True(t, GetListenIP().Equal(net.IPv6loopback))
	assert.Equal(t, 300, GetMaxBroadcastBytes())
	assert.Equal(t, 50, GetMinPingTime())
	assert.Equal(t, 75, GetPingHistoryFrontload())
	assert.False(t, GetMulticastEnabled())
	assert.Equal(t, 30, GetMulticastAnnounceIntervalSeconds())
	assert.Equal(t, "ff02::1", GetMulticastAddress())
	assert.Equal(t, 8888, GetMulticastPort())

	c, err := defaultConfigSnapshot()
	require.NoError(t, err)
	assert.Equal(t, "mine", c.ClusterName)
	assert.Equal(t, 100*time.Millisecond, c.HeartbeatInterval)
	assert.Equal(t, 12345, c.ListenPort)
	assert.True(t, c.ListenIP.Equal(net.IPv6loopback))
	assert.Equal(t, 300, c.MaxBroadcastBytes)
	assert.Equal(t, 50*time.Millisecond, c.MinPingTime)
	assert.Equal(t, 75*time.Millisecond, c.PingHistoryFrontload)
	assert.False(t, c.MulticastEnabled)
	assert.Equal(t, 30*time.Second, c.MulticastAnnounceInterval)
	assert.Equal(t, "ff02::1", c.MulticastAddress)
	assert.Equal(t, 8888, c.MulticastPort)
	assert.NoError(t, c.Validate())
}

func TestPropertiesZeroRestoresDefault(t *testing.T) {
	resetProps(t, everyVariable)
	SetClusterName("")
	SetHeartbeatMillis(0)
	SetListenPort(0)
	SetListenIP(nil)
	SetMaxBroadcastBytes(0)
	SetMinPingTime(0)
	SetPingHistoryFrontload(0)
	SetMulticastAnnounceIntervalSeconds(0)
	SetMulticastAddress("")
	SetMulticastPort(0)

	assert.Equal(t, DefaultClusterName, GetClusterName())
	assert.Equal(t, DefaultHeartbeatMillis, GetHeartbeatMillis())
	assert.Equal(t, DefaultListenPort, GetListenPort())
	assert.Equal(t, DefaultListenIP, GetListenIP().String())
	assert.Equal(t, DefaultMaxBroadcastBytes, GetMaxBroadcastBytes())
	assert.Equal(t, DefaultMinPingTime, GetMinPingTime())
	assert.Equal(t, DefaultPingHistoryFrontload, GetPingHistoryFrontload())
	assert.Equal(t, DefaultMulticastAnnounceIntervalSeconds, GetMulticastAnnounceIntervalSeconds())
	assert.Equal(t, DefaultMulticastAddress, GetMulticastAddress())
	assert.Equal(t, DefaultMulticastPort, GetMulticastPort())
	_, err := defaultConfigSnapshot()
	assert.NoError(t, err)
}

func TestPropertiesBadSetterValues(t *testing.T) {
	tests := []struct {
		name  string
		set   func()
		get   func() any
		def   any
		words []string
	}{
		{"heartbeat", func() { SetHeartbeatMillis(-1) }, func() any { return GetHeartbeatMillis() }, DefaultHeartbeatMillis, []string{"SetHeartbeatMillis(-1)", "negative"}},
		{"listen port negative", func() { SetListenPort(-5) }, func() any { return GetListenPort() }, DefaultListenPort, []string{"SetListenPort(-5)", "negative"}},
		{"listen port too big", func() { SetListenPort(70000) }, func() any { return GetListenPort() }, DefaultListenPort, []string{"SetListenPort(70000)", "out of range"}},
		{"listen IP", func() { SetListenIP(net.IP{1, 2}) }, func() any { return GetListenIP().String() }, DefaultListenIP, []string{"SetListenIP", "not a valid IP"}},
		{"max broadcast", func() { SetMaxBroadcastBytes(-1) }, func() any { return GetMaxBroadcastBytes() }, DefaultMaxBroadcastBytes, []string{"SetMaxBroadcastBytes(-1)"}},
		{"min ping", func() { SetMinPingTime(-2) }, func() any { return GetMinPingTime() }, DefaultMinPingTime, []string{"SetMinPingTime(-2)"}},
		{"frontload", func() { SetPingHistoryFrontload(-3) }, func() any { return GetPingHistoryFrontload() }, DefaultPingHistoryFrontload, []string{"SetPingHistoryFrontload(-3)"}},
		{"announce", func() { SetMulticastAnnounceIntervalSeconds(-4) }, func() any { return GetMulticastAnnounceIntervalSeconds() }, DefaultMulticastAnnounceIntervalSeconds, []string{"SetMulticastAnnounceIntervalSeconds(-4)"}},
		{"multicast address", func() { SetMulticastAddress("10.0.0.1") }, func() any { return GetMulticastAddress() }, DefaultMulticastAddress, []string{"SetMulticastAddress", "10.0.0.1", "not a multicast"}},
		{"multicast address garbage", func() { SetMulticastAddress("group") }, func() any { return GetMulticastAddress() }, DefaultMulticastAddress, []string{"SetMulticastAddress", "group", "not an IP"}},
		{"multicast port", func() { SetMulticastPort(-6) }, func() any { return GetMulticastPort() }, DefaultMulticastPort, []string{"SetMulticastPort(-6)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resetProps(t, nil)
			tt.set()
			assert.Equal(t, tt.def, tt.get())
			_, err := defaultConfigSnapshot()
			require.Error(t, err)
			for _, w := range tt.words {
				assert.Contains(t, err.Error(), w)
			}
			assert.Contains(t, err.Error(), "using the default")
		})
	}
}

func TestPropertiesGoodSetterClearsProblem(t *testing.T) {
	resetProps(t, map[string]string{EnvVarHeartbeatMillis: "abc", EnvVarMulticastPort: "x"})
	_, err := defaultConfigSnapshot()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `SMUDGE_HEARTBEAT_MILLIS="abc"`)
	assert.Contains(t, err.Error(), `SMUDGE_MULTICAST_PORT="x"`)
	assert.Equal(t, DefaultHeartbeatMillis, GetHeartbeatMillis())

	// Replacing the bad environment value clears its problem.
	SetHeartbeatMillis(300)
	_, err = defaultConfigSnapshot()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), EnvVarHeartbeatMillis)
	assert.Contains(t, err.Error(), EnvVarMulticastPort)

	SetMulticastPort(0)
	c, err := defaultConfigSnapshot()
	require.NoError(t, err)
	assert.Equal(t, 300*time.Millisecond, c.HeartbeatInterval)

	// A bad setter value is reported until a good one replaces it.
	SetMinPingTime(-1)
	_, err = defaultConfigSnapshot()
	require.Error(t, err)
	SetMinPingTime(10)
	_, err = defaultConfigSnapshot()
	require.NoError(t, err)
}

func TestPropertiesEnvErrorIsRemembered(t *testing.T) {
	resetProps(t, map[string]string{EnvVarListenIP: "nope", EnvVarClusterName: "c"})
	assert.Equal(t, "c", GetClusterName())
	assert.Equal(t, DefaultListenIP, GetListenIP().String())
	c, err := defaultConfigSnapshot()
	require.Error(t, err)
	assert.Equal(t, `SMUDGE_LISTEN_IP="nope": not an IP address`, err.Error())
	assert.Equal(t, "c", c.ClusterName)
}

func TestPropertiesReturnCopies(t *testing.T) {
	resetProps(t, map[string]string{EnvVarInitialHosts: "a,b"})
	hosts := GetInitialHosts()
	hosts[0] = "changed"
	assert.Equal(t, []string{"a", "b"}, GetInitialHosts())

	ip := GetListenIP()
	ip[len(ip)-1] = 99
	assert.Equal(t, DefaultListenIP, GetListenIP().String())

	mine := net.ParseIP("10.0.0.1")
	SetListenIP(mine)
	mine[len(mine)-1] = 2
	assert.Equal(t, "10.0.0.1", GetListenIP().String())

	c, err := defaultConfigSnapshot()
	require.NoError(t, err)
	c.InitialHosts[0] = "changed"
	c.ListenIP[len(c.ListenIP)-1] = 3
	assert.Equal(t, []string{"a", "b"}, GetInitialHosts())
	assert.Equal(t, "10.0.0.1", GetListenIP().String())
}

func TestPropertiesAddDefaultInitialHost(t *testing.T) {
	resetProps(t, map[string]string{EnvVarInitialHosts: "a"})
	before := GetInitialHosts()
	addDefaultInitialHost("b:1")
	addDefaultInitialHost("b:1")
	addDefaultInitialHost("[::1]:2")
	assert.Equal(t, []string{"a", "b:1", "[::1]:2"}, GetInitialHosts())
	assert.Equal(t, []string{"a"}, before)

	c, err := defaultConfigSnapshot()
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b:1", "[::1]:2"}, c.InitialHosts)
}

func TestPropertiesConcurrent(t *testing.T) {
	resetProps(t, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 200; i++ {
			SetHeartbeatMillis(i)
			addDefaultInitialHost("h")
			SetMulticastEnabled(i%2 == 0)
		}
	}()
	for i := 0; i < 200; i++ {
		_ = GetHeartbeatMillis()
		_ = GetInitialHosts()
		_, _ = defaultConfigSnapshot()
	}
	<-done
	assert.Equal(t, 200, GetHeartbeatMillis())
	assert.Equal(t, []string{"h"}, GetInitialHosts())
}
