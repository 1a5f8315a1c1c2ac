package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// Test helpers.

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

var (
	v4a     = ap("10.0.0.1:7946")
	v4b     = ap("192.168.1.20:65535")
	v6a     = ap("[2001:db8::1]:7946")
	v6b     = ap("[fe80::abcd:1234:5678:9abc]:1")
	mapped  = ap("[::ffff:10.1.2.3]:7000")
	unmap   = ap("10.1.2.3:7000")
	testHdr = Header{Cluster: ClusterID("test"), Sender: v4a, Incarnation: 7}
)

// packet encodes h followed by msgs.
func packet(h Header, msgs ...Message) []byte {
	b := AppendHeader(nil, h)
	for i := range msgs {
		b = msgs[i].AppendTo(b)
	}
	return b
}

// hasLen reports whether messages of type t carry a body length field:
// every type but ping, ack and nack (whose lengths their type and a ping's
// flags imply), unknown types included. Written independently of wire.go.
func hasLen(t MsgType) bool { return t != TypePing && t != TypeAck && t != TypeNack }

// rawMsg encodes a message with an arbitrary type and body, bypassing
// AppendTo's checks: type, body length (uvarint) when the type has one (see
// hasLen), body. A ping, ack or nack body is written as is, so a body of
// the wrong size runs into the end of the packet or into the next message.
func rawMsg(t MsgType, body ...byte) []byte {
	if !hasLen(t) {
		return append([]byte{byte(t)}, body...)
	}
	return rawMsgLen(t, body...)
}

// rawMsgLen is rawMsg with a body length field whatever the type: a ping,
// ack or nack in the layout before their length went implicit.
func rawMsgLen(t MsgType, body ...byte) []byte {
	b := []byte{byte(t)}
	b = binary.AppendUvarint(b, uint64(len(body)))
	return append(b, body...)
}

// impliedBody is the body length a ping, ack or nack (by type and, for a
// ping, by the family code in its flags) has without a length field.
// Written independently of wire.go.
func impliedBody(t MsgType, pingFlags byte) int {
	if t != TypePing {
		return 2 // seq
	}
	return 3 + [4]int{0, 4 + 2, 16 + 2, 0}[pingFlags>>6] // seq, flags, target
}

// cat concatenates byte slices.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// be16 is a big-endian uint16 (a seq).
func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// be32 is a big-endian uint32.
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// uv is a uvarint.
func uv(v uint64) []byte { return binary.AppendUvarint(nil, v) }

// addr is AppendAddr into a new slice.
func addr(a netip.AddrPort) []byte { return AppendAddr(nil, a) }

// addrBody is addr without its family byte: the header's sender and a
// ping's target, whose family is coded in flag bits 6-7.
func addrBody(a netip.AddrPort) []byte { return addr(a)[1:] }

// Family codes in bits 6-7 of the header's and a ping's flags.
const (
	codeNone = 0 << 6
	codeV4   = 1 << 6
	codeV6   = 2 << 6
	codeBad  = 3 << 6
)

// codeOf is the family code AppendHeader and AppendTo put in the flags for
// a, written independently of wire.go.
func codeOf(a netip.AddrPort) byte {
	switch {
	case !a.IsValid():
		return codeNone
	case a.Addr().Unmap().Is4():
		return codeV4
	}
	return codeV6
}

// rawHeader is a header built by hand: flags (bits 6-7 included), a zero
// cluster, the sender's bytes without a family byte, the incarnation bytes.
func rawHeader(flags byte, sender, inc []byte) []byte {
	return cat([]byte{0xC2, flags}, make([]byte, 4), sender, inc)
}

// rawPing is a ping body built by hand: seq, flags (bits 6-7 included),
// then the target's bytes without a family byte.
func rawPing(seq uint16, flags byte, target []byte) []byte {
	return cat(be16(seq), []byte{flags}, target)
}

// hdr is the encoding of testHdr.
func hdr() []byte { return AppendHeader(nil, testHdr) }

func msgEqual(a, b Message) bool { return reflect.DeepEqual(a, b) }

func fmtMsg(m Message) string {
	return fmt.Sprintf("{%v seq=%d flags=%d target=%v status=%v inc=%d subject=%v source=%v boot=%d index=%d age=%d payload(%d)=%q nil=%v}",
		m.Type, m.Seq, m.Flags, m.Target, m.Status, m.Incarnation, m.Subject, m.Source,
		m.Boot, m.Index, m.AgeMillis, len(m.Payload), truncate(m.Payload), m.Payload == nil)
}

func truncate(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}

func mustDecode(t testing.TB, b []byte) *Packet {
	t.Helper()
	var p Packet
	if err := p.Decode(b); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return &p
}

// Round trips.

func TestMessageRoundTrip(t *testing.T) {
	maxV4 := bytes.Repeat([]byte{0xAB}, MaxBodyLen-AddrLen(v4a)-12)
	maxV6 := bytes.Repeat([]byte{0xCD}, MaxBodyLen-AddrLen(v6a)-12)
	tests := []struct {
		name string
		in   Message
		want *Message // nil: same as in
	}{
		{"ping v4", Message{Type: TypePing, Seq: 1, Target: v4a}, nil},
		{"ping v6", Message{Type: TypePing, Seq: 0xFFFF, Target: v6a}, nil},
		{"ping join flag", Message{Type: TypePing, Seq: 2, Flags: PingFlagJoin, Target: v4b}, nil},
		{"ping all flags", Message{Type: TypePing, Seq: 3, Flags: 0xFF, Target: v6b},
			&Message{Type: TypePing, Seq: 3, Flags: 0x3F, Target: v6b}}, // bits 6-7 carry the target's family
		{"ping flags 0-5", Message{Type: TypePing, Seq: 3, Flags: 0x3F, Target: v4a}, nil},
		{"ping family bits ignored", Message{Type: TypePing, Seq: 3, Flags: 0xC0 | PingFlagJoin, Target: v4a},
			&Message{Type: TypePing, Seq: 3, Flags: PingFlagJoin, Target: v4a}},
		{"ping family bits ignored, no target", Message{Type: TypePing, Seq: 3, Flags: 0x80 | PingFlagDigest},
			&Message{Type: TypePing, Seq: 3, Flags: PingFlagDigest}},
		{"ping no target", Message{Type: TypePing, Seq: 4}, nil},
		{"ping mapped target", Message{Type: TypePing, Seq: 5, Target: mapped},
			&Message{Type: TypePing, Seq: 5, Target: unmap}},
		{"ping zone dropped", Message{Type: TypePing, Seq: 6, Target: ap("[fe80::1%eth0]:99")},
			&Message{Type: TypePing, Seq: 6, Target: ap("[fe80::1]:99")}},
		{"ping ignores other fields", Message{Type: TypePing, Seq: 7, Target: v4a, Status: StatusDead, Subject: v6a, Payload: []byte("x")},
			&Message{Type: TypePing, Seq: 7, Target: v4a}},
		{"ack", Message{Type: TypeAck, Seq: 42}, nil},
		{"ack zero", Message{Type: TypeAck}, nil},
		{"ack max", Message{Type: TypeAck, Seq: 0xFFFF}, nil},
		{"ack ignores target", Message{Type: TypeAck, Seq: 1, Target: v4a},
			&Message{Type: TypeAck, Seq: 1}},
		{"nack", Message{Type: TypeNack, Seq: 43}, nil},
		{"nack max", Message{Type: TypeNack, Seq: 0xFFFF}, nil},
		{"ping-req v4", Message{Type: TypePingReq, Seq: 9, Target: v4b}, nil},
		{"ping-req v6", Message{Type: TypePingReq, Seq: 10, Target: v6a}, nil},
		{"ping-req mapped", Message{Type: TypePingReq, Seq: 11, Target: mapped},
			&Message{Type: TypePingReq, Seq: 11, Target: unmap}},
		{"ping-req port 1", Message{Type: TypePingReq, Seq: 12, Target: ap("10.0.0.9:1")}, nil},
		{"update alive v4", Message{Type: TypeUpdate, Status: StatusAlive, Incarnation: 1, Subject: v4a, Source: v4b}, nil},
		{"update suspect v6", Message{Type: TypeUpdate, Status: StatusSuspect, Incarnation: 2, Subject: v6a, Source: v6b}, nil},
		{"update dead mixed", Message{Type: TypeUpdate, Status: StatusDead, Incarnation: 0xFFFFFFFF, Subject: v4a, Source: v6a}, nil},
		{"update left", Message{Type: TypeUpdate, Status: StatusLeft, Incarnation: 0, Subject: v6b, Source: v4a}, nil},
		{"update incarnation 127", Message{Type: TypeUpdate, Status: StatusAlive, Incarnation: 127, Subject: v4a}, nil},
		{"update incarnation 128", Message{Type: TypeUpdate, Status: StatusAlive, Incarnation: 128, Subject: v4a}, nil},
		{"update incarnation 2^28", Message{Type: TypeUpdate, Status: StatusSuspect, Incarnation: 1 << 28, Subject: v6a, Source: v4b}, nil},
		{"update no source", Message{Type: TypeUpdate, Status: StatusAlive, Incarnation: 3, Subject: v4a}, nil},
		{"update no source v6", Message{Type: TypeUpdate, Status: StatusDead, Incarnation: 3, Subject: v6a}, nil},
		{"update with meta", Message{Type: TypeUpdate, Status: StatusAlive, Incarnation: 4, Subject: v4a, Source: v4a, HasMeta: true, Meta: []byte("id=7")}, nil},
		{"update with empty meta", Message{Type: TypeUpdate, Status: StatusSuspect, Incarnation: 4, Subject: v6a, HasMeta: true}, nil},
		{"update with longest meta", Message{Type: TypeUpdate, Status: StatusAlive, Incarnation: 4, Subject: v4a, HasMeta: true, Meta: bytes.Repeat([]byte{0xFF}, MaxMetaBytes)}, nil},
		{"update mapped", Message{Type: TypeUpdate, Status: StatusAlive, Incarnation: 5, Subject: mapped, Source: mapped},
			&Message{Type: TypeUpdate, Status: StatusAlive, Incarnation: 5, Subject: unmap, Source: unmap}},
		{"broadcast v4", Message{Type: TypeBroadcast, Subject: v4a, Boot: 1, Index: 2, AgeMillis: 3, Payload: []byte("hello")}, nil},
		{"broadcast v6", Message{Type: TypeBroadcast, Subject: v6a, Boot: 0xFFFFFFFF, Index: 0xFFFFFFFE, AgeMillis: 0xFFFFFFFD, Payload: []byte{0, 1, 2, 0xFF}}, nil},
		{"broadcast nil payload", Message{Type: TypeBroadcast, Subject: v4a, Boot: 1, Index: 1}, nil},
		{"broadcast empty payload", Message{Type: TypeBroadcast, Subject: v4a, Boot: 1, Index: 1, Payload: []byte{}},
			&Message{Type: TypeBroadcast, Subject: v4a, Boot: 1, Index: 1}},
		{"broadcast mapped origin", Message{Type: TypeBroadcast, Subject: mapped, Payload: []byte("p")},
			&Message{Type: TypeBroadcast, Subject: unmap, Payload: []byte("p")}},
		{"broadcast max payload v4", Message{Type: TypeBroadcast, Subject: v4a, Boot: 5, Index: 6, Payload: maxV4}, nil},
		{"broadcast max payload v6", Message{Type: TypeBroadcast, Subject: v6a, Boot: 5, Index: 6, Payload: maxV6}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.in
			if tt.want != nil {
				want = *tt.want
			}
			if err := tt.in.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			enc := tt.in.AppendTo(nil)
			if got := tt.in.EncodedLen(); got != len(enc) {
				t.Fatalf("EncodedLen = %d, AppendTo wrote %d", got, len(enc))
			}
			if MsgType(enc[0]) != tt.in.Type {
				t.Fatalf("type byte %d, want %d", enc[0], tt.in.Type)
			}
			if !hasLen(tt.in.Type) {
				// No length field: the seq follows the type, and the
				// body is as long as its type (and a ping's family code)
				// says.
				if !bytes.Equal(enc[1:3], be16(tt.in.Seq)) {
					t.Fatalf("% x: seq does not follow the type byte", enc)
				}
				var flags byte
				if tt.in.Type == TypePing {
					flags = enc[3]
					if flags&0xC0 != codeOf(tt.in.Target) || !bytes.Equal(enc[4:], addrBody(tt.in.Target)) {
						t.Fatalf("% x: flags, then the target without its family byte, expected after the seq", enc)
					}
				}
				if n := impliedBody(tt.in.Type, flags); len(enc) != 1+n {
					t.Fatalf("%d bytes, want the type byte and a %d-byte body", len(enc), n)
				}
			} else {
				n, k := binary.Uvarint(enc[1:])
				if k <= 0 || k != UvarintLen(uint32(n)) || n > MaxBodyLen {
					t.Fatalf("length field % x is not a shortest uvarint <= MaxBodyLen", enc[1:min(len(enc), 4)])
				}
				if int(n) != len(enc)-1-k {
					t.Fatalf("length field %d, body is %d bytes", n, len(enc)-1-k)
				}
			}
			// AppendTo appends: the prefix is kept.
			prefix := []byte("prefix")
			if got := tt.in.AppendTo(prefix); !bytes.Equal(got, cat(prefix, enc)) {
				t.Fatalf("AppendTo(prefix) did not append")
			}
			for _, h := range []Header{testHdr, {Cluster: 1, Sender: v6a, Incarnation: 1}} {
				p := mustDecode(t, cat(AppendHeader(nil, h), enc))
				if p.Header != h {
					t.Fatalf("header %+v, want %+v", p.Header, h)
				}
				if len(p.Messages) != 1 || p.Skipped != 0 {
					t.Fatalf("%d messages, %d skipped; want 1, 0", len(p.Messages), p.Skipped)
				}
				if !msgEqual(p.Messages[0], want) {
					t.Fatalf("decoded\n %s\nwant\n %s", fmtMsg(p.Messages[0]), fmtMsg(want))
				}
			}
		})
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   Header
		want Header
	}{
		{"v4", Header{Cluster: ClusterID("a"), Sender: v4a, Incarnation: 1}, Header{}},
		{"v6", Header{Cluster: ClusterID("b"), Sender: v6a, Incarnation: 0xFFFFFFFF}, Header{}},
		{"flags", Header{Flags: HeaderFlagSync, Cluster: 1, Sender: v4b}, Header{}},
		{"all flags", Header{Flags: 0xFF, Cluster: 0xFFFFFFFF, Sender: v6b, Incarnation: 9},
			Header{Flags: 0x3F, Cluster: 0xFFFFFFFF, Sender: v6b, Incarnation: 9}}, // bits 6-7 carry the sender's family
		{"flags 0-5", Header{Flags: 0x3F, Cluster: 1, Sender: v4a, Incarnation: 9}, Header{}},
		{"family bits not echoed v4", Header{Flags: 0xC0 | HeaderFlagPush, Cluster: 1, Sender: v4a},
			Header{Flags: HeaderFlagPush, Cluster: 1, Sender: v4a}},
		{"family bits not echoed v6", Header{Flags: 0x40, Cluster: 1, Sender: v6a},
			Header{Cluster: 1, Sender: v6a}},
		{"incarnation 127", Header{Cluster: 4, Sender: v4a, Incarnation: 127}, Header{}},
		{"incarnation 128", Header{Cluster: 4, Sender: v4a, Incarnation: 128}, Header{}},
		{"incarnation 2^21", Header{Cluster: 4, Sender: v6a, Incarnation: 1 << 21}, Header{}},
		{"incarnation max v4", Header{Cluster: 4, Sender: v4b, Incarnation: 0xFFFFFFFF}, Header{}},
		{"zero cluster", Header{Sender: v4a}, Header{}},
		{"mapped", Header{Cluster: 3, Sender: mapped, Incarnation: 2}, Header{Cluster: 3, Sender: unmap, Incarnation: 2}},
		{"zone", Header{Cluster: 3, Sender: ap("[fe80::1%lo]:80")}, Header{Cluster: 3, Sender: ap("[fe80::1]:80")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == (Header{}) {
				want = tt.in
			}
			enc := AppendHeader(nil, tt.in)
			if HeaderLen(tt.in) != len(enc) {
				t.Fatalf("HeaderLen = %d, AppendHeader wrote %d", HeaderLen(tt.in), len(enc))
			}
			if enc[0] != 0xC2 || enc[1] != tt.in.Flags&0x3F|codeOf(tt.in.Sender) || binary.BigEndian.Uint32(enc[2:6]) != tt.in.Cluster {
				t.Fatalf("bad preamble % x", enc[:6])
			}
			// The sender follows without its family byte.
			if body := addrBody(tt.in.Sender); !bytes.Equal(enc[6:6+len(body)], body) {
				t.Fatalf("sender % x, want % x", enc[6:6+len(body)], body)
			}
			tail := []byte{1, 2, 3}
			h, rest, err := DecodeHeader(cat(enc, tail))
			if err != nil {
				t.Fatalf("DecodeHeader: %v", err)
			}
			if h != want {
				t.Fatalf("got %+v, want %+v", h, want)
			}
			if !bytes.Equal(rest, tail) {
				t.Fatalf("rest = % x, want % x", rest, tail)
			}
			// A whole packet carries the same header.
			p := mustDecode(t, cat(enc, rawMsg(TypeAck, 0, 1)))
			if p.Header != want {
				t.Fatalf("Packet header %+v, want %+v", p.Header, want)
			}
		})
	}
}

func TestEncodedLenMatchesForEveryType(t *testing.T) {
	addrs := []netip.AddrPort{{}, v4a, v6a, mapped}
	payloads := [][]byte{nil, {}, []byte("x"), make([]byte, 1000)}
	var n int
	for _, typ := range []MsgType{0, TypePing, TypeAck, TypePingReq, TypeUpdate, TypeBroadcast, TypeDigest, TypeNack, 8, 255} {
		for _, st := range []Status{0, StatusAlive, StatusLeft, 5} {
			for _, a1 := range addrs {
				for _, a2 := range addrs {
					for _, pl := range payloads {
						m := Message{Type: typ, Seq: 1, Flags: 1, Target: a1, Status: st, Incarnation: 1,
							Subject: a1, Source: a2, Boot: 1, Index: 1, AgeMillis: 1, Payload: pl}
						enc := m.AppendTo([]byte{0xEE})
						if got := len(enc) - 1; got != m.EncodedLen() {
							t.Fatalf("%s: EncodedLen %d, AppendTo wrote %d", fmtMsg(m), m.EncodedLen(), got)
						}
						if enc[0] != 0xEE {
							t.Fatal("AppendTo overwrote dst")
						}
						if (m.Validate() == nil) != (m.EncodedLen() > 0) {
							t.Fatalf("%s: Validate %v but EncodedLen %d", fmtMsg(m), m.Validate(), m.EncodedLen())
						}
						if m.EncodedLen() > 0 {
							n++
							if _, err := decodeOne(cat(hdr(), enc[1:])); err != nil {
								t.Fatalf("%s: encodable but Decode fails: %v", fmtMsg(m), err)
							}
						}
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("nothing encodable")
	}
}

func decodeOne(b []byte) (Message, error) {
	var p Packet
	if err := p.Decode(b); err != nil {
		return Message{}, err
	}
	if len(p.Messages) != 1 {
		return Message{}, fmt.Errorf("%d messages", len(p.Messages))
	}
	return p.Messages[0], nil
}

// digestEntries returns valid digest entries of exactly n bytes (n >= 18).
func digestEntries(n int) []byte {
	full := AppendDigestEntry(nil, DigestEntry{Origin: v4a, Count: MaxDigestSpan, Bitmap: make([]byte, MaxDigestSpan/8)})
	small := AppendDigestEntry(nil, DigestEntry{Origin: v4a, Count: 1, Bitmap: []byte{0x80}})
	var b []byte
	for n-len(b) >= 2*len(full) {
		b = append(b, full...)
	}
	for n-len(b) > len(full) {
		b = append(b, small...)
	}
	r := n - len(b) - len(small) + 1 // bitmap bytes of the last entry
	return AppendDigestEntry(b, DigestEntry{Origin: v4a, Count: r * 8, Bitmap: make([]byte, r)})
}

func TestUnencodableMessages(t *testing.T) {
	tooBig := make([]byte, MaxBodyLen-AddrLen(v4a)-12+1)
	tests := []struct {
		name string
		m    Message
		want error
	}{
		{"type 0", Message{Type: 0}, ErrMalformed},
		{"type 8", Message{Type: 8, Seq: 1}, ErrMalformed},
		{"type 255", Message{Type: 255}, ErrMalformed},
		{"ping unspecified target", Message{Type: TypePing, Target: ap("0.0.0.0:1")}, ErrAddress},
		{"ping target port 0", Message{Type: TypePing, Target: ap("10.0.0.1:0")}, ErrAddress},
		{"ping-req without target", Message{Type: TypePingReq, Seq: 1}, ErrAddress},
		{"ping-req target port 0", Message{Type: TypePingReq, Seq: 1, Target: ap("10.0.0.9:0")}, ErrAddress},
		{"ping-req target ::", Message{Type: TypePingReq, Seq: 1, Target: ap("[::]:7946")}, ErrAddress},
		{"update unspecified subject", Message{Type: TypeUpdate, Status: StatusAlive, Subject: ap("0.0.0.0:7946")}, ErrAddress},
		{"update subject port 0", Message{Type: TypeUpdate, Status: StatusAlive, Subject: ap("[2001:db8::1]:0")}, ErrAddress},
		{"update meta too long", Message{Type: TypeUpdate, Status: StatusAlive, Subject: ap("10.0.0.1:1"), HasMeta: true, Meta: make([]byte, MaxMetaBytes+1)}, ErrMalformed},
		{"update meta without HasMeta", Message{Type: TypeUpdate, Status: StatusAlive, Subject: ap("10.0.0.1:1"), Meta: []byte("x")}, ErrMalformed},
		{"update unspecified source", Message{Type: TypeUpdate, Status: StatusSuspect, Subject: v4a, Source: ap("0.0.0.0:0")}, ErrAddress},
		{"ping zoned unspecified target", Message{Type: TypePing, Target: ap("[::%eth0]:1")}, ErrAddress},
		{"update mapped unspecified source", Message{Type: TypeUpdate, Status: StatusSuspect, Subject: v4a, Source: ap("[::ffff:0.0.0.0]:1")}, ErrAddress},
		{"broadcast origin port 0", Message{Type: TypeBroadcast, Subject: ap("10.0.0.1:0")}, ErrAddress},
		{"update status 0", Message{Type: TypeUpdate, Subject: v4a}, ErrBadStatus},
		{"update status 5", Message{Type: TypeUpdate, Status: 5, Subject: v4a}, ErrBadStatus},
		{"update status 255", Message{Type: TypeUpdate, Status: 255, Subject: v4a}, ErrBadStatus},
		{"update without subject", Message{Type: TypeUpdate, Status: StatusAlive, Source: v4a}, ErrAddress},
		{"broadcast without origin", Message{Type: TypeBroadcast, Payload: []byte("x")}, ErrAddress},
		{"broadcast payload one too big", Message{Type: TypeBroadcast, Subject: v4a, Payload: tooBig}, ErrMalformed},
		{"broadcast payload one too big v6", Message{Type: TypeBroadcast, Subject: v6a, Payload: tooBig[:len(tooBig)-12]}, ErrMalformed},
		{"digest entries one too big", Message{Type: TypeDigest, Entries: digestEntries(MaxBodyLen)}, ErrMalformed},
		{"partial digest entries one too big", Message{Type: TypeDigest, Flags: DigestFlagPartial, Entries: digestEntries(MaxBodyLen - 4)}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.m.Validate(); !errors.Is(err, tt.want) {
				t.Fatalf("Validate = %v, want %v", err, tt.want)
			}
			if n := tt.m.EncodedLen(); n != 0 {
				t.Fatalf("EncodedLen = %d, want 0", n)
			}
			dst := []byte("keep")
			if got := tt.m.AppendTo(dst); !bytes.Equal(got, []byte("keep")) {
				t.Fatalf("AppendTo appended % x", got[4:])
			}
		})
	}
}

func TestAddrEncoding(t *testing.T) {
	tests := []struct {
		a    netip.AddrPort
		want []byte
	}{
		{netip.AddrPort{}, []byte{0}},
		{ap("1.2.3.4:258"), []byte{4, 1, 2, 3, 4, 1, 2}},
		{ap("[::ffff:1.2.3.4]:258"), []byte{4, 1, 2, 3, 4, 1, 2}},
		{ap("[2001:db8::1]:1"), cat([]byte{6}, netip.MustParseAddr("2001:db8::1").AsSlice(), []byte{0, 1})},
		{ap("[::]:0"), cat([]byte{6}, make([]byte, 16), []byte{0, 0})},
	}
	for _, tt := range tests {
		got := AppendAddr([]byte{9}, tt.a)
		if !bytes.Equal(got, cat([]byte{9}, tt.want)) {
			t.Errorf("AppendAddr(%v) = % x, want % x", tt.a, got[1:], tt.want)
		}
		if AddrLen(tt.a) != len(tt.want) {
			t.Errorf("AddrLen(%v) = %d, want %d", tt.a, AddrLen(tt.a), len(tt.want))
		}
	}
}

// The decoder judges addresses on raw bytes, Validate through netip: they
// must agree on every form, including mapped and zoned unspecified ones.
func TestUsableAgreesWithDecoder(t *testing.T) {
	raw6 := func(ip string, port uint16) []byte {
		b := netip.MustParseAddr(ip).As16()
		return cat([]byte{6}, b[:], []byte{byte(port >> 8), byte(port)})
	}
	tests := []struct {
		a      netip.AddrPort
		usable bool
	}{
		{ap("10.0.0.1:1"), true},
		{ap("0.0.0.1:1"), true},
		{ap("0.0.0.0:1"), false},
		{ap("10.0.0.1:0"), false},
		{ap("[::1]:1"), true},
		{ap("[::]:1"), false},
		{ap("[::%eth0]:1"), false},
		{ap("[::1%eth0]:1"), true},
		{ap("[::ffff:0.0.0.0]:1"), false},
		{ap("[::ffff:0.0.0.1]:1"), true},
		{ap("[::ffff:10.0.0.1]:0"), false},
		{ap("[::fffe:0.0.0.0]:1"), true},
		{ap("[0:0:0:1::ffff:0.0.0.0]:1"), true},
		{netip.AddrPort{}, false},
	}
	for _, tt := range tests {
		if got := usable(tt.a); got != tt.usable {
			t.Errorf("usable(%v) = %v", tt.a, got)
		}
		encs := [][]byte{addr(tt.a)}
		if ip := tt.a.Addr(); ip.IsValid() {
			encs = append(encs, raw6(ip.WithZone("").String(), tt.a.Port())) // also as raw IPv6
		}
		for _, enc := range encs {
			a, rest, ok, err := readAddr(enc)
			if tt.a.IsValid() && (err != nil || len(rest) != 0) {
				t.Fatalf("readAddr(% x): %v", enc, err)
			}
			if ok != tt.usable || ok != usable(a) {
				t.Errorf("readAddr(% x) ok = %v, usable(%v) = %v, want %v", enc, ok, a, usable(a), tt.usable)
			}
			// The same address as the header's sender and as a ping's
			// target, its family in the flags.
			code := map[byte]byte{0: codeNone, 4: codeV4, 6: codeV6}[enc[0]]
			h, _, err := DecodeHeader(rawHeader(code, enc[1:], uv(1)))
			if (err == nil) != tt.usable || err != nil && !errors.Is(err, ErrUnspecified) {
				t.Errorf("sender % x (code %#x): %+v, %v", enc, code, h, err)
			}
			m, err := decodeOne(cat(hdr(), rawMsg(TypePing, rawPing(1, code, enc[1:])...)))
			if (err == nil) != (tt.usable || !tt.a.IsValid()) || err != nil && !errors.Is(err, ErrAddress) {
				t.Errorf("ping target % x (code %#x): %s, %v", enc, code, fmtMsg(m), err)
			}
		}
		m := Message{Type: TypePingReq, Target: tt.a}
		if (m.Validate() == nil) != tt.usable {
			t.Errorf("Validate with %v: %v", tt.a, m.Validate())
		}
	}
	// A raw IPv4-mapped address decodes as IPv4.
	a, _, ok, err := readAddr(raw6("::ffff:1.2.3.4", 80))
	if err != nil || !ok || a != ap("1.2.3.4:80") || !a.Addr().Is4() {
		t.Fatalf("mapped: %v %v %v", a, ok, err)
	}
}

func TestClusterID(t *testing.T) {
	names := []string{"", "a", "b", "smudge", "smudge-prod", "smudge-prod ", "Smudge", strings.Repeat("x", 1000), "\x00", "\xff\xfe"}
	seen := map[uint32]string{}
	for _, n := range names {
		id := ClusterID(n)
		if id != ClusterID(n) {
			t.Fatalf("ClusterID(%q) not stable", n)
		}
		h := fnv.New32a()
		h.Write([]byte(n))
		if id != h.Sum32() {
			t.Fatalf("ClusterID(%q) = %#x, want FNV-1a 32 %#x", n, id, h.Sum32())
		}
		if prev, ok := seen[id]; ok {
			t.Fatalf("ClusterID(%q) == ClusterID(%q)", n, prev)
		}
		seen[id] = n
	}
	// Pinned values: changing the hash breaks every deployed cluster.
	if got := ClusterID(""); got != 0x811c9dc5 {
		t.Fatalf("ClusterID(\"\") = %#x", got)
	}
	if got := ClusterID("a"); got != 0xe40c292c {
		t.Fatalf("ClusterID(\"a\") = %#x", got)
	}
	if got := ClusterID("smudge"); got != 0x9861b364 {
		t.Fatalf("ClusterID(\"smudge\") = %#x", got)
	}
}

func TestCompoundPacket(t *testing.T) {
	var msgs []Message
	addrs := []netip.AddrPort{v4a, v4b, v6a, v6b}
	for i := 0; i < MaxMessages; i++ {
		a, b := addrs[i%4], addrs[(i+1)%4]
		var m Message
		switch i % 6 {
		case 0:
			m = Message{Type: TypePing, Seq: uint16(i), Flags: uint8(i), Target: a}
		case 1:
			m = Message{Type: TypeAck, Seq: uint16(i)}
		case 2:
			m = Message{Type: TypePingReq, Seq: uint16(i), Target: a}
		case 3:
			m = Message{Type: TypeUpdate, Status: Status(1 + i%4), Incarnation: uint32(i) << (i % 25), Subject: a, Source: b}
		case 4:
			m = Message{Type: TypeUpdate, Status: Status(1 + i%4), Incarnation: uint32(i), Subject: a}
		case 5:
			m = Message{Type: TypeBroadcast, Subject: a, Boot: uint32(i), Index: uint32(i * 2), AgeMillis: uint32(i * 3), Payload: []byte(fmt.Sprint("payload ", i))}
		}
		msgs = append(msgs, m)
	}
	h := Header{Flags: HeaderFlagSync, Cluster: ClusterID("compound"), Sender: v6a, Incarnation: 99}
	b := packet(h, msgs...)
	want := HeaderLen(h)
	for i := range msgs {
		want += msgs[i].EncodedLen()
	}
	if len(b) != want {
		t.Fatalf("packet is %d bytes, lengths add up to %d", len(b), want)
	}
	p := mustDecode(t, b)
	if p.Header != h {
		t.Fatalf("header %+v, want %+v", p.Header, h)
	}
	if len(p.Messages) != len(msgs) {
		t.Fatalf("%d messages, want %d", len(p.Messages), len(msgs))
	}
	for i := range msgs {
		want := msgs[i]
		if want.Type == TypePing {
			want.Flags &^= 0xC0 // bits 6-7 carry the target's family
		}
		if !msgEqual(p.Messages[i], want) {
			t.Fatalf("message %d:\n %s\nwant\n %s", i, fmtMsg(p.Messages[i]), fmtMsg(want))
		}
	}

	// Unknown messages in between are skipped and do not count towards
	// MaxMessages.
	var mixed []byte
	mixed = AppendHeader(mixed, h)
	for i := range msgs {
		mixed = msgs[i].AppendTo(mixed)
		mixed = append(mixed, rawMsg(MsgType(8+i%248), byte(i))...)
	}
	p = mustDecode(t, mixed)
	if len(p.Messages) != MaxMessages || p.Skipped != MaxMessages {
		t.Fatalf("%d messages, %d skipped; want %d, %d", len(p.Messages), p.Skipped, MaxMessages, MaxMessages)
	}

	// One more known message is too many.
	var q Packet
	err := q.Decode(append(b, rawMsg(TypeAck, 0, 0)...))
	if !errors.Is(err, ErrTooMany) {
		t.Fatalf("%d+1 messages: err = %v, want ErrTooMany", MaxMessages, err)
	}
	if len(q.Messages) != 0 {
		t.Fatalf("after error %d messages", len(q.Messages))
	}
}

func TestSkipUnknownTypes(t *testing.T) {
	ack := rawMsg(TypeAck, 0, 5)
	b := cat(hdr(),
		rawMsg(0),
		ack,
		rawMsg(8, 1, 2, 3),
		rawMsg(255, make([]byte, 300)...),
		Message{Type: TypePing, Seq: 1, Target: v4a}.appendTo(),
		rawMsg(100),
	)
	p := mustDecode(t, b)
	if p.Skipped != 4 {
		t.Fatalf("Skipped = %d, want 4", p.Skipped)
	}
	want := []Message{{Type: TypeAck, Seq: 5}, {Type: TypePing, Seq: 1, Target: v4a}}
	if !reflect.DeepEqual(p.Messages, want) {
		t.Fatalf("got %+v, want %+v", p.Messages, want)
	}

	// Unknown messages between pings, acks and nacks, which have no
	// length field, are skipped by their own length, even when their
	// bodies hold what looks like pings, acks and nacks.
	probes := []Message{
		{Type: TypeNack, Seq: 0x0102},
		{Type: TypePing, Seq: 2, Flags: PingFlagJoin},
		{Type: TypePing, Seq: 3, Target: v6a},
		{Type: TypeAck, Seq: 4},
		{Type: TypePing, Seq: 5, Flags: PingFlagDigest, Target: v4b},
		{Type: TypeNack, Seq: 6},
	}
	unknown := [][]byte{
		rawMsg(0),
		rawMsg(8, Message{Type: TypePing, Seq: 9, Target: v4a}.appendTo()...),
		rawMsg(200, bytes.Repeat(Message{Type: TypeAck, Seq: 7}.appendTo(), 100)...), // a 2-byte length
		rawMsg(9, byte(TypeNack)),
		rawMsg(0xFF, byte(TypePing), 0, 1, codeV6),
		rawMsg(8, byte(TypeAck)),
	}
	b = hdr()
	for i := range probes {
		b = cat(b, unknown[i], probes[i].appendTo())
	}
	b = cat(b, rawMsg(77, 1, 2))
	p = mustDecode(t, b)
	if p.Skipped != len(unknown)+1 {
		t.Fatalf("Skipped = %d, want %d", p.Skipped, len(unknown)+1)
	}
	if !reflect.DeepEqual(p.Messages, probes) {
		t.Fatalf("got %+v, want %+v", p.Messages, probes)
	}

	// Skipped is reset by the next Decode.
	if err := p.Decode(cat(hdr(), ack)); err != nil || p.Skipped != 0 {
		t.Fatalf("err %v, Skipped %d", err, p.Skipped)
	}

	// Only unknown messages: no messages.
	err := p.Decode(cat(hdr(), rawMsg(8), rawMsg(9, 1)))
	if !errors.Is(err, ErrNoMessages) {
		t.Fatalf("only unknown: err = %v, want ErrNoMessages", err)
	}
	if len(p.Messages) != 0 || p.Skipped != 0 {
		t.Fatalf("after error: %d messages, %d skipped", len(p.Messages), p.Skipped)
	}
}

// appendTo is AppendTo into a new slice, for building test packets.
func (m Message) appendTo() []byte { return m.AppendTo(nil) }

// TestImpliedLengthCut cuts pings, acks and nacks, which have no length
// field, at every byte: each prefix is truncated, wherever the message
// stands in the packet.
func TestImpliedLengthCut(t *testing.T) {
	msgs := [][]byte{
		Message{Type: TypeAck, Seq: 0xABCD}.appendTo(),
		Message{Type: TypeNack, Seq: 0xABCD}.appendTo(),
		Message{Type: TypePing, Seq: 1, Flags: PingFlagJoin}.appendTo(),
		Message{Type: TypePing, Seq: 2, Flags: PingFlagWantSelf, Target: v4b}.appendTo(),
		Message{Type: TypePing, Seq: 3, Target: v6b}.appendTo(),
		// A raw IPv4-mapped target, family code 2 (18 bytes).
		rawMsg(TypePing, rawPing(4, codeV6|PingFlagDigest, cat(netip.MustParseAddr("::ffff:10.1.2.3").AsSlice(), []byte{0x1b, 0x58}))...),
	}
	before := [][]byte{
		nil,
		Message{Type: TypeAck, Seq: 1}.appendTo(),
		Message{Type: TypeUpdate, Status: StatusAlive, Incarnation: 9, Subject: v6a}.appendTo(),
		Message{Type: TypePing, Seq: 1, Target: v4a}.appendTo(),
		rawMsg(99, 1, 2, 3),
	}
	for _, whole := range msgs {
		var flags byte
		if MsgType(whole[0]) == TypePing {
			flags = whole[3]
		}
		if n := 1 + impliedBody(MsgType(whole[0]), flags); len(whole) != n {
			t.Fatalf("% x: %d bytes, want %d", whole, len(whole), n)
		}
		for _, pre := range before {
			var p Packet
			if err := p.Decode(cat(hdr(), pre, whole)); err != nil {
				t.Fatalf("% x after % x: %v", whole, pre, err)
			}
			for k := 1; k < len(whole); k++ {
				b := cat(hdr(), pre, whole[:k])
				if err := p.Decode(b); !errors.Is(err, ErrTruncated) {
					t.Errorf("% x cut to %d bytes after % x: err = %v, want ErrTruncated", whole, k, pre, err)
				}
				if len(p.Messages) != 0 || p.Skipped != 0 {
					t.Fatalf("after error: %d messages, %d skipped", len(p.Messages), p.Skipped)
				}
			}
		}
	}
	// A ping of family code 3 is 3 bytes of body: cut shorter it is
	// truncated, whole it has a bad target.
	bad := rawMsg(TypePing, rawPing(7, codeBad|PingFlagJoin, nil)...)
	for k := 1; k <= len(bad); k++ {
		want := ErrTruncated
		if k == len(bad) {
			want = ErrAddress
		}
		if _, err := decodeOne(cat(hdr(), bad[:k])); !errors.Is(err, want) {
			t.Errorf("code 3 ping cut to %d bytes: err = %v, want %v", k, err, want)
		}
	}
}

// TestImpliedLengthStrayBytes pins what becomes of bytes after a ping, an
// ack or a nack that its type does not account for: with no length field
// to skip them, they are read as the next message.
func TestImpliedLengthStrayBytes(t *testing.T) {
	ack := Message{Type: TypeAck, Seq: 0x0102}
	ackMsg := ack.appendTo()
	v6ish := addrBody(ap("[2001:db8:1:2::1]:7946")) // 20 01 0d b8 00 01 00 02 00...00 01 1f 0a
	for _, tc := range []struct {
		name    string
		b       []byte
		want    error
		msgs    []Message // when want is nil
		skipped int
	}{
		// A stray byte is a type byte without a length (or, for an ack, a
		// body).
		{"ack, 00", cat(ackMsg, []byte{0}), ErrTruncated, nil, 0},
		{"ack, 63", cat(ackMsg, []byte{0x63}), ErrTruncated, nil, 0},
		{"ack, 02", cat(ackMsg, []byte{byte(TypeAck)}), ErrTruncated, nil, 0},
		{"ack, 07 00", cat(ackMsg, []byte{byte(TypeNack), 0}), ErrTruncated, nil, 0},
		// Two stray bytes 00 00: an unknown message of type 0 and length
		// 0, skipped.
		{"ack, 00 00", cat(ackMsg, []byte{0, 0}), nil, []Message{ack}, 1},
		// Three stray bytes 02 00 05: a second ack.
		{"ack, 02 00 05", cat(ackMsg, []byte{2, 0, 5}), nil, []Message{ack, {Type: TypeAck, Seq: 5}}, 0},
		// The old layout's ack (type, length 2, seq): a seq of 0x0201,
		// then 02 starts an ack whose 2 bytes are missing.
		{"ack with a length field", rawMsgLen(TypeAck, 1, 2), ErrTruncated, nil, 0},
		// 04 00: an update of length 0, malformed.
		{"ack, 04 00", cat(ackMsg, []byte{byte(TypeUpdate), 0}), ErrMalformed, nil, 0},
		// A ping of family code 1 (IPv4) followed by the 18 bytes of an
		// IPv6 target: the first 6 are the target, 32.1.13.184:1, the
		// other 12 unknown messages of type 0 (00 02 00 00, 00 00, 00 00,
		// 00 01 1f) until 0a, a type without a length.
		{"ping code 1, IPv6 target", rawMsg(TypePing, rawPing(1, codeV4, v6ish)...), ErrTruncated, nil, 0},
		// Without the last byte, the unknown messages end the packet: a
		// valid ping and 4 skipped messages.
		{"ping code 1, IPv6 target less its last byte", rawMsg(TypePing, rawPing(1, codeV4, v6ish[:17])...), nil,
			[]Message{{Type: TypePing, Seq: 1, Target: ap("32.1.13.184:1")}}, 4},
		// A short IPv4 target takes the next message's bytes: here the 3
		// bytes of an ack (seq 9) are the target's last IP byte (2, the
		// type) and its port (9); the packet is one ping.
		{"ping code 1, short target, then an ack", cat(rawMsg(TypePing, rawPing(1, codeV4, []byte{10, 0, 0})...), rawMsg(TypeAck, 0, 9)),
			nil, []Message{{Type: TypePing, Seq: 1, Target: ap("10.0.0.2:9")}}, 0},
		// A ping of family code 2 followed by an IPv4 target and an ack:
		// 6 + 3 bytes of the 18 it needs.
		{"ping code 2, IPv4 target, then an ack", cat(rawMsg(TypePing, rawPing(1, codeV6, addrBody(v4a))...), ackMsg), ErrTruncated, nil, 0},
		// A ping without target followed by the target it lacks: 0a is
		// not a known type and its length, 00, is zero; then 00 01 (type
		// 0, length 1) skips 1f, and 0a has no length.
		{"ping code 0, then an IPv4 target", cat(rawMsg(TypePing, rawPing(1, codeNone, nil)...), addrBody(v4a)), ErrTruncated, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			err := p.Decode(cat(hdr(), tc.b))
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want != nil {
				return
			}
			if !reflect.DeepEqual(p.Messages, tc.msgs) || p.Skipped != tc.skipped {
				t.Fatalf("got %+v, %d skipped; want %+v, %d", p.Messages, p.Skipped, tc.msgs, tc.skipped)
			}
		})
	}
}

// TestCompoundProbeMessages builds a compound packet of pings, acks and
// nacks, which have no length field, between updates, which have one, and
// checks its layout byte by byte before it round-trips.
func TestCompoundProbeMessages(t *testing.T) {
	targets := []netip.AddrPort{{}, v4a, v6a, mapped, v4b, v6b}
	var msgs []Message
	for i := 0; i < 60; i++ {
		var m Message
		switch i % 5 {
		case 0:
			m = Message{Type: TypePing, Seq: uint16(i * 1000), Flags: uint8(i) & 0x3F, Target: targets[i%len(targets)]}
		case 1:
			m = Message{Type: TypeAck, Seq: uint16(0xFFFF - i)}
		case 2:
			m = Message{Type: TypeUpdate, Status: Status(1 + i%4), Incarnation: uint32(i) << 20, Subject: targets[1+i%5], Source: targets[(i+1)%6]}
		case 3:
			m = Message{Type: TypeNack, Seq: uint16(i)}
		case 4:
			m = Message{Type: TypePing, Seq: uint16(i), Flags: PingFlagJoin, Target: targets[(i+2)%len(targets)]}
		}
		msgs = append(msgs, m)
	}
	h := Header{Cluster: ClusterID("probes"), Sender: v4a, Incarnation: 1<<28 - 1}
	b := packet(h, msgs...)

	// Walk the layout: a ping, ack or nack is its type, its seq, and (a
	// ping) its flags and target without a family byte; an update its
	// type, its length and its body.
	rest := b[HeaderLen(h):]
	for i, m := range msgs {
		if MsgType(rest[0]) != m.Type {
			t.Fatalf("message %d: type %d, want %v", i, rest[0], m.Type)
		}
		var n int
		if hasLen(m.Type) {
			v, k := binary.Uvarint(rest[1:])
			if int(v) != m.EncodedLen()-1-k {
				t.Fatalf("message %d: length %d, EncodedLen %d", i, v, m.EncodedLen())
			}
			n = m.EncodedLen()
		} else {
			want := cat([]byte{byte(m.Type)}, be16(m.Seq))
			if m.Type == TypePing {
				c := canon(m.Target)
				want = cat(want, []byte{m.Flags | codeOf(c)}, addrBody(c))
			}
			n = len(want)
			if !bytes.Equal(rest[:n], want) {
				t.Fatalf("message %d (%v): % x, want % x", i, m.Type, rest[:n], want)
			}
		}
		rest = rest[n:]
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes after the last message", len(rest))
	}

	p := mustDecode(t, b)
	if p.Header != h || p.Skipped != 0 || len(p.Messages) != len(msgs) {
		t.Fatalf("header %+v, %d messages, %d skipped", p.Header, len(p.Messages), p.Skipped)
	}
	for i := range msgs {
		if want := expected(msgs[i]); !msgEqual(p.Messages[i], want) {
			t.Fatalf("message %d:\n %s\nwant\n %s", i, fmtMsg(p.Messages[i]), fmtMsg(want))
		}
	}
	// AppendTo wrote the mapped targets as IPv4 already: the decoded
	// messages encode to the same bytes.
	if re := packet(p.Header, p.Messages...); !bytes.Equal(re, b) {
		t.Fatalf("re-encoded % x\nfrom % x", re, b)
	}
}

func TestDecodeErrors(t *testing.T) {
	h := hdr()
	v4 := addr(v4a)
	v6 := addr(v6a)
	seq := be16(1)
	inc := uv(1) // an update's incarnation
	bcastFixed := cat(be32(1), be32(2), be32(3))
	v4body, v6body := addrBody(v4a), addrBody(v6a)
	// headerInc and headerWith build a header by hand: the sender's family
	// code goes in the flags, its bytes follow the cluster.
	headerInc := func(code byte, sender, inc []byte) []byte { return rawHeader(code, sender, inc) }
	headerWith := func(code byte, sender []byte) []byte { return headerInc(code, sender, uv(1)) }
	// An IPv4-mapped 0.0.0.0, port 257, without a family byte.
	mappedUnspec := cat(netip.MustParseAddr("::ffff:0.0.0.0").AsSlice(), []byte{1, 1})
	// pingMsg is a ping message with a hand-built body.
	pingMsg := func(flags byte, target []byte) []byte { return rawMsg(TypePing, rawPing(1, flags, target)...) }
	ack := rawMsg(TypeAck, seq...)
	// A version 1 ping (FuzzDecode's old ping_v4 seed): 'S' 'W' 1, flags,
	// an 8-byte cluster, the sender, a 4-byte incarnation, then a ping with
	// a 2-byte length and a 4-byte seq.
	v1Ping := []byte("SW\x01\x007^F\x8c\xe5\xb1\x11D\x04\n\x00\x00\x01'\x0f\x00\x00\x00\x03\x01\x00\f\x00\x00\x03\xe9\x00\x04\n\x00\x00\x02'\x0f")
	hdrInc := func(a netip.AddrPort, inc uint32) []byte {
		return AppendHeader(nil, Header{Sender: a, Incarnation: inc})
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		// Header: length.
		{"empty", nil, ErrShort},
		{"one byte", []byte{'S'}, ErrShort},
		{"tag only", []byte{0xC2}, ErrShort},
		{"v1 magic only", []byte{'S', 'W'}, ErrShort},
		{"6 bytes", h[:6], ErrShort},
		{"7 bytes", h[:7], ErrShort},
		{"7 bytes (address)", h[:7], ErrAddress},
		{"ends in sender v4", h[:11], ErrShort},
		{"ends in sender v4 (address)", h[:11], ErrAddress},
		{"ends in sender v6", hdrInc(v6a, 0)[:19], ErrShort},
		{"ends in sender v6 (address)", hdrInc(v6a, 0)[:19], ErrAddress},
		{"ends one byte into sender v6", hdrInc(v6a, 0)[:6+18-1], ErrShort},
		{"no incarnation", h[:len(h)-1], ErrShort},
		{"no incarnation v6", hdrInc(v6a, 0)[:6+18], ErrShort},
		{"ends in incarnation", hdrInc(v4a, 1<<21)[:6+6+3], ErrShort},
		{"ends in incarnation after 1 byte", hdrInc(v4a, 1<<21)[:6+6+1], ErrShort},
		{"ends in incarnation v6", hdrInc(v6a, 0xFFFFFFFF)[:6+18+4], ErrShort},

		// Header: magic and version.
		{"bad magic X", cat([]byte{'X'}, h[1:], ack), ErrMagic},
		{"bad magic 0", cat([]byte{0}, h[1:], ack), ErrMagic},
		{"bad magic 0xD2", cat([]byte{0xD2}, h[1:], ack), ErrMagic},
		{"bad magic 0xB2", cat([]byte{0xB2}, h[1:], ack), ErrMagic},
		{"nibbles swapped", cat([]byte{0x2C}, h[1:], ack), ErrMagic},
		{"v1 magic 1 bad", cat([]byte{'S', 'X'}, h[2:], ack), ErrMagic},
		{"v1 magic swapped", cat([]byte{'W', 'S'}, h[2:], ack), ErrMagic},
		{"v1 packet", v1Ping, ErrVersion},
		{"v1 preamble", []byte{'S', 'W', 1}, ErrVersion},
		{"v1 magic, version 2", cat([]byte{'S', 'W', 2}, h[1:], ack), ErrVersion},
		{"version 0", cat([]byte{0xC0}, h[1:], ack), ErrVersion},
		{"version 1", cat([]byte{0xC1}, h[1:], ack), ErrVersion},
		{"version 3", cat([]byte{0xC3}, h[1:], ack), ErrVersion},
		{"version 15", cat([]byte{0xCF}, h[1:], ack), ErrVersion},
		{"version 3, one byte", []byte{0xC3}, ErrVersion},

		// Header: incarnation.
		{"incarnation overlong 0", cat(headerInc(codeV4, v4body, []byte{0x80, 0x00}), ack), ErrVarint},
		{"incarnation overlong 7", cat(headerInc(codeV4, v4body, []byte{0x87, 0x80, 0x00}), ack), ErrVarint},
		{"incarnation overlong 5 bytes", cat(headerInc(codeV4, v4body, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0x00}), ack), ErrVarint},
		{"incarnation 2^32", cat(headerInc(codeV4, v4body, []byte{0x80, 0x80, 0x80, 0x80, 0x10}), ack), ErrVarint},
		{"incarnation 2^35-1", cat(headerInc(codeV4, v4body, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0x7F}), ack), ErrVarint},
		{"incarnation 6 bytes", cat(headerInc(codeV4, v4body, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x01}), ack), ErrVarint},
		{"incarnation 5 continuation bytes at the end", headerInc(codeV4, v4body, []byte{0x80, 0x80, 0x80, 0x80, 0x80}), ErrVarint},

		// Header: sender.
		{"sender family code 3", cat(headerWith(codeBad, []byte{1, 2, 3, 4, 0, 1}), ack), ErrAddress},
		{"sender family code 3, IPv6 length", cat(headerWith(codeBad, cat([]byte{1}, make([]byte, 17))), ack), ErrAddress},
		{"sender family code 3, no address", cat(headerWith(codeBad, nil), ack), ErrAddress},
		{"sender family code 3 and flags", cat(headerInc(codeBad|HeaderFlagSync|HeaderFlagPush, v4body, uv(1)), ack), ErrAddress},
		{"sender family code 0", cat(headerWith(codeNone, nil), ack), ErrUnspecified},
		{"sender family code 0 and flags", cat(headerWith(codeNone|HeaderFlagSync, nil), ack), ErrUnspecified},
		{"sender family code 0, address follows", cat(headerWith(codeNone, v4body), ack), ErrUnspecified},
		// The layout before the family moved into the flags: flags 0, then a
		// family byte.
		{"sender with a family byte (old layout)", cat(headerWith(codeNone, addr(v4a)), ack), ErrUnspecified},
		{"sender family code 2, IPv4 bytes", cat(headerWith(codeV6, v4body), ack), ErrShort},
		{"sender family code 2, IPv4 bytes (address)", cat(headerWith(codeV6, v4body), ack), ErrAddress},
		{"sender 0.0.0.0", packet(Header{Sender: ap("0.0.0.0:7946")}, Message{Type: TypeAck}), ErrUnspecified},
		{"sender ::", packet(Header{Sender: ap("[::]:7946")}, Message{Type: TypeAck}), ErrUnspecified},
		{"sender ::%eth0", packet(Header{Sender: ap("[::%eth0]:7946")}, Message{Type: TypeAck}), ErrUnspecified},
		{"sender ::ffff:0.0.0.0", cat(headerWith(codeV6, mappedUnspec), ack), ErrUnspecified},
		{"sender raw 0.0.0.0", cat(headerWith(codeV4, []byte{0, 0, 0, 0, 1, 1}), ack), ErrUnspecified},
		{"sender v4 port 0", packet(Header{Sender: ap("10.0.0.1:0")}, Message{Type: TypeAck}), ErrUnspecified},
		{"sender v6 port 0", packet(Header{Sender: ap("[2001:db8::1]:0")}, Message{Type: TypeAck}), ErrUnspecified},

		// Framing. A ping-req stands for the types with a length field.
		{"no messages", h, ErrNoMessages},
		{"one byte of message", cat(h, []byte{byte(TypePingReq)}), ErrTruncated},
		{"one byte of message, ack", cat(h, []byte{byte(TypeAck)}), ErrTruncated},
		{"one byte of message, unknown type", cat(h, []byte{77}), ErrTruncated},
		{"length cut after 1 byte", cat(h, []byte{byte(TypePingReq), 0x80}), ErrTruncated},
		{"length cut after 2 bytes", cat(h, []byte{byte(TypePingReq), 0xFF, 0xFF}), ErrTruncated},
		{"length cut after 4 bytes", cat(h, []byte{byte(TypePingReq), 0x80, 0x80, 0x80, 0x80}), ErrTruncated},
		{"unknown type, length cut", cat(h, ack, []byte{77, 0x81}), ErrTruncated},
		{"body past end", cat(h, []byte{byte(TypePingReq), 10}, seq, v4), ErrTruncated},
		{"body length 65535", cat(h, []byte{byte(TypePingReq), 0xFF, 0xFF, 0x03}, seq, v4), ErrTruncated},
		{"body length 65536", cat(h, []byte{byte(TypePingReq), 0x80, 0x80, 0x04}, seq, v4), ErrVarint},
		{"body length 2^21-1", cat(h, []byte{byte(TypePingReq), 0xFF, 0xFF, 0x7F}, seq, v4), ErrVarint},
		{"body length 2^28", cat(h, []byte{byte(TypePingReq), 0x80, 0x80, 0x80, 0x80, 0x01}, seq, v4), ErrVarint},
		{"body length 6 bytes", cat(h, []byte{byte(TypePingReq), 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, seq, v4), ErrVarint},
		{"body length overlong", cat(h, []byte{byte(TypePingReq), 0x89, 0x00}, seq, v4), ErrVarint},
		{"body length overlong 0", cat(h, []byte{byte(TypeUpdate), 0x80, 0x00}), ErrVarint},
		{"unknown type, length overlong", cat(h, ack, []byte{77, 0x81, 0x00, 9}), ErrVarint},
		{"unknown body past end", cat(h, ack, []byte{77, 1}), ErrTruncated},
		{"unknown body past end, 2-byte length", cat(h, ack, []byte{77, 0x80, 0x01}, make([]byte, 127)), ErrTruncated},
		{"trailing byte after message", cat(h, ack, []byte{0}), ErrTruncated},
		{"trailing byte after ping-req", cat(h, rawMsg(TypePingReq, cat(seq, v4)...), []byte{0}), ErrTruncated},
		{"only unknown", cat(h, rawMsg(0), rawMsg(200, 1, 2)), ErrNoMessages},
		{"too many", cat(h, bytes.Repeat(ack, MaxMessages+1)), ErrTooMany},
		{"too many, more later", cat(h, bytes.Repeat(ack, MaxMessages+10)), ErrTooMany},
		{"too many nacks and pings", cat(h, bytes.Repeat(cat(rawMsg(TypeNack, seq...), pingMsg(codeV4, v4body)), MaxMessages/2), ack), ErrTooMany},

		// Ping. It has no length field: one cut short by the end of the
		// packet is truncated, and bytes past what its family code implies
		// are the next message.
		{"ping empty", cat(h, rawMsg(TypePing)), ErrTruncated},
		{"ping 1 byte", cat(h, rawMsg(TypePing, 0)), ErrTruncated},
		{"ping 2 bytes", cat(h, rawMsg(TypePing, seq...)), ErrTruncated},
		{"ping family code 1, no target", cat(h, pingMsg(codeV4, nil)), ErrTruncated},
		{"ping family code 2, no target", cat(h, pingMsg(codeV6|PingFlagJoin, nil)), ErrTruncated},
		{"ping short v4", cat(h, pingMsg(codeV4, v4body[:5])), ErrTruncated},
		{"ping short v4, one byte", cat(h, pingMsg(codeV4, v4body[:1])), ErrTruncated},
		{"ping short v6", cat(h, pingMsg(codeV6, v6body[:17])), ErrTruncated},
		{"ping family code 2, IPv4 bytes", cat(h, pingMsg(codeV6, v4body)), ErrTruncated},
		// The ping takes an IPv4 target, 32.1.13.184:1, from the first 6
		// bytes; the other 12 (00 02 00 00 00 00 00 00 00 01 1f 0a) are
		// unknown messages of type 0, skipped, until type 0x0a has no
		// length.
		{"ping family code 1, IPv6 bytes", cat(h, pingMsg(codeV4, addrBody(ap("[2001:db8:1:2::1]:7946")))), ErrTruncated},
		// A short IPv4 target followed by an ack: the ack's 3 bytes are
		// read as the target's last ones, and the target still lacks one.
		// (With one more target byte the packet is a valid ping: see
		// TestImpliedLengthStrayBytes.)
		{"ping short v4 then an ack", cat(h, pingMsg(codeV4, v4body[:2]), rawMsg(TypeAck, 2, 0)), ErrTruncated},
		// A ping of family code 1 without its target, then a ping-req: the
		// ping-req's first 6 bytes are the target (3.9.0.1:1034), then 00
		// 00 is skipped (unknown type 0, length 0) and 01 starts a ping
		// which has 2 of its 3 bytes.
		{"ping family code 1, no target, then a ping-req", cat(h, pingMsg(codeV4, nil), rawMsg(TypePingReq, cat(seq, v4)...)), ErrTruncated},
		{"ping family code 3", cat(h, pingMsg(codeBad, v4body)), ErrAddress},
		{"ping family code 3, IPv6 length", cat(h, pingMsg(codeBad, v6body)), ErrAddress},
		{"ping family code 3, no target", cat(h, pingMsg(codeBad, nil)), ErrAddress},
		{"ping family code 3 and flags", cat(h, pingMsg(codeBad|PingFlagJoin|PingFlagDigest, v4body)), ErrAddress},
		{"ping target 0.0.0.0", cat(h, pingMsg(codeV4, addrBody(ap("0.0.0.0:7946")))), ErrAddress},
		{"ping target port 0", cat(h, pingMsg(codeV6, addrBody(ap("[2001:db8::5]:0")))), ErrAddress},
		{"ping target raw ::ffff:0.0.0.0", cat(h, pingMsg(codeV6, mappedUnspec)), ErrAddress},
		// A trailing byte is the next message's type, without a length.
		{"ping trailing", cat(h, pingMsg(codeV4, cat(v4body, []byte{0}))), ErrTruncated},
		{"ping v6 trailing", cat(h, pingMsg(codeV6, cat(v6body, []byte{0x7f}))), ErrTruncated},
		// Bytes 0 0 after a ping without target are an unknown message of
		// type 0 and length 0 (skipped: see TestImpliedLengthStrayBytes);
		// a third 0 is one more type byte without a length.
		{"ping no target trailing", cat(h, rawMsg(TypePing, cat(seq, []byte{0, 0, 0, 0})...)), ErrTruncated},
		// The layout before the family moved into the flags: flags 0 (no
		// target), then the target with its family byte, read as an update
		// (type 4) of length 10 of which 5 bytes are left.
		{"ping target with a family byte (old layout)", cat(h, pingMsg(codeNone, v4)), ErrTruncated},
		// The layout before ping's length went implicit: the length byte
		// 9 is read as the seq's first byte, the seq's second byte as the
		// flags (0x01: no target); then the real flags byte (0x40) is an
		// unknown type whose length, the target's first byte (10), runs
		// past the end.
		{"ping with a length field (old layout)", cat(h, rawMsgLen(TypePing, rawPing(1, codeV4, v4body)...)), ErrTruncated},
		// With seq 0x03E9, its low byte 0xE9 is read as flags: code 3.
		{"ping with a length field, seq 0x03E9 (old layout)", cat(h, rawMsgLen(TypePing, rawPing(0x03E9, codeV4, v4body)...)), ErrAddress},

		// Ack: 2 bytes of seq after the type, no length field.
		{"ack empty", cat(h, rawMsg(TypeAck)), ErrTruncated},
		{"ack 1 byte", cat(h, rawMsg(TypeAck, 1)), ErrTruncated},
		{"ack trailing", cat(h, rawMsg(TypeAck, 0, 1, 0)), ErrTruncated},
		// A version 1 ack's 4-byte seq: 00 00 is seq 0, then 00 01 an
		// unknown message of length 1 whose body is missing.
		{"ack v1 seq", cat(h, rawMsg(TypeAck, be32(1)...)), ErrTruncated},
		// The layout before the length went implicit: length 2 and the
		// seq's first byte make the seq (0x0200), the seq's second byte
		// (1) is read as a ping, which has 0 of its 3 bytes.
		{"ack with a length field (old layout)", cat(h, rawMsgLen(TypeAck, seq...)), ErrTruncated},
		// An empty ack with a length field (0) takes the next message's
		// type byte as the second byte of its seq; the ping-req's length
		// (9) is then an unknown type, its seq's second byte a ping, ...
		// until a type byte (0x0a) has no length after it.
		{"ack with a zero length, then a ping-req (old layout)", cat(h, rawMsgLen(TypeAck), rawMsg(TypePingReq, cat(seq, v4)...)), ErrTruncated},
		// A stray byte that starts a known message whose body is bad.
		{"ack then an empty update", cat(h, ack, []byte{byte(TypeUpdate), 0}), ErrMalformed},
		{"ack then a broken ping", cat(h, ack, pingMsg(codeBad, nil)), ErrAddress},

		// Nack.
		{"nack empty", cat(h, rawMsg(TypeNack)), ErrTruncated},
		{"nack 1 byte", cat(h, rawMsg(TypeNack, 1)), ErrTruncated},
		{"nack trailing", cat(h, rawMsg(TypeNack, 0, 1, 0)), ErrTruncated},
		{"nack with a length field (old layout)", cat(h, rawMsgLen(TypeNack, seq...)), ErrTruncated},

		// PingReq.
		{"ping-req empty", cat(h, rawMsg(TypePingReq)), ErrMalformed},
		{"ping-req 1 byte", cat(h, rawMsg(TypePingReq, 1)), ErrMalformed},
		{"ping-req no target", cat(h, rawMsg(TypePingReq, seq...)), ErrMalformed},
		{"ping-req family 0", cat(h, rawMsg(TypePingReq, cat(seq, []byte{0})...)), ErrAddress},
		{"ping-req bad family", cat(h, rawMsg(TypePingReq, cat(seq, []byte{16}, v4[1:])...)), ErrAddress},
		{"ping-req target ::", cat(h, rawMsg(TypePingReq, cat(seq, addr(ap("[::]:1")))...)), ErrAddress},
		{"ping-req target port 0", cat(h, rawMsg(TypePingReq, cat(seq, addr(ap("10.0.0.1:0")))...)), ErrAddress},
		{"ping-req target raw ::ffff:0.0.0.0", cat(h, rawMsg(TypePingReq, cat(seq, []byte{6}, netip.MustParseAddr("::ffff:0.0.0.0").AsSlice(), []byte{0, 1})...)), ErrAddress},
		{"ping-req target raw mapped port 0", cat(h, rawMsg(TypePingReq, cat(seq, []byte{6}, netip.MustParseAddr("::ffff:1.2.3.4").AsSlice(), []byte{0, 0})...)), ErrAddress},
		{"ping-req short v6", cat(h, rawMsg(TypePingReq, cat(seq, v6[:10])...)), ErrMalformed},
		{"ping-req trailing", cat(h, rawMsg(TypePingReq, cat(seq, v4, []byte{1})...)), ErrMalformed},

		// Update.
		{"update empty", cat(h, rawMsg(TypeUpdate)), ErrMalformed},
		{"update 1 byte", cat(h, rawMsg(TypeUpdate, 1)), ErrMalformed},
		{"update incarnation cut", cat(h, rawMsg(TypeUpdate, 1, 0x80)), ErrVarint},
		{"update incarnation cut (malformed)", cat(h, rawMsg(TypeUpdate, 1, 0x80)), ErrMalformed},
		{"update incarnation cut, 4 bytes", cat(h, rawMsg(TypeUpdate, 1, 0xFF, 0xFF, 0xFF, 0xFF)), ErrVarint},
		{"update incarnation overlong", cat(h, rawMsg(TypeUpdate, cat([]byte{1, 0x81, 0x00}, v4, []byte{0})...)), ErrVarint},
		{"update incarnation overlong (malformed)", cat(h, rawMsg(TypeUpdate, cat([]byte{1, 0x81, 0x00}, v4, []byte{0})...)), ErrMalformed},
		{"update incarnation overlong 0", cat(h, rawMsg(TypeUpdate, cat([]byte{1, 0x80, 0x80, 0x00}, v4, []byte{0})...)), ErrVarint},
		{"update incarnation 2^32", cat(h, rawMsg(TypeUpdate, cat([]byte{1, 0x80, 0x80, 0x80, 0x80, 0x10}, v4, []byte{0})...)), ErrVarint},
		{"update incarnation 2^32 (malformed)", cat(h, rawMsg(TypeUpdate, cat([]byte{1, 0x80, 0x80, 0x80, 0x80, 0x10}, v4, []byte{0})...)), ErrMalformed},
		{"update incarnation 6 bytes", cat(h, rawMsg(TypeUpdate, cat([]byte{1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, v4, []byte{0})...)), ErrVarint},
		{"update no subject", cat(h, rawMsg(TypeUpdate, cat([]byte{1}, inc)...)), ErrMalformed},
		{"update subject family 0", cat(h, rawMsg(TypeUpdate, cat([]byte{1}, inc, []byte{0}, v4)...)), ErrAddress},
		{"update short subject", cat(h, rawMsg(TypeUpdate, cat([]byte{1}, inc, v4[:5])...)), ErrMalformed},
		{"update bad subject family", cat(h, rawMsg(TypeUpdate, cat([]byte{1}, inc, []byte{44}, v4[1:], []byte{0})...)), ErrAddress},
		{"update subject 0.0.0.0", cat(h, rawMsg(TypeUpdate, cat([]byte{1}, inc, addr(ap("0.0.0.0:1")), []byte{0})...)), ErrAddress},
		{"update subject port 0", cat(h, rawMsg(TypeUpdate, cat([]byte{1}, inc, addr(ap("10.0.0.1:0")), []byte{0})...)), ErrAddress},
		{"update source ::", cat(h, rawMsg(TypeUpdate, cat([]byte{1}, inc, v4, addr(ap("[::]:7946")))...)), ErrAddress},
		{"update source port 0", cat(h, rawMsg(TypeUpdate, cat([]byte{1}, inc, v4, addr(ap("10.0.0.2:0")))...)), ErrAddress},
		{"update no source", cat(h, rawMsg(TypeUpdate, cat([]byte{1}, inc, v4)...)), ErrMalformed},
		{"update short source", cat(h, rawMsg(TypeUpdate, cat([]byte{1}, inc, v4, v6[:5])...)), ErrMalformed},
		{"update bad source family", cat(h, rawMsg(TypeUpdate, cat([]byte{1}, inc, v4, []byte{7})...)), ErrAddress},
		{"update meta cut short", cat(h, rawMsg(TypeUpdate, cat([]byte{1}, inc, v4, v4, []byte{2, 'a'})...)), ErrMalformed},
		{"update trailing after meta", cat(h, rawMsg(TypeUpdate, cat([]byte{1}, inc, v4, v4, []byte{1, 'a', 'b'})...)), ErrMalformed},
		{"update trailing after empty meta, no source", cat(h, rawMsg(TypeUpdate, cat([]byte{1}, inc, v4, []byte{0, 0, 0})...)), ErrMalformed},
		{"update status 0", cat(h, rawMsg(TypeUpdate, cat([]byte{0}, inc, v4, []byte{0})...)), ErrBadStatus},
		{"update status 5", cat(h, rawMsg(TypeUpdate, cat([]byte{5}, inc, v4, []byte{0})...)), ErrBadStatus},
		{"update status 255", cat(h, rawMsg(TypeUpdate, cat([]byte{255}, inc, v4, []byte{0})...)), ErrBadStatus},

		// Broadcast.
		{"broadcast empty", cat(h, rawMsg(TypeBroadcast)), ErrMalformed},
		{"broadcast origin family 0", cat(h, rawMsg(TypeBroadcast, cat([]byte{0}, bcastFixed)...)), ErrAddress},
		{"broadcast bad origin family", cat(h, rawMsg(TypeBroadcast, cat([]byte{3}, bcastFixed)...)), ErrAddress},
		{"broadcast origin 0.0.0.0", cat(h, rawMsg(TypeBroadcast, cat(addr(ap("0.0.0.0:80")), bcastFixed)...)), ErrAddress},
		{"broadcast origin port 0", cat(h, rawMsg(TypeBroadcast, cat(addr(ap("[2001:db8::1]:0")), bcastFixed)...)), ErrAddress},
		{"broadcast short origin", cat(h, rawMsg(TypeBroadcast, v6[:12]...)), ErrMalformed},
		{"broadcast no fixed fields", cat(h, rawMsg(TypeBroadcast, v4...)), ErrMalformed},
		{"broadcast 11 fixed bytes", cat(h, rawMsg(TypeBroadcast, cat(v4, bcastFixed[:11])...)), ErrMalformed},

		// A bad message after good ones spoils the packet.
		{"good then bad", cat(h, ack, Message{Type: TypeBroadcast, Subject: v4a, Payload: []byte("x")}.appendTo(), rawMsg(TypePingReq, 0)), ErrMalformed},
		{"good then truncated", cat(h, ack, ack[:2]), ErrTruncated},
		{"good then truncated ping", cat(h, ack, Message{Type: TypeNack, Seq: 2}.appendTo(), pingMsg(codeV6, v6body[:10])), ErrTruncated},
	}
	good := packet(testHdr,
		Message{Type: TypeAck, Seq: 1},
		Message{Type: TypeBroadcast, Subject: v4a, Payload: []byte("x")},
		Message{Type: TypeUpdate, Status: StatusAlive, Subject: v6a})
	good = append(good, rawMsg(99)...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			if err := p.Decode(good); err != nil || len(p.Messages) != 3 || p.Skipped != 1 {
				t.Fatalf("good packet: %v", err)
			}
			err := p.Decode(tt.b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if len(p.Messages) != 0 {
				t.Fatalf("after error p has %d messages", len(p.Messages))
			}
			if p.Skipped != 0 {
				t.Fatalf("after error Skipped = %d", p.Skipped)
			}
			// The previous packet's messages must not leak through the
			// reused backing array.
			for i, m := range p.Messages[:cap(p.Messages)] {
				if m.Payload != nil {
					t.Fatalf("stale payload in slot %d", i)
				}
			}
			// A header error is DecodeHeader's error and leaves no header;
			// a message error keeps the header for the caller's logs.
			dh, _, herr := DecodeHeader(tt.b)
			if herr != nil {
				if herr != err {
					t.Fatalf("DecodeHeader err = %v, Decode err = %v", herr, err)
				}
				if p.Header != (Header{}) {
					t.Fatalf("header error but p.Header = %+v", p.Header)
				}
			} else if p.Header != dh {
				t.Fatalf("message error: p.Header = %+v, want %+v", p.Header, dh)
			}
		})
	}
}

func TestDecodeHeaderErrorsReturnZero(t *testing.T) {
	for _, hd := range []Header{
		{Flags: 1, Cluster: 5, Sender: v4a, Incarnation: 1},
		{Flags: 1, Cluster: 5, Sender: v4a, Incarnation: 0xFFFFFFFF}, // 5-byte incarnation
		{Cluster: 0xFFFFFFFF, Sender: v6a, Incarnation: 1 << 14},     // 3-byte incarnation
	} {
		full := AppendHeader(nil, hd)
		// Every prefix is too short, including those that end inside the
		// incarnation's uvarint.
		for n := 0; n < len(full); n++ {
			h, rest, err := DecodeHeader(full[:n])
			if !errors.Is(err, ErrShort) {
				t.Fatalf("%+v, %d bytes: err = %v, want ErrShort", hd, n, err)
			}
			if h != (Header{}) || rest != nil {
				t.Fatalf("%+v, %d bytes: got %+v, % x", hd, n, h, rest)
			}
		}
		if h, rest, err := DecodeHeader(full); err != nil || h != hd || len(rest) != 0 {
			t.Fatalf("%+v: whole header: %+v, % x, %v", hd, h, rest, err)
		}
	}
}

// TestHeaderBytes pins the version 2 header layout byte by byte.
func TestHeaderBytes(t *testing.T) {
	h := Header{Flags: HeaderFlagSync | HeaderFlagPush, Cluster: 0x01020304, Sender: ap("10.0.0.1:7946"), Incarnation: 300}
	want := []byte{
		0xC2,       // tag: magic 0xC, version 2
		0x40 | 3,   // flags: family code 1 (IPv4) in bits 6-7, sync and push
		1, 2, 3, 4, // cluster
		10, 0, 0, 1, 0x1F, 0x0A, // sender, without its family byte
		0xAC, 0x02, // incarnation 300 as a uvarint
	}
	if got := AppendHeader(nil, h); !bytes.Equal(got, want) {
		t.Fatalf("AppendHeader = % x, want % x", got, want)
	}
	if HeaderLen(h) != len(want) {
		t.Fatalf("HeaderLen = %d, want %d", HeaderLen(h), len(want))
	}
	if Version != 2 || want[0]&0x0F != Version {
		t.Fatalf("Version = %d", Version)
	}
	// Flags' bits 6-7 are the encoder's: the caller's are not written.
	h.Flags |= 0xC0
	if got := AppendHeader(nil, h); !bytes.Equal(got, want) {
		t.Fatalf("AppendHeader with flags 0xC3 = % x, want % x", got, want)
	}
	h6 := Header{Flags: HeaderFlagPush, Cluster: 0x01020304, Sender: ap("[2001:db8::1]:258"), Incarnation: 1}
	want6 := cat([]byte{0xC2, 0x80 | 2, 1, 2, 3, 4}, netip.MustParseAddr("2001:db8::1").AsSlice(), []byte{1, 2, 1})
	if got := AppendHeader(nil, h6); !bytes.Equal(got, want6) {
		t.Fatalf("AppendHeader v6 = % x, want % x", got, want6)
	}
	if HeaderLen(h6) != len(want6) || len(want6) != 25 {
		t.Fatalf("HeaderLen v6 = %d, want %d", HeaderLen(h6), len(want6))
	}
	for _, tc := range []struct {
		name string
		m    Message
		want []byte
	}{
		// A ping has no length field: the family code says how long it is.
		{"ping v4", Message{Type: TypePing, Seq: 0xABCD, Flags: PingFlagJoin | PingFlagDigest, Target: ap("10.0.0.2:1")},
			[]byte{byte(TypePing), 0xAB, 0xCD, 0x40 | 5, 10, 0, 0, 2, 0, 1}},
		{"ping v4, flags 0xFF", Message{Type: TypePing, Seq: 0xABCD, Flags: 0xFF, Target: ap("10.0.0.2:1")},
			[]byte{byte(TypePing), 0xAB, 0xCD, 0x7F, 10, 0, 0, 2, 0, 1}},
		{"ping v6", Message{Type: TypePing, Seq: 1, Flags: PingFlagWantSelf, Target: ap("[2001:db8::1]:258")},
			cat([]byte{byte(TypePing), 0, 1, 0x80 | 2}, netip.MustParseAddr("2001:db8::1").AsSlice(), []byte{1, 2})},
		{"ping mapped target", Message{Type: TypePing, Seq: 1, Target: ap("[::ffff:10.0.0.2]:1")},
			[]byte{byte(TypePing), 0, 1, 0x40, 10, 0, 0, 2, 0, 1}},
		{"ping no target", Message{Type: TypePing, Seq: 0xABCD, Flags: PingFlagJoin},
			[]byte{byte(TypePing), 0xAB, 0xCD, 1}},
		{"ping no target, flags 0xC1", Message{Type: TypePing, Seq: 0xABCD, Flags: 0xC0 | PingFlagJoin},
			[]byte{byte(TypePing), 0xAB, 0xCD, 1}},
		// Nor have an ack and a nack.
		{"ack", Message{Type: TypeAck, Seq: 0xABCD}, []byte{byte(TypeAck), 0xAB, 0xCD}},
		{"nack", Message{Type: TypeNack, Seq: 0x0102}, []byte{byte(TypeNack), 1, 2}},
		// Other messages keep their length field, and other addresses
		// their family byte.
		{"ping-req", Message{Type: TypePingReq, Seq: 2, Target: ap("10.0.0.2:1")},
			[]byte{byte(TypePingReq), 9, 0, 2, 4, 10, 0, 0, 2, 0, 1}},
	} {
		if got := tc.m.AppendTo(nil); !bytes.Equal(got, tc.want) {
			t.Errorf("%s = % x, want % x", tc.name, got, tc.want)
		}
		if n := tc.m.EncodedLen(); n != len(tc.want) {
			t.Errorf("%s: EncodedLen %d, want %d", tc.name, n, len(tc.want))
		}
	}
	u := Message{Type: TypeUpdate, Status: StatusSuspect, Incarnation: 128, Subject: ap("10.0.0.2:1")}
	if got, want := u.AppendTo(nil), []byte{byte(TypeUpdate), 11, 2, 0x80, 0x01, 4, 10, 0, 0, 2, 0, 1, 0}; !bytes.Equal(got, want) {
		t.Fatalf("update = % x, want % x", got, want)
	}
}

// TestPacketSizes pins the sizes version 2 was made for: the common probe
// packets from an IPv4 sender at a small incarnation.
func TestPacketSizes(t *testing.T) {
	h := Header{Cluster: ClusterID("prod"), Sender: v4a, Incarnation: 127}
	if n := HeaderLen(h); n != 13 {
		t.Fatalf("header is %d bytes, want 13", n)
	}
	ping := Message{Type: TypePing, Seq: 0xFFFF, Flags: 0x3F, Target: v4b}
	if n := ping.EncodedLen(); n != 10 {
		t.Fatalf("ping message is %d bytes, want 10", n)
	}
	for _, tc := range []struct {
		name string
		m    Message
		want int
	}{
		{"ping", ping, 23},
		{"ack", Message{Type: TypeAck, Seq: 0xFFFF}, 16},
		{"nack", Message{Type: TypeNack, Seq: 1}, 16},
		{"ping without target", Message{Type: TypePing, Seq: 1, Flags: PingFlagJoin}, 17},
		{"ping v6 target", Message{Type: TypePing, Seq: 1, Target: v6a}, 35},
	} {
		b := packet(h, tc.m)
		if len(b) != tc.want {
			t.Errorf("%s packet is %d bytes, want %d", tc.name, len(b), tc.want)
		}
		p := mustDecode(t, b)
		if p.Header != h || len(p.Messages) != 1 || !msgEqual(p.Messages[0], tc.m) {
			t.Errorf("%s: decoded %+v", tc.name, p)
		}
	}
	// One more incarnation takes a second byte.
	h.Incarnation = 128
	if n := len(packet(h, ping)); n != 24 {
		t.Fatalf("ping at incarnation 128 is %d bytes, want 24", n)
	}
	// Smudge's usual incarnations (seconds since 2026) take 4 bytes.
	for _, inc := range []uint32{1 << 21, 1<<28 - 1} {
		h.Incarnation = inc
		if n := len(packet(h, ping)); n != 26 {
			t.Fatalf("ping at incarnation %d is %d bytes, want 26", inc, n)
		}
		if n := len(packet(h, Message{Type: TypeAck})); n != 19 {
			t.Fatalf("ack at incarnation %d is %d bytes, want 19", inc, n)
		}
		if n := len(packet(h, Message{Type: TypeNack})); n != 19 {
			t.Fatalf("nack at incarnation %d is %d bytes, want 19", inc, n)
		}
	}
	// An IPv6 sender: 16 more bytes of IP.
	h = Header{Cluster: ClusterID("prod"), Sender: v6a, Incarnation: 127}
	if n := HeaderLen(h); n != 25 {
		t.Fatalf("v6 header is %d bytes, want 25", n)
	}
}

func TestUvarintLen(t *testing.T) {
	for _, v := range []uint32{0, 1, 127, 128, 16383, 16384, 1<<21 - 1, 1 << 21, 1<<28 - 1, 1 << 28, 1<<32 - 1} {
		want := len(binary.AppendUvarint(nil, uint64(v)))
		if got := UvarintLen(v); got != want {
			t.Errorf("UvarintLen(%d) = %d, binary.AppendUvarint wrote %d", v, got, want)
		}
		// readUvarint accepts exactly what binary.AppendUvarint writes.
		enc := binary.AppendUvarint(nil, uint64(v))
		got, rest, err := readUvarint(append(enc, 0xEE), 1<<32-1)
		if err != nil || got != v || !bytes.Equal(rest, []byte{0xEE}) {
			t.Errorf("readUvarint(% x) = %d, % x, %v", enc, got, rest, err)
		}
		if v > 0 {
			if _, _, err := readUvarint(enc, v-1); !errors.Is(err, ErrVarint) {
				t.Errorf("readUvarint(% x) with limit %d: err = %v, want ErrVarint", enc, v-1, err)
			}
		}
	}
}

func TestIgnoresUnknownHeaderFlags(t *testing.T) {
	// Unknown bits among 0-5 are carried and ignored; bits 6-7 are the
	// sender's family and never reach Flags.
	b := packet(Header{Flags: 0xFE, Cluster: 1, Sender: v4a}, Message{Type: TypeAck, Seq: 3})
	p := mustDecode(t, b)
	if p.Flags != 0x3E || p.Flags&HeaderFlagSync != 0 {
		t.Fatalf("Flags = %#x", p.Flags)
	}
	// The same for a ping's flags.
	b = packet(testHdr, Message{Type: TypePing, Seq: 3, Flags: 0xF8, Target: v6a})
	p = mustDecode(t, b)
	if m := p.Messages[0]; m.Flags != 0x38 || m.Target != v6a {
		t.Fatalf("ping Flags = %#x, Target %v", m.Flags, m.Target)
	}
}

// TestFamilyBits checks the header's and a ping's flag bits 6-7, which
// carry the sender's and the target's address family: whatever the caller
// sets there is not written, and Decode never returns it.
func TestFamilyBits(t *testing.T) {
	addrs := []netip.AddrPort{v4a, v4b, v6a, v6b, mapped, ap("[fe80::1%eth0]:99")}
	for _, sender := range addrs {
		for f := 0; f < 256; f++ {
			flags := uint8(f)
			h := Header{Flags: flags, Cluster: 9, Sender: sender, Incarnation: 300}
			clean := h
			clean.Flags &^= 0xC0
			enc := AppendHeader(nil, h)
			if !bytes.Equal(enc, AppendHeader(nil, clean)) {
				t.Fatalf("flags %#x, sender %v: encoded % x, without bits 6-7 % x", flags, sender, enc, AppendHeader(nil, clean))
			}
			if enc[1]&0xC0 != codeOf(sender) || enc[1]&0x3F != flags&0x3F {
				t.Fatalf("flags %#x, sender %v: flags byte %#x", flags, sender, enc[1])
			}
			got, rest, err := DecodeHeader(enc)
			if err != nil || len(rest) != 0 || got.Flags != flags&^0xC0 || got.Sender != canon(sender) {
				t.Fatalf("flags %#x, sender %v: decoded %+v, %d left, %v", flags, sender, got, len(rest), err)
			}
		}
	}
	for _, target := range append(addrs, netip.AddrPort{}) {
		for f := 0; f < 256; f++ {
			flags := uint8(f)
			m := Message{Type: TypePing, Seq: 0x1234, Flags: flags, Target: target}
			clean := m
			clean.Flags &^= 0xC0
			enc := m.AppendTo(nil)
			if !bytes.Equal(enc, clean.AppendTo(nil)) || m.EncodedLen() != clean.EncodedLen() {
				t.Fatalf("flags %#x, target %v: encoded % x, without bits 6-7 % x", flags, target, enc, clean.AppendTo(nil))
			}
			// type, seq (2), flags: a ping has no length field
			if enc[3]&0xC0 != codeOf(target) || enc[3]&0x3F != flags&0x3F {
				t.Fatalf("flags %#x, target %v: flags byte %#x", flags, target, enc[3])
			}
			if body := addrBody(target); !bytes.Equal(enc[4:], body) {
				t.Fatalf("target %v: % x after the flags, want % x", target, enc[4:], body)
			}
			got, err := decodeOne(cat(hdr(), enc))
			if err != nil || got.Flags != flags&^0xC0 || got.Target != canon(target) {
				t.Fatalf("flags %#x, target %v: decoded %s, %v", flags, target, fmtMsg(got), err)
			}
		}
	}
	// Digest flags keep all 8 bits: only the header's and a ping's flags
	// carry a family.
	p := mustDecode(t, packet(testHdr, Message{Type: TypeDigest, Flags: 0xC0}))
	if p.Messages[0].Flags != 0xC0 {
		t.Fatalf("digest flags %#x", p.Messages[0].Flags)
	}
}

func TestDecodeNormalisesMappedIPv6(t *testing.T) {
	m6 := cat([]byte{6}, netip.MustParseAddr("::ffff:10.9.8.7").AsSlice(), []byte{0x1f, 0x90})
	// The sender and a ping's target have their family (code 2, IPv6) in
	// the flags.
	b := cat(
		[]byte{0xC2, codeV6}, be32(1), m6[1:], uv(3),
		rawMsg(TypeUpdate, cat([]byte{byte(StatusSuspect)}, uv(4), m6, m6)...),
		rawMsg(TypePingReq, cat(be16(5), m6)...),
		rawMsg(TypePing, rawPing(6, codeV6|PingFlagJoin, m6[1:])...),
	)
	p := mustDecode(t, b)
	want := ap("10.9.8.7:8080")
	if p.Sender != want || !p.Sender.Addr().Is4() || p.Flags != 0 {
		t.Fatalf("sender %v, flags %#x, want %v", p.Sender, p.Flags, want)
	}
	u, pr, pg := p.Messages[0], p.Messages[1], p.Messages[2]
	if u.Subject != want || u.Source != want || pr.Target != want || pg.Target != want || !pg.Target.Addr().Is4() {
		t.Fatalf("got %v %v %v %v, want %v", u.Subject, u.Source, pr.Target, pg.Target, want)
	}
	if pg.Flags != PingFlagJoin {
		t.Fatalf("ping flags %#x", pg.Flags)
	}
	// Re-encoding is canonical: 12 bytes shorter per address, and the
	// family codes become IPv4's.
	re := packet(p.Header, p.Messages...)
	if len(re) != len(b)-5*12 {
		t.Fatalf("re-encoded %d bytes, want %d", len(re), len(b)-5*12)
	}
	if re[1] != codeV4 {
		t.Fatalf("re-encoded header flags %#x", re[1])
	}
}

func TestPayloadAliasesInputWithoutSpareCapacity(t *testing.T) {
	b := packet(testHdr,
		Message{Type: TypeBroadcast, Subject: v4a, Payload: []byte("first")},
		Message{Type: TypeAck, Seq: 0x0102},
		Message{Type: TypeBroadcast, Subject: v6a, Payload: []byte("second")},
	)
	p := mustDecode(t, b)
	pl := p.Messages[0].Payload
	if string(pl) != "first" {
		t.Fatalf("payload %q", pl)
	}
	if cap(pl) != len(pl) {
		t.Fatalf("payload cap %d > len %d: appending would overwrite the next message", cap(pl), len(pl))
	}
	off := bytes.Index(b, []byte("first"))
	if &b[off] != &pl[0] {
		t.Fatal("payload does not alias the input")
	}
	_ = append(pl, 0xFF, 0xFF, 0xFF) // must not touch b
	var q Packet
	if err := q.Decode(b); err != nil || q.Messages[1].Seq != 0x0102 {
		t.Fatalf("appending to a payload changed the packet: %v", err)
	}
	if last := p.Messages[2].Payload; cap(last) != len(last) {
		t.Fatalf("last payload cap %d, len %d", cap(last), len(last))
	}
}

func TestDecodeReusesMessages(t *testing.T) {
	var p Packet
	big := packet(testHdr,
		Message{Type: TypeBroadcast, Subject: v4a, Boot: 1, Index: 2, AgeMillis: 3, Payload: []byte("a")},
		Message{Type: TypeUpdate, Status: StatusDead, Incarnation: 4, Subject: v4a, Source: v6a},
		Message{Type: TypePing, Seq: 5, Flags: 1, Target: v6a},
		Message{Type: TypeBroadcast, Subject: v6a, Payload: []byte("b")},
	)
	if err := p.Decode(big); err != nil {
		t.Fatal(err)
	}
	first := &p.Messages[0]
	small := packet(Header{Cluster: 2, Sender: v6b, Incarnation: 1}, Message{Type: TypeAck, Seq: 9}, Message{Type: TypePingReq, Seq: 10, Target: v4b})
	if err := p.Decode(small); err != nil {
		t.Fatal(err)
	}
	if &p.Messages[0] != first {
		t.Fatal("Decode did not reuse p.Messages")
	}
	want := []Message{{Type: TypeAck, Seq: 9}, {Type: TypePingReq, Seq: 10, Target: v4b}}
	if !reflect.DeepEqual(p.Messages, want) {
		t.Fatalf("stale fields: got %+v", p.Messages)
	}
	// Slots past the end no longer reference the previous buffer.
	for i, m := range p.Messages[len(p.Messages):cap(p.Messages)] {
		if m.Payload != nil || m.Type != 0 {
			t.Fatalf("slot %d still holds %s", len(p.Messages)+i, fmtMsg(m))
		}
	}
}

func TestAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	msgs := []Message{
		{Type: TypePing, Seq: 1, Target: v4b},
		{Type: TypeUpdate, Status: StatusAlive, Incarnation: 2, Subject: v4a, Source: v4b},
		{Type: TypeUpdate, Status: StatusSuspect, Incarnation: 3, Subject: v6a, Source: v6b},
		{Type: TypeUpdate, Status: StatusDead, Incarnation: 4, Subject: v4b},
		{Type: TypeBroadcast, Subject: v4a, Boot: 1, Index: 2, AgeMillis: 3, Payload: []byte("payload")},
		{Type: TypeAck, Seq: 4},
		{Type: TypePingReq, Seq: 5, Target: v6a},
	}
	b := packet(testHdr, msgs...)
	var p Packet
	if err := p.Decode(b); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() {
		if err := p.Decode(b); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Decode: %v allocs, want 0", n)
	}
	buf := make([]byte, 0, 1500)
	if n := testing.AllocsPerRun(1000, func() {
		buf = AppendHeader(buf[:0], testHdr)
		for i := range msgs {
			buf = msgs[i].AppendTo(buf)
		}
	}); n != 0 {
		t.Errorf("AppendHeader+AppendTo: %v allocs, want 0", n)
	}
	if !bytes.Equal(buf, b) {
		t.Fatal("encoded differently")
	}
	bad := cat(hdr(), rawMsg(TypeUpdate, 0, 0, 0, 0, 0))
	if n := testing.AllocsPerRun(1000, func() {
		if p.Decode(bad) == nil {
			t.Fatal("no error")
		}
		if p.Decode(b[:10]) == nil {
			t.Fatal("no error")
		}
	}); n != 0 {
		t.Errorf("Decode of bad packets: %v allocs, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = ClusterID("some-cluster-name") }); n != 0 {
		t.Errorf("ClusterID: %v allocs, want 0", n)
	}
}

func TestStrings(t *testing.T) {
	types := map[MsgType]string{TypePing: "ping", TypeAck: "ack", TypePingReq: "ping-req",
		TypeUpdate: "update", TypeBroadcast: "broadcast", TypeDigest: "digest", TypeNack: "nack", 0: "unknown", 8: "unknown", 255: "unknown"}
	for typ, want := range types {
		if typ.String() != want {
			t.Errorf("MsgType(%d).String() = %q, want %q", typ, typ.String(), want)
		}
	}
	statuses := map[Status]string{StatusAlive: "alive", StatusSuspect: "suspect", StatusDead: "dead",
		StatusLeft: "left", 0: "invalid", 5: "invalid", 255: "invalid"}
	for s, want := range statuses {
		if s.String() != want {
			t.Errorf("Status(%d).String() = %q, want %q", s, s.String(), want)
		}
		if s.Valid() != (want != "invalid") {
			t.Errorf("Status(%d).Valid() = %v", s, s.Valid())
		}
	}
	// Status order: at equal incarnation a higher value wins.
	if !(StatusAlive < StatusSuspect && StatusSuspect < StatusDead && StatusDead < StatusLeft) {
		t.Error("status order")
	}
}

// Example shows a compound packet built and read back.
func Example() {
	h := Header{Cluster: ClusterID("prod"), Sender: netip.MustParseAddrPort("10.0.0.1:7946"), Incarnation: 3}
	msgs := []Message{
		{Type: TypePing, Seq: 17, Target: netip.MustParseAddrPort("10.0.0.2:7946")},
		{Type: TypeUpdate, Status: StatusSuspect, Incarnation: 5, Subject: netip.MustParseAddrPort("10.0.0.3:7946")},
	}
	buf := make([]byte, 0, 1400)
	buf = AppendHeader(buf, h)
	for i := range msgs {
		if len(buf)+msgs[i].EncodedLen() <= cap(buf) {
			buf = msgs[i].AppendTo(buf)
		}
	}

	var p Packet
	if err := p.Decode(buf); err != nil {
		fmt.Println("drop:", err)
		return
	}
	fmt.Println(p.Sender, p.Incarnation, len(buf), "bytes")
	for _, m := range p.Messages {
		fmt.Println(m.Type, m.Seq, m.Target, m.Status, m.Subject)
	}
	// Output:
	// 10.0.0.1:7946 3 35 bytes
	// ping 17 10.0.0.2:7946 invalid invalid AddrPort
	// update 0 invalid AddrPort suspect 10.0.0.3:7946
}

func TestDigestRoundTripAndLookups(t *testing.T) {
	var entries []byte
	entries = AppendDigestEntry(entries, DigestEntry{Origin: v4a, Boot: 7, First: 10, Count: 10, Bitmap: []byte{0b1010_0000, 0b0100_0000}})
	entries = AppendDigestEntry(entries, DigestEntry{Origin: v6a, Boot: 1, First: 1, Count: MaxDigestSpan, Bitmap: bytes.Repeat([]byte{0xFF}, MaxDigestSpan/8)})
	if want := DigestEntryLen(v4a, 10) + DigestEntryLen(v6a, MaxDigestSpan); len(entries) != want {
		t.Fatalf("entries are %d bytes, DigestEntryLen says %d", len(entries), want)
	}
	// Entries Decode would reject are not appended.
	for _, bad := range []DigestEntry{
		{Origin: v4a, Count: 0},
		{Origin: v4a, Count: MaxDigestSpan + 1, Bitmap: make([]byte, MaxDigestSpan/8+1)},
		{Origin: v4a, Count: 9, Bitmap: []byte{1}},
		{Count: 1, Bitmap: []byte{1}},
	} {
		if got := AppendDigestEntry(nil, bad); got != nil {
			t.Fatalf("appended %x for %+v", got, bad)
		}
	}
	in := Message{Type: TypeDigest, Flags: DigestFlagPartial, AgeMillis: 12345, Entries: entries}
	p := mustDecode(t, packet(testHdr, in))
	if !msgEqual(p.Messages[0], in) {
		t.Fatalf("got %+v, want %+v", p.Messages[0], in)
	}
	d, rest, err := NextDigestEntry(p.Messages[0].Entries)
	if err != nil || d.Origin != v4a || d.Boot != 7 || d.First != 10 || d.Count != 10 {
		t.Fatalf("first entry %+v, %v", d, err)
	}
	for i, want := range map[uint32]bool{9: false, 10: true, 11: false, 12: true, 17: false, 18: false, 19: true, 20: false} {
		if d.Has(i) != want {
			t.Errorf("Has(%d) = %v, want %v", i, d.Has(i), want)
		}
	}
	if !d.Covers(19) || d.Covers(20) || d.Covers(9) {
		t.Error("Covers is wrong at the edges")
	}
	d, rest, err = NextDigestEntry(rest)
	if err != nil || d.Origin != v6a || !d.Has(MaxDigestSpan) || d.Has(MaxDigestSpan+1) || len(rest) != 0 {
		t.Fatalf("second entry %+v, rest %d, %v", d, len(rest), err)
	}
	// The largest digests fit the length field (a 3-byte uvarint) exactly.
	for _, in := range []Message{
		{Type: TypeDigest, Entries: digestEntries(MaxBodyLen - 1)},
		{Type: TypeDigest, Flags: DigestFlagPartial, AgeMillis: 1, Entries: digestEntries(MaxBodyLen - 5)},
	} {
		if n := in.EncodedLen(); n != 1+3+MaxBodyLen {
			t.Fatalf("largest digest: EncodedLen %d, want %d", n, 1+3+MaxBodyLen)
		}
		if p := mustDecode(t, packet(testHdr, in)); !msgEqual(p.Messages[0], in) {
			t.Fatal("largest digest did not round-trip")
		}
	}
	// An empty digest (no entries) is valid: it says "I have none".
	p = mustDecode(t, packet(testHdr, Message{Type: TypeDigest}))
	if m := p.Messages[0]; m.Type != TypeDigest || m.Entries != nil || m.Flags != 0 {
		t.Fatalf("empty digest decoded as %+v", m)
	}
}

func TestDigestDecodeErrors(t *testing.T) {
	entry := AppendDigestEntry(nil, DigestEntry{Origin: v4a, Boot: 1, First: 1, Count: 9, Bitmap: []byte{0xFF, 0x80}})
	for _, tc := range []struct {
		name string
		body []byte
		want error
	}{
		{"no flags", nil, ErrMalformed},
		{"entry cut in its address", cat([]byte{0}, entry[:3]), ErrMalformed},
		{"entry cut in its counters", cat([]byte{0}, entry[:10]), ErrMalformed},
		{"entry cut in its bitmap", cat([]byte{0}, entry[:len(entry)-1]), ErrMalformed},
		{"trailing byte", cat([]byte{0}, entry, []byte{1}), ErrAddress},
		{"count 0", cat([]byte{0}, entry[:len(entry)-4], []byte{0, 0}), ErrMalformed},
		{"count over the span", cat([]byte{0}, entry[:len(entry)-4], []byte{0x02, 0x01}, make([]byte, 65)), ErrMalformed},
		{"origin missing", cat([]byte{0, 0}, make([]byte, 10)), ErrAddress},
		{"partial without its cutoff", []byte{DigestFlagPartial, 0, 0, 1}, ErrMalformed},
	} {
		var p Packet
		err := p.Decode(cat(hdr(), rawMsg(TypeDigest, tc.body...)))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}
