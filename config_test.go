package smudge

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/keyring"
	"github.com/seed-c7906467/smudge/internal/swim"
)

// allEnvVars lists every variable ConfigFromEnv reads.
var allEnvVars = []string{
	EnvVarClusterName, EnvVarHeartbeatMillis, EnvVarInitialHosts, EnvVarListenPort,
	EnvVarListenIP, EnvVarAdvertiseAddress, EnvVarMaxBroadcastBytes, EnvVarMulticastEnabled,
	EnvVarMulticastAnnounceIntervalSeconds, EnvVarMulticastAddress, EnvVarMulticastPort,
	EnvVarPingHistoryFrontload, EnvVarMinPingTime, EnvVarIndirectChecks, EnvVarSuspicionMult,
	EnvVarRemoveDeadAfter, EnvVarMaxPacketBytes, EnvVarBroadcastTTL, EnvVarLogLevel,
}

// mapLookup returns a lookup function over m.
func mapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// clearSmudgeEnv makes every SMUDGE_* variable empty (that is, unset for
// ConfigFromEnv) for the duration of the test.
func clearSmudgeEnv(t *testing.T) {
	t.Helper()
	for _, name := range allEnvVars {
		t.Setenv(name, "")
	}
}

func TestEnvVarNames(t *testing.T) {
	assert.Equal(t, "SMUDGE_CLUSTER_NAME", EnvVarClusterName)
	assert.Equal(t, "SMUDGE_HEARTBEAT_MILLIS", EnvVarHeartbeatMillis)
	assert.Equal(t, "SMUDGE_INITIAL_HOSTS", EnvVarInitialHosts)
	assert.Equal(t, "SMUDGE_LISTEN_PORT", EnvVarListenPort)
	assert.Equal(t, "SMUDGE_LISTEN_IP", EnvVarListenIP)
	assert.Equal(t, "SMUDGE_ADVERTISE_ADDRESS", EnvVarAdvertiseAddress)
	assert.Equal(t, "SMUDGE_MAX_BROADCAST_BYTES", EnvVarMaxBroadcastBytes)
	assert.Equal(t, "SMUDGE_MULTICAST_ENABLED", EnvVarMulticastEnabled)
	assert.Equal(t, "SMUDGE_MULTICAST_ANNOUNCE_INTERVAL", EnvVarMulticastAnnounceIntervalSeconds)
	assert.Equal(t, "SMUDGE_MULTICAST_ADDRESS", EnvVarMulticastAddress)
	assert.Equal(t, "SMUDGE_MULTICAST_PORT", EnvVarMulticastPort)
	assert.Equal(t, "SMUDGE_PING_HISTORY_FRONTLOAD", EnvVarPingHistoryFrontload)
	assert.Equal(t, "SMUDGE_MIN_PING_TIME", EnvVarMinPingTime)
	assert.Equal(t, "SMUDGE_INDIRECT_CHECKS", EnvVarIndirectChecks)
	assert.Equal(t, "SMUDGE_SUSPICION_MULT", EnvVarSuspicionMult)
	assert.Equal(t, "SMUDGE_REMOVE_DEAD_AFTER", EnvVarRemoveDeadAfter)
	assert.Equal(t, "SMUDGE_MAX_PACKET_BYTES", EnvVarMaxPacketBytes)
	assert.Equal(t, "SMUDGE_BROADCAST_TTL", EnvVarBroadcastTTL)
	assert.Equal(t, "SMUDGE_LOG_LEVEL", EnvVarLogLevel)
}

func TestDefaultConfigValues(t *testing.T) {
	c := DefaultConfig()
	assert.Equal(t, "smudge", c.ClusterName)
	assert.True(t, c.ListenIP.Equal(net.IPv4(127, 0, 0, 1)), "ListenIP = %v", c.ListenIP)
	assert.Equal(t, 9999, c.ListenPort)
	assert.Equal(t, "", c.AdvertiseAddr)
	assert.Empty(t, c.InitialHosts)
	assert.Equal(t, 250*time.Millisecond, c.HeartbeatInterval)
	assert.Equal(t, 150*time.Millisecond, c.MinPingTime)
	assert.Equal(t, 200*time.Millisecond, c.PingHistoryFrontload)
	assert.Equal(t, 256, c.MaxBroadcastBytes)
	assert.True(t, c.MulticastEnabled)
	assert.Equal(t, "", c.MulticastAddress)
	assert.Equal(t, 9998, c.MulticastPort)
	assert.Equal(t, time.Duration(0), c.MulticastAnnounceInterval)
	assert.Equal(t, 3, c.IndirectChecks)
	assert.Equal(t, 5, c.SuspicionMult)
	assert.Equal(t, 30*time.Second, c.RemoveDeadAfter)
	assert.Equal(t, 1400, c.MaxPacketBytes)
	assert.Equal(t, 30*time.Second, c.BroadcastTTL)
	assert.Equal(t, LogInfo, c.LogThreshold)
	assert.Nil(t, c.Logger)
	assert.Nil(t, c.Transport)
	assert.Equal(t, int64(0), c.Seed)

	// The exported defaults agree with DefaultConfig.
	assert.Equal(t, DefaultClusterName, c.ClusterName)
	assert.Equal(t, DefaultListenIP, c.ListenIP.String())
	assert.Equal(t, DefaultListenPort, c.ListenPort)
	assert.Equal(t, DefaultHeartbeatMillis, int(c.HeartbeatInterval/time.Millisecond))
	assert.Equal(t, DefaultMinPingTime, int(c.MinPingTime/time.Millisecond))
	assert.Equal(t, DefaultPingHistoryFrontload, int(c.PingHistoryFrontload/time.Millisecond))
	assert.Equal(t, DefaultMaxBroadcastBytes, c.MaxBroadcastBytes)
	assert.Equal(t, "true", DefaultMulticastEnabled)
	assert.Equal(t, DefaultMulticastAddress, c.MulticastAddress)
	assert.Equal(t, DefaultMulticastPort, c.MulticastPort)
	assert.Equal(t, 0, DefaultMulticastAnnounceIntervalSeconds)
	assert.Equal(t, "", DefaultInitialHosts)
	assert.Equal(t, DefaultIndirectChecks, c.IndirectChecks)
	assert.Equal(t, DefaultSuspicionMult, c.SuspicionMult)
	assert.Equal(t, DefaultRemoveDeadAfter, c.RemoveDeadAfter)
	assert.Equal(t, DefaultMaxPacketBytes, c.MaxPacketBytes)
	assert.Equal(t, DefaultBroadcastTTL, c.BroadcastTTL)
	assert.Equal(t, DefaultLogLevel, c.LogThreshold)
}

func TestDefaultConfigValidates(t *testing.T) {
	assert.NoError(t, DefaultConfig().Validate())
}

func TestDefaultConfigIsFresh(t *testing.T) {
	a := DefaultConfig()
	a.ListenIP[0] = 10
	b := DefaultConfig()
	assert.Equal(t, DefaultListenIP, b.ListenIP.String())
}

func TestConfigFromEnvUnsetIsDefault(t *testing.T) {
	c, err := configFromLookup(mapLookup(nil))
	require.NoError(t, err)
	assert.Equal(t, DefaultConfig(), c)

	clearSmudgeEnv(t)
	c, err = ConfigFromEnv()
	require.NoError(t, err)
	assert.Equal(t, DefaultConfig(), c)
}

// everyVariable sets every variable to a value other than its default.
var everyVariable = map[string]string{
	EnvVarClusterName:                      "prod",
	EnvVarHeartbeatMillis:                  "500",
	EnvVarInitialHosts:                     "10.0.0.1:9999, 10.0.0.2 ,[::1]:7000\tdb.example.com\nlocalhost:1234,,",
	EnvVarListenPort:                       "10000",
	EnvVarListenIP:                         "0.0.0.0",
	EnvVarAdvertiseAddress:                 "192.168.1.10:10000",
	EnvVarMaxBroadcastBytes:                "512",
	EnvVarMulticastEnabled:                 "false",
	EnvVarMulticastAnnounceIntervalSeconds: "10",
	EnvVarMulticastAddress:                 "239.1.2.3",
	EnvVarMulticastPort:                    "9000",
	EnvVarPingHistoryFrontload:             "300",
	EnvVarMinPingTime:                      "100",
	EnvVarIndirectChecks:                   "5",
	EnvVarSuspicionMult:                    "6",
	EnvVarRemoveDeadAfter:                  "1m30s",
	EnvVarMaxPacketBytes:                   "1200",
	EnvVarBroadcastTTL:                     "45s",
	EnvVarLogLevel:                         "WARN",
}

func checkEveryVariable(t *testing.T, c Config) {
	t.Helper()
	assert.Equal(t, "prod", c.ClusterName)
	assert.Equal(t, 500*time.Millisecond, c.HeartbeatInterval)
	assert.Equal(t, []string{"10.0.0.1:9999", "10.0.0.2", "[::1]:7000", "db.example.com", "localhost:1234"}, c.InitialHosts)
	assert.Equal(t, 10000, c.ListenPort)
	assert.True(t, c.ListenIP.Equal(net.IPv4zero), "ListenIP = %v", c.ListenIP)
	assert.Equal(t, "192.168.1.10:10000", c.AdvertiseAddr)
	assert.Equal(t, 512, c.MaxBroadcastBytes)
	assert.False(t, c.MulticastEnabled)
	assert.Equal(t, 10*time.Second, c.MulticastAnnounceInterval)
	assert.Equal(t, "239.1.2.3", c.MulticastAddress)
	assert.Equal(t, 9000, c.MulticastPort)
	assert.Equal(t, 300*time.Millisecond, c.PingHistoryFrontload)
	assert.Equal(t, 100*time.Millisecond, c.MinPingTime)
	assert.Equal(t, 5, c.IndirectChecks)
	assert.Equal(t, 6, c.SuspicionMult)
	assert.Equal(t, 90*time.Second, c.RemoveDeadAfter)
	assert.Equal(t, 1200, c.MaxPacketBytes)
	assert.Equal(t, 45*time.Second, c.BroadcastTTL)
	assert.Equal(t, LogWarn, c.LogThreshold)
}

func TestConfigFromEnvEveryVariableMap(t *testing.T) {
	require.Len(t, everyVariable, len(allEnvVars))
	c, err := configFromLookup(mapLookup(everyVariable))
	require.NoError(t, err)
	checkEveryVariable(t, c)
	assert.NoError(t, c.Validate())
}

func TestConfigFromEnvEveryVariableSetenv(t *testing.T) {
	clearSmudgeEnv(t)
	for k, v := range everyVariable {
		t.Setenv(k, v)
	}
	c, err := ConfigFromEnv()
	require.NoError(t, err)
	checkEveryVariable(t, c)
}

func TestConfigFromEnvMoreValues(t *testing.T) {
	tests := []struct {
		name, value string
		check       func(t *testing.T, c Config)
	}{
		{EnvVarListenIP, "::", func(t *testing.T, c Config) { assert.True(t, c.ListenIP.Equal(net.IPv6unspecified)) }},
		{EnvVarListenIP, "[::1]", func(t *testing.T, c Config) { assert.True(t, c.ListenIP.Equal(net.IPv6loopback)) }},
		{EnvVarListenIP, " 10.1.2.3 ", func(t *testing.T, c Config) { assert.Equal(t, "10.1.2.3", c.ListenIP.String()) }},
		{EnvVarMulticastEnabled, "0", func(t *testing.T, c Config) { assert.False(t, c.MulticastEnabled) }},
		{EnvVarMulticastEnabled, "T", func(t *testing.T, c Config) { assert.True(t, c.MulticastEnabled) }},
		{EnvVarMulticastAddress, "[ff02::1]", func(t *testing.T, c Config) { assert.Equal(t, "ff02::1", c.MulticastAddress) }},
		{EnvVarMulticastAddress, "224.0.0.0", func(t *testing.T, c Config) { assert.Equal(t, "224.0.0.0", c.MulticastAddress) }},
		{EnvVarAdvertiseAddress, "10.0.0.5", func(t *testing.T, c Config) { assert.Equal(t, "10.0.0.5", c.AdvertiseAddr) }},
		{EnvVarAdvertiseAddress, "[2001:db8::1]:9999", func(t *testing.T, c Config) { assert.Equal(t, "[2001:db8::1]:9999", c.AdvertiseAddr) }},
		{EnvVarLogLevel, "debug", func(t *testing.T, c Config) { assert.Equal(t, LogDebug, c.LogThreshold) }},
		{EnvVarLogLevel, "7", func(t *testing.T, c Config) { assert.Equal(t, LogOff, c.LogThreshold) }},
		{EnvVarLogLevel, "0", func(t *testing.T, c Config) { assert.Equal(t, LogAll, c.LogThreshold) }},
		{EnvVarInitialHosts, "a b\tc", func(t *testing.T, c Config) { assert.Equal(t, []string{"a", "b", "c"}, c.InitialHosts) }},
		{EnvVarInitialHosts, " , ", func(t *testing.T, c Config) { assert.Empty(t, c.InitialHosts) }},
		{EnvVarMaxPacketBytes, "65507", func(t *testing.T, c Config) { assert.Equal(t, 65507, c.MaxPacketBytes) }},
		{EnvVarIndirectChecks, "16", func(t *testing.T, c Config) { assert.Equal(t, 16, c.IndirectChecks) }},
		{EnvVarListenPort, "65535", func(t *testing.T, c Config) { assert.Equal(t, 65535, c.ListenPort) }},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			c, err := configFromLookup(mapLookup(map[string]string{tt.name: tt.value}))
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestConfigFromEnvZeroRestoresDefault(t *testing.T) {
	zero := map[string]string{
		EnvVarHeartbeatMillis:                  "0",
		EnvVarListenPort:                       "0",
		EnvVarMaxBroadcastBytes:                "0",
		EnvVarMulticastAnnounceIntervalSeconds: "0",
		EnvVarMulticastPort:                    "0",
		EnvVarPingHistoryFrontload:             "0",
		EnvVarMinPingTime:                      "0",
		EnvVarIndirectChecks:                   "0",
		EnvVarSuspicionMult:                    "0",
		EnvVarRemoveDeadAfter:                  "0",
		EnvVarMaxPacketBytes:                   "0",
		EnvVarBroadcastTTL:                     "0s",
	}
	c, err := configFromLookup(mapLookup(zero))
	require.NoError(t, err)
	assert.Equal(t, DefaultConfig(), c)

	clearSmudgeEnv(t)
	for k, v := range zero {
		t.Setenv(k, v)
	}
	c, err = ConfigFromEnv()
	require.NoError(t, err)
	assert.Equal(t, DefaultConfig(), c)
}

func TestConfigFromEnvEmptyRestoresDefault(t *testing.T) {
	empty := make(map[string]string)
	for _, name := range allEnvVars {
		empty[name] = ""
	}
	c, err := configFromLookup(mapLookup(empty))
	require.NoError(t, err)
	assert.Equal(t, DefaultConfig(), c)

	// Whitespace only counts as empty too.
	c, err = configFromLookup(mapLookup(map[string]string{EnvVarClusterName: "  ", EnvVarHeartbeatMillis: " "}))
	require.NoError(t, err)
	assert.Equal(t, DefaultConfig(), c)
}

func TestConfigFromEnvBadValues(t *testing.T) {
	tests := []struct {
		name, value, problem string
	}{
		{EnvVarHeartbeatMillis, "abc", "not an integer number of milliseconds"},
		{EnvVarHeartbeatMillis, "1.5", "not an integer number of milliseconds"},
		{EnvVarHeartbeatMillis, "-5", "negative"},
		{EnvVarHeartbeatMillis, "99999999999999999999", "out of range"},
		{EnvVarHeartbeatMillis, "9223372036854775", "out of range"},
		{EnvVarMinPingTime, "x", "not an integer number of milliseconds"},
		{EnvVarMinPingTime, "-1", "negative"},
		{EnvVarPingHistoryFrontload, "1e3", "not an integer number of milliseconds"},
		{EnvVarListenPort, "http", "not a port number"},
		{EnvVarListenPort, "-1", "negative"},
		{EnvVarListenPort, "65536", "out of range"},
		{EnvVarListenIP, "localhost", "not an IP address"},
		{EnvVarListenIP, "300.1.1.1", "not an IP address"},
		{EnvVarAdvertiseAddress, "0.0.0.0:9999", "unspecified"},
		{EnvVarAdvertiseAddress, "::", "unspecified"},
		{EnvVarAdvertiseAddress, "example.com:9999", "not an IP address"},
		{EnvVarAdvertiseAddress, "10.0.0.1:0", "out of range"},
		{EnvVarAdvertiseAddress, "10.0.0.1:x", "not a number"},
		{EnvVarInitialHosts, "10.0.0.1:99999", "out of range"},
		{EnvVarInitialHosts, "good.host, bad..host", "bad..host"},
		{EnvVarInitialHosts, "10.0.0.1:", "not a number"},
		{EnvVarInitialHosts, ":9999", "empty host"},
		{EnvVarInitialHosts, "[not-v6]:9999", "not an IPv6 address"},
		{EnvVarInitialHosts, "a:b:c", "not an ip"},
		{EnvVarInitialHosts, "1.2.3.999", "not a valid IP address or host name"},
		{EnvVarMaxBroadcastBytes, "many", "not an integer number of bytes"},
		{EnvVarMaxBroadcastBytes, "-10", "negative"},
		{EnvVarMaxBroadcastBytes, "70000", "out of range"},
		{EnvVarMulticastEnabled, "yes", "not a boolean"},
		{EnvVarMulticastAnnounceIntervalSeconds, "10s", "not an integer number of seconds"},
		{EnvVarMulticastAnnounceIntervalSeconds, "-3", "negative"},
		{EnvVarMulticastAddress, "10.0.0.1", "not a multicast IP address"},
		{EnvVarMulticastAddress, "group", "not an IP address"},
		{EnvVarMulticastPort, "70000", "out of range"},
		{EnvVarMulticastPort, "-2", "negative"},
		{EnvVarIndirectChecks, "17", "out of range"},
		{EnvVarIndirectChecks, "three", "not an integer"},
		{EnvVarSuspicionMult, "-1", "negative"},
		{EnvVarRemoveDeadAfter, "30", "not a duration"},
		{EnvVarRemoveDeadAfter, "-5s", "negative"},
		{EnvVarMaxPacketBytes, "100", "out of range 512-65507"},
		{EnvVarMaxPacketBytes, "65508", "out of range 512-65507"},
		{EnvVarBroadcastTTL, "forever", "not a duration"},
		{EnvVarLogLevel, "verbose", "not a log level"},
		{EnvVarLogLevel, "8", "not a log level"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			c, err := configFromLookup(mapLookup(map[string]string{tt.name: tt.value}))
			require.Error(t, err)
			msg := err.Error()
			assert.Contains(t, msg, tt.name)
			assert.Contains(t, msg, `"`+tt.value+`"`)
			assert.Contains(t, msg, tt.problem)
			assert.Equal(t, DefaultConfig(), c, "a bad variable leaves its default")
		})
	}
}

func TestConfigFromEnvErrorFormat(t *testing.T) {
	_, err := configFromLookup(mapLookup(map[string]string{EnvVarHeartbeatMillis: "abc"}))
	require.Error(t, err)
	assert.Equal(t, `SMUDGE_HEARTBEAT_MILLIS="abc": not an integer number of milliseconds`, err.Error())

	clearSmudgeEnv(t)
	t.Setenv(EnvVarHeartbeatMillis, "abc")
	_, err = ConfigFromEnv()
	require.Error(t, err)
	assert.Equal(t, `SMUDGE_HEARTBEAT_MILLIS="abc": not an integer number of milliseconds`, err.Error())
}

func TestConfigFromEnvMultipleBad(t *testing.T) {
	bad := map[string]string{
		EnvVarHeartbeatMillis:   "abc",
		EnvVarListenIP:          "not-an-ip",
		EnvVarMulticastEnabled:  "maybe",
		EnvVarRemoveDeadAfter:   "soon",
		EnvVarClusterName:       "good",
		EnvVarMaxBroadcastBytes: "128",
	}
	check := func(t *testing.T, c Config, err error) {
		t.Helper()
		require.Error(t, err)
		msg := err.Error()
		for _, name := range []string{EnvVarHeartbeatMillis, EnvVarListenIP, EnvVarMulticastEnabled, EnvVarRemoveDeadAfter} {
			assert.Contains(t, msg, name+`="`+bad[name]+`"`)
		}
		assert.Len(t, strings.Split(msg, "\n"), 4)
		// Good variables are applied, bad ones keep their defaults.
		assert.Equal(t, "good", c.ClusterName)
		assert.Equal(t, 128, c.MaxBroadcastBytes)
		def := DefaultConfig()
		assert.Equal(t, def.HeartbeatInterval, c.HeartbeatInterval)
		assert.Equal(t, def.ListenIP, c.ListenIP)
		assert.Equal(t, def.MulticastEnabled, c.MulticastEnabled)
		assert.Equal(t, def.RemoveDeadAfter, c.RemoveDeadAfter)
	}
	c, err := configFromLookup(mapLookup(bad))
	check(t, c, err)

	clearSmudgeEnv(t)
	for k, v := range bad {
		t.Setenv(k, v)
	}
	c, err = ConfigFromEnv()
	check(t, c, err)
}

func TestConfigFromEnvInconsistentValues(t *testing.T) {
	c, err := configFromLookup(mapLookup(map[string]string{
		EnvVarMaxBroadcastBytes: "2000",
		EnvVarHeartbeatMillis:   "60000",
	}))
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "MaxBroadcastBytes")
	assert.Contains(t, msg, "2000")
	assert.Contains(t, msg, "1400")
	assert.Contains(t, msg, "RemoveDeadAfter")
	assert.Contains(t, msg, "BroadcastTTL")
	// Every variable was well formed, so all were applied.
	assert.Equal(t, 2000, c.MaxBroadcastBytes)
	assert.Equal(t, time.Minute, c.HeartbeatInterval)
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string // substrings of the error
	}{
		{"empty cluster name", func(c *Config) { c.ClusterName = "" }, []string{"ClusterName", EnvVarClusterName, "empty"}},
		{"nil listen IP", func(c *Config) { c.ListenIP = nil }, []string{"ListenIP", "nil"}},
		{"malformed listen IP", func(c *Config) { c.ListenIP = net.IP{1, 2, 3} }, []string{"ListenIP", "not a valid IP"}},
		{"negative listen port", func(c *Config) { c.ListenPort = -1 }, []string{"ListenPort", "-1", "0-65535"}},
		{"listen port too big", func(c *Config) { c.ListenPort = 65536 }, []string{"ListenPort", "65536"}},
		{"multicast port 0", func(c *Config) { c.MulticastPort = 0 }, []string{"MulticastPort", "1-65535"}},
		{"multicast port too big", func(c *Config) { c.MulticastPort = 70000 }, []string{"MulticastPort", "70000"}},
		{"heartbeat below 1ms", func(c *Config) { c.HeartbeatInterval = time.Millisecond - 1 }, []string{"HeartbeatInterval", "1ms"}},
		{"heartbeat zero", func(c *Config) { c.HeartbeatInterval = 0 }, []string{"HeartbeatInterval"}},
		{"min ping time zero", func(c *Config) { c.MinPingTime = 0 }, []string{"MinPingTime", "positive"}},
		{"frontload negative", func(c *Config) { c.PingHistoryFrontload = -time.Millisecond }, []string{"PingHistoryFrontload", "positive"}},
		{"max broadcast zero", func(c *Config) { c.MaxBroadcastBytes = 0 }, []string{"MaxBroadcastBytes", "at least 1"}},
		{"packet too small", func(c *Config) { c.MaxPacketBytes = 511 }, []string{"MaxPacketBytes", "511", "512-65507"}},
		{"packet too big", func(c *Config) { c.MaxPacketBytes = 65508 }, []string{"MaxPacketBytes", "65508"}},
		{"broadcast does not fit", func(c *Config) { c.MaxBroadcastBytes = 1337 }, []string{"MaxBroadcastBytes", "1337", "1400", "not fit"}},
		{"broadcast does not fit with its seal", func(c *Config) { c.Keys = [][]byte{make([]byte, 16)}; c.MaxBroadcastBytes = 1400 - swim.PacketOverhead }, []string{"MaxBroadcastBytes", "1304", "125 bytes of overhead", "not fit"}},
		{"bad key length", func(c *Config) { c.Keys = [][]byte{make([]byte, 10)} }, []string{"Keys[0]", "SMUDGE_ENCRYPTION_KEYS", "10 bytes"}},
		{"indirect checks negative", func(c *Config) { c.IndirectChecks = -1 }, []string{"IndirectChecks", "0-16"}},
		{"indirect checks too many", func(c *Config) { c.IndirectChecks = 17 }, []string{"IndirectChecks", "17"}},
		{"suspicion mult zero", func(c *Config) { c.SuspicionMult = 0 }, []string{"SuspicionMult", "at least 1"}},
		{"remove dead too soon", func(c *Config) { c.RemoveDeadAfter = 100 * time.Millisecond }, []string{"RemoveDeadAfter", "HeartbeatInterval"}},
		{"broadcast TTL too short", func(c *Config) { c.BroadcastTTL = time.Millisecond }, []string{"BroadcastTTL", "HeartbeatInterval"}},
		{"advertise garbage", func(c *Config) { c.AdvertiseAddr = "nowhere" }, []string{"AdvertiseAddr", "nowhere"}},
		{"advertise unspecified", func(c *Config) { c.AdvertiseAddr = "0.0.0.0" }, []string{"AdvertiseAddr", "unspecified"}},
		{"advertise unspecified v6", func(c *Config) { c.AdvertiseAddr = "[::]:9999" }, []string{"AdvertiseAddr", "unspecified"}},
		{"advertise bad port", func(c *Config) { c.AdvertiseAddr = "10.0.0.1:70000" }, []string{"AdvertiseAddr", "70000"}},
		{"multicast not multicast", func(c *Config) { c.MulticastAddress = "10.0.0.1" }, []string{"MulticastAddress", "not a multicast"}},
		{"multicast not an IP", func(c *Config) { c.MulticastAddress = "group" }, []string{"MulticastAddress", "not an IP"}},
		{"announce negative", func(c *Config) { c.MulticastAnnounceInterval = -time.Second }, []string{"MulticastAnnounceInterval"}},
		{"log threshold too high", func(c *Config) { c.LogThreshold = LogOff + 1 }, []string{"LogThreshold", "8"}},
		{"bad initial host", func(c *Config) { c.InitialHosts = []string{"ok:1", "bad:0"} }, []string{"InitialHosts[1]", `"bad:0"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			err := c.Validate()
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Len(t, strings.Split(err.Error(), "\n"), 1, "exactly one problem: %v", err)
		})
	}
}

func TestConfigValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
	}{
		{"ephemeral listen port", func(c *Config) { c.ListenPort = 0 }},
		{"listen on every IPv4 address", func(c *Config) { c.ListenIP = net.IPv4zero }},
		{"listen on every IPv6 address", func(c *Config) { c.ListenIP = net.IPv6unspecified }},
		{"4-byte listen IP", func(c *Config) { c.ListenIP = net.IPv4(10, 0, 0, 1).To4() }},
		{"no indirect checks", func(c *Config) { c.IndirectChecks = 0 }},
		{"largest broadcast", func(c *Config) { c.MaxBroadcastBytes = 1400 - swim.PacketOverhead }},
		{"largest broadcast, encrypted", func(c *Config) {
			c.Keys = [][]byte{make([]byte, 16)}
			c.MaxBroadcastBytes = 1400 - swim.PacketOverhead - keyring.Overhead
		}},
		{"advertise ip", func(c *Config) { c.AdvertiseAddr = "10.0.0.1" }},
		{"advertise ip:port", func(c *Config) { c.AdvertiseAddr = "10.0.0.1:9999" }},
		{"advertise [v6]:port", func(c *Config) { c.AdvertiseAddr = "[2001:db8::1]:9999" }},
		{"advertise bare v6", func(c *Config) { c.AdvertiseAddr = "2001:db8::1" }},
		{"multicast v4", func(c *Config) { c.MulticastAddress = "224.0.0.0" }},
		{"multicast v6 in brackets", func(c *Config) { c.MulticastAddress = "[ff02::1]" }},
		{"log off", func(c *Config) { c.LogThreshold = LogOff }},
		{"hosts", func(c *Config) { c.InitialHosts = []string{"a", "b:1", "[::1]:2", "::1", "10.0.0.1"} }},
		{"1ms heartbeat", func(c *Config) { c.HeartbeatInterval = time.Millisecond }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			assert.NoError(t, c.Validate())
		})
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	var c Config // the zero value is not valid
	err := c.Validate()
	require.Error(t, err)
	msg := err.Error()
	for _, field := range []string{"ClusterName", "ListenIP", "HeartbeatInterval", "MinPingTime",
		"PingHistoryFrontload", "MaxBroadcastBytes", "MaxPacketBytes", "MulticastPort", "SuspicionMult"} {
		assert.Contains(t, msg, field)
	}
	var joined interface{ Unwrap() []error }
	require.True(t, errors.As(err, &joined))
	assert.Len(t, joined.Unwrap(), 9)
}

func TestConfigCheckHostAddress(t *testing.T) {
	good := []string{
		"10.0.0.1", "10.0.0.1:9999", "[::1]:9999", "[::1]", "::1", "fe80::1",
		"localhost", "localhost:10000", "db.example.com", "db.example.com.", "my_host:1",
		"a-b.c", "host1:65535",
	}
	for _, s := range good {
		assert.NoError(t, checkHostAddress(s), s)
	}
	bad := []string{
		"", ":1", "host:", "host:0", "host:65536", "host:+1", "host:-1", "host:abc",
		"[1.2.3.4]:1", "[host]:1", "[::1", "a:b:c", "-host", "host-", "ho st", "a..b",
		"1.2.3.999", "123", "h\u00e9llo", strings.Repeat("a", 64) + ".com",
	}
	for _, s := range bad {
		assert.Error(t, checkHostAddress(s), s)
	}
}

func TestConfigParseAdvertiseAddr(t *testing.T) {
	ip, port, err := parseAdvertiseAddr("10.0.0.1:7946")
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.1", ip.String())
	assert.Equal(t, 7946, port)

	ip, port, err = parseAdvertiseAddr("10.0.0.1")
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.1", ip.String())
	assert.Equal(t, 0, port)

	ip, port, err = parseAdvertiseAddr("[2001:db8::2]:1")
	require.NoError(t, err)
	assert.Equal(t, "2001:db8::2", ip.String())
	assert.Equal(t, 1, port)

	ip, port, err = parseAdvertiseAddr("[2001:db8::2]")
	require.NoError(t, err)
	assert.Equal(t, "2001:db8::2", ip.String())
	assert.Equal(t, 0, port)

	for _, s := range []string{"", "host", "host:1", "0.0.0.0", "0.0.0.0:1", "::", "[::]:1", "1.2.3.4:0", "1.2.3.4:", "[1.2.3.4]:1"} {
		_, _, err := parseAdvertiseAddr(s)
		assert.Error(t, err, s)
	}
}

func TestConfigSplitHostList(t *testing.T) {
	assert.Equal(t, []string{"a", "b", "c", "d"}, splitHostList(" a,b , c\n\td "))
	assert.Empty(t, splitHostList(""))
	assert.Empty(t, splitHostList(" ,, "))
}

func TestEncryptionKeysFromEnv(t *testing.T) {
	k1 := "AAAAAAAAAAAAAAAAAAAAAA=="                     // 16 zero bytes
	k2 := "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=" // 32 bytes of 1
	c, err := configFromLookup(mapLookup(map[string]string{EnvVarEncryptionKeys: k1 + ", " + k2}))
	require.NoError(t, err)
	require.Len(t, c.Keys, 2)
	assert.Len(t, c.Keys[0], 16)
	assert.Len(t, c.Keys[1], 32)

	for _, bad := range []string{"not-base64!!", k1 + ",c2hvcnQ="} {
		_, err := configFromLookup(mapLookup(map[string]string{EnvVarEncryptionKeys: bad}))
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), EnvVarEncryptionKeys)
		assert.Contains(t, err.Error(), "value not shown")
		assert.NotContains(t, err.Error(), bad, "a key must never appear in an error")
	}
}
