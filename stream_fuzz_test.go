package smudge

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/seed-c7906467/smudge/internal/keyring"
)

// FuzzStreamFrame feeds arbitrary bytes to the server's reading of a
// stream (frame header, body, seal, request) with and without keys, and to
// the client's reading of a response: never a panic; a body is never
// allocated beyond what arrived (plus a step); what is accepted re-encodes
// to a request that reads back the same.
func FuzzStreamFrame(f *testing.F) {
	ring, err := keyring.New("fuzz", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	from := netip.MustParseAddrPort("10.0.0.1:9999")
	clear, _ := appendRequest(nil, nil, requestMessage, from, []byte("hello"))
	sealed, _ := appendRequest(nil, ring, requestPublish, netip.MustParseAddrPort("[2001:db8::1]:7946"), []byte("publish"))
	f.Add(clear)
	f.Add(sealed)
	f.Add(appendFrameHeader(nil, frameRequest, 1<<30))
	f.Add(appendFrameHeader(nil, frameResponse, 1))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add(clear[:frameHeaderLen+3])
	f.Fuzz(func(t *testing.T, b []byte) {
		const limit = 4096
		for _, r := range []*keyring.Ring{nil, ring} {
			req, nonce, err := readRequest(bytes.NewReader(b), r, limit)
			readResponse(bytes.NewReader(b), r, nonce)
			if err != nil {
				continue
			}
			if r != nil && len(nonce) == 0 {
				t.Fatal("a sealed request without a nonce")
			}
			again, _ := appendRequest(nil, r, req.typ, req.from, req.data)
			back, _, err := readRequest(bytes.NewReader(again), r, limit+streamSlack)
			if err != nil {
				t.Fatalf("re-encoded request does not read: %v", err)
			}
			if back.typ != req.typ || back.from != req.from || !bytes.Equal(back.data, req.data) {
				t.Fatalf("round trip changed %+v into %+v", req, back)
			}
		}
	})
}
