package smudge

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed-c7906467/smudge/memnet"
)

// Both implementations satisfy Transport.
var (
	_ Transport = (*UDPTransport)(nil)
	_ Transport = (*memnet.Endpoint)(nil)
)

// transportWait bounds every wait in the transport tests.
const transportWait = 5 * time.Second

func transportTestAddr(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// transportBind binds addr, closes it at cleanup, and puts a read deadline on it so
// that no test can block forever.
func transportBind(t testing.TB, addr string) *UDPTransport {
	t.Helper()
	tr, err := NewUDPTransport(transportTestAddr(addr))
	if err != nil {
		t.Fatalf("NewUDPTransport(%s): %v", addr, err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	if err := tr.conn.SetReadDeadline(time.Now().Add(transportWait)); err != nil {
		t.Fatal(err)
	}
	return tr
}

// transportBindOrSkip is transportBind for addresses the host may not offer (IPv6).
func transportBindOrSkip(t *testing.T, addr string) *UDPTransport {
	t.Helper()
	tr, err := NewUDPTransport(transportTestAddr(addr))
	if err != nil {
		t.Skipf("cannot bind %s on this host (%v); skipping", addr, err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	if err := tr.conn.SetReadDeadline(time.Now().Add(transportWait)); err != nil {
		t.Fatal(err)
	}
	return tr
}

// transportLoopbackTo is where a peer on loopback reaches tr (a wildcard bind is
// reached through 127.0.0.1).
func transportLoopbackTo(tr *UDPTransport) netip.AddrPort {
	ip := tr.LocalAddr().Addr()
	if ip.IsUnspecified() {
		ip = netip.MustParseAddr("127.0.0.1")
	}
	return netip.AddrPortFrom(ip, tr.LocalAddr().Port())
}

func transportReadOne(t *testing.T, tr Transport, size int) ([]byte, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, size)
	n, from, err := tr.ReadFrom(buf)
	if err != nil {
		t.Fatalf("ReadFrom on %s: %v", tr.LocalAddr(), err)
	}
	return buf[:n], from
}

func transportRoundTrip(t *testing.T, a, b *UDPTransport, to netip.AddrPort) {
	t.Helper()
	if err := a.WriteTo([]byte("ping"), to); err != nil {
		t.Fatalf("WriteTo(%s): %v", to, err)
	}
	got, from := transportReadOne(t, b, 1500)
	if string(got) != "ping" || from != a.LocalAddr() {
		t.Fatalf("got %q from %s, want %q from %s", got, from, "ping", a.LocalAddr())
	}
	if err := b.WriteTo([]byte("pong"), from); err != nil {
		t.Fatalf("reply WriteTo(%s): %v", from, err)
	}
	got, from = transportReadOne(t, a, 1500)
	if string(got) != "pong" || from != to {
		t.Fatalf("reply: got %q from %s, want %q from %s", got, from, "pong", to)
	}
}

func TestUDPRoundTripIPv4(t *testing.T) {
	a := transportBind(t, "127.0.0.1:0")
	b := transportBind(t, "127.0.0.1:0")
	transportRoundTrip(t, a, b, b.LocalAddr())
}

func TestUDPRoundTripIPv6(t *testing.T) {
	a := transportBindOrSkip(t, "[::1]:0")
	b := transportBindOrSkip(t, "[::1]:0")
	if !a.LocalAddr().Addr().Is6() {
		t.Fatalf("LocalAddr %s is not IPv6", a.LocalAddr())
	}
	transportRoundTrip(t, a, b, b.LocalAddr())
}

func TestUDPWildcardReportsUnmappedIPv4Sender(t *testing.T) {
	for _, wildcard := range []string{"0.0.0.0:0", "[::]:0"} {
		t.Run(wildcard, func(t *testing.T) {
			var srv *UDPTransport
			if strings.HasPrefix(wildcard, "[") {
				srv = transportBindOrSkip(t, wildcard)
			} else {
				srv = transportBind(t, wildcard)
			}
			if got := srv.LocalAddr().Addr(); !got.IsUnspecified() {
				t.Fatalf("LocalAddr %s, want the wildcard", srv.LocalAddr())
			}
			cli := transportBind(t, "127.0.0.1:0")
			// The reply from the wildcard socket to the IPv4 sender checks
			// that a dual-stack [::] socket writes to IPv4 destinations.
			transportRoundTrip(t, cli, srv, transportLoopbackTo(srv))
		})
	}
}

func TestUDPDualStackAcceptsMappedDestination(t *testing.T) {
	srv := transportBindOrSkip(t, "[::]:0")
	cli := transportBind(t, "127.0.0.1:0")
	mapped := netip.AddrPortFrom(netip.AddrFrom16(cli.LocalAddr().Addr().As16()), cli.LocalAddr().Port())
	if err := srv.WriteTo([]byte("x"), mapped); err != nil {
		t.Fatalf("WriteTo(%s): %v", mapped, err)
	}
	if got, from := transportReadOne(t, cli, 100); string(got) != "x" || !from.Addr().Is4() {
		t.Fatalf("got %q from %s", got, from)
	}
	// An IPv4 socket accepts a mapped destination too (it is unmapped).
	if err := cli.WriteTo([]byte("y"), netip.AddrPortFrom(netip.AddrFrom16(netip.MustParseAddr("127.0.0.1").As16()), srv.LocalAddr().Port())); err != nil {
		t.Fatalf("IPv4 socket to mapped destination: %v", err)
	}
	if got, from := transportReadOne(t, srv, 100); string(got) != "y" || from != cli.LocalAddr() {
		t.Fatalf("got %q from %s", got, from)
	}
}

func TestUDPWrongFamilyIsAnError(t *testing.T) {
	v4 := transportBind(t, "127.0.0.1:0")
	err := v4.WriteTo([]byte("x"), transportTestAddr("[::1]:9"))
	if err == nil || !strings.Contains(err.Error(), "IPv6 destination") || !strings.Contains(err.Error(), v4.LocalAddr().String()) {
		t.Fatalf("IPv4 socket to IPv6 destination: %v, want a clear error", err)
	}

	v6 := transportBindOrSkip(t, "[::1]:0")
	err = v6.WriteTo([]byte("x"), transportTestAddr("127.0.0.1:9"))
	if err == nil || !strings.Contains(err.Error(), "IPv4 destination") {
		t.Fatalf("IPv6 socket to IPv4 destination: %v, want a clear error", err)
	}
}

func TestUDPWriteToInvalidAddress(t *testing.T) {
	tr := transportBind(t, "127.0.0.1:0")
	if err := tr.WriteTo([]byte("x"), netip.AddrPort{}); err == nil {
		t.Fatal("WriteTo the zero AddrPort succeeded")
	}
}

func TestUDPPortZeroGivesRealPort(t *testing.T) {
	tr := transportBind(t, "127.0.0.1:0")
	got := tr.LocalAddr()
	if got.Port() == 0 || got.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("LocalAddr = %s, want 127.0.0.1 with a real port", got)
	}
	// The port is really ours: a peer reaches it.
	peer := transportBind(t, "127.0.0.1:0")
	if err := peer.WriteTo([]byte("x"), got); err != nil {
		t.Fatal(err)
	}
	transportReadOne(t, tr, 10)
}

func TestUDPCloseUnblocksReadFrom(t *testing.T) {
	for _, size := range []int{1500, maxUDPPayload} { // both read paths
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			tr, err := NewUDPTransport(transportTestAddr("127.0.0.1:0"))
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() {
				_, _, err := tr.ReadFrom(make([]byte, size))
				errc <- err
			}()
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errc:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("ReadFrom after Close: %v, want net.ErrClosed", err)
				}
			case <-time.After(transportWait):
				t.Fatal("Close did not unblock ReadFrom")
			}
			if _, _, err := tr.ReadFrom(make([]byte, size)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("ReadFrom on a closed transport: %v", err)
			}
		})
	}
}

func TestUDPUseAfterClose(t *testing.T) {
	tr, err := NewUDPTransport(transportTestAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want net.ErrClosed", err)
	}
	if err := tr.WriteTo([]byte("x"), transportTestAddr("127.0.0.1:9")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteTo after Close: %v, want net.ErrClosed", err)
	}
}

func TestUDPDoubleBindNamesAddress(t *testing.T) {
	first := transportBind(t, "127.0.0.1:0")
	addr := first.LocalAddr()
	second, err := NewUDPTransport(addr)
	if err == nil {
		_ = second.Close()
		t.Fatalf("second bind of %s succeeded", addr)
	}
	want := "smudge: bind udp " + addr.String() + ": "
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("bind error %q, want prefix %q", err, want)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Fatalf("bind error %v does not wrap *net.OpError", err)
	}
	if runtime.GOOS != "windows" {
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("bind error %v is not EADDRINUSE", err)
		}
		if want := want + "address already in use"; err.Error() != want {
			t.Fatalf("bind error %q, want %q", err, want)
		}
	}
}

func TestUDPBindInvalidAddress(t *testing.T) {
	if _, err := NewUDPTransport(netip.AddrPort{}); err == nil || !strings.HasPrefix(err.Error(), "smudge: bind udp") {
		t.Fatalf("bind of the zero AddrPort: %v", err)
	}
	// 192.0.2.0/24 is TEST-NET-1; 192.0.2.77 is not a local address.
	if _, err := NewUDPTransport(transportTestAddr("192.0.2.77:0")); err == nil || !strings.Contains(err.Error(), "192.0.2.77:0") {
		t.Fatalf("bind of a non-local address: %v, want an error naming it", err)
	}
}

func TestUDPBindMappedAddressIsIPv4(t *testing.T) {
	tr := transportBind(t, "[::ffff:127.0.0.1]:0")
	if got := tr.LocalAddr(); !got.Addr().Is4() {
		t.Fatalf("LocalAddr %s, want plain IPv4", got)
	}
}

func TestUDPTruncatedDatagram(t *testing.T) {
	a := transportBind(t, "127.0.0.1:0")
	b := transportBind(t, "127.0.0.1:0")
	payload := bytes.Repeat([]byte("0123456789"), 100) // 1000 bytes
	for _, p := range [][]byte{payload, []byte("next"), payload} {
		if err := a.WriteTo(p, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}

	buf := make([]byte, 10)
	n, from, err := b.ReadFrom(buf)
	if !errors.Is(err, ErrTruncatedDatagram) {
		t.Fatalf("ReadFrom of 1000 bytes into 10: err %v, want ErrTruncatedDatagram", err)
	}
	if n != 10 || string(buf) != "0123456789" || from != a.LocalAddr() {
		t.Fatalf("truncated read: n=%d %q from %s", n, buf, from)
	}

	// The transport stays usable and the rest of the datagram is gone.
	if got, _ := transportReadOne(t, b, 100); string(got) != "next" {
		t.Fatalf("read after truncation: %q", got)
	}
	// A buffer of exactly the datagram's size is not truncated.
	if got, _ := transportReadOne(t, b, len(payload)); !bytes.Equal(got, payload) {
		t.Fatalf("exact-size read: %d bytes", len(got))
	}
}

func TestUDPLargeDatagramDirectRead(t *testing.T) {
	a := transportBind(t, "127.0.0.1:0")
	b := transportBind(t, "127.0.0.1:0")
	payload := bytes.Repeat([]byte{0xAB}, 60000)
	if err := a.WriteTo(payload, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	got, from := transportReadOne(t, b, maxUDPPayload)
	if !bytes.Equal(got, payload) || from != a.LocalAddr() {
		t.Fatalf("got %d bytes from %s", len(got), from)
	}
}

func TestMemnetEndpointAsTransport(t *testing.T) {
	network := memnet.New()
	defer network.Close()
	var a, b Transport
	var err error
	if a, err = network.Listen(transportTestAddr("127.0.0.1:1")); err != nil {
		t.Fatal(err)
	}
	if b, err = network.Listen(transportTestAddr("127.0.0.1:2")); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteTo([]byte("0123456789"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	n, from, err := b.ReadFrom(make([]byte, 4))
	if n != 4 || from != a.LocalAddr() || !errors.Is(err, ErrTruncatedDatagram) {
		t.Fatalf("memnet truncation: n=%d from %s err %v, want ErrTruncatedDatagram", n, from, err)
	}
}

func BenchmarkUDPWriteRead(b *testing.B) {
	for _, bc := range []struct {
		name    string
		payload int
		buf     int
	}{
		{"512B/buf1500", 512, 1500},
		{"1400B/buf64K", 1400, maxUDPPayload},
	} {
		b.Run(bc.name, func(b *testing.B) {
			src := transportBind(b, "127.0.0.1:0")
			dst := transportBind(b, "127.0.0.1:0")
			if err := dst.conn.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
				b.Fatal(err)
			}
			to := dst.LocalAddr()
			payload := make([]byte, bc.payload)
			buf := make([]byte, bc.buf)
			b.ReportAllocs()
			b.SetBytes(int64(bc.payload))
			for b.Loop() {
				if err := src.WriteTo(payload, to); err != nil {
					b.Fatal(err)
				}
				if n, _, err := dst.ReadFrom(buf); err != nil || n != bc.payload {
					b.Fatalf("ReadFrom: n=%d err=%v", n, err)
				}
			}
		})
	}
}
