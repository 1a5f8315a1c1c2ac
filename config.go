package smudge

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/seed-c7906467/smudge/internal/keyring"
	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
)

// Environment variables read by ConfigFromEnv, and their defaults. Setting a
// variable to "" (or, for a number, to 0) restores its default.
const (
	// EnvVarClusterName names the cluster. Packets from members of other
	// clusters are dropped.
	EnvVarClusterName = "SMUDGE_CLUSTER_NAME"

	// DefaultClusterName is the default cluster name.
	DefaultClusterName string = "smudge"

	// EnvVarHeartbeatMillis sets the protocol period, in milliseconds.
	EnvVarHeartbeatMillis = "SMUDGE_HEARTBEAT_MILLIS"

	// DefaultHeartbeatMillis is the default protocol period, in milliseconds.
	DefaultHeartbeatMillis int = 250

	// EnvVarInitialHosts lists the members to contact at start, separated
	// by commas and/or whitespace. Each is "ip", "ip:port", "[v6]:port",
	// "host" or "host:port"; a missing port means the listen port.
	EnvVarInitialHosts = "SMUDGE_INITIAL_HOSTS"

	// DefaultInitialHosts is the default list of initial hosts: none.
	DefaultInitialHosts string = ""

	// EnvVarListenPort sets the UDP port to listen on.
	EnvVarListenPort = "SMUDGE_LISTEN_PORT"

	// DefaultListenPort is the default UDP listen port.
	DefaultListenPort int = 9999

	// EnvVarListenIP sets the IP address to listen on; 0.0.0.0 and :: mean
	// every address.
	EnvVarListenIP = "SMUDGE_LISTEN_IP"

	// DefaultListenIP is the default listen IP address.
	DefaultListenIP string = "127.0.0.1"

	// EnvVarAdvertiseAddress sets the address other members use to reach
	// this one: "ip", "ip:port" or "[v6]:port". By default it is derived
	// from the listen address.
	EnvVarAdvertiseAddress = "SMUDGE_ADVERTISE_ADDRESS"

	// DefaultAdvertiseAddress is the default advertise address: empty,
	// meaning derived from the listen address.
	DefaultAdvertiseAddress string = ""

	// EnvVarMaxBroadcastBytes sets the maximum length of a broadcast
	// payload, in bytes.
	EnvVarMaxBroadcastBytes = "SMUDGE_MAX_BROADCAST_BYTES"

	// DefaultMaxBroadcastBytes is the default maximum length of a broadcast
	// payload, in bytes.
	DefaultMaxBroadcastBytes int = 256

	// EnvVarMulticastEnabled sets whether the node announces itself and
	// discovers others by multicast. It accepts what strconv.ParseBool
	// accepts.
	EnvVarMulticastEnabled = "SMUDGE_MULTICAST_ENABLED"

	// DefaultMulticastEnabled is the default of SMUDGE_MULTICAST_ENABLED.
	DefaultMulticastEnabled string = "true"

	// EnvVarMulticastAnnounceIntervalSeconds sets the number of seconds
	// between multicast announcements; 0 means announce once at start.
	EnvVarMulticastAnnounceIntervalSeconds = "SMUDGE_MULTICAST_ANNOUNCE_INTERVAL"

	// DefaultMulticastAnnounceIntervalSeconds is the default multicast
	// announce interval: announce once at start.
	DefaultMulticastAnnounceIntervalSeconds int = 0

	// EnvVarMulticastAddress sets the multicast group address.
	EnvVarMulticastAddress = "SMUDGE_MULTICAST_ADDRESS"

	// DefaultMulticastAddress is the default of SMUDGE_MULTICAST_ADDRESS:
	// empty, meaning the default group of the node's address family,
	// DefaultMulticastAddressIPv4 or DefaultMulticastAddressIPv6 (the family
	// of the advertised address). Smudge v1 used 224.0.0.0, which is the
	// reserved base address of the multicast range, not a group.
	DefaultMulticastAddress string = ""

	// DefaultMulticastAddressIPv4 is the group IPv4 nodes use when
	// SMUDGE_MULTICAST_ADDRESS is empty: an address of the IPv4 Local Scope
	// 239.255.0.0/16 (RFC 2365), administratively scoped groups that need no
	// assignment and that routers do not forward beyond the site. The
	// 224.0.0.0/24 link-local block would fit better but is assigned by IANA
	// to network control protocols. Announcements are also sent with TTL 1,
	// so they stay on the link.
	DefaultMulticastAddressIPv4 string = "239.255.99.98"

	// DefaultMulticastAddressIPv6 is the group IPv6 nodes use when
	// SMUDGE_MULTICAST_ADDRESS is empty: a link-local scope group (ff02::/16,
	// never forwarded by routers, like mDNS's ff02::fb) with a group ID from
	// the dynamic range 0x80000000-0xFFFFFFFF (RFC 3307), which needs no
	// assignment. Not ff02::1 (all nodes): every IPv6 host on the link
	// receives that group, whether it runs smudge or not.
	DefaultMulticastAddressIPv6 string = "ff02::8000:9998"

	// EnvVarMulticastPort sets the multicast port.
	EnvVarMulticastPort = "SMUDGE_MULTICAST_PORT"

	// DefaultMulticastPort is the default multicast port.
	DefaultMulticastPort int = 9998

	// EnvVarPingHistoryFrontload sets the value, in milliseconds, that
	// pre-fills the ping history from which probe timeouts are computed.
	EnvVarPingHistoryFrontload = "SMUDGE_PING_HISTORY_FRONTLOAD"

	// DefaultPingHistoryFrontload is the default ping history pre-fill, in
	// milliseconds.
	DefaultPingHistoryFrontload int = 200

	// EnvVarMinPingTime sets the floor of the adaptive probe timeout, in
	// milliseconds.
	EnvVarMinPingTime = "SMUDGE_MIN_PING_TIME"

	// DefaultMinPingTime is the default floor of the probe timeout, in
	// milliseconds.
	DefaultMinPingTime int = 150

	// EnvVarIndirectChecks caps k, the number of members asked to probe an
	// unresponsive member indirectly (ping-req).
	EnvVarIndirectChecks = "SMUDGE_INDIRECT_CHECKS"

	// DefaultIndirectChecks is the default cap on indirect probes.
	DefaultIndirectChecks int = 3

	// EnvVarSuspicionMult sets the suspicion timeout multiplier: a suspected
	// member is declared dead after SuspicionMult * max(1, log10(n))
	// protocol periods.
	EnvVarSuspicionMult = "SMUDGE_SUSPICION_MULT"

	// DefaultSuspicionMult is the default suspicion timeout multiplier.
	DefaultSuspicionMult int = 5

	// EnvVarRemoveDeadAfter sets, as a Go duration such as "30s", how long
	// dead members are re-probed before they are forgotten.
	EnvVarRemoveDeadAfter = "SMUDGE_REMOVE_DEAD_AFTER"

	// DefaultRemoveDeadAfter is the default time after which dead members
	// are forgotten.
	DefaultRemoveDeadAfter time.Duration = 30 * time.Second

	// EnvVarMaxPacketBytes sets the largest UDP payload sent, in bytes.
	EnvVarMaxPacketBytes = "SMUDGE_MAX_PACKET_BYTES"

	// DefaultMaxPacketBytes is the default largest UDP payload: small enough
	// to avoid IP fragmentation on common links.
	DefaultMaxPacketBytes int = 1400

	// EnvVarBroadcastTTL sets, as a Go duration such as "30s", the age after
	// which a broadcast is no longer forwarded.
	EnvVarBroadcastTTL = "SMUDGE_BROADCAST_TTL"

	// DefaultBroadcastTTL is the default broadcast time to live.
	DefaultBroadcastTTL time.Duration = 30 * time.Second

	// EnvVarEncryptionKeys holds the encryption keys: base64 (standard
	// encoding) AES keys of 16, 24 or 32 bytes, separated by commas, the
	// primary first. Unset or empty: no encryption.
	EnvVarEncryptionKeys = "SMUDGE_ENCRYPTION_KEYS"

	// EnvVarLogLevel sets the log threshold: a name such as "info" or
	// "WARN", or a number from 0 (All) to 7 (Off).
	EnvVarLogLevel = "SMUDGE_LOG_LEVEL"

	// DefaultLogLevel is the default log threshold.
	DefaultLogLevel LogLevel = LogInfo
)

// Limits checked by Validate and ConfigFromEnv.
const (
	minPacketBytes    = 512                 // smallest MaxPacketBytes
	maxPacketBytes    = 65507               // largest UDP payload over IPv4
	broadcastOverhead = swim.PacketOverhead // room a broadcast needs in a packet besides its payload (and its seal, with Keys)
	maxIndirectChecks = 16                  // largest IndirectChecks
)

// Config configures one Cluster. The zero value is not valid: start from
// DefaultConfig() or ConfigFromEnv().
type Config struct {
	// ClusterName names the cluster; packets of other clusters are dropped.
	// SMUDGE_CLUSTER_NAME, default "smudge".
	ClusterName string

	// ListenIP is the IP address to listen on; 0.0.0.0 and :: are allowed.
	// SMUDGE_LISTEN_IP, default 127.0.0.1.
	ListenIP net.IP

	// ListenPort is the UDP port to listen on; 0 means any free port.
	// SMUDGE_LISTEN_PORT, default 9999 (in the environment, 0 restores the
	// default).
	ListenPort int

	// AdvertiseAddr is the address other members use to reach this one:
	// "ip", "ip:port" or "[v6]:port". Empty means derived from the listen
	// address. SMUDGE_ADVERTISE_ADDRESS.
	AdvertiseAddr string

	// InitialHosts are the members contacted at start: "ip", "ip:port",
	// "[v6]:port", "host" or "host:port". SMUDGE_INITIAL_HOSTS, a list
	// separated by commas and/or whitespace.
	InitialHosts []string

	// HeartbeatInterval is the protocol period.
	// SMUDGE_HEARTBEAT_MILLIS (integer milliseconds), default 250ms.
	HeartbeatInterval time.Duration

	// MinPingTime is the floor of the adaptive probe timeout.
	// SMUDGE_MIN_PING_TIME (milliseconds), default 150ms.
	MinPingTime time.Duration

	// PingHistoryFrontload pre-fills the ping history from which the probe
	// timeout is computed. SMUDGE_PING_HISTORY_FRONTLOAD (milliseconds),
	// default 200ms.
	PingHistoryFrontload time.Duration

	// MaxBroadcastBytes is the maximum length of a broadcast payload.
	// SMUDGE_MAX_BROADCAST_BYTES, default 256.
	MaxBroadcastBytes int

	// MulticastEnabled turns multicast announcement and discovery on. It
	// applies to UDP transports only (the default one, or a *UDPTransport
	// given as Transport); with any other Transport, such as memnet, it is
	// ignored. SMUDGE_MULTICAST_ENABLED (strconv.ParseBool syntax), default
	// true.
	MulticastEnabled bool

	// MulticastAddress is the multicast group; empty means the default
	// group for the family of the advertised address
	// (DefaultMulticastAddressIPv4 239.255.99.98 or
	// DefaultMulticastAddressIPv6 ff02::8000:9998). An IPv6 address may be
	// written in brackets. SMUDGE_MULTICAST_ADDRESS.
	MulticastAddress string

	// MulticastPort is the multicast UDP port. SMUDGE_MULTICAST_PORT,
	// default 9998.
	MulticastPort int

	// MulticastAnnounceInterval is the time between multicast announcements;
	// 0 means announce once at start (and once more whenever the group is
	// joined on an interface that appeared, or came back, later). A short
	// interval lets a node that was cut off and forgotten find the cluster
	// again by itself; every member acks every announcement it hears.
	// SMUDGE_MULTICAST_ANNOUNCE_INTERVAL (integer seconds), default 0.
	MulticastAnnounceInterval time.Duration

	// IndirectChecks caps k, the number of ping-req relays
	// (k = int(2.5*ln(n)+0.5) capped by this). SMUDGE_INDIRECT_CHECKS,
	// default 3.
	IndirectChecks int

	// SuspicionMult sets the suspicion timeout:
	// SuspicionMult * max(1, log10(n)) * HeartbeatInterval. With Lifeguard
	// (the default) this is the timeout of a suspicion nobody confirms; it
	// shrinks to Lifeguard.SuspicionMinMult as other members confirm it.
	// SMUDGE_SUSPICION_MULT, default 5.
	SuspicionMult int

	// Lifeguard tunes, or switches off part by part, Lifeguard's
	// refinements of failure detection. The zero value: all on.
	// SMUDGE_LIFEGUARD=false switches all off.
	Lifeguard LifeguardConfig

	// RemoveDeadAfter is how long dead members are re-probed, with backoff,
	// before they are forgotten. SMUDGE_REMOVE_DEAD_AFTER (Go duration such
	// as "30s"), default 30s.
	RemoveDeadAfter time.Duration

	// MaxPacketBytes is the largest UDP payload sent.
	// SMUDGE_MAX_PACKET_BYTES, default 1400 (no IP fragmentation).
	MaxPacketBytes int

	// BroadcastTTL is the age after which a broadcast is no longer
	// forwarded. SMUDGE_BROADCAST_TTL (Go duration), default 30s.
	BroadcastTTL time.Duration

	// LogThreshold is the level below which log messages are dropped.
	// SMUDGE_LOG_LEVEL (a name such as "info" or "WARN", or 0-7), default
	// LogInfo.
	LogThreshold LogLevel

	// Logger receives log messages; nil means DefaultLogger (stderr).
	Logger Logger

	// Transport sends and receives packets; nil means UDP on
	// ListenIP:ListenPort.
	Transport Transport

	// Seed seeds the engine's random source; 0 means a random seed. Set it
	// for reproducible tests.
	Seed int64

	// Keys turns on encryption and authentication of every packet with
	// AES-GCM: each key is 16, 24 or 32 bytes (AES-128, -192, -256). The
	// first key sends; all are accepted, so keys can be rotated at runtime
	// (Cluster.InstallKey, UseKey, RemoveKey). Packets without a valid seal
	// are dropped and counted. Empty: no encryption (Smudge's behaviour).
	// SMUDGE_ENCRYPTION_KEYS: base64 keys separated by commas, the primary
	// first. Error messages never show key material.
	Keys [][]byte

	// Meta is this node's metadata: up to MaxMetaBytes of the
	// application's own (an id, a role, a version), gossiped with its state
	// so that every member sees it (Node.Meta). Change it at runtime with
	// Cluster.SetMeta. Empty by default.
	Meta []byte

	// MaxMessageBytes is the longest payload of Send and Publish, which
	// travel over streams: TCP connections to the member's listen IP and
	// port (the UDP port, over TCP). SMUDGE_MAX_MESSAGE_BYTES, default
	// 1 MiB (1048576), at least 1 KiB, at most 256 MiB; 0 means the
	// default.
	MaxMessageBytes int

	// GossipGroup is how many random live members Publish's burst sends a
	// publication to: the origin at once, then every member once, on first
	// receipt. SMUDGE_GOSSIP_GROUP, default 5, at most 64; 0 means the
	// default.
	GossipGroup int

	// PublishTTL is how long a publication is passed on and repaired, and
	// its id remembered (a minute more). SMUDGE_PUBLISH_TTL (Go duration),
	// default 10m, between 1s and 24h; 0 means the default.
	PublishTTL time.Duration

	// PushPullInterval is the time between two push-pull state syncs:
	// this node and a random member exchange their whole member lists over
	// a stream (bounded by Limits.MaxSyncMembers), which closes the gaps
	// gossip leaves under loss. It also syncs once with the first initial
	// host right after joining. In clusters of more than 32 members the
	// interval is stretched (×2 at 64, ×6 at 1000). Push-pull needs streams
	// (it is off on memnet). SMUDGE_PUSH_PULL_INTERVAL (Go duration, or
	// "off"), default 30s, between 1s and 24h; 0 means the default,
	// negative turns push-pull off.
	PushPullInterval time.Duration

	// StateDir is a directory, created if need be, where the node keeps
	// what must survive a restart: the ids of recent publications, so that
	// none is delivered twice. One node per directory. Empty: nothing is
	// kept (a restarted node still never delivers a publication older
	// than itself). SMUDGE_STATE_DIR.
	StateDir string

	// Limits bounds every table and queue fed by the network. The zero
	// value means the defaults.
	Limits Limits
}

// DefaultConfig returns a Config holding every documented default.
func DefaultConfig() Config {
	return Config{
		ClusterName:               DefaultClusterName,
		ListenIP:                  net.ParseIP(DefaultListenIP),
		ListenPort:                DefaultListenPort,
		AdvertiseAddr:             DefaultAdvertiseAddress,
		HeartbeatInterval:         time.Duration(DefaultHeartbeatMillis) * time.Millisecond,
		MinPingTime:               time.Duration(DefaultMinPingTime) * time.Millisecond,
		PingHistoryFrontload:      time.Duration(DefaultPingHistoryFrontload) * time.Millisecond,
		MaxBroadcastBytes:         DefaultMaxBroadcastBytes,
		MulticastEnabled:          DefaultMulticastEnabled == "true",
		MulticastAddress:          DefaultMulticastAddress,
		MulticastPort:             DefaultMulticastPort,
		MulticastAnnounceInterval: time.Duration(DefaultMulticastAnnounceIntervalSeconds) * time.Second,
		IndirectChecks:            DefaultIndirectChecks,
		SuspicionMult:             DefaultSuspicionMult,
		RemoveDeadAfter:           DefaultRemoveDeadAfter,
		MaxPacketBytes:            DefaultMaxPacketBytes,
		BroadcastTTL:              DefaultBroadcastTTL,
		LogThreshold:              DefaultLogLevel,
		MaxMessageBytes:           DefaultMaxMessageBytes,
		GossipGroup:               DefaultGossipGroup,
		PublishTTL:                DefaultPublishTTL,
		PushPullInterval:          DefaultPushPullInterval,
	}
}

// ConfigFromEnv returns DefaultConfig() overlaid with every SMUDGE_*
// environment variable that is set and not empty. A variable set to 0
// restores its default. Every bad value (not a number, negative, out of
// range, a bad IP address, boolean, duration or host) is reported in the
// error, which names the variable and the value; the returned Config then
// holds the default for each bad variable. If every variable is well formed
// but the combination is not (for example a broadcast that does not fit in
// a packet), the error is the one Validate gives. When the error is nil the
// Config passes Validate.
func ConfigFromEnv() (Config, error) {
	return configFromLookup(os.LookupEnv)
}

// configFromLookup is ConfigFromEnv reading variables through lookup.
func configFromLookup(lookup func(string) (string, bool)) (Config, error) {
	c, errs := parseEnv(lookup)
	if len(errs) > 0 {
		all := make([]error, len(errs))
		for i, e := range errs {
			all[i] = e.err
		}
		return c, errors.Join(all...)
	}
	return c, c.Validate()
}

// envError is a problem with one environment variable.
type envError struct {
	name string // the variable
	err  error  // names the variable and its value
}

// badEnv builds the error for variable name holding value.
func badEnv(name, value, problem string) envError {
	return envError{name: name, err: fmt.Errorf("%s=%q: %s", name, value, problem)}
}

// parseEnv overlays DefaultConfig with the variables lookup finds and
// returns one envError per bad variable, in a fixed order.
func parseEnv(lookup func(string) (string, bool)) (Config, []envError) {
	c := DefaultConfig()
	var errs []envError
	get := func(name string) (string, bool) {
		v, ok := lookup(name)
		v = strings.TrimSpace(v)
		return v, ok && v != ""
	}
	bad := func(name, value, problem string) {
		errs = append(errs, badEnv(name, value, problem))
	}

	if v, ok := get(EnvVarClusterName); ok {
		c.ClusterName = v
	}

	if v, ok := get(EnvVarListenIP); ok {
		if ip := parseIPLiteral(v); ip != nil {
			c.ListenIP = ip
		} else {
			bad(EnvVarListenIP, v, "not an IP address")
		}
	}

	if v, ok := get(EnvVarListenPort); ok {
		if n, problem := parseEnvInt(v, 0, 65535, "port number"); problem != "" {
			bad(EnvVarListenPort, v, problem)
		} else if n != 0 {
			c.ListenPort = n
		}
	}

	if v, ok := get(EnvVarAdvertiseAddress); ok {
		if _, _, err := parseAdvertiseAddr(v); err != nil {
			bad(EnvVarAdvertiseAddress, v, err.Error())
		} else {
			c.AdvertiseAddr = v
		}
	}

	if v, ok := get(EnvVarInitialHosts); ok {
		hosts := splitHostList(v)
		var problems []string
		for _, h := range hosts {
			if err := checkHostAddress(h); err != nil {
				problems = append(problems, fmt.Sprintf("%q: %v", h, err))
			}
		}
		if len(problems) > 0 {
			bad(EnvVarInitialHosts, v, "bad host "+strings.Join(problems, "; bad host "))
		} else {
			c.InitialHosts = hosts
		}
	}

	millis := func(name string, dst *time.Duration, max int64) {
		v, ok := get(name)
		if !ok {
			return
		}
		n, problem := parseEnvInt(v, 0, max, "integer number of milliseconds")
		if problem != "" {
			bad(name, v, problem)
		} else if n != 0 {
			*dst = time.Duration(n) * time.Millisecond
		}
	}
	maxMillis := int64(math.MaxInt64 / int64(time.Millisecond))
	millis(EnvVarHeartbeatMillis, &c.HeartbeatInterval, maxMillis)
	millis(EnvVarMinPingTime, &c.MinPingTime, maxMillis)
	millis(EnvVarPingHistoryFrontload, &c.PingHistoryFrontload, maxMillis)

	integer := func(name string, dst *int, max int64, what string) {
		v, ok := get(name)
		if !ok {
			return
		}
		n, problem := parseEnvInt(v, 0, max, what)
		if problem != "" {
			bad(name, v, problem)
		} else if n != 0 {
			*dst = n
		}
	}
	integer(EnvVarMaxBroadcastBytes, &c.MaxBroadcastBytes, maxPacketBytes-broadcastOverhead, "integer number of bytes")

	if v, ok := get(EnvVarMulticastEnabled); ok {
		if b, err := strconv.ParseBool(v); err != nil {
			bad(EnvVarMulticastEnabled, v, "not a boolean (use true or false)")
		} else {
			c.MulticastEnabled = b
		}
	}

	if v, ok := get(EnvVarMulticastAddress); ok {
		if ip := parseIPLiteral(v); ip == nil {
			bad(EnvVarMulticastAddress, v, "not an IP address")
		} else if !ip.IsMulticast() {
			bad(EnvVarMulticastAddress, v, "not a multicast IP address")
		} else {
			c.MulticastAddress = ip.String()
		}
	}

	integer(EnvVarMulticastPort, &c.MulticastPort, 65535, "port number")

	if v, ok := get(EnvVarMulticastAnnounceIntervalSeconds); ok {
		n, problem := parseEnvInt(v, 0, int64(math.MaxInt64/int64(time.Second)), "integer number of seconds")
		if problem != "" {
			bad(EnvVarMulticastAnnounceIntervalSeconds, v, problem)
		} else {
			c.MulticastAnnounceInterval = time.Duration(n) * time.Second
		}
	}

	integer(EnvVarIndirectChecks, &c.IndirectChecks, maxIndirectChecks, "integer")
	integer(EnvVarSuspicionMult, &c.SuspicionMult, math.MaxInt32, "integer")

	duration := func(name string, dst *time.Duration) {
		v, ok := get(name)
		if !ok {
			return
		}
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			bad(name, v, `not a duration (use a Go duration such as "30s" or "1m30s")`)
		case d < 0:
			bad(name, v, "negative duration")
		case d != 0:
			*dst = d
		}
	}
	duration(EnvVarRemoveDeadAfter, &c.RemoveDeadAfter)

	if v, ok := get(EnvVarMaxPacketBytes); ok {
		n, problem := parseEnvInt(v, 0, math.MaxInt32, "integer number of bytes")
		switch {
		case problem != "":
			bad(EnvVarMaxPacketBytes, v, problem)
		case n != 0 && (n < minPacketBytes || n > maxPacketBytes):
			bad(EnvVarMaxPacketBytes, v, fmt.Sprintf("out of range %d-%d", minPacketBytes, maxPacketBytes))
		case n != 0:
			c.MaxPacketBytes = n
		}
	}

	duration(EnvVarBroadcastTTL, &c.BroadcastTTL)

	if v, ok := get(EnvVarEncryptionKeys); ok {
		keys, err := parseKeyList(v)
		if err != nil {
			// The value is a secret: name the variable, never show it.
			errs = append(errs, envError{name: EnvVarEncryptionKeys, err: fmt.Errorf("%s: %w", EnvVarEncryptionKeys, err)})
		} else {
			c.Keys = keys
		}
	}

	if v, ok := get(EnvVarLogLevel); ok {
		if l, err := ParseLogLevel(v); err != nil {
			bad(EnvVarLogLevel, v, "not a log level (use all, trace, debug, info, warn, error, fatal, off or 0-7)")
		} else {
			c.LogThreshold = l
		}
	}

	errs = append(errs, parseStreamEnv(get, &c)...)
	errs = append(errs, parseLifeguardEnv(get, &c)...)
	errs = append(errs, parsePushPullEnv(get, &c)...)
	return c, errs
}

// parseEnvInt parses a decimal integer between 0 and max. On failure it
// returns a description of the problem mentioning what was expected.
func parseEnvInt(v string, min, max int64, what string) (int, string) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, fmt.Sprintf("out of range %d-%d", min, max)
		}
		return 0, "not " + withArticle(what)
	}
	if n < 0 && min >= 0 {
		return 0, "negative " + strings.TrimPrefix(what, "integer ")
	}
	if n < min || n > max {
		return 0, fmt.Sprintf("out of range %d-%d", min, max)
	}
	return int(n), ""
}

// withArticle prefixes a noun phrase with "a" or "an".
func withArticle(s string) string {
	if s != "" && strings.ContainsRune("aeiou", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}

// splitHostList splits a list separated by commas and/or whitespace,
// dropping empty entries.
func splitHostList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || unicode.IsSpace(r)
	})
}

// parseIPLiteral parses an IP address, allowing an IPv6 address in
// brackets. It returns nil if s is not an IP address.
func parseIPLiteral(s string) net.IP {
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		ip := net.ParseIP(s[1 : len(s)-1])
		if ip == nil || ip.To4() != nil {
			return nil
		}
		return ip
	}
	return net.ParseIP(s)
}

// parsePortNumber parses a port between 1 and 65535.
func parsePortNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || s == "" || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("port %q is not a number", s)
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %d is out of range 1-65535", n)
	}
	return n, nil
}

// parseAdvertiseAddr parses an advertise address: "ip", "ip:port",
// "[v6]" or "[v6]:port" (a bare IPv6 address is also accepted). The port is
// 0 when absent. The IP must not be unspecified (0.0.0.0 or ::).
func parseAdvertiseAddr(s string) (ip net.IP, port int, err error) {
	if s == "" {
		return nil, 0, errors.New("empty address")
	}
	host := s
	if ip = parseIPLiteral(s); ip == nil {
		h, p, serr := net.SplitHostPort(s)
		if serr != nil {
			return nil, 0, fmt.Errorf("not an IP address, ip:port or [ipv6]:port")
		}
		if ip = net.ParseIP(h); ip == nil {
			return nil, 0, fmt.Errorf("%q is not an IP address", h)
		}
		if s[0] == '[' && ip.To4() != nil {
			return nil, 0, fmt.Errorf("brackets are for IPv6 addresses, not %s", h)
		}
		if port, err = parsePortNumber(p); err != nil {
			return nil, 0, err
		}
		host = h
	}
	if ip.IsUnspecified() {
		return nil, 0, fmt.Errorf("%s is the unspecified address; advertise an address others can reach", host)
	}
	return ip, port, nil
}

// checkHostAddress checks the syntax of a member address: "ip", "ip:port",
// "[v6]", "[v6]:port", "host" or "host:port". Host names are not resolved.
func checkHostAddress(s string) error {
	if s == "" {
		return errors.New("empty address")
	}
	if parseIPLiteral(s) != nil {
		return nil
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") || strings.Contains(s, ":") {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return errors.New("not an ip, ip:port, [ipv6]:port, host or host:port")
		}
		if strings.HasPrefix(s, "[") && parseIPLiteral("["+h+"]") == nil {
			return fmt.Errorf("%q is not an IPv6 address", h)
		}
		host, port = h, p
		if _, err := parsePortNumber(port); err != nil {
			return err
		}
	}
	if host == "" {
		return errors.New("empty host")
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	if !validHostName(host) {
		return fmt.Errorf("%q is not a valid IP address or host name", host)
	}
	return nil
}

// validHostName reports whether s is a syntactically valid DNS host name
// (letters, digits, '-' and '_' in dot-separated labels of 1-63 characters,
// at most 253 characters, not all numeric in the last label).
func validHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			b := l[i]
			if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	return strings.TrimLeft(last, "0123456789") != ""
}

// Validate checks c and returns every problem found, joined, each naming
// the Config field (and the environment variable that sets it). It returns
// nil if c is usable.
func (c Config) Validate() error {
	var errs []error
	add := func(field, env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s (%s) %s", field, env, fmt.Sprintf(format, args...)))
	}

	if c.ClusterName == "" {
		add("ClusterName", EnvVarClusterName, "is empty")
	}
	if c.ListenIP == nil {
		add("ListenIP", EnvVarListenIP, "is nil")
	} else if len(c.ListenIP) != net.IPv4len && len(c.ListenIP) != net.IPv6len {
		add("ListenIP", EnvVarListenIP, "is not a valid IP address (%d bytes)", len(c.ListenIP))
	}
	if c.ListenPort < 0 || c.ListenPort > 65535 {
		add("ListenPort", EnvVarListenPort, "= %d: out of range 0-65535 (0 means any free port)", c.ListenPort)
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := parseAdvertiseAddr(c.AdvertiseAddr); err != nil {
			add("AdvertiseAddr", EnvVarAdvertiseAddress, "= %q: %v", c.AdvertiseAddr, err)
		}
	}
	for i, h := range c.InitialHosts {
		if err := checkHostAddress(h); err != nil {
			add(fmt.Sprintf("InitialHosts[%d]", i), EnvVarInitialHosts, "= %q: %v", h, err)
		}
	}
	if c.HeartbeatInterval < time.Millisecond {
		add("HeartbeatInterval", EnvVarHeartbeatMillis, "= %v: must be at least 1ms", c.HeartbeatInterval)
	}
	if c.MinPingTime <= 0 {
		add("MinPingTime", EnvVarMinPingTime, "= %v: must be positive", c.MinPingTime)
	}
	if c.PingHistoryFrontload <= 0 {
		add("PingHistoryFrontload", EnvVarPingHistoryFrontload, "= %v: must be positive", c.PingHistoryFrontload)
	}
	if c.MaxPacketBytes < minPacketBytes || c.MaxPacketBytes > maxPacketBytes {
		add("MaxPacketBytes", EnvVarMaxPacketBytes, "= %d: out of range %d-%d", c.MaxPacketBytes, minPacketBytes, maxPacketBytes)
	}
	if c.MaxBroadcastBytes < 1 {
		add("MaxBroadcastBytes", EnvVarMaxBroadcastBytes, "= %d: must be at least 1", c.MaxBroadcastBytes)
	} else if c.MaxBroadcastBytes+broadcastOverhead+c.sealOverhead() > c.MaxPacketBytes {
		add("MaxBroadcastBytes", EnvVarMaxBroadcastBytes,
			"= %d: a broadcast would not fit in a packet: %d bytes of payload + %d bytes of overhead > MaxPacketBytes (%s) = %d",
			c.MaxBroadcastBytes, c.MaxBroadcastBytes, broadcastOverhead+c.sealOverhead(), EnvVarMaxPacketBytes, c.MaxPacketBytes)
	}
	if c.MulticastPort < 1 || c.MulticastPort > 65535 {
		add("MulticastPort", EnvVarMulticastPort, "= %d: out of range 1-65535", c.MulticastPort)
	}
	if c.MulticastAddress != "" {
		if ip := parseIPLiteral(c.MulticastAddress); ip == nil {
			add("MulticastAddress", EnvVarMulticastAddress, "= %q: not an IP address", c.MulticastAddress)
		} else if !ip.IsMulticast() {
			add("MulticastAddress", EnvVarMulticastAddress, "= %q: not a multicast IP address", c.MulticastAddress)
		}
	}
	if c.MulticastAnnounceInterval < 0 {
		add("MulticastAnnounceInterval", EnvVarMulticastAnnounceIntervalSeconds, "= %v: must not be negative", c.MulticastAnnounceInterval)
	}
	if c.IndirectChecks < 0 || c.IndirectChecks > maxIndirectChecks {
		add("IndirectChecks", EnvVarIndirectChecks, "= %d: out of range 0-%d", c.IndirectChecks, maxIndirectChecks)
	}
	if c.SuspicionMult < 1 {
		add("SuspicionMult", EnvVarSuspicionMult, "= %d: must be at least 1", c.SuspicionMult)
	}
	if c.RemoveDeadAfter < c.HeartbeatInterval {
		add("RemoveDeadAfter", EnvVarRemoveDeadAfter, "= %v: must be at least HeartbeatInterval (%v)", c.RemoveDeadAfter, c.HeartbeatInterval)
	}
	if c.BroadcastTTL < c.HeartbeatInterval {
		add("BroadcastTTL", EnvVarBroadcastTTL, "= %v: must be at least HeartbeatInterval (%v)", c.BroadcastTTL, c.HeartbeatInterval)
	}
	if c.LogThreshold > LogOff {
		add("LogThreshold", EnvVarLogLevel, "= %d: out of range 0-%d", byte(c.LogThreshold), byte(LogOff))
	}
	for i, k := range c.Keys {
		if n := len(k); n != 16 && n != 24 && n != 32 {
			add(fmt.Sprintf("Keys[%d]", i), EnvVarEncryptionKeys, "is %d bytes: an AES key is 16, 24 or 32 bytes", n)
		}
	}
	if len(c.Meta) > MaxMetaBytes {
		errs = append(errs, fmt.Errorf("Meta is %d bytes: at most %d", len(c.Meta), MaxMetaBytes))
	}
	errs = append(errs, c.validateStreams()...)
	errs = append(errs, c.Lifeguard.validate()...)
	errs = append(errs, c.validatePushPull()...)
	return errors.Join(errs...)
}

// MaxMetaBytes bounds a node's metadata (Config.Meta, Cluster.SetMeta).
const MaxMetaBytes = wire.MaxMetaBytes

// sealOverhead is what encryption adds to every packet, when Keys are set.
func (c Config) sealOverhead() int {
	if len(c.Keys) > 0 {
		return keyring.Overhead
	}
	return 0
}

// parseKeyList decodes SMUDGE_ENCRYPTION_KEYS: base64 keys separated by
// commas. Errors say which key is wrong and why, without its value.
func parseKeyList(v string) ([][]byte, error) {
	var keys [][]byte
	parts := strings.Split(v, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		k, err := base64.StdEncoding.DecodeString(p)
		if err != nil {
			return nil, fmt.Errorf("key %d of %d is not valid base64 (value not shown)", i+1, len(parts))
		}
		if n := len(k); n != 16 && n != 24 && n != 32 {
			return nil, fmt.Errorf("key %d of %d is %d bytes: an AES key is 16, 24 or 32 bytes (value not shown)", i+1, len(parts), n)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
