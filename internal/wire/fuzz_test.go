package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"unsafe"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/ and run with every
// `go test`; they hold real packets of every type and some malformed ones.

// sentinels are the errors Decode may return (or wrap).
var sentinels = []error{ErrShort, ErrMagic, ErrVersion, ErrAddress, ErrTruncated,
	ErrMalformed, ErrNoMessages, ErrTooMany, ErrBadStatus, ErrUnspecified, ErrVarint}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// within reports whether sub lies inside b's memory.
func within(sub, b []byte) bool {
	if len(sub) == 0 {
		return true
	}
	if len(b) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	s := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return s >= start && s+uintptr(cap(sub)) <= start+uintptr(len(b))
}

// checkDecodable checks the invariants of a message Decode returned.
func checkDecodable(t *testing.T, m *Message, input []byte) {
	t.Helper()
	if err := m.Validate(); err != nil {
		t.Fatalf("decoded message fails Validate: %v: %s", err, fmtMsg(*m))
	}
	for _, a := range []netip.AddrPort{m.Target, m.Subject, m.Source} {
		if a.IsValid() && (a.Addr().Is4In6() || a.Addr().Zone() != "") {
			t.Fatalf("decoded address %v not normalised", a)
		}
	}
	if m.Payload != nil && len(m.Payload) == 0 {
		t.Fatal("empty non-nil payload")
	}
	if !within(m.Payload, input) {
		t.Fatal("payload (with its capacity) lies outside the input")
	}
	if m.Type != TypeBroadcast && m.Payload != nil {
		t.Fatalf("%v with a payload", m.Type)
	}
	if m.Type == TypePing && m.Flags&0xC0 != 0 {
		t.Fatalf("ping flags %#x: bits 6-7 (the target's family) returned", m.Flags)
	}
	// A ping, an ack and a nack are their type byte and a body whose
	// length the type (and a ping's family code) implies: no length field.
	if !hasLen(m.Type) {
		if n := 1 + impliedBody(m.Type, codeOf(m.Target)); m.EncodedLen() != n {
			t.Fatalf("%v: EncodedLen %d, want %d (no length field)", m.Type, m.EncodedLen(), n)
		}
	}
}

// frames walks the messages after a header as the package doc describes
// them, independently of Decode: a ping, ack or nack is its type and the
// body its type implies, any other message its type, a uvarint length and
// that many bytes. It returns the types of the known messages and the
// number of unknown ones, or ok false when the bytes do not frame.
func frames(rest []byte) (known []MsgType, unknown int, ok bool) {
	for len(rest) > 0 {
		t := MsgType(rest[0])
		rest = rest[1:]
		var n int
		switch {
		case t == TypePing:
			if len(rest) < 3 {
				return nil, 0, false
			}
			n = impliedBody(t, rest[2])
		case !hasLen(t):
			n = 2
		default:
			v, k := binary.Uvarint(rest)
			if k <= 0 || v > MaxBodyLen {
				return nil, 0, false
			}
			n, rest = int(v), rest[k:]
		}
		if len(rest) < n {
			return nil, 0, false
		}
		rest = rest[n:]
		if t >= TypePing && t <= TypeNack {
			known = append(known, t)
		} else {
			unknown++
		}
	}
	return known, unknown, true
}

func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		input := bytes.Clone(data)
		var p Packet
		err := p.Decode(data)
		if !bytes.Equal(input, data) {
			t.Fatal("Decode modified its input")
		}
		h, rest, herr := DecodeHeader(data)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			if len(p.Messages) != 0 || p.Skipped != 0 {
				t.Fatalf("error %v but %d messages, %d skipped", err, len(p.Messages), p.Skipped)
			}
			if herr != nil {
				if herr != err || p.Header != (Header{}) {
					t.Fatalf("header error %v / %v, header %+v", herr, err, p.Header)
				}
				return
			}
			if p.Header != h {
				t.Fatalf("message error %v: header %+v, DecodeHeader %+v", err, p.Header, h)
			}
			return
		}
		if herr != nil || h != p.Header {
			t.Fatalf("Decode ok but DecodeHeader: %+v %v", h, herr)
		}
		if h.Flags&0xC0 != 0 {
			t.Fatalf("header flags %#x: bits 6-7 (the sender's family) returned", h.Flags)
		}
		if len(p.Messages) == 0 || len(p.Messages) > MaxMessages {
			t.Fatalf("%d messages", len(p.Messages))
		}
		// The messages frame as the package doc says: pings, acks and
		// nacks without a length field.
		known, unknown, ok := frames(rest)
		if !ok || unknown != p.Skipped || len(known) != len(p.Messages) {
			t.Fatalf("decoded %d messages, %d skipped; framed %v: %v, %d unknown", len(p.Messages), p.Skipped, ok, known, unknown)
		}
		for i, typ := range known {
			if p.Messages[i].Type != typ {
				t.Fatalf("message %d: decoded %v, framed %v", i, p.Messages[i].Type, typ)
			}
		}

		// Re-encode canonically and decode again.
		re := AppendHeader(nil, p.Header)
		if len(re) != HeaderLen(p.Header) {
			t.Fatalf("HeaderLen %d, wrote %d", HeaderLen(p.Header), len(re))
		}
		for i := range p.Messages {
			m := &p.Messages[i]
			checkDecodable(t, m, data)
			before := len(re)
			re = m.AppendTo(re)
			if len(re)-before != m.EncodedLen() || m.EncodedLen() == 0 {
				t.Fatalf("EncodedLen %d, wrote %d for %s", m.EncodedLen(), len(re)-before, fmtMsg(*m))
			}
		}
		// Canonical encoding never grows: mapped addresses shrink, skipped
		// messages (each at least a type byte and a length) vanish.
		if len(re)+minMsgLen*p.Skipped > len(data) {
			t.Fatalf("re-encoded %d bytes, and %d skipped, from %d", len(re), p.Skipped, len(data))
		}
		var q Packet
		if err := q.Decode(re); err != nil {
			t.Fatalf("re-encoded packet does not decode: %v", err)
		}
		if q.Header != p.Header {
			t.Fatalf("header %+v, re-decoded %+v", p.Header, q.Header)
		}
		if q.Skipped != 0 {
			t.Fatalf("re-decoded Skipped = %d", q.Skipped)
		}
		if !reflect.DeepEqual(p.Messages, q.Messages) {
			t.Fatalf("messages differ after re-encoding:\n%+v\n%+v", p.Messages, q.Messages)
		}
		// A canonical packet re-encodes to itself.
		if again := packet(q.Header, q.Messages...); !bytes.Equal(again, re) {
			t.Fatal("canonical encoding is not stable")
		}
	})
}

func FuzzDecodeHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		h, rest, err := DecodeHeader(data)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			if h != (Header{}) || rest != nil {
				t.Fatalf("error %v with header %+v, rest %d bytes", err, h, len(rest))
			}
			return
		}
		if !h.Sender.IsValid() || h.Sender.Addr().IsUnspecified() || h.Sender.Port() == 0 {
			t.Fatalf("accepted sender %v", h.Sender)
		}
		if h.Sender.Addr().Is4In6() || h.Sender.Addr().Zone() != "" {
			t.Fatalf("sender %v not normalised", h.Sender)
		}
		used := len(data) - len(rest)
		// Flags bits 6-7 are the sender's family: code 1 IPv4 (4+2 bytes),
		// code 2 IPv6 (16+2 bytes; IPv4-mapped ones decode as IPv4). The
		// incarnation is in its shortest form, so only a mapped sender
		// makes the header longer than HeaderLen.
		switch ip, code := h.Sender.Addr(), data[1]>>6; {
		case code == 1 && ip.Is4() && used == HeaderLen(h):
		case code == 2 && ip.Is6() && used == HeaderLen(h):
		case code == 2 && ip.Is4() && used == HeaderLen(h)+12:
		default:
			t.Fatalf("family code %d, sender %v: used %d bytes, HeaderLen %d", code, h.Sender, used, HeaderLen(h))
		}
		if !bytes.Equal(data[used:], rest) {
			t.Fatal("rest is not the tail of the input")
		}
		if data[0] != tag || h.Flags != data[1]&^0xC0 || h.Cluster != binary.BigEndian.Uint32(data[2:6]) {
			t.Fatalf("header %+v from % x", h, data[:6])
		}
		enc := AppendHeader(nil, h)
		if len(enc) != HeaderLen(h) {
			t.Fatalf("HeaderLen %d, wrote %d", HeaderLen(h), len(enc))
		}
		if enc[1] != h.Flags|codeOf(h.Sender) {
			t.Fatalf("re-encoded flags %#x for %+v", enc[1], h)
		}
		h2, rest2, err := DecodeHeader(enc)
		if err != nil || h2 != h || len(rest2) != 0 {
			t.Fatalf("re-decoded %+v, %d bytes left, %v; want %+v", h2, len(rest2), err, h)
		}
	})
}

// fuzzAddr builds an address: kind%5 picks none, IPv4, IPv6, IPv4-mapped
// IPv6 or IPv6 with a zone; ip supplies the bytes.
func fuzzAddr(kind uint8, ip []byte, port uint16) netip.AddrPort {
	var b [16]byte
	copy(b[:], ip)
	switch kind % 5 {
	case 1:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), port)
	case 2:
		return netip.AddrPortFrom(netip.AddrFrom16(b), port)
	case 3:
		return netip.AddrPortFrom(netip.AddrFrom16(netip.AddrFrom4([4]byte(b[:4])).As16()), port)
	case 4:
		a := netip.AddrFrom16(b)
		if a.Is4In6() {
			return netip.AddrPortFrom(a, port)
		}
		return netip.AddrPortFrom(a.WithZone("eth0"), port)
	}
	return netip.AddrPort{}
}

// canon is what Decode yields for an address that AppendAddr wrote.
func canon(a netip.AddrPort) netip.AddrPort {
	if !a.IsValid() {
		return a
	}
	return netip.AddrPortFrom(a.Addr().Unmap().WithZone(""), a.Port())
}

// expected is what Decode yields for a message that AppendTo wrote: only the
// fields of its type, addresses canonical, an empty payload nil.
func expected(m Message) Message {
	w := Message{Type: m.Type}
	switch m.Type {
	case TypePing:
		// Flags bits 6-7 carry the target's family: not the caller's.
		w.Seq, w.Flags, w.Target = m.Seq, m.Flags&^0xC0, canon(m.Target)
	case TypeAck, TypeNack:
		w.Seq = m.Seq
	case TypePingReq:
		w.Seq, w.Target = m.Seq, canon(m.Target)
	case TypeUpdate:
		w.Status, w.Incarnation, w.Subject, w.Source = m.Status, m.Incarnation, canon(m.Subject), canon(m.Source)
	case TypeBroadcast:
		w.Subject, w.Boot, w.Index, w.AgeMillis = canon(m.Subject), m.Boot, m.Index, m.AgeMillis
		if len(m.Payload) > 0 {
			w.Payload = m.Payload
		}
	case TypeDigest:
		w.Flags = m.Flags
		if m.Flags&DigestFlagPartial != 0 {
			w.AgeMillis = m.AgeMillis
		}
	}
	return w
}

func FuzzRoundTrip(f *testing.F) {
	f.Fuzz(func(t *testing.T,
		hflags uint8, cluster uint64, senderKind uint8, senderIP []byte, senderPort uint16, hinc uint32,
		typ uint8, seq uint32, flags uint8, status uint8, inc uint32,
		kind1 uint8, ip1 []byte, port1 uint16, kind2 uint8, ip2 []byte, port2 uint16,
		boot, index, age uint32, payload []byte, count uint8) {

		h := Header{Flags: hflags, Cluster: uint32(cluster), Sender: fuzzAddr(senderKind, senderIP, senderPort), Incarnation: hinc}
		a1 := fuzzAddr(kind1, ip1, port1)
		m := Message{
			Type: MsgType(typ), Seq: uint16(seq), Flags: flags, Target: a1,
			Status: Status(status), Incarnation: inc, Subject: a1, Source: fuzzAddr(kind2, ip2, port2),
			Boot: boot, Index: index, AgeMillis: age, Payload: payload,
		}
		n := 1 + int(count)%8

		buf := AppendHeader(nil, h)
		if len(buf) != HeaderLen(h) {
			t.Fatalf("HeaderLen %d, wrote %d", HeaderLen(h), len(buf))
		}
		// The caller's Flags bits 6-7 are not written: they carry the
		// sender's family (and, in a ping, the target's).
		clean := h
		clean.Flags &^= 0xC0
		if !bytes.Equal(buf, AppendHeader(nil, clean)) || buf[1] != clean.Flags|codeOf(h.Sender) {
			t.Fatalf("flags %#x, sender %v: header % x", hflags, h.Sender, buf)
		}
		if m.Type == TypePing {
			// type, seq (2), flags: no length field
			cm := m
			cm.Flags &^= 0xC0
			if enc := m.AppendTo(nil); !bytes.Equal(enc, cm.AppendTo(nil)) || len(enc) > 3 && enc[3] != cm.Flags|codeOf(m.Target) {
				t.Fatalf("ping flags %#x, target %v: % x", flags, m.Target, enc)
			}
		}
		// A ping, ack or nack: its type, then at once its seq; as many
		// bytes as the type and a ping's family code imply.
		if enc := m.AppendTo(nil); !hasLen(m.Type) && len(enc) > 0 {
			if !bytes.Equal(enc[:3], cat([]byte{byte(m.Type)}, be16(m.Seq))) || len(enc) != 1+impliedBody(m.Type, codeOf(m.Target)) {
				t.Fatalf("%v: % x", m.Type, enc)
			}
		}
		for range n {
			before := len(buf)
			buf = m.AppendTo(buf)
			if len(buf)-before != m.EncodedLen() {
				t.Fatalf("EncodedLen %d, wrote %d", m.EncodedLen(), len(buf)-before)
			}
		}
		verr := m.Validate()
		if (verr == nil) != (m.EncodedLen() > 0) {
			t.Fatalf("Validate %v, EncodedLen %d", verr, m.EncodedLen())
		}

		var p Packet
		err := p.Decode(buf)
		s := canon(h.Sender)
		if !s.IsValid() || s.Addr().IsUnspecified() || s.Port() == 0 {
			if !errors.Is(err, ErrUnspecified) {
				t.Fatalf("sender %v: err = %v, want ErrUnspecified", h.Sender, err)
			}
			return
		}
		if verr != nil {
			if !errors.Is(err, ErrNoMessages) {
				t.Fatalf("unencodable message (%v): err = %v, want ErrNoMessages", verr, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		wantH := Header{Flags: hflags &^ 0xC0, Cluster: uint32(cluster), Sender: s, Incarnation: hinc}
		if p.Header != wantH {
			t.Fatalf("header %+v, want %+v", p.Header, wantH)
		}
		if len(p.Messages) != n || p.Skipped != 0 {
			t.Fatalf("%d messages, %d skipped; want %d", len(p.Messages), p.Skipped, n)
		}
		want := expected(m)
		for i := range p.Messages {
			if !msgEqual(p.Messages[i], want) {
				t.Fatalf("message %d:\n %s\nwant\n %s", i, fmtMsg(p.Messages[i]), fmtMsg(want))
			}
			checkDecodable(t, &p.Messages[i], buf)
		}
	})
}
