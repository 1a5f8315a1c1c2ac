package smudge

import (
	"errors"
	"fmt"

	"github.com/seed-c7906467/smudge/internal/keyring"
)

// ErrEncryptionOff is returned by the key rotation methods of a Cluster that
// was created without Config.Keys: encryption cannot be switched on in a
// running cluster, because its members would stop understanding each other.
var ErrEncryptionOff = errors.New("smudge: encryption is off: start the cluster with Config.Keys (SMUDGE_ENCRYPTION_KEYS)")

// Keys returns copies of the keys in use, the primary (sending) key first;
// nil when encryption is off.
func (c *Cluster) Keys() [][]byte {
	if r := c.ring.Load(); r != nil {
		return r.Keys()
	}
	return nil
}

// InstallKey adds key to the keys accepted from other members. Install a new
// key on every member before any of them uses it (UseKey).
func (c *Cluster) InstallKey(key []byte) error {
	return c.changeRing("InstallKey", func(r *keyring.Ring) (*keyring.Ring, error) { return r.Install(key) })
}

// UseKey makes an installed key the primary: packets are sent with it.
func (c *Cluster) UseKey(key []byte) error {
	return c.changeRing("UseKey", func(r *keyring.Ring) (*keyring.Ring, error) { return r.Use(key) })
}

// RemoveKey stops accepting key. The primary key cannot be removed. Remove
// an old key only once every member uses the new one.
func (c *Cluster) RemoveKey(key []byte) error {
	return c.changeRing("RemoveKey", func(r *keyring.Ring) (*keyring.Ring, error) { return r.Remove(key) })
}

func (c *Cluster) changeRing(op string, f func(*keyring.Ring) (*keyring.Ring, error)) error {
	c.ringMu.Lock()
	defer c.ringMu.Unlock()
	r := c.ring.Load()
	if r == nil {
		return ErrEncryptionOff
	}
	n, err := f(r)
	if err != nil {
		return fmt.Errorf("smudge: %s: %w", op, err)
	}
	c.ring.Store(n)
	c.log.logf(LogInfo, "smudge: %s: %d keys in the ring", op, len(n.Keys()))
	return nil
}

// open authenticates and decrypts a datagram into dst when encryption is
// on, and refuses sealed datagrams when it is off. It counts what it drops.
func (c *Cluster) open(dst, datagram []byte) ([]byte, bool) {
	r := c.ring.Load()
	if r == nil {
		if keyring.IsSealed(datagram) {
			c.droppedSealed.Add(1)
			return nil, false
		}
		return append(dst, datagram...), true
	}
	if !keyring.IsSealed(datagram) {
		c.droppedPlain.Add(1)
		return nil, false
	}
	out, err := r.Open(dst, datagram)
	if err != nil {
		c.droppedUnauthenticated.Add(1)
		return nil, false
	}
	return out, true
}

// seal encrypts an outgoing packet into dst when encryption is on; when it
// is off it returns the packet itself.
func (c *Cluster) seal(dst, packet []byte) []byte {
	if r := c.ring.Load(); r != nil {
		return r.Seal(dst, packet)
	}
	return packet
}

// sealOverhead is what sealing adds to a packet: the engine builds packets
// that much smaller, so that sealed ones still fit in MaxPacketBytes.
func (c *Cluster) sealOverhead() int {
	if c.ring.Load() != nil {
		return keyring.Overhead
	}
	return 0
}
