package liveness

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateID(t *testing.T) {
	for _, id := range []string{"1", "web-03", "ä", "<script>alert(1)</script>", `"'&`, strings.Repeat("x", MaxIDBytes)} {
		assert.NoError(t, ValidateID(id), "%q", id)
	}
	for id, want := range map[string]string{
		"":                               "empty",
		strings.Repeat("x", 65):          "65 bytes, at most 64",
		"a b":                            "U+0020 is a space",
		"a\tb":                           "U+0009",
		"a\x00b":                         "U+0000",
		"\xff":                           "not valid UTF-8",
		"a\u202eb":                       "U+202E", // a bidi override: invisible, misleading
		"line\nbreak":                    "U+000A",
		strings.Repeat("é", 33):          "66 bytes",
		"non\u00a0breaking":              "U+00A0",
		"zero\u200bwidth":                "U+200B",
		"tab\u3000ideographic":           "U+3000",
		"soft\u00adhyphen":               "U+00AD",
		"\U0001F600\U0001F600\u200d\x7f": "U+200D",
	} {
		err := ValidateID(id)
		assert.ErrorIs(t, err, ErrInvalidID, "%q", id)
		assert.ErrorContains(t, err, want, "%q", id)
	}
}

func TestIDsSortNaturally(t *testing.T) {
	got := []string{"b", "10", "a", "2", "007", "7", "1"}
	slices.SortFunc(got, compareID)
	assert.Equal(t, []string{"1", "2", "007", "7", "10", "a", "b"}, got)
}

func TestMessagesRoundTripAndSplitToFit(t *testing.T) {
	s := newSigner(testToken, "blue")
	now := time.UnixMilli(1_780_000_000_123)
	msgs := s.encode(now, []string{"3"}, 256)
	require.Len(t, msgs, 1)
	assert.Regexp(t, `^smudge\.liveness/1 1780000000123 [A-Za-z0-9_-]{22} 3$`, string(msgs[0]))
	at, ids, err := s.decode(msgs[0])
	require.NoError(t, err)
	assert.Equal(t, now, at)
	assert.Equal(t, []string{"3"}, ids)

	var many []string
	for i := range 300 {
		many = append(many, fmt.Sprint(i))
	}
	many = append(many, strings.Repeat("z", MaxIDBytes))
	for _, max := range []int{minMessageBytes, 256, 1400} {
		msgs := s.encode(now, many, max)
		var back []string
		for _, m := range msgs {
			assert.LessOrEqual(t, len(m), max)
			_, ids, err := s.decode(m)
			require.NoError(t, err)
			back = append(back, ids...)
		}
		assert.Equal(t, many, back, "max %d", max)
	}
	assert.Equal(t, 6, len(s.encode(now, many, 256)), "as few messages as fit: ids of 1,149 bytes, about 200 per message")
}

func TestDecodeRejectsTamperingAndGarbage(t *testing.T) {
	s := newSigner(testToken, "blue")
	good := string(s.encode(time.UnixMilli(1000), []string{"3", "4"}, 256)[0])
	tampered := strings.Replace(good, " 3 ", " 5 ", 1)
	_, _, err := s.decode([]byte(tampered))
	assert.ErrorIs(t, err, errUnauthentic)
	_, _, err = s.decode([]byte(strings.Replace(good, "1000", "2000", 1)))
	assert.ErrorIs(t, err, errUnauthentic, "the time is signed too")
	_, _, err = s.decode([]byte(good + " 6"))
	assert.ErrorIs(t, err, errUnauthentic, "an id added")

	for _, bad := range []string{
		prefix, prefix + "1000", prefix + "1000 mac",
		prefix + "-1 " + strings.Repeat("A", macChars) + " 1",
		prefix + "9999999999999999 " + strings.Repeat("A", macChars) + " 1",
		prefix + "1000 short 1",
	} {
		_, _, err := s.decode([]byte(bad))
		assert.ErrorIs(t, err, errMalformed, "%q", bad)
	}
	// A correctly signed message whose ids are bad is malformed, not trusted.
	signed := "1000 a  b"
	bad := prefix + "1000 " + s.mac([]byte(signed)) + " a  b"
	_, _, err = s.decode([]byte(bad))
	assert.ErrorIs(t, err, errMalformed)
	_, _, err = s.decode([]byte("hello"))
	assert.ErrorIs(t, err, errNotOurs)
}

func TestMetaRoundTrip(t *testing.T) {
	s := newSigner(testToken, "blue")
	for _, m := range []memberMeta{
		{id: "1"},
		{id: strings.Repeat("x", MaxIDBytes), fp: s.fp, digest: setDigest([]string{"a", "b"})},
		{id: "<b>", fp: s.fp, digest: setDigest(nil)},
	} {
		b := encodeMeta(m)
		assert.LessOrEqual(t, len(b), maxMetaLen)
		got, ok := parseMeta(b)
		require.True(t, ok, "%q", b)
		assert.Equal(t, m, got)
	}
	for _, bad := range []string{
		"", "id=1", prefix, prefix + "a b c", prefix + "1 nodigest", prefix + "1 abcdefgh.1",
		prefix + "1 ABCDEFGH.1.0123456789abcdef", prefix + "1 abcdefgh.x.0123456789abcdef",
		prefix + "1 abcdefgh.1.0123", prefix + "a\x00 abcdefgh.1.0123456789abcdef",
	} {
		_, ok := parseMeta([]byte(bad))
		assert.False(t, ok, "%q", bad)
	}
	assert.NotEqual(t, newSigner(testToken, "blue").fp, newSigner(testToken, "green").fp, "the fingerprint depends on the cluster")
	assert.NotEqual(t, newSigner(testToken, "blue").fp, newSigner(testToken+"x", "blue").fp)
	assert.Empty(t, newSigner("", "blue").fp)
}

func TestDigestDependsOnTheSetOnly(t *testing.T) {
	assert.Equal(t, setDigest([]string{"1", "2"}), setDigest(sortedIDs(map[string]bool{"2": true, "1": true})))
	assert.NotEqual(t, setDigest([]string{"1", "2"}), setDigest([]string{"12"}))
	assert.True(t, strings.HasPrefix(setDigest([]string{"1", "2"}), "2."))
}

func FuzzDecode(f *testing.F) {
	s := newSigner(testToken, "blue")
	f.Add(s.encode(time.UnixMilli(1000), []string{"3", "4"}, 256)[0])
	f.Add([]byte(prefix + "1000 " + strings.Repeat("A", macChars) + " 1"))
	f.Add([]byte(prefix))
	f.Add([]byte("hello"))
	f.Fuzz(func(t *testing.T, p []byte) {
		at, ids, err := s.decode(p)
		if err != nil {
			return
		}
		// Whatever decodes must be what the signer would have sent.
		again := s.encode(at, ids, 1<<20)
		if len(again) != 1 || string(again[0]) != string(p) {
			t.Fatalf("decoded %q into %v %q, which encodes to %q", p, at, ids, again)
		}
	})
}

func FuzzParseMeta(f *testing.F) {
	s := newSigner(testToken, "blue")
	f.Add(encodeMeta(memberMeta{id: "1", fp: s.fp, digest: setDigest([]string{"2"})}))
	f.Add(encodeMeta(memberMeta{id: "1"}))
	f.Add([]byte(prefix + "1 x.y.z"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok := parseMeta(b)
		if !ok {
			return
		}
		if ValidateID(m.id) != nil {
			t.Fatalf("%q: accepted a bad id %q", b, m.id)
		}
		if got := encodeMeta(m); string(got) != string(b) {
			t.Fatalf("%q parses to %+v, which encodes to %q", b, m, got)
		}
	})
}

func TestIsMessageTellsTheStoresBroadcastsFromOthers(t *testing.T) {
	s := newSigner(testToken, "blue")
	for _, p := range s.encode(time.Unix(1_700_000_000, 0), []string{"a", "b"}, 256) {
		require.True(t, IsMessage(p), "%q", p)
	}
	for _, p := range []string{"", "hello", "smudge.liveness/2 x", " smudge.liveness/1 a"} {
		require.False(t, IsMessage([]byte(p)), "%q", p)
	}
}
