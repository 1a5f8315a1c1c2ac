package smudge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// resolveTimeout bounds a name lookup made by CreateNodeByAddress.
const resolveTimeout = 5 * time.Second

// resolveAddress parses "ip", "ip:port", "[v6]", "[v6]:port", "host" or
// "host:port", resolving a host name (IPv4 preferred). A missing port is
// defaultPort.
func resolveAddress(ctx context.Context, s string, defaultPort uint16) (netip.AddrPort, error) {
	if err := checkHostAddress(s); err != nil {
		return netip.AddrPort{}, err
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	host, port := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), defaultPort
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return netip.AddrPort{}, fmt.Errorf("bad port %q", p)
		}
		host, port = h, uint16(n)
	}
	if port == 0 {
		return netip.AddrPort{}, errors.New("no port given and no default port")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(ip.Unmap(), port), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("resolve %q: %w", host, err)
	}
	if len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("resolve %q: no addresses", host)
	}
	best := ips[0].Unmap()
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			best = ip.Unmap()
			break
		}
	}
	return netip.AddrPortFrom(best, port), nil
}

// CreateNodeByAddress parses "ip", "ip:port", "[v6]:port", "host" or
// "host:port" into a Node (a missing port is the listen port). A host name
// is resolved. The node is not added to any cluster.
func CreateNodeByAddress(address string) (*Node, error) {
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	a, err := resolveAddress(ctx, address, uint16(GetListenPort()))
	if err != nil {
		return nil, fmt.Errorf("smudge: CreateNodeByAddress(%q): %w", address, err)
	}
	return newNodeAddr(a), nil
}

// CreateNodeByIP returns a Node for ip and port (port 0 means the listen
// port). The node is not added to any cluster.
func CreateNodeByIP(ip net.IP, port uint16) (*Node, error) {
	a, ok := netip.AddrFromSlice(ip)
	a = a.Unmap()
	if !ok || a.IsUnspecified() {
		return nil, fmt.Errorf("smudge: CreateNodeByIP: %v is not a usable IP address", ip)
	}
	if port == 0 {
		port = uint16(GetListenPort())
	}
	return newNodeAddr(netip.AddrPortFrom(a, port)), nil
}

// GetLocalIP returns this host's first usable address: a global unicast
// IPv4 address of an interface that is up and not loopback, else such an
// IPv6 address. Link-local addresses are never chosen.
func GetLocalIP() (net.IP, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("smudge: GetLocalIP: %w", err)
	}
	var v6 net.IP
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || !ipn.IP.IsGlobalUnicast() {
				continue
			}
			if v4 := ipn.IP.To4(); v4 != nil {
				return v4, nil
			}
			if v6 == nil {
				v6 = ipn.IP
			}
		}
	}
	if v6 != nil {
		return v6, nil
	}
	return nil, errors.New("smudge: GetLocalIP: no global unicast address on any interface that is up")
}
