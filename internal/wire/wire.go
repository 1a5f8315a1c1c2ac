// Package wire encodes and decodes smudge's UDP packets.
//
// A packet is a fixed header followed by one or more messages (a compound
// packet). Every length is checked against the buffer before it is used, so a
// decoder never reads past the input and never allocates in proportion to a
// length field it was sent.
//
// Header (big endian):
//
//	magic    2 bytes  'S' 'W'
//	version  1 byte   currently 1
//	flags    1 byte   reserved, must be ignored by decoders
//	cluster  8 bytes  FNV-1a 64 of the cluster name
//	sender   address  the sender's advertised identity (see Address)
//	incarn.  4 bytes  the sender's incarnation number
//
// Address: family (1 byte: 0 none, 4 IPv4, 6 IPv6), the IP (0, 4 or 16 bytes),
// then the port (2 bytes, absent for family 0).
//
// Message: type (1 byte), body length (2 bytes), body. Unknown types are
// skipped by length, so newer senders can add message types.
package wire

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"net/netip"
)

// Version is the wire format version this package writes and reads.
const Version = 1

const (
	magic0 = 'S'
	magic1 = 'W'
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

// PingFlagJoin in a Ping's Flags asks the receiver to answer with updates
// about every member it knows (sent to a seed by a joining node).
const PingFlagJoin = 1

// Decoding errors. Every error returned by Decode wraps one of these.
var (
	ErrShort       = errors.New("wire: packet shorter than its header")
	ErrMagic       = errors.New("wire: bad magic")
	ErrVersion     = errors.New("wire: unsupported version")
	ErrAddress     = errors.New("wire: malformed address")
	ErrTruncated   = errors.New("wire: message runs past the end of the packet")
	ErrMalformed   = errors.New("wire: malformed message body")
	ErrNoMessages  = errors.New("wire: packet has no messages")
	ErrTooMany     = errors.New("wire: too many messages in one packet")
	ErrBadStatus   = errors.New("wire: invalid member status")
	ErrUnspecified = errors.New("wire: unspecified sender address")
)

// MaxMessages bounds the number of messages decoded from one packet.
const MaxMessages = 512

// Header is the fixed part at the start of every packet.
type Header struct {
	Cluster     uint64         // ClusterID of the sender's cluster name
	Sender      netip.AddrPort // the sender's advertised address: its identity
	Incarnation uint32         // the sender's current incarnation
}

// Message is one decoded message. Which fields are set depends on Type.
type Message struct {
	Type        MsgType
	Seq         uint32         // Ping, Ack, PingReq
	Flags       uint8          // Ping
	Target      netip.AddrPort // Ping (the intended receiver), PingReq (whom to ping)
	Status      Status         // Update
	Incarnation uint32         // Update
	Subject     netip.AddrPort // Update: the member; Broadcast: the origin
	Source      netip.AddrPort // Update: who declared it (may be invalid)
	Boot        uint32         // Broadcast: the origin's boot id
	Index       uint32         // Broadcast: the origin's broadcast counter
	AgeMillis   uint32         // Broadcast: time since it was first sent
	Payload     []byte         // Broadcast: aliases the decoded buffer
}

// Packet is a decoded packet. Decode reuses Messages between calls.
type Packet struct {
	Header
	Messages []Message
	Skipped  int // messages of unknown type that were skipped
}

// ClusterID hashes a cluster name into the header's cluster field.
func ClusterID(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// AddrLen is the encoded length of a.
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

// AppendAddr appends the encoding of a (family 0 when a is invalid).
func AppendAddr(dst []byte, a netip.AddrPort) []byte {
	if !a.IsValid() {
		return append(dst, 0)
	}
	ip := a.Addr().Unmap()
	if ip.Is4() {
		b := ip.As4()
		dst = append(dst, 4)
		dst = append(dst, b[:]...)
	} else {
		b := ip.As16()
		dst = append(dst, 6)
		dst = append(dst, b[:]...)
	}
	return binary.BigEndian.AppendUint16(dst, a.Port())
}

// readAddr decodes an address from the front of b.
func readAddr(b []byte) (netip.AddrPort, []byte, error) {
	if len(b) < 1 {
		return netip.AddrPort{}, nil, ErrAddress
	}
	switch b[0] {
	case 0:
		return netip.AddrPort{}, b[1:], nil
	case 4:
		if len(b) < 1+4+2 {
			return netip.AddrPort{}, nil, ErrAddress
		}
		ip := netip.AddrFrom4([4]byte(b[1:5]))
		return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[5:7])), b[7:], nil
	case 6:
		if len(b) < 1+16+2 {
			return netip.AddrPort{}, nil, ErrAddress
		}
		ip := netip.AddrFrom16([16]byte(b[1:17])).Unmap()
		return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[17:19])), b[19:], nil
	}
	return netip.AddrPort{}, nil, ErrAddress
}

// HeaderLen is the encoded length of h.
func HeaderLen(h Header) int { return 12 + AddrLen(h.Sender) + 4 }

// AppendHeader appends the encoding of h.
func AppendHeader(dst []byte, h Header) []byte {
	dst = append(dst, magic0, magic1, Version, 0)
	dst = binary.BigEndian.AppendUint64(dst, h.Cluster)
	dst = AppendAddr(dst, h.Sender)
	return binary.BigEndian.AppendUint32(dst, h.Incarnation)
}

// msgOverhead is the type byte plus the length field.
const msgOverhead = 3

// EncodedLen is the number of bytes AppendMessage writes for m.
func (m *Message) EncodedLen() int {
	switch m.Type {
	case TypePing:
		return msgOverhead + 4 + 1 + AddrLen(m.Target)
	case TypeAck:
		return msgOverhead + 4
	case TypePingReq:
		return msgOverhead + 4 + AddrLen(m.Target)
	case TypeUpdate:
		return msgOverhead + 1 + 4 + AddrLen(m.Subject) + AddrLen(m.Source)
	case TypeBroadcast:
		return msgOverhead + AddrLen(m.Subject) + 12 + len(m.Payload)
	}
	return 0
}

// AppendTo appends the encoding of m. A message of unknown type, or a
// body longer than 65535 bytes, appends nothing.
func (m *Message) AppendTo(dst []byte) []byte {
	n := m.EncodedLen()
	if n == 0 || n-msgOverhead > 0xFFFF {
		return dst
	}
	dst = append(dst, byte(m.Type))
	dst = binary.BigEndian.AppendUint16(dst, uint16(n-msgOverhead))
	switch m.Type {
	case TypePing:
		dst = binary.BigEndian.AppendUint32(dst, m.Seq)
		dst = append(dst, m.Flags)
		dst = AppendAddr(dst, m.Target)
	case TypeAck:
		dst = binary.BigEndian.AppendUint32(dst, m.Seq)
	case TypePingReq:
		dst = binary.BigEndian.AppendUint32(dst, m.Seq)
		dst = AppendAddr(dst, m.Target)
	case TypeUpdate:
		dst = append(dst, byte(m.Status))
		dst = binary.BigEndian.AppendUint32(dst, m.Incarnation)
		dst = AppendAddr(dst, m.Subject)
		dst = AppendAddr(dst, m.Source)
	case TypeBroadcast:
		dst = AppendAddr(dst, m.Subject)
		dst = binary.BigEndian.AppendUint32(dst, m.Boot)
		dst = binary.BigEndian.AppendUint32(dst, m.Index)
		dst = binary.BigEndian.AppendUint32(dst, m.AgeMillis)
		dst = append(dst, m.Payload...)
	}
	return dst
}

// DecodeHeader decodes the header at the front of b and returns the rest.
func DecodeHeader(b []byte) (Header, []byte, error) {
	var h Header
	if len(b) < 12+1+4 {
		return h, nil, ErrShort
	}
	if b[0] != magic0 || b[1] != magic1 {
		return h, nil, ErrMagic
	}
	if b[2] != Version {
		return h, nil, ErrVersion
	}
	h.Cluster = binary.BigEndian.Uint64(b[4:12])
	sender, rest, err := readAddr(b[12:])
	if err != nil {
		return h, nil, err
	}
	if !sender.IsValid() || sender.Addr().IsUnspecified() || sender.Port() == 0 {
		return h, nil, ErrUnspecified
	}
	if len(rest) < 4 {
		return h, nil, ErrShort
	}
	h.Sender = sender
	h.Incarnation = binary.BigEndian.Uint32(rest)
	return h, rest[4:], nil
}

// Decode parses a whole packet into p, reusing p.Messages. Payloads alias b.
// On error p holds no messages.
func (p *Packet) Decode(b []byte) error {
	p.Messages = p.Messages[:0]
	p.Skipped = 0
	h, rest, err := DecodeHeader(b)
	if err != nil {
		return err
	}
	p.Header = h
	for len(rest) > 0 {
		if len(rest) < msgOverhead {
			p.Messages = p.Messages[:0]
			return ErrTruncated
		}
		t := MsgType(rest[0])
		n := int(binary.BigEndian.Uint16(rest[1:3]))
		if len(rest) < msgOverhead+n {
			p.Messages = p.Messages[:0]
			return ErrTruncated
		}
		body := rest[msgOverhead : msgOverhead+n]
		rest = rest[msgOverhead+n:]
		if t < TypePing || t > TypeBroadcast {
			p.Skipped++
			continue
		}
		if len(p.Messages) == MaxMessages {
			p.Messages = p.Messages[:0]
			return ErrTooMany
		}
		p.Messages = append(p.Messages, Message{Type: t})
		if err := decodeBody(&p.Messages[len(p.Messages)-1], body); err != nil {
			p.Messages = p.Messages[:0]
			return err
		}
	}
	if len(p.Messages) == 0 {
		return ErrNoMessages
	}
	return nil
}

func decodeBody(m *Message, b []byte) error {
	var err error
	switch m.Type {
	case TypePing:
		if len(b) < 5 {
			return ErrMalformed
		}
		m.Seq = binary.BigEndian.Uint32(b)
		m.Flags = b[4]
		m.Target, b, err = readAddr(b[5:])
	case TypeAck:
		if len(b) < 4 {
			return ErrMalformed
		}
		m.Seq = binary.BigEndian.Uint32(b)
		b = b[4:]
	case TypePingReq:
		if len(b) < 4 {
			return ErrMalformed
		}
		m.Seq = binary.BigEndian.Uint32(b)
		m.Target, b, err = readAddr(b[4:])
		if err == nil && !m.Target.IsValid() {
			err = ErrAddress
		}
	case TypeUpdate:
		if len(b) < 5 {
			return ErrMalformed
		}
		m.Status = Status(b[0])
		if !m.Status.Valid() {
			return ErrBadStatus
		}
		m.Incarnation = binary.BigEndian.Uint32(b[1:])
		m.Subject, b, err = readAddr(b[5:])
		if err == nil && !m.Subject.IsValid() {
			err = ErrAddress
		}
		if err == nil {
			m.Source, b, err = readAddr(b)
		}
	case TypeBroadcast:
		m.Subject, b, err = readAddr(b)
		if err == nil && !m.Subject.IsValid() {
			err = ErrAddress
		}
		if err != nil {
			return err
		}
		if len(b) < 12 {
			return ErrMalformed
		}
		m.Boot = binary.BigEndian.Uint32(b)
		m.Index = binary.BigEndian.Uint32(b[4:])
		m.AgeMillis = binary.BigEndian.Uint32(b[8:])
		m.Payload = b[12:]
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
