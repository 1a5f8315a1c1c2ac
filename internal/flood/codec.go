package flood

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/seed-c7906467/smudge/internal/wire"
)

// The encoding of a Packet, carried as one stream message:
//
//	version  1 byte   1
//	kind     1 byte   1 push, 2 digest, 3 want
//	flags    1 byte   bit 0: forward (push only); the others are 0
//	push:
//	  id       16 bytes
//	  family    1 byte  4 or 6, then the origin's address (4 or 16 bytes)
//	  port      2 bytes big endian, not 0
//	  age      uvarint  milliseconds
//	  ttl      uvarint  milliseconds, not 0
//	  payload  the rest
//	digest, want:
//	  count    uvarint  at most MaxIDsPerPacket
//	  ids      count × 16 bytes, and nothing after them
const codecVersion = 1

const flagForward = 1

// maxMillis is the largest duration, in milliseconds, that fits a
// time.Duration.
const maxMillis = math.MaxInt64 / int64(time.Millisecond)

// Decoding errors.
var (
	ErrShort      = errors.New("flood: packet truncated")
	ErrVersion    = errors.New("flood: unknown packet version")
	ErrKind       = errors.New("flood: unknown packet kind")
	ErrFlags      = errors.New("flood: unknown flags")
	ErrAddress    = errors.New("flood: bad origin address")
	ErrDuration   = errors.New("flood: bad age or TTL")
	ErrCount      = errors.New("flood: too many ids")
	ErrTrailing   = errors.New("flood: data after the ids")
	ErrTooLarge   = errors.New("flood: payload too large")
	ErrNotEncoded = errors.New("flood: packet cannot be encoded")
)

// AppendEncode appends p's encoding to dst.
func AppendEncode(dst []byte, p Packet) ([]byte, error) {
	var flags byte
	switch p.Kind {
	case KindPush:
		if p.Forward {
			flags = flagForward
		}
	case KindDigest, KindWant:
		if len(p.IDs) > MaxIDsPerPacket {
			return dst, fmt.Errorf("%w: %d ids, at most %d", ErrNotEncoded, len(p.IDs), MaxIDsPerPacket)
		}
	default:
		return dst, fmt.Errorf("%w: kind %d", ErrNotEncoded, p.Kind)
	}
	dst = append(dst, codecVersion, byte(p.Kind), flags)
	if p.Kind != KindPush {
		dst = binary.AppendUvarint(dst, uint64(len(p.IDs)))
		for _, id := range p.IDs {
			dst = append(dst, id[:]...)
		}
		return dst, nil
	}
	m := p.Msg
	o := m.Origin
	if !o.IsValid() || o.Port() == 0 || o.Addr().Zone() != "" || m.Age < 0 || m.TTL < time.Millisecond {
		return dst, fmt.Errorf("%w: origin %v, age %v, ttl %v", ErrNotEncoded, o, m.Age, m.TTL)
	}
	dst = append(dst, m.ID[:]...)
	dst = wire.AppendAddr(dst, o)
	dst = binary.AppendUvarint(dst, uint64(m.Age/time.Millisecond))
	dst = binary.AppendUvarint(dst, uint64(m.TTL/time.Millisecond))
	return append(dst, m.Payload...), nil
}

// Decode decodes a packet. A push's payload aliases b. Payloads longer
// than maxPayload are refused.
func Decode(b []byte, maxPayload int) (Packet, error) {
	var p Packet
	if len(b) < 3 {
		return p, ErrShort
	}
	if b[0] != codecVersion {
		return p, ErrVersion
	}
	p.Kind = Kind(b[1])
	flags := b[2]
	b = b[3:]
	switch p.Kind {
	case KindDigest, KindWant:
		if flags != 0 {
			return p, ErrFlags
		}
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return p, ErrShort
		}
		if n > MaxIDsPerPacket {
			return p, ErrCount
		}
		b = b[k:]
		if uint64(len(b)) < n*16 {
			return p, ErrShort
		}
		if uint64(len(b)) > n*16 {
			return p, ErrTrailing
		}
		p.IDs = make([]ID, n)
		for i := range p.IDs {
			copy(p.IDs[i][:], b[16*i:])
		}
		return p, nil
	case KindPush:
	default:
		return p, ErrKind
	}
	if flags&^flagForward != 0 {
		return p, ErrFlags
	}
	p.Forward = flags&flagForward != 0
	if len(b) < 16+1 {
		return p, ErrShort
	}
	copy(p.Msg.ID[:], b)
	b = b[16:]
	origin, b, err := wire.ReadAddr(b)
	switch {
	case errors.Is(err, wire.ErrMalformed): // cut short
		return p, ErrShort
	case err != nil:
		return p, ErrAddress
	}
	p.Msg.Origin = origin
	age, k := binary.Uvarint(b)
	if k <= 0 {
		return p, ErrShort
	}
	b = b[k:]
	ttl, k := binary.Uvarint(b)
	if k <= 0 {
		return p, ErrShort
	}
	b = b[k:]
	if age > uint64(maxMillis) || ttl == 0 || ttl > uint64(maxMillis) {
		return p, ErrDuration
	}
	p.Msg.Age = time.Duration(age) * time.Millisecond
	p.Msg.TTL = time.Duration(ttl) * time.Millisecond
	if len(b) > maxPayload {
		return p, ErrTooLarge
	}
	p.Msg.Payload = b
	return p, nil
}
