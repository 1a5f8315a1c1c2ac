package smudge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
)

// Transport moves datagrams for one node. Implementations must be safe for one
// concurrent reader and one concurrent writer (the cluster reads in one
// goroutine and writes in another).
//
// Two implementations ship with smudge: [UDPTransport] for real networks and
// memnet.Endpoint (package github.com/seed-c7906467/smudge/memnet) for
// in-memory test networks.
type Transport interface {
	// LocalAddr is the address actually bound (with the real port when port 0
	// was asked for).
	LocalAddr() netip.AddrPort

	// WriteTo sends one datagram to addr. It must not retain b after it
	// returns.
	WriteTo(b []byte, addr netip.AddrPort) error

	// ReadFrom blocks until a datagram arrives and copies it into b, returning
	// its length and sender. Sender addresses are normalised: an IPv4-mapped
	// IPv6 address is reported as plain IPv4.
	//
	// A datagram longer than b is truncated: ReadFrom fills b, returns
	// n = len(b), the sender, and an error for which
	// errors.Is(err, ErrTruncatedDatagram) is true. The transport stays
	// usable; callers should discard the datagram and keep reading.
	//
	// After Close it returns an error that wraps net.ErrClosed. Any other
	// error concerns one datagram and is not fatal.
	ReadFrom(b []byte) (n int, addr netip.AddrPort, err error)

	// Close releases the socket and unblocks ReadFrom.
	Close() error
}

// ErrTruncatedDatagram is returned by [Transport.ReadFrom] when the datagram
// did not fit in the caller's buffer. The first len(b) bytes were copied and
// the rest was lost.
var ErrTruncatedDatagram = errors.New("smudge: truncated datagram")

// maxUDPPayload bounds the payload of any UDP datagram (IPv4: 65507,
// IPv6 without jumbograms: 65527). A read buffer this large never truncates.
const maxUDPPayload = 65535

// udpSocketBuffer is the size asked for the kernel's send and receive buffers.
const udpSocketBuffer = 2 << 20

// UDPTransport is a [Transport] over one UDP socket. Create it with
// [NewUDPTransport]. It is safe for one concurrent reader and any number of
// concurrent writers; WriteTo and ReadFrom do not allocate.
type UDPTransport struct {
	conn  *net.UDPConn
	local netip.AddrPort

	// canV4 and canV6 tell which destination families the socket reaches.
	canV4, canV6 bool

	// readMu guards scratch. ReadFrom reads into scratch, which is large
	// enough for any datagram, whenever the caller's buffer is smaller than
	// that, so that truncation can be detected on every platform.
	readMu  sync.Mutex
	scratch []byte
}

var _ Transport = (*UDPTransport)(nil)

// NewUDPTransport binds a UDP socket on addr: a concrete IPv4 or IPv6
// address, 0.0.0.0 (all IPv4 addresses) or [::] (all addresses, dual stack:
// IPv4 peers are reached and reported as plain IPv4). Port 0 binds any free
// port; [UDPTransport.LocalAddr] reports the one chosen.
//
// The socket's send and receive buffers are raised to 2 MiB where the system
// allows it. Errors name the address, as in
// "smudge: bind udp 127.0.0.1:9999: address already in use", and wrap the
// underlying *net.OpError (so errors.Is(err, syscall.EADDRINUSE) works).
func NewUDPTransport(addr netip.AddrPort) (*UDPTransport, error) {
	ip := addr.Addr()
	if !ip.IsValid() {
		return nil, fmt.Errorf("smudge: bind udp %s: invalid address", addr)
	}
	ip = ip.Unmap()
	addr = netip.AddrPortFrom(ip, addr.Port())

	t := &UDPTransport{scratch: make([]byte, maxUDPPayload)}
	var network string
	switch {
	case ip.Is4():
		network, t.canV4 = "udp4", true
	case ip.IsUnspecified(): // [::]: Go makes this a dual-stack socket.
		network, t.canV4, t.canV6 = "udp", true, true
	default:
		network, t.canV6 = "udp6", true
	}

	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, &bindError{addr: addr, err: err}
	}
	_ = conn.SetReadBuffer(udpSocketBuffer)
	_ = conn.SetWriteBuffer(udpSocketBuffer)

	t.conn = conn
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	t.local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	return t, nil
}

// LocalAddr returns the address the socket is bound to, with the real port.
func (t *UDPTransport) LocalAddr() netip.AddrPort { return t.local }

// WriteTo sends b as one datagram to addr. An IPv4-mapped IPv6 destination is
// treated as IPv4. Sending to an address family the socket cannot reach (IPv6
// from a socket bound to an IPv4 address, IPv4 from one bound to a concrete
// IPv6 address) returns an error.
func (t *UDPTransport) WriteTo(b []byte, addr netip.AddrPort) error {
	ip := addr.Addr()
	if ip.Is4In6() {
		ip = ip.Unmap()
		addr = netip.AddrPortFrom(ip, addr.Port())
	}
	switch {
	case ip.Is4() && !t.canV4:
		return fmt.Errorf("smudge: write udp %s to %s: IPv4 destination from a socket bound to an IPv6 address (bind [::] for dual stack)", t.local, addr)
	case ip.Is6() && !t.canV6:
		return fmt.Errorf("smudge: write udp %s to %s: IPv6 destination from a socket bound to an IPv4 address (bind [::] for dual stack)", t.local, addr)
	}
	_, err := t.conn.WriteToUDPAddrPort(b, addr)
	return err
}

// ReadFrom blocks until a datagram arrives, copies it into b and returns its
// length and its sender (IPv4-mapped senders are unmapped). A datagram longer
// than b fills b and comes with [ErrTruncatedDatagram]. After Close it
// returns an error wrapping net.ErrClosed.
//
// Buffers of at least 65535 bytes are read into directly; smaller ones cost a
// copy from an internal buffer, which is what makes truncation detectable.
func (t *UDPTransport) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	if len(b) >= maxUDPPayload {
		n, addr, err := t.conn.ReadFromUDPAddrPort(b)
		return n, unmapAddrPort(addr), err
	}

	t.readMu.Lock()
	defer t.readMu.Unlock()
	n, addr, err := t.conn.ReadFromUDPAddrPort(t.scratch)
	if err != nil {
		return 0, unmapAddrPort(addr), err
	}
	addr = unmapAddrPort(addr)
	c := copy(b, t.scratch[:n])
	if c < n {
		return c, addr, ErrTruncatedDatagram
	}
	return n, addr, nil
}

// Close closes the socket; a blocked ReadFrom returns an error wrapping
// net.ErrClosed. Closing twice returns such an error too.
func (t *UDPTransport) Close() error { return t.conn.Close() }

// unmapAddrPort turns [::ffff:a.b.c.d]:p into a.b.c.d:p.
func unmapAddrPort(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
}

// bindError reports a failed bind with the address asked for and the
// system's reason, and unwraps to the *net.OpError behind it.
type bindError struct {
	addr netip.AddrPort
	err  error
}

func (e *bindError) Error() string {
	cause := e.err
	var se *os.SyscallError
	var oe *net.OpError
	switch {
	case errors.As(cause, &se):
		cause = se.Err
	case errors.As(cause, &oe):
		cause = oe.Err
	}
	return fmt.Sprintf("smudge: bind udp %s: %v", e.addr, cause)
}

func (e *bindError) Unwrap() error { return e.err }
