// Package wire encodes and decodes smudge's UDP packets.
//
// A packet is a fixed header followed by one or more messages (a compound
// packet). Every length is checked against the buffer before it is used, so a
// decoder never reads past the input and never allocates in proportion to a
// length field it was sent.
//
// Header (big endian; version 2, 13 to 17 bytes for an IPv4 sender,
// depending on its incarnation):
//
//	tag      1 byte   0xC0 | version: the high nibble 0xC marks a smudge
//	                  packet, the low one is the version, currently 2
//	flags    1 byte   HeaderFlag* bits (unknown ones are ignored) in bits
//	                  0-5; bits 6-7 the sender's address family (1 IPv4,
//	                  2 IPv6; 0 and 3 are invalid)
//	cluster  4 bytes  FNV-1a 32 of the cluster name
//	sender   address  the sender's advertised identity (see Address),
//	                  without its family byte
//	incarn.  uvarint  the sender's incarnation number (1-5 bytes)
//
// Version 1 (smudge before 2026-12-06) started with the two bytes 'S' 'W'
// and the version byte 1, had an 8-byte cluster hash and fixed 4-byte
// incarnations and sequence numbers; a version 2 decoder reports its packets
// as ErrVersion. With an IPv4 sender and target, a version 2 ping is 23
// bytes and an ack 16 at an incarnation under 128, 26 and 19 at smudge's
// usual incarnations (seconds since 2026; 4 bytes until 2034); version 1's
// were 38 and 30.
//
// A uvarint is encoding/binary's: 7 bits a byte, low bits first. The
// decoder accepts only the shortest encoding of a value, and only values
// within the field's range, so every accepted packet has one encoding.
//
// Address: family (1 byte: 0 none, 4 IPv4, 6 IPv6), the IP (0, 4 or 16 bytes),
// then the port (2 bytes, absent for family 0). IPv4-mapped IPv6 addresses are
// written as IPv4 and decoded as IPv4; IPv6 zones are not carried. Every
// address present in a packet must be usable as a member's identity: not
// unspecified (0.0.0.0, ::) and not port 0.
//
// Message: type (1 byte), body length (uvarint, at most MaxBodyLen), body.
// A ping, an ack and a nack, the messages of every probe, have no length
// field: their type (and a ping's flags) say how long they are. Unknown types are
// skipped by length, so newer senders can add message types. A known type
// whose body does not parse exactly (too short, trailing bytes, bad address or
// status) makes the whole packet invalid.
//
// Bodies (big endian, after the type, and the length but for a ping, an ack
// and a nack):
//
//	ping       seq (2), flags (1: PingFlag* bits 0-5; bits 6-7 the target's
//	           family: 0 none, 1 IPv4, 2 IPv6), the target address without
//	           its family byte (nothing for none)
//	ack        seq (2)
//	nack       seq (2)
//	ping-req   seq (2), target address
//	update     status (1), incarnation (uvarint), subject address, source address (may be family 0),
//	           then optionally the subject's metadata at that incarnation: length (1), bytes
//	broadcast  origin address, boot (4), index (4), age in ms (4), payload (rest of the body)
//	digest     flags (1), the cutoff age in ms (4, only if DigestFlagPartial), then entries:
//	           origin address, boot (4), first index (4), count (2, 1..MaxDigestSpan),
//	           bitmap ((count+7)/8 bytes)
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Version is the wire format version this package writes and reads.
const Version = 2

// tagMagic is the high nibble of a packet's first byte; the low nibble is
// the version.
const tagMagic = 0xC0

// tag is the first byte of every packet this package writes.
const tag = tagMagic | Version

// The first two bytes of a version 1 packet.
const (
	v1Magic0 = 'S'
	v1Magic1 = 'W'
)

// MsgType identifies a message inside a packet.
type MsgType uint8

// Message types.
const (
	// TypePing asks Target to answer with an Ack carrying Seq.
	TypePing MsgType = 1
	// TypeAck answers a Ping (or relays the answer to a PingReq) with its Seq.
	TypeAck MsgType = 2
	// TypePingReq asks the receiver to ping Target and relay the Ack (with Seq).
	TypePingReq MsgType = 3
	// TypeUpdate carries one membership update (gossip).
	TypeUpdate MsgType = 4
	// TypeBroadcast carries one user broadcast.
	TypeBroadcast MsgType = 5
	// TypeDigest lists the recent broadcasts the sender has, so that the
	// receiver can send it those it lacks (see PingFlagDigest).
	TypeDigest MsgType = 6
	// TypeNack tells a ping-req's requester that the relay's ping to the
	// target went unanswered (Lifeguard): a requester that hears neither an
	// ack nor the nacks it expected is itself likely slow or cut off.
	TypeNack MsgType = 7
)

// String names the message type.
func (t MsgType) String() string {
	switch t {
	case TypePing:
		return "ping"
	case TypeAck:
		return "ack"
	case TypePingReq:
		return "ping-req"
	case TypeUpdate:
		return "update"
	case TypeBroadcast:
		return "broadcast"
	case TypeDigest:
		return "digest"
	case TypeNack:
		return "nack"
	}
	return "unknown"
}

// Status is a member's state as carried in an Update.
type Status uint8

// Member states on the wire. At equal incarnation a higher value wins.
const (
	StatusAlive   Status = 1
	StatusSuspect Status = 2
	StatusDead    Status = 3
	StatusLeft    Status = 4
)

// Valid reports whether s is one of the defined states.
func (s Status) Valid() bool { return s >= StatusAlive && s <= StatusLeft }

// String names the state.
func (s Status) String() string {
	switch s {
	case StatusAlive:
		return "alive"
	case StatusSuspect:
		return "suspect"
	case StatusDead:
		return "dead"
	case StatusLeft:
		return "left"
	}
	return "invalid"
}

// HeaderFlagSync marks a packet of membership state sent in answer to a join:
// its updates are applied but not gossiped onwards (the cluster knows them).
const HeaderFlagSync = 1

// HeaderFlagPush marks a packet pushed at once with news (a new broadcast,
// or a member newly dead or left): a receiver for which an item
// in it is news pushes that item on, once, to a few members of its own.
const HeaderFlagPush = 2

// PingFlagJoin in a Ping's Flags asks the receiver to answer with updates
// about every member it knows (sent to a seed by a joining node).
const PingFlagJoin = 1

// PingFlagWantSelf in a Ping's Flags asks the receiver to put its own
// update, metadata included, in its Ack: the sender does not know the
// receiver's metadata at its current incarnation.
const PingFlagWantSelf = 2

// PingFlagDigest in a Ping's Flags says that the packet's Digest (none
// meaning an empty one) lists every recent broadcast the sender has: the
// receiver may answer with those it has and the sender lacks.
const PingFlagDigest = 4

// DigestFlagPartial in a Digest's Flags says the digest lists only the
// sender's broadcasts younger than its AgeMillis (the cutoff): older ones
// did not fit, and are not known to be missing.
const DigestFlagPartial = 1

// MaxDigestSpan bounds the indexes one digest entry covers (its bitmap is
// at most MaxDigestSpan/8 bytes).
const MaxDigestSpan = 512

// MaxMetaBytes bounds a member's metadata in an Update.
const MaxMetaBytes = 255

// Decoding errors. Every error returned by Decode and DecodeHeader is, or
// wraps, one of these; test with errors.Is.
var (
	// ErrShort: the packet ends inside its header.
	ErrShort = errors.New("wire: packet shorter than its header")
	// ErrMagic: the packet does not start like a smudge packet of any
	// version.
	ErrMagic = errors.New("wire: bad magic")
	// ErrVersion: the packet is a smudge packet of another version than
	// Version (version 1 is smudge's format before 2026-12-06).
	ErrVersion = errors.New("wire: unsupported version")
	// ErrAddress: an address in a message has an unknown family, is
	// truncated, is unspecified or has port 0, or is missing (family 0)
	// where one is required.
	ErrAddress = errors.New("wire: malformed address")
	// ErrTruncated: a message's type and length, or its body, run past the
	// end of the packet.
	ErrTruncated = errors.New("wire: message runs past the end of the packet")
	// ErrVarint: a uvarint field is cut short, longer than the shortest
	// encoding of its value, or beyond the field's range.
	ErrVarint = errors.New("wire: malformed uvarint")
	// ErrMalformed: a length-prefixed message body is too short or has
	// trailing bytes, or a field in a body is invalid.
	ErrMalformed = errors.New("wire: malformed message body")
	// ErrNoMessages: the packet has no message of a known type.
	ErrNoMessages = errors.New("wire: packet has no messages")
	// ErrTooMany: the packet has more than MaxMessages messages of known types.
	ErrTooMany = errors.New("wire: too many messages in one packet")
	// ErrBadStatus: an update carries a Status that is not Valid.
	ErrBadStatus = errors.New("wire: invalid member status")
	// ErrUnspecified: the header's sender is missing, unspecified (0.0.0.0
	// or ::) or has port 0.
	ErrUnspecified = errors.New("wire: unspecified sender address")
)

// Errors for an address cut short by the end of its container: they match
// both ErrAddress and the container's error (the header's or the body's).
var (
	errShortHeaderAddr = fmt.Errorf("%w: %w", ErrShort, ErrAddress)
	errShortBodyAddr   = fmt.Errorf("%w: %w", ErrMalformed, ErrAddress)
	// errBodyVarint is a bad uvarint inside a message body.
	errBodyVarint = fmt.Errorf("%w: %w", ErrMalformed, ErrVarint)
)

// errAddrShort is readAddr's internal error for a truncated address; callers
// translate it to one of the errors above.
var errAddrShort = errors.New("wire: address truncated")

// MaxMessages bounds the number of messages of known types decoded from one
// packet. Skipped messages of unknown types do not count.
const MaxMessages = 512

// Header is the fixed part at the start of every packet. A decoder rejects a
// header whose Sender is invalid, unspecified or has port 0, so AppendHeader
// must be given a real address.
type Header struct {
	Flags       uint8          // HeaderFlag* bits; unknown bits are ignored
	Cluster     uint32         // ClusterID of the sender's cluster name
	Sender      netip.AddrPort // the sender's advertised address: its identity
	Incarnation uint32         // the sender's current incarnation
}

// Message is one message of a packet. Which fields are used depends on Type;
// the others are ignored by AppendTo and left zero by Decode.
type Message struct {
	Type        MsgType
	Seq         uint16         // Ping, Ack, Nack, PingReq: wraps; unique among a sender's outstanding probes
	Flags       uint8          // Ping, Digest
	Target      netip.AddrPort // Ping (the intended receiver), PingReq (whom to ping)
	Status      Status         // Update
	Incarnation uint32         // Update
	Subject     netip.AddrPort // Update: the member; Broadcast: the origin
	Source      netip.AddrPort // Update: who declared it (may be invalid)
	Boot        uint32         // Broadcast: the origin's boot id
	Index       uint32         // Broadcast: the origin's broadcast counter
	AgeMillis   uint32         // Broadcast: time since it was first sent; partial Digest: the cutoff age
	Payload     []byte         // Broadcast: aliases the decoded buffer (nil when empty); copy it to keep it
	HasMeta     bool           // Update: Meta is the subject's metadata at Incarnation (possibly empty)
	Meta        []byte         // Update, when HasMeta: at most MaxMetaBytes; aliases the decoded buffer
	// Entries is a Digest's encoded entries (see AppendDigestEntry and
	// NextDigestEntry); it aliases the decoded buffer.
	Entries []byte
}

// DigestEntry says which broadcasts of one origin run the sender has: bit
// i of Bitmap (bit 0 the most significant of byte 0) is index First+i.
type DigestEntry struct {
	Origin netip.AddrPort
	Boot   uint32
	First  uint32
	Count  int    // 1..MaxDigestSpan indexes covered
	Bitmap []byte // (Count+7)/8 bytes; aliases the entries
}

// Covers reports whether index i is in the entry's range.
func (d *DigestEntry) Covers(i uint32) bool { return i >= d.First && i-d.First < uint32(d.Count) }

// Has reports whether the entry says the sender has index i.
func (d *DigestEntry) Has(i uint32) bool {
	if !d.Covers(i) {
		return false
	}
	off := i - d.First
	return d.Bitmap[off/8]&(0x80>>(off%8)) != 0
}

// DigestEntryLen is the encoded length of an entry of origin a covering
// count indexes.
func DigestEntryLen(a netip.AddrPort, count int) int { return AddrLen(a) + 4 + 4 + 2 + (count+7)/8 }

// AppendDigestEntry appends the encoding of an entry: origin, boot, first
// index, count (2 bytes) and the bitmap of (count+7)/8 bytes, which must be
// that long. Nothing is appended for an entry Decode would reject.
func AppendDigestEntry(dst []byte, d DigestEntry) []byte {
	if checkAddr(d.Origin, true) != nil || d.Count < 1 || d.Count > MaxDigestSpan || len(d.Bitmap) != (d.Count+7)/8 {
		return dst
	}
	dst = AppendAddr(dst, d.Origin)
	dst = binary.BigEndian.AppendUint32(dst, d.Boot)
	dst = binary.BigEndian.AppendUint32(dst, d.First)
	dst = binary.BigEndian.AppendUint16(dst, uint16(d.Count))
	return append(dst, d.Bitmap...)
}

// NextDigestEntry decodes the entry at the front of entries and returns the
// rest. The entries of a Digest that Decode accepted always decode.
func NextDigestEntry(entries []byte) (DigestEntry, []byte, error) {
	var d DigestEntry
	a, b, err := bodyAddr(entries, true)
	if err != nil {
		return d, nil, err
	}
	if len(b) < 10 {
		return d, nil, ErrMalformed
	}
	d.Origin = a
	d.Boot = binary.BigEndian.Uint32(b)
	d.First = binary.BigEndian.Uint32(b[4:])
	d.Count = int(binary.BigEndian.Uint16(b[8:]))
	n := (d.Count + 7) / 8
	if d.Count < 1 || d.Count > MaxDigestSpan || len(b) < 10+n {
		return DigestEntry{}, nil, ErrMalformed
	}
	d.Bitmap = b[10 : 10+n : 10+n]
	return d, b[10+n:], nil
}

// Packet is a decoded packet. Decode reuses Messages between calls, so a
// Packet must not be shared between goroutines and its Messages (and their
// Payloads) are only valid until the next Decode and while the decoded buffer
// is unchanged.
type Packet struct {
	Header
	Messages []Message
	Skipped  int // messages of unknown type that were skipped
}

// ClusterID hashes a cluster name into the header's cluster field
// (FNV-1a 32, as hash/fnv's New32a, computed without allocating). It keeps
// clusters that share a network or a multicast group apart; it is not a
// secret (encryption is, see the keyring).
func ClusterID(name string) uint32 {
	const (
		offset32 = 2166136261
		prime32  = 16777619
	)
	h := uint32(offset32)
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= prime32
	}
	return h
}

// UvarintLen is the encoded length of v as a uvarint: 1 to 5 bytes.
func UvarintLen(v uint32) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// cutUvarint reports whether b ends inside a uvarint of at most 5 bytes.
func cutUvarint(b []byte) bool {
	if len(b) >= 5 {
		return false
	}
	for _, c := range b {
		if c < 0x80 {
			return false
		}
	}
	return true
}

// readUvarint decodes a uvarint at the front of b that must be at most
// limit and in its shortest encoding, and returns the rest of b.
func readUvarint(b []byte, limit uint32) (uint32, []byte, error) {
	var v uint64
	for i := 0; i < len(b) && i < 5; i++ {
		c := b[i]
		v |= uint64(c&0x7F) << (7 * i)
		if c < 0x80 {
			if i > 0 && c == 0 || v > uint64(limit) {
				return 0, nil, ErrVarint
			}
			return uint32(v), b[i+1:], nil
		}
	}
	return 0, nil, ErrVarint
}

// AddrLen is the encoded length of a: 1 when a is invalid, 7 for IPv4 (and
// IPv4-mapped IPv6), 19 for IPv6.
func AddrLen(a netip.AddrPort) int {
	ip := a.Addr()
	switch {
	case !a.IsValid():
		return 1
	case ip.Is4() || ip.Is4In6():
		return 1 + 4 + 2
	default:
		return 1 + 16 + 2
	}
}

// AppendAddr appends the encoding of a (family 0 when a is invalid). An
// IPv4-mapped IPv6 address is written as IPv4, and a zone is dropped.
func AppendAddr(dst []byte, a netip.AddrPort) []byte {
	return appendAddrBody(append(dst, familyOf(familyCode(a))), a)
}

// readAddr decodes an address from the front of b. It returns errAddrShort
// when b ends inside the address and ErrAddress for an unknown family. ok
// reports whether the address is usable (see usable), judged on the raw
// bytes, which is cheaper than asking netip.
func readAddr(b []byte) (a netip.AddrPort, rest []byte, ok bool, err error) {
	if len(b) < 1 {
		return netip.AddrPort{}, nil, false, errAddrShort
	}
	return readAddrAs(b[0], b[1:])
}

// readAddrAs is readAddr for an address whose family byte (0, 4 or 6) was
// given apart, from flag bits (see familyOf): b starts with the IP.
func readAddrAs(family byte, b []byte) (a netip.AddrPort, rest []byte, ok bool, err error) {
	switch family {
	case 0:
		return netip.AddrPort{}, b, false, nil
	case 4:
		if len(b) < 4+2 {
			return netip.AddrPort{}, nil, false, errAddrShort
		}
		port := binary.BigEndian.Uint16(b[4:6])
		ok = port != 0 && binary.BigEndian.Uint32(b[0:4]) != 0
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[0:4])), port), b[6:], ok, nil
	case 6:
		if len(b) < 16+2 {
			return netip.AddrPort{}, nil, false, errAddrShort
		}
		port := binary.BigEndian.Uint16(b[16:18])
		hi, lo := binary.BigEndian.Uint64(b[0:8]), binary.BigEndian.Uint64(b[8:16])
		var ip netip.Addr
		if hi == 0 && lo>>32 == 0xffff { // IPv4-mapped: decode as IPv4
			ip = netip.AddrFrom4([4]byte(b[12:16]))
			ok = port != 0 && uint32(lo) != 0
		} else {
			ip = netip.AddrFrom16([16]byte(b[0:16]))
			ok = port != 0 && (hi != 0 || lo != 0)
		}
		return netip.AddrPortFrom(ip, port), b[18:], ok, nil
	}
	return netip.AddrPort{}, nil, false, ErrAddress
}

// familyBits are the two high bits of the header's flags and of a ping's
// flags: they hold the family of the sender's (the ping target's) address,
// which then goes without its family byte (see familyCode).
const familyBits = 0xC0

// familyCode is the 2-bit code of a's family in familyBits: 0 none, 1
// IPv4 (IPv4-mapped IPv6 included), 2 IPv6.
func familyCode(a netip.AddrPort) byte {
	switch AddrLen(a) {
	case 1:
		return 0
	case 7:
		return 1 << 6
	}
	return 2 << 6
}

// familyOf is the family byte (0, 4, 6; 0xFF for the unused code 3) that
// flags' familyBits code.
func familyOf(flags byte) byte {
	return [4]byte{0, 4, 6, 0xFF}[flags>>6]
}

// usable reports whether a can identify a member: a real IP and port. It
// judges the IP as AppendAddr writes it, unmapped and without a zone: netip's
// IsUnspecified is false for ::ffff:0.0.0.0 and ::%eth0, which go on the wire
// as 0.0.0.0 and ::. (Branching on the form is several times cheaper than
// Unmap().WithZone("") or As16, and this runs for every decoded address.)
func usable(a netip.AddrPort) bool {
	if a.Port() == 0 {
		return false
	}
	ip := a.Addr()
	switch {
	case ip.Is4():
		return ip != netip.IPv4Unspecified()
	case !ip.IsValid():
		return false
	case ip.Is4In6():
		return ip.Unmap() != netip.IPv4Unspecified()
	}
	return ip.WithZone("") != netip.IPv6Unspecified()
}

// checkAddr is Validate's rule for one address in a message.
func checkAddr(a netip.AddrPort, required bool) error {
	if a.IsValid() && !usable(a) || required && !a.IsValid() {
		return ErrAddress
	}
	return nil
}

// bodyAddr reads an address inside a message body: family 0 (allowed unless
// required) or a usable address.
// ReadAddr decodes an address that AppendAddr wrote at the front of b and
// returns the rest of b. The address must be present and usable as a
// member's identity (not unspecified, not port 0; IPv4-mapped addresses come
// back as IPv4). A bad one is ErrAddress; one cut short by the end of b
// matches both ErrAddress and ErrMalformed.
func ReadAddr(b []byte) (netip.AddrPort, []byte, error) { return bodyAddr(b, true) }

func bodyAddr(b []byte, required bool) (netip.AddrPort, []byte, error) {
	if len(b) < 1 {
		return netip.AddrPort{}, nil, errShortBodyAddr
	}
	return bodyAddrAs(b[0], b[1:], required)
}

// bodyAddrAs is bodyAddr for an address whose family byte was given apart.
func bodyAddrAs(family byte, b []byte, required bool) (netip.AddrPort, []byte, error) {
	a, rest, ok, err := readAddrAs(family, b)
	switch {
	case err == errAddrShort:
		return netip.AddrPort{}, nil, errShortBodyAddr
	case err != nil:
		return netip.AddrPort{}, nil, err
	case !ok && (required || family != 0):
		return netip.AddrPort{}, nil, ErrAddress
	}
	return a, rest, nil
}

// fixedHeaderLen is tag, flags and cluster.
const fixedHeaderLen = 6

// HeaderLen is the encoded length of h.
func HeaderLen(h Header) int {
	return fixedHeaderLen + AddrLen(h.Sender) - 1 + UvarintLen(h.Incarnation)
}

// AppendHeader appends the encoding of h. Flags' familyBits are not
// written: they carry the sender's address family.
func AppendHeader(dst []byte, h Header) []byte {
	dst = append(dst, tag, h.Flags&^familyBits|familyCode(h.Sender))
	dst = binary.BigEndian.AppendUint32(dst, h.Cluster)
	dst = appendAddrBody(dst, h.Sender)
	return binary.AppendUvarint(dst, uint64(h.Incarnation))
}

// appendAddrBody is AppendAddr without the family byte.
func appendAddrBody(dst []byte, a netip.AddrPort) []byte {
	if !a.IsValid() {
		return dst
	}
	if ip := a.Addr().Unmap(); ip.Is4() {
		b := ip.As4()
		dst = append(dst, b[:]...)
	} else {
		b := ip.As16()
		dst = append(dst, b[:]...)
	}
	return binary.BigEndian.AppendUint16(dst, a.Port())
}

// msgOverhead is the encoded length of a message's type byte and length
// field for a body of n bytes.
func msgOverhead(n int) int { return 1 + UvarintLen(uint32(n)) }

// minMsgLen is the shortest message: a type byte and a zero length.
const minMsgLen = 2

// MaxBodyLen is the largest message body the length field may describe. A
// Broadcast's payload may be at most MaxBodyLen - AddrLen(Subject) - 12 bytes
// (and in practice must fit a UDP datagram together with the header).
const MaxBodyLen = 0xFFFF

// Validate reports why m cannot be encoded, or nil when it can. For a
// message of known type the error is the one Decode would return for its
// encoding: ErrBadStatus for an Update whose Status is not Valid; ErrAddress
// for a missing PingReq Target or Update/Broadcast Subject, or for any
// address that is set but unspecified or has port 0 (an invalid Ping Target
// or Update Source means none and is fine). It returns ErrMalformed for an
// unknown type (which Decode would skip) or a body longer than MaxBodyLen.
func (m *Message) Validate() error {
	switch m.Type {
	case TypePing:
		return checkAddr(m.Target, false)
	case TypeAck, TypeNack:
	case TypePingReq:
		return checkAddr(m.Target, true)
	case TypeUpdate:
		if !m.Status.Valid() {
			return ErrBadStatus
		}
		if err := checkAddr(m.Subject, true); err != nil {
			return err
		}
		if len(m.Meta) > MaxMetaBytes || len(m.Meta) > 0 && !m.HasMeta {
			return ErrMalformed
		}
		return checkAddr(m.Source, false)
	case TypeBroadcast:
		if err := checkAddr(m.Subject, true); err != nil {
			return err
		}
		if AddrLen(m.Subject)+12+len(m.Payload) > MaxBodyLen {
			return ErrMalformed
		}
	case TypeDigest:
		if m.bodyLen() > MaxBodyLen { // counts the partial cutoff's 4 bytes
			return ErrMalformed
		}
		for b := m.Entries; len(b) > 0; {
			var err error
			if _, b, err = NextDigestEntry(b); err != nil {
				return err
			}
		}
	default:
		return ErrMalformed
	}
	return nil
}

// EncodedLen is the number of bytes AppendTo appends for m: 0 when m cannot
// be encoded (see Validate).
func (m *Message) EncodedLen() int {
	if m.Validate() != nil {
		return 0
	}
	n := m.bodyLen()
	if impliedLen(m.Type) {
		return 1 + n
	}
	return msgOverhead(n) + n
}

// impliedLen reports whether messages of type t go without a length field:
// a ping, an ack and a nack, the messages of every probe, whose bodies'
// lengths follow from their type (and, for a ping, from the target's
// family in its flags). Every other type, unknown ones included, has one.
func impliedLen(t MsgType) bool { return t == TypePing || t == TypeAck || t == TypeNack }

// impliedBodyLen is the body length of a message of type t (impliedLen)
// whose body starts b, or -1 when b is too short to tell.
func impliedBodyLen(t MsgType, b []byte) int {
	if t != TypePing {
		return 2
	}
	if len(b) < 3 {
		return -1
	}
	switch b[2] >> 6 {
	case 1:
		return 3 + 6
	case 2:
		return 3 + 18
	}
	return 3 // no target, or the invalid code 3 (ErrAddress)
}

// bodyLen is the encoded length of the body of m, which Validate accepts.
func (m *Message) bodyLen() int {
	switch m.Type {
	case TypePing:
		return 2 + 1 + AddrLen(m.Target) - 1
	case TypeAck, TypeNack:
		return 2
	case TypePingReq:
		return 2 + AddrLen(m.Target)
	case TypeUpdate:
		n := 1 + UvarintLen(m.Incarnation) + AddrLen(m.Subject) + AddrLen(m.Source)
		if m.HasMeta {
			n += 1 + len(m.Meta)
		}
		return n
	case TypeBroadcast:
		return AddrLen(m.Subject) + 12 + len(m.Payload)
	case TypeDigest:
		if m.Flags&DigestFlagPartial != 0 {
			return 1 + 4 + len(m.Entries)
		}
		return 1 + len(m.Entries)
	}
	return 0
}

// AgeOffset is where a Broadcast's AgeMillis sits in AppendTo's encoding of
// m (4 bytes, big endian), so that a queued copy's age can be refreshed in
// place before each send.
func (m *Message) AgeOffset() int {
	return msgOverhead(m.bodyLen()) + AddrLen(m.Subject) + 8
}

// AppendTo appends the encoding of m. A message that Decode would reject
// (see Validate) appends nothing, so one bad message cannot make a receiver
// drop the whole compound packet.
func (m *Message) AppendTo(dst []byte) []byte {
	if m.Validate() != nil {
		return dst
	}
	dst = append(dst, byte(m.Type))
	if !impliedLen(m.Type) {
		dst = binary.AppendUvarint(dst, uint64(m.bodyLen()))
	}
	switch m.Type {
	case TypePing:
		dst = binary.BigEndian.AppendUint16(dst, m.Seq)
		dst = append(dst, m.Flags&^familyBits|familyCode(m.Target))
		dst = appendAddrBody(dst, m.Target)
	case TypeAck, TypeNack:
		dst = binary.BigEndian.AppendUint16(dst, m.Seq)
	case TypePingReq:
		dst = binary.BigEndian.AppendUint16(dst, m.Seq)
		dst = AppendAddr(dst, m.Target)
	case TypeUpdate:
		dst = append(dst, byte(m.Status))
		dst = binary.AppendUvarint(dst, uint64(m.Incarnation))
		dst = AppendAddr(dst, m.Subject)
		dst = AppendAddr(dst, m.Source)
		if m.HasMeta {
			dst = append(dst, byte(len(m.Meta)))
			dst = append(dst, m.Meta...)
		}
	case TypeBroadcast:
		dst = AppendAddr(dst, m.Subject)
		dst = binary.BigEndian.AppendUint32(dst, m.Boot)
		dst = binary.BigEndian.AppendUint32(dst, m.Index)
		dst = binary.BigEndian.AppendUint32(dst, m.AgeMillis)
		dst = append(dst, m.Payload...)
	case TypeDigest:
		dst = append(dst, m.Flags)
		if m.Flags&DigestFlagPartial != 0 {
			dst = binary.BigEndian.AppendUint32(dst, m.AgeMillis)
		}
		dst = append(dst, m.Entries...)
	}
	return dst
}

// DecodeHeader decodes the header at the front of b and returns the rest.
// On error the Header is zero.
func DecodeHeader(b []byte) (Header, []byte, error) {
	switch {
	case len(b) >= 3 && b[0] == v1Magic0 && b[1] == v1Magic1:
		return Header{}, nil, ErrVersion
	case len(b) > 0 && b[0]&0xF0 == tagMagic && b[0] != tag:
		return Header{}, nil, ErrVersion
	case len(b) < fixedHeaderLen+1:
		return Header{}, nil, ErrShort
	case b[0] != tag:
		return Header{}, nil, ErrMagic
	}
	sender, rest, ok, err := readAddrAs(familyOf(b[1]), b[fixedHeaderLen:])
	if err == errAddrShort {
		return Header{}, nil, errShortHeaderAddr
	}
	if err != nil {
		return Header{}, nil, err
	}
	if !ok {
		return Header{}, nil, ErrUnspecified
	}
	inc, after, err := readUvarint(rest, 1<<32-1)
	if err != nil {
		if cutUvarint(rest) {
			return Header{}, nil, ErrShort
		}
		return Header{}, nil, err
	}
	rest = after
	h := Header{
		Flags:       b[1] &^ familyBits,
		Cluster:     binary.BigEndian.Uint32(b[2:fixedHeaderLen]),
		Sender:      sender,
		Incarnation: inc,
	}
	return h, rest, nil
}

// Decode parses a whole packet into p, reusing p.Messages (it allocates only
// when a packet has more messages than any before it). Payloads alias b.
//
// On error p holds no messages and Skipped is 0; p.Header is the zero Header
// when the header itself was bad, and the decoded header otherwise (so the
// caller can tell who sent a bad packet).
func (p *Packet) Decode(b []byte) error {
	clear(p.Messages) // drop references into the previous buffer
	p.Messages = p.Messages[:0]
	p.Skipped = 0
	h, rest, err := DecodeHeader(b)
	p.Header = h
	if err != nil {
		return err
	}
	for len(rest) > 0 {
		t := MsgType(rest[0])
		var after []byte
		var n int
		if impliedLen(t) {
			after = rest[1:]
			if n = impliedBodyLen(t, after); n < 0 || len(after) < n {
				return p.fail(ErrTruncated)
			}
		} else {
			v, a, err := readUvarint(rest[1:], MaxBodyLen)
			switch {
			case err != nil && cutUvarint(rest[1:]):
				return p.fail(ErrTruncated)
			case err != nil:
				return p.fail(err)
			case len(a) < int(v):
				return p.fail(ErrTruncated)
			}
			after, n = a, int(v)
		}
		// The body's capacity ends with it, so appending to a Payload
		// cannot overwrite the next message.
		body := after[:n:n]
		rest = after[n:]
		if t < TypePing || t > TypeNack {
			p.Skipped++
			continue
		}
		if len(p.Messages) == MaxMessages {
			return p.fail(ErrTooMany)
		}
		p.Messages = append(p.Messages, Message{Type: t})
		if err := decodeBody(&p.Messages[len(p.Messages)-1], body); err != nil {
			return p.fail(err)
		}
	}
	if len(p.Messages) == 0 {
		return p.fail(ErrNoMessages)
	}
	return nil
}

// fail empties p's messages and returns err.
func (p *Packet) fail(err error) error {
	clear(p.Messages)
	p.Messages = p.Messages[:0]
	p.Skipped = 0
	return err
}

func decodeBody(m *Message, b []byte) error {
	var err error
	switch m.Type {
	case TypePing:
		if len(b) < 3 {
			return ErrMalformed
		}
		m.Seq = binary.BigEndian.Uint16(b)
		m.Flags = b[2] &^ familyBits
		m.Target, b, err = bodyAddrAs(familyOf(b[2]), b[3:], false)
	case TypeAck, TypeNack:
		if len(b) < 2 {
			return ErrMalformed
		}
		m.Seq = binary.BigEndian.Uint16(b)
		b = b[2:]
	case TypePingReq:
		if len(b) < 2 {
			return ErrMalformed
		}
		m.Seq = binary.BigEndian.Uint16(b)
		m.Target, b, err = bodyAddr(b[2:], true)
	case TypeUpdate:
		if len(b) < 2 {
			return ErrMalformed
		}
		m.Status = Status(b[0])
		if !m.Status.Valid() {
			return ErrBadStatus
		}
		m.Incarnation, b, err = readUvarint(b[1:], 1<<32-1)
		if err != nil {
			return errBodyVarint
		}
		m.Subject, b, err = bodyAddr(b, true)
		if err == nil {
			m.Source, b, err = bodyAddr(b, false)
		}
		if err == nil && len(b) > 0 { // the subject's metadata: length, bytes
			n := int(b[0])
			if len(b) < 1+n {
				return ErrMalformed
			}
			m.HasMeta = true
			if n > 0 {
				m.Meta = b[1 : 1+n : 1+n]
			}
			b = b[1+n:]
		}
	case TypeBroadcast:
		m.Subject, b, err = bodyAddr(b, true)
		if err != nil {
			return err
		}
		if len(b) < 12 {
			return ErrMalformed
		}
		m.Boot = binary.BigEndian.Uint32(b)
		m.Index = binary.BigEndian.Uint32(b[4:])
		m.AgeMillis = binary.BigEndian.Uint32(b[8:])
		if len(b) > 12 {
			m.Payload = b[12:]
		}
		return nil
	case TypeDigest:
		if len(b) < 1 {
			return ErrMalformed
		}
		m.Flags, b = b[0], b[1:]
		if m.Flags&DigestFlagPartial != 0 {
			if len(b) < 4 {
				return ErrMalformed
			}
			m.AgeMillis, b = binary.BigEndian.Uint32(b), b[4:]
		}
		for rest := b; len(rest) > 0; {
			if _, rest, err = NextDigestEntry(rest); err != nil {
				return err
			}
		}
		if len(b) > 0 {
			m.Entries = b
		}
		return nil
	}
	if err != nil {
		return err
	}
	if len(b) != 0 {
		return ErrMalformed
	}
	return nil
}
