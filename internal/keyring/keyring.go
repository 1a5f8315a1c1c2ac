// Package keyring encrypts and authenticates smudge's packets with AES-GCM.
//
// A sealed packet is
//
//	version  1 byte   0xE1 (never the first byte of a plain packet, 'S')
//	nonce   12 bytes  random
//	sealed   n bytes  AES-GCM(plain packet) with its 16-byte tag
//
// The additional authenticated data is the version byte followed by the
// cluster name, so a packet sealed for one cluster never opens in another,
// even under the same key. A Ring holds one primary key, used to seal, and
// any number of others that are tried when opening, so that keys can be
// rotated in a running cluster without a pause.
//
// SealLabeled and OpenLabeled seal other kinds of data (stream frames) the
// same way, with a label bound into the additional data instead:
//
//	0xE2, uvarint(len(cluster)), cluster, label
//
// Its first byte differs from a packet's additional data, so a sealed
// packet never opens as labelled data nor the reverse, and data sealed with
// one label never opens with another.
package keyring

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// Version is the first byte of every sealed packet.
const Version = 0xE1

// Overhead is how many bytes sealing adds to a packet.
const Overhead = 1 + nonceSize + tagSize

const (
	nonceSize = 12
	tagSize   = 16
)

// Errors.
var (
	ErrKeySize     = errors.New("keyring: a key must be 16, 24 or 32 bytes (AES-128, -192 or -256)")
	ErrNoKeys      = errors.New("keyring: no keys")
	ErrUnknownKey  = errors.New("keyring: key not in the ring")
	ErrPrimary     = errors.New("keyring: the primary key cannot be removed; make another key primary first")
	ErrNotSealed   = errors.New("keyring: packet is not sealed")
	ErrShort       = errors.New("keyring: sealed packet too short")
	ErrNoKeyOpened = errors.New("keyring: no key in the ring opens the packet")
)

type entry struct {
	raw  []byte
	aead cipher.AEAD
}

// Ring is an immutable set of keys bound to one cluster name. Changing keys
// returns a new Ring, so a Ring can be shared between goroutines freely.
type Ring struct {
	keys []entry // keys[0] is the primary
	aad  []byte
}

// New returns a ring whose primary key is keys[0].
func New(cluster string, keys ...[]byte) (*Ring, error) {
	if len(keys) == 0 {
		return nil, ErrNoKeys
	}
	r := &Ring{aad: append([]byte{Version}, cluster...)}
	for _, k := range keys {
		e, err := newEntry(k)
		if err != nil {
			return nil, err
		}
		if r.index(k) < 0 {
			r.keys = append(r.keys, e)
		}
	}
	return r, nil
}

func newEntry(k []byte) (entry, error) {
	switch len(k) {
	case 16, 24, 32:
	default:
		return entry{}, fmt.Errorf("%w: got %d bytes", ErrKeySize, len(k))
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return entry{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return entry{}, err
	}
	return entry{raw: bytes.Clone(k), aead: aead}, nil
}

func (r *Ring) index(k []byte) int {
	for i, e := range r.keys {
		if bytes.Equal(e.raw, k) {
			return i
		}
	}
	return -1
}

// Keys returns copies of the keys, the primary first.
func (r *Ring) Keys() [][]byte {
	out := make([][]byte, len(r.keys))
	for i, e := range r.keys {
		out[i] = bytes.Clone(e.raw)
	}
	return out
}

// Install returns a ring that also accepts k (the primary is unchanged).
func (r *Ring) Install(k []byte) (*Ring, error) {
	if r.index(k) >= 0 {
		return r, nil
	}
	e, err := newEntry(k)
	if err != nil {
		return nil, err
	}
	n := r.clone()
	n.keys = append(n.keys, e)
	return n, nil
}

// Use returns a ring whose primary is k, which must be installed.
func (r *Ring) Use(k []byte) (*Ring, error) {
	i := r.index(k)
	if i < 0 {
		return nil, ErrUnknownKey
	}
	n := r.clone()
	n.keys[0], n.keys[i] = n.keys[i], n.keys[0]
	return n, nil
}

// Remove returns a ring without k, which must not be the primary.
func (r *Ring) Remove(k []byte) (*Ring, error) {
	i := r.index(k)
	switch {
	case i < 0:
		return nil, ErrUnknownKey
	case i == 0:
		return nil, ErrPrimary
	}
	n := r.clone()
	n.keys = append(n.keys[:i], n.keys[i+1:]...)
	return n, nil
}

func (r *Ring) clone() *Ring {
	return &Ring{keys: append([]entry(nil), r.keys...), aad: r.aad}
}

// Seal appends the sealed form of plain to dst, with the primary key.
func (r *Ring) Seal(dst, plain []byte) []byte {
	start := len(dst)
	dst = append(dst, Version)
	dst = append(dst, make([]byte, nonceSize)...)
	nonce := dst[start+1 : start+1+nonceSize]
	rand.Read(nonce) // never fails (crypto/rand, Go 1.24+)
	return r.keys[0].aead.Seal(dst, nonce, plain, r.aad)
}

// Open appends the plain packet inside sealed to dst, trying every key.
func (r *Ring) Open(dst, sealed []byte) ([]byte, error) {
	if len(sealed) == 0 || sealed[0] != Version {
		return nil, ErrNotSealed
	}
	if len(sealed) < Overhead {
		return nil, ErrShort
	}
	nonce, body := sealed[1:1+nonceSize], sealed[1+nonceSize:]
	for _, e := range r.keys {
		if out, err := e.aead.Open(dst, nonce, body, r.aad); err == nil {
			return out, nil
		}
	}
	return nil, ErrNoKeyOpened
}

// labeledAAD is the first byte of the additional data of labelled seals.
const labeledAAD = 0xE2

// labeledData is the additional data of a labelled seal.
func (r *Ring) labeledData(label []byte) []byte {
	cluster := r.aad[1:]
	ad := make([]byte, 0, 1+binary.MaxVarintLen64+len(cluster)+len(label))
	ad = append(ad, labeledAAD)
	ad = binary.AppendUvarint(ad, uint64(len(cluster)))
	ad = append(ad, cluster...)
	return append(ad, label...)
}

// SealLabeled appends the sealed form of plain to dst, with the primary
// key, like Seal, but binds label (and the cluster name) into the
// authenticated data instead of a packet's: only OpenLabeled with the same
// label opens it. The format is Seal's.
func (r *Ring) SealLabeled(dst, plain, label []byte) []byte {
	start := len(dst)
	dst = append(dst, Version)
	dst = append(dst, make([]byte, nonceSize)...)
	nonce := dst[start+1 : start+1+nonceSize]
	rand.Read(nonce)
	return r.keys[0].aead.Seal(dst, nonce, plain, r.labeledData(label))
}

// OpenLabeled appends the plain data inside sealed to dst, trying every
// key, if it was sealed by SealLabeled with the same label and cluster.
func (r *Ring) OpenLabeled(dst, sealed, label []byte) ([]byte, error) {
	if len(sealed) == 0 || sealed[0] != Version {
		return nil, ErrNotSealed
	}
	if len(sealed) < Overhead {
		return nil, ErrShort
	}
	ad := r.labeledData(label)
	nonce, body := sealed[1:1+nonceSize], sealed[1+nonceSize:]
	for _, e := range r.keys {
		if out, err := e.aead.Open(dst, nonce, body, ad); err == nil {
			return out, nil
		}
	}
	return nil, ErrNoKeyOpened
}

// Nonce returns the nonce of a sealed packet or labelled seal (nil if b is
// too short to be one). It is unique to each seal, so a reply can bind
// itself to the request it answers by putting it in its label.
func Nonce(sealed []byte) []byte {
	if len(sealed) < Overhead || sealed[0] != Version {
		return nil
	}
	return sealed[1 : 1+nonceSize]
}

// IsSealed reports whether b looks like a sealed packet (by its first byte).
func IsSealed(b []byte) bool { return len(b) > 0 && b[0] == Version }
