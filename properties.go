package smudge

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"
)

// The default configuration behind the Smudge-compatible Get*/Set*
// functions. It is loaded from the environment the first time any of them
// (or Begin) needs it. Problems are kept per environment variable, so that
// a setter that replaces a bad environment value also clears its error.
var defaultProps struct {
	mu     sync.Mutex
	loaded bool
	cfg    Config
	errs   map[string]error // by environment variable name
}

// propsLocked loads the default configuration if needed and returns it.
// defaultProps.mu must be held.
func propsLocked() *Config {
	if !defaultProps.loaded {
		loadDefaultPropsLocked(os.LookupEnv)
	}
	return &defaultProps.cfg
}

// loadDefaultPropsLocked (re)reads the default configuration through
// lookup, forgetting every earlier setting and problem. defaultProps.mu
// must be held.
func loadDefaultPropsLocked(lookup func(string) (string, bool)) {
	cfg, errs := parseEnv(lookup)
	defaultProps.cfg = cfg
	defaultProps.errs = make(map[string]error, len(errs))
	for _, e := range errs {
		defaultProps.errs[e.name] = e.err
	}
	defaultProps.loaded = true
}

// withProps runs f on the default configuration under the lock.
func withProps(f func(c *Config)) {
	defaultProps.mu.Lock()
	defer defaultProps.mu.Unlock()
	f(propsLocked())
}

// setProblemLocked records (or, with a nil err, clears) the problem with
// the setting that environment variable name controls.
func setProblemLocked(name string, err error) {
	if err == nil {
		delete(defaultProps.errs, name)
	} else {
		defaultProps.errs[name] = err
	}
}

// defaultConfigSnapshot returns a copy of the default configuration and the
// problems found in the environment or given to setters, if any (nil
// otherwise). The returned Config has been neither validated nor modified
// by the problems: each bad value was replaced by its default. Callers
// should still call Validate, which checks combinations of values.
func defaultConfigSnapshot() (Config, error) {
	defaultProps.mu.Lock()
	defer defaultProps.mu.Unlock()
	c := *propsLocked()
	c.ListenIP = slices.Clone(c.ListenIP)
	c.InitialHosts = slices.Clone(c.InitialHosts)
	names := make([]string, 0, len(defaultProps.errs))
	for name := range defaultProps.errs {
		names = append(names, name)
	}
	slices.Sort(names)
	errs := make([]error, len(names))
	for i, name := range names {
		errs[i] = defaultProps.errs[name]
	}
	return c, errors.Join(errs...)
}

// resetDefaultConfigForTest forgets every setting and re-reads the
// environment.
func resetDefaultConfigForTest() {
	defaultProps.mu.Lock()
	defer defaultProps.mu.Unlock()
	loadDefaultPropsLocked(os.LookupEnv)
}

// addDefaultInitialHost appends addr to the default configuration's
// initial hosts, unless it is already there.
func addDefaultInitialHost(addr string) {
	withProps(func(c *Config) {
		if !slices.Contains(c.InitialHosts, addr) {
			c.InitialHosts = append(slices.Clip(c.InitialHosts), addr)
		}
	})
}

// setterProblem describes a bad value given to a setter.
func setterProblem(setter string, value any, problem string, def any) error {
	return fmt.Errorf("%s(%v): %s; using the default %v", setter, value, problem, def)
}

// setMillisProp implements the Set* functions that take milliseconds.
func setMillisProp(setter, env string, val, def int, dst func(*Config) *time.Duration) {
	withProps(func(c *Config) {
		var err error
		if val < 0 {
			err = setterProblem(setter, val, "negative value", def)
			val = 0
		}
		if val == 0 {
			val = def
		}
		*dst(c) = time.Duration(val) * time.Millisecond
		setProblemLocked(env, err)
	})
}

// setIntProp implements the Set* functions that take a plain integer that
// must be between 0 and max; 0 or a bad value restores def.
func setIntProp(setter, env string, val, max, def int, dst func(*Config) *int) {
	withProps(func(c *Config) {
		var err error
		switch {
		case val < 0:
			err = setterProblem(setter, val, "negative value", def)
			val = def
		case val > max:
			err = setterProblem(setter, val, fmt.Sprintf("out of range 0-%d", max), def)
			val = def
		case val == 0:
			val = def
		}
		*dst(c) = val
		setProblemLocked(env, err)
	})
}

// GetClusterName returns the name of the cluster: packets from members of
// other clusters are ignored.
func GetClusterName() string {
	var v string
	withProps(func(c *Config) { v = c.ClusterName })
	return v
}

// SetClusterName sets the name of the cluster. The empty string restores
// the default.
func SetClusterName(val string) {
	withProps(func(c *Config) {
		if val == "" {
			val = DefaultClusterName
		}
		c.ClusterName = val
		setProblemLocked(EnvVarClusterName, nil)
	})
}

// GetHeartbeatMillis returns the protocol period in milliseconds.
func GetHeartbeatMillis() int {
	var v int
	withProps(func(c *Config) { v = int(c.HeartbeatInterval / time.Millisecond) })
	return v
}

// SetHeartbeatMillis sets the protocol period in milliseconds. 0 restores
// the default; a negative value also restores the default and is reported
// when the node begins.
func SetHeartbeatMillis(val int) {
	setMillisProp("SetHeartbeatMillis", EnvVarHeartbeatMillis, val, DefaultHeartbeatMillis,
		func(c *Config) *time.Duration { return &c.HeartbeatInterval })
}

// GetInitialHosts returns a copy of the list of members contacted at
// start.
func GetInitialHosts() []string {
	var v []string
	withProps(func(c *Config) { v = slices.Clone(c.InitialHosts) })
	return v
}

// GetListenPort returns the UDP port this node listens on.
func GetListenPort() int {
	var v int
	withProps(func(c *Config) { v = c.ListenPort })
	return v
}

// SetListenPort sets the UDP port to listen on. 0 restores the default; a
// value outside 0-65535 also restores the default and is reported when the
// node begins. It has no effect once Begin has been called.
func SetListenPort(val int) {
	setIntProp("SetListenPort", EnvVarListenPort, val, 65535, DefaultListenPort,
		func(c *Config) *int { return &c.ListenPort })
}

// GetListenIP returns the IP address this node listens on.
func GetListenIP() net.IP {
	var v net.IP
	withProps(func(c *Config) { v = slices.Clone(c.ListenIP) })
	return v
}

// SetListenIP sets the IP address to listen on (0.0.0.0 and :: mean every
// address). nil restores the default; an invalid IP also restores the
// default and is reported when the node begins. It has no effect once
// Begin has been called.
func SetListenIP(val net.IP) {
	withProps(func(c *Config) {
		var err error
		if val != nil && len(val) != net.IPv4len && len(val) != net.IPv6len {
			err = setterProblem("SetListenIP", []byte(val), "not a valid IP address", DefaultListenIP)
			val = nil
		}
		if val == nil {
			val = net.ParseIP(DefaultListenIP)
		}
		c.ListenIP = slices.Clone(val)
		setProblemLocked(EnvVarListenIP, err)
	})
}

// GetMaxBroadcastBytes returns the maximum length of a broadcast payload,
// in bytes.
func GetMaxBroadcastBytes() int {
	var v int
	withProps(func(c *Config) { v = c.MaxBroadcastBytes })
	return v
}

// SetMaxBroadcastBytes sets the maximum length of a broadcast payload, in
// bytes. 0 restores the default; a negative value also restores the
// default and is reported when the node begins. A payload and its overhead
// must fit in a packet (see Config.Validate).
func SetMaxBroadcastBytes(val int) {
	setIntProp("SetMaxBroadcastBytes", EnvVarMaxBroadcastBytes, val, maxPacketBytes-broadcastOverhead,
		DefaultMaxBroadcastBytes, func(c *Config) *int { return &c.MaxBroadcastBytes })
}

// GetMinPingTime returns the floor of the probe timeout, in milliseconds.
func GetMinPingTime() int {
	var v int
	withProps(func(c *Config) { v = int(c.MinPingTime / time.Millisecond) })
	return v
}

// SetMinPingTime sets the floor of the probe timeout, in milliseconds. 0
// restores the default; a negative value also restores the default and is
// reported when the node begins.
func SetMinPingTime(val int) {
	setMillisProp("SetMinPingTime", EnvVarMinPingTime, val, DefaultMinPingTime,
		func(c *Config) *time.Duration { return &c.MinPingTime })
}

// GetPingHistoryFrontload returns the value, in milliseconds, that
// pre-fills the ping history from which probe timeouts are computed.
func GetPingHistoryFrontload() int {
	var v int
	withProps(func(c *Config) { v = int(c.PingHistoryFrontload / time.Millisecond) })
	return v
}

// SetPingHistoryFrontload sets the value, in milliseconds, that pre-fills
// the ping history from which probe timeouts are computed. 0 restores the
// default; a negative value also restores the default and is reported when
// the node begins. (Smudge v1's setter had no effect; this one does.)
func SetPingHistoryFrontload(val int) {
	setMillisProp("SetPingHistoryFrontload", EnvVarPingHistoryFrontload, val, DefaultPingHistoryFrontload,
		func(c *Config) *time.Duration { return &c.PingHistoryFrontload })
}

// GetMulticastEnabled returns whether multicast announcement and discovery
// are enabled.
func GetMulticastEnabled() bool {
	var v bool
	withProps(func(c *Config) { v = c.MulticastEnabled })
	return v
}

// SetMulticastEnabled sets whether multicast announcement and discovery are
// enabled.
func SetMulticastEnabled(val bool) {
	withProps(func(c *Config) {
		c.MulticastEnabled = val
		setProblemLocked(EnvVarMulticastEnabled, nil)
	})
}

// GetMulticastAnnounceIntervalSeconds returns the number of seconds between
// multicast announcements; 0 means announce once at start.
func GetMulticastAnnounceIntervalSeconds() int {
	var v int
	withProps(func(c *Config) { v = int(c.MulticastAnnounceInterval / time.Second) })
	return v
}

// SetMulticastAnnounceIntervalSeconds sets the number of seconds between
// multicast announcements; 0 (the default) means announce once at start. A
// negative value restores the default and is reported when the node
// begins.
func SetMulticastAnnounceIntervalSeconds(val int) {
	withProps(func(c *Config) {
		var err error
		if val < 0 {
			err = setterProblem("SetMulticastAnnounceIntervalSeconds", val, "negative value", DefaultMulticastAnnounceIntervalSeconds)
			val = DefaultMulticastAnnounceIntervalSeconds
		}
		c.MulticastAnnounceInterval = time.Duration(val) * time.Second
		setProblemLocked(EnvVarMulticastAnnounceIntervalSeconds, err)
	})
}

// GetMulticastAddress returns the multicast group address as set; empty (the
// default) means the default group for the address family
// (DefaultMulticastAddressIPv4 or DefaultMulticastAddressIPv6).
func GetMulticastAddress() string {
	var v string
	withProps(func(c *Config) { v = c.MulticastAddress })
	return v
}

// SetMulticastAddress sets the multicast group address (an IPv6 address may
// be written in brackets). The empty string restores the default; a value
// that is not a multicast IP address also restores the default and is
// reported when the node begins.
func SetMulticastAddress(val string) {
	withProps(func(c *Config) {
		var err error
		if val != "" {
			ip := parseIPLiteral(val)
			switch {
			case ip == nil:
				err = setterProblem("SetMulticastAddress", fmt.Sprintf("%q", val), "not an IP address", `""`)
				val = DefaultMulticastAddress
			case !ip.IsMulticast():
				err = setterProblem("SetMulticastAddress", fmt.Sprintf("%q", val), "not a multicast IP address", `""`)
				val = DefaultMulticastAddress
			default:
				val = ip.String()
			}
		}
		c.MulticastAddress = val
		setProblemLocked(EnvVarMulticastAddress, err)
	})
}

// GetMulticastPort returns the multicast UDP port.
func GetMulticastPort() int {
	var v int
	withProps(func(c *Config) { v = c.MulticastPort })
	return v
}

// SetMulticastPort sets the multicast UDP port. 0 restores the default; a
// value outside 0-65535 also restores the default and is reported when the
// node begins.
func SetMulticastPort(val int) {
	setIntProp("SetMulticastPort", EnvVarMulticastPort, val, 65535, DefaultMulticastPort,
		func(c *Config) *int { return &c.MulticastPort })
}
