package liveness

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Wire formats. Both are text, so that a program printing every broadcast
// or every member's metadata shows something readable.
//
// A decommission message is a user broadcast (Cluster.Broadcast):
//
//	smudge.liveness/1 <unix-millis> <mac> <id> [<id>...]
//
// where mac is the first 16 bytes of HMAC-SHA256 under the shared token of
// "smudge.liveness/1 decommission", NUL, the cluster name, NUL, then the
// message from <unix-millis> on without the mac ("<unix-millis> <id>..."),
// in unpadded base64url (22 characters). The ids are decommissioned; a long
// set is sent as several messages.
//
// A member's metadata (Node.Meta) is
//
//	smudge.liveness/1 <id>                                  (no token)
//	smudge.liveness/1 <id> <fingerprint>.<count>.<hash>     (with a token)
//
// fingerprint: the first 4 bytes of HMAC-SHA256 under the token of
// "smudge.liveness/1 fingerprint", NUL, the cluster name, in hex: members
// with equal fingerprints hold the same token. count and hash (the first 8
// bytes of SHA-256 of the sorted decommissioned ids, each followed by a
// newline, in hex) summarise the member's set of decommissioned ids, so that
// members can tell, without sending the sets, that theirs differ.
const (
	prefix     = "smudge.liveness/1 "
	macBytes   = 16
	macChars   = 22 // base64.RawURLEncoding.EncodedLen(macBytes)
	millisMax  = 15 // digits of a Unix time in milliseconds, with room
	msgDomain  = "smudge.liveness/1 decommission\x00"
	fpDomain   = "smudge.liveness/1 fingerprint\x00"
	fpChars    = 8
	hashChars  = 16
	maxMetaLen = len(prefix) + MaxIDBytes + 1 + fpChars + 1 + 10 + 1 + hashChars

	// minMessageBytes is the room one message with one id of the longest
	// kind needs: MaxBroadcastBytes must be at least this.
	minMessageBytes = len(prefix) + millisMax + 1 + macChars + 1 + MaxIDBytes
)

// Reasons a broadcast is not accepted as a decommission message.
var (
	errNotOurs     = errors.New("not a liveness message")
	errMalformed   = errors.New("malformed liveness message")
	errUnauthentic = errors.New("liveness message with a wrong MAC (another token, or forged)")
)

// signer signs and checks decommission messages and computes the metadata
// fingerprint. A nil key means no token: nothing can be signed or checked.
type signer struct {
	key     []byte
	cluster string
	fp      string // "" without a key
}

func newSigner(token, cluster string) *signer {
	s := &signer{cluster: cluster}
	if token == "" {
		return s
	}
	s.key = []byte(token)
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(fpDomain))
	m.Write([]byte(cluster))
	s.fp = hex.EncodeToString(m.Sum(nil)[:fpChars/2])
	return s
}

// mac returns the base64url MAC of the signed part of a message.
func (s *signer) mac(signed []byte) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(msgDomain))
	m.Write([]byte(s.cluster))
	m.Write([]byte{0})
	m.Write(signed)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:macBytes])
}

// encode signs the ids, issued at now, into as few messages of at most max
// bytes as it can. Every id must be valid and max at least minMessageBytes.
func (s *signer) encode(now time.Time, ids []string, max int) [][]byte {
	ms := strconv.FormatInt(now.UnixMilli(), 10)
	head := len(prefix) + len(ms) + 1 + macChars
	var out [][]byte
	for len(ids) > 0 {
		n, size := 0, head
		for n < len(ids) && size+1+len(ids[n]) <= max {
			size += 1 + len(ids[n])
			n++
		}
		if n == 0 { // cannot happen with valid ids and max >= minMessageBytes
			n = 1
		}
		signed := ms + " " + strings.Join(ids[:n], " ")
		msg := make([]byte, 0, size)
		msg = append(msg, prefix...)
		msg = append(msg, ms...)
		msg = append(msg, ' ')
		msg = append(msg, s.mac([]byte(signed))...)
		msg = append(msg, signed[len(ms):]...)
		out = append(out, msg)
		ids = ids[n:]
	}
	return out
}

// isMessage reports whether a broadcast claims to be a liveness message.
func isMessage(p []byte) bool { return strings.HasPrefix(string(p), prefix) }

// decode checks a message and returns its issue time and ids. It returns
// errNotOurs for other broadcasts, errMalformed or errUnauthentic (wrapped)
// for bad ones. Without a key it cannot check anything: callers must not
// call it then.
func (s *signer) decode(p []byte) (time.Time, []string, error) {
	if !isMessage(p) {
		return time.Time{}, nil, errNotOurs
	}
	rest := string(p[len(prefix):])
	msStr, rest, ok1 := strings.Cut(rest, " ")
	mac, idList, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		return time.Time{}, nil, fmt.Errorf("%w: too few fields", errMalformed)
	}
	if msStr == "" || len(msStr) > millisMax || strings.Trim(msStr, "0123456789") != "" {
		return time.Time{}, nil, fmt.Errorf("%w: bad time %q", errMalformed, msStr)
	}
	ms, err := strconv.ParseInt(msStr, 10, 64)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("%w: bad time %q", errMalformed, msStr)
	}
	if len(mac) != macChars {
		return time.Time{}, nil, fmt.Errorf("%w: the MAC is %d characters, not %d", errMalformed, len(mac), macChars)
	}
	want := s.mac([]byte(msStr + " " + idList))
	if !hmac.Equal([]byte(mac), []byte(want)) {
		return time.Time{}, nil, errUnauthentic
	}
	ids := strings.Split(idList, " ")
	for _, id := range ids {
		if err := ValidateID(id); err != nil {
			return time.Time{}, nil, fmt.Errorf("%w: %v", errMalformed, err)
		}
	}
	return time.UnixMilli(ms), ids, nil
}

// setDigest summarises a set of ids as "count.hash"; ids must be sorted.
func setDigest(sorted []string) string {
	h := sha256.New()
	for _, id := range sorted {
		h.Write([]byte(id))
		h.Write([]byte{'\n'})
	}
	return strconv.Itoa(len(sorted)) + "." + hex.EncodeToString(h.Sum(nil)[:hashChars/2])
}

// memberMeta is what a member's metadata says.
type memberMeta struct {
	id     string
	fp     string // token fingerprint; "" when the member has no token
	digest string // "count.hash" of its decommissioned set; "" without a token
}

// encodeMeta is the local node's metadata.
func encodeMeta(m memberMeta) []byte {
	b := []byte(prefix + m.id)
	if m.fp != "" {
		b = append(b, ' ')
		b = append(b, m.fp...)
		b = append(b, '.')
		b = append(b, m.digest...)
	}
	return b
}

// parseMeta reads a member's metadata; ok is false when it is not a
// liveness store's (the member runs none, or it is not known yet).
func parseMeta(b []byte) (m memberMeta, ok bool) {
	if len(b) > maxMetaLen || !isMessage(b) {
		return m, false
	}
	fields := strings.Split(string(b[len(prefix):]), " ")
	if len(fields) > 2 || ValidateID(fields[0]) != nil {
		return m, false
	}
	m.id = fields[0]
	if len(fields) == 1 {
		return m, true
	}
	fp, digest, found := strings.Cut(fields[1], ".")
	if !found || len(fp) != fpChars || !isHex(fp) {
		return m, false
	}
	count, hash, found := strings.Cut(digest, ".")
	if !found || count == "" || len(count) > 10 || strings.Trim(count, "0123456789") != "" ||
		len(hash) != hashChars || !isHex(hash) {
		return m, false
	}
	m.fp, m.digest = fp, digest
	return m, true
}

func isHex(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// sortedIDs returns the keys of set, sorted naturally.
func sortedIDs[V any](set map[string]V) []string {
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareID)
	return ids
}

// IsMessage reports whether a broadcast payload is one of the store's own
// messages (decommissions), so that a program printing broadcasts can leave
// them out.
func IsMessage(payload []byte) bool { return strings.HasPrefix(string(payload), prefix) }
