package flood

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCodecRoundTrip(t *testing.T) {
	v6 := netip.MustParseAddrPort("[2001:db8::1]:7946")
	for _, p := range []Packet{
		{Kind: KindPush, Forward: true, Msg: Message{ID: id(1), Origin: addr(3), Age: 1500 * time.Millisecond, TTL: time.Hour, Payload: []byte("batch")}},
		{Kind: KindPush, Msg: Message{ID: id(2), Origin: v6, TTL: time.Millisecond, Payload: []byte{}}},
		{Kind: KindDigest, IDs: []ID{id(1), id(2)}},
		{Kind: KindWant, IDs: []ID{}},
	} {
		b, err := AppendEncode([]byte("prefix"), p)
		require.NoError(t, err)
		require.True(t, bytes.HasPrefix(b, []byte("prefix")))
		got, err := Decode(b[len("prefix"):], 1<<20)
		require.NoError(t, err)
		assert.Equal(t, p, got)
	}
	// A v4-mapped origin travels as IPv4.
	mapped := netip.AddrPortFrom(netip.MustParseAddr("::ffff:10.0.0.1"), 9)
	b, err := AppendEncode(nil, Packet{Kind: KindPush, Msg: Message{Origin: mapped, TTL: time.Second}})
	require.NoError(t, err)
	got, err := Decode(b, 10)
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddrPort("10.0.0.1:9"), got.Msg.Origin)
}

func TestCodecRefusesWhatItMust(t *testing.T) {
	for _, p := range []Packet{
		{Kind: 9},
		{Kind: KindPush, Msg: Message{Origin: addr(1)}},                                                       // no TTL
		{Kind: KindPush, Msg: Message{TTL: time.Second}},                                                      // no origin
		{Kind: KindPush, Msg: Message{Origin: addr(1), TTL: 1, Age: -1}},                                      // negative age
		{Kind: KindDigest, IDs: make([]ID, MaxIDsPerPacket+1)},                                                // too many
		{Kind: KindPush, Msg: Message{Origin: netip.MustParseAddrPort("[fe80::1%eth0]:1"), TTL: time.Second}}, // zone
	} {
		_, err := AppendEncode(nil, p)
		assert.ErrorIs(t, err, ErrNotEncoded, "%+v", p)
	}
	good, _ := AppendEncode(nil, Packet{Kind: KindPush, Msg: Message{ID: id(1), Origin: addr(1), TTL: time.Second, Payload: []byte("12345")}})
	digest, _ := AppendEncode(nil, Packet{Kind: KindDigest, IDs: []ID{id(1)}})
	for _, c := range []struct {
		b   []byte
		err error
	}{
		{nil, ErrShort},
		{[]byte{2, 1, 0}, ErrVersion},
		{[]byte{1, 7, 0}, ErrKind},
		{[]byte{1, 2, 1, 0}, ErrFlags},
		{[]byte{1, 1, 2}, ErrFlags},
		{good[:10], ErrShort},
		{good[:len(good)-5-1], ErrShort},
		{append(bytes.Clone(digest), 0), ErrTrailing},
		{digest[:len(digest)-1], ErrShort},
		{[]byte{1, 2, 0, 0xff, 0xff, 0x01}, ErrCount},
		{[]byte{1, 3, 0}, ErrShort},
	} {
		_, err := Decode(c.b, 1<<20)
		assert.ErrorIs(t, err, c.err, "% x", c.b)
	}
	_, err := Decode(good, 4)
	assert.ErrorIs(t, err, ErrTooLarge)
	bad := bytes.Clone(good)
	bad[3+16] = 5 // family
	_, err = Decode(bad, 1<<20)
	assert.ErrorIs(t, err, ErrAddress)
}

// FuzzDecode: decoding never panics nor allocates beyond the input's
// size; what decodes encodes back to something that decodes the same.
func FuzzDecode(f *testing.F) {
	for _, p := range []Packet{
		{Kind: KindPush, Forward: true, Msg: Message{ID: id(1), Origin: addr(3), Age: time.Second, TTL: time.Hour, Payload: []byte("batch")}},
		{Kind: KindPush, Msg: Message{ID: id(2), Origin: netip.MustParseAddrPort("[2001:db8::1]:7946"), TTL: time.Millisecond}},
		{Kind: KindDigest, IDs: []ID{id(1), id(2)}},
		{Kind: KindWant, IDs: []ID{id(3)}},
	} {
		b, _ := AppendEncode(nil, p)
		f.Add(b)
	}
	f.Add([]byte{1, 2, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(b, 1<<16)
		if err != nil {
			return
		}
		if len(p.IDs)*16 > len(b) {
			t.Fatalf("%d ids from %d bytes", len(p.IDs), len(b))
		}
		again, err := AppendEncode(nil, p)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", p, err)
		}
		q, err := Decode(again, 1<<16)
		if err != nil {
			t.Fatalf("re-encoded packet does not decode: %v", err)
		}
		if q.Kind != p.Kind || q.Forward != p.Forward || q.Msg.ID != p.Msg.ID || q.Msg.Origin != p.Msg.Origin ||
			q.Msg.Age != p.Msg.Age || q.Msg.TTL != p.Msg.TTL || !bytes.Equal(q.Msg.Payload, p.Msg.Payload) || len(q.IDs) != len(p.IDs) {
			t.Fatalf("round trip changed %+v into %+v", p, q)
		}
	})
}
