package keyring

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	k16 = bytes.Repeat([]byte{1}, 16)
	k24 = bytes.Repeat([]byte{2}, 24)
	k32 = bytes.Repeat([]byte{3}, 32)
)

func TestSealOpenRoundTrip(t *testing.T) {
	for _, k := range [][]byte{k16, k24, k32} {
		r, err := New("prod", k)
		require.NoError(t, err)
		plain := []byte("SW\x01 a packet")
		sealed := r.Seal(nil, plain)
		assert.Len(t, sealed, len(plain)+Overhead)
		assert.True(t, IsSealed(sealed))
		assert.NotContains(t, string(sealed), "a packet")
		got, err := r.Open(nil, sealed)
		require.NoError(t, err)
		assert.Equal(t, plain, got)
		// Two seals of the same packet differ (random nonces).
		assert.NotEqual(t, sealed, r.Seal(nil, plain))
	}
}

func TestOpenRefusesWhatItMust(t *testing.T) {
	r, _ := New("prod", k16)
	sealed := r.Seal(nil, []byte("hello"))

	other, _ := New("prod", k32)
	_, err := other.Open(nil, sealed)
	assert.ErrorIs(t, err, ErrNoKeyOpened, "wrong key")

	staging, _ := New("staging", k16)
	_, err = staging.Open(nil, sealed)
	assert.ErrorIs(t, err, ErrNoKeyOpened, "same key, other cluster: the name is authenticated")

	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x40
		_, err = r.Open(nil, bad)
		assert.Error(t, err, "flipping byte %d must be detected", i)
	}
	_, err = r.Open(nil, sealed[:Overhead-1])
	assert.ErrorIs(t, err, ErrShort)
	_, err = r.Open(nil, []byte("SW\x01plain"))
	assert.ErrorIs(t, err, ErrNotSealed)
	_, err = r.Open(nil, nil)
	assert.ErrorIs(t, err, ErrNotSealed)
}

func TestRotation(t *testing.T) {
	old, err := New("c", k16)
	require.NoError(t, err)
	sealedOld := old.Seal(nil, []byte("old"))

	both, err := old.Install(k32)
	require.NoError(t, err)
	assert.Equal(t, [][]byte{k16, k32}, both.Keys())
	_, err = both.Open(nil, sealedOld)
	assert.NoError(t, err)

	switched, err := both.Use(k32)
	require.NoError(t, err)
	assert.Equal(t, k32, switched.Keys()[0])
	sealedNew := switched.Seal(nil, []byte("new"))
	_, err = both.Open(nil, sealedNew)
	assert.NoError(t, err, "a node that installed the new key reads it before switching")
	_, err = old.Open(nil, sealedNew)
	assert.ErrorIs(t, err, ErrNoKeyOpened)

	_, err = switched.Remove(k32)
	assert.ErrorIs(t, err, ErrPrimary)
	done, err := switched.Remove(k16)
	require.NoError(t, err)
	assert.Equal(t, [][]byte{k32}, done.Keys())
	_, err = done.Open(nil, sealedOld)
	assert.ErrorIs(t, err, ErrNoKeyOpened)

	// Rings are immutable: the earlier ones are unchanged.
	assert.Equal(t, [][]byte{k16}, old.Keys())
	assert.Equal(t, [][]byte{k16, k32}, both.Keys())
	_, err = done.Use(k16)
	assert.ErrorIs(t, err, ErrUnknownKey)
	_, err = done.Remove(k16)
	assert.ErrorIs(t, err, ErrUnknownKey)
	same, err := done.Install(k32)
	require.NoError(t, err)
	assert.Len(t, same.Keys(), 1)
}

func TestKeyErrors(t *testing.T) {
	_, err := New("c")
	assert.ErrorIs(t, err, ErrNoKeys)
	_, err = New("c", []byte("short"))
	assert.ErrorIs(t, err, ErrKeySize)
	r, _ := New("c", k16)
	_, err = r.Install(make([]byte, 17))
	assert.ErrorIs(t, err, ErrKeySize)
	r2, err := New("c", k16, k16, k24)
	require.NoError(t, err)
	assert.Len(t, r2.Keys(), 2, "duplicates are kept once")
}

func TestSealAndOpenDoNotAllocateIntoBuffers(t *testing.T) {
	r, _ := New("c", k32)
	plain := bytes.Repeat([]byte("x"), 1400)
	buf := make([]byte, 0, 2048)
	out := make([]byte, 0, 2048)
	sealed := r.Seal(buf, plain)
	allocs := testing.AllocsPerRun(100, func() {
		sealed = r.Seal(buf[:0], plain)
		out, _ = r.Open(out[:0], sealed)
	})
	assert.Zero(t, allocs)
}

func FuzzOpen(f *testing.F) {
	r, _ := New("fuzz", k16)
	f.Add(r.Seal(nil, []byte("SW\x01\x00 valid")))
	f.Add([]byte{Version})
	f.Add([]byte("SW\x01\x00"))
	f.Add(bytes.Repeat([]byte{Version}, Overhead))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := r.Open(nil, b)
		if err == nil {
			// Only what was sealed with the key opens: re-seal and re-open.
			again, err := r.Open(nil, r.Seal(nil, out))
			require.NoError(t, err)
			require.Equal(t, out, again)
		}
	})
}

func BenchmarkSealOpen1400(b *testing.B) {
	r, _ := New("c", k32)
	plain := bytes.Repeat([]byte("x"), 1400)
	buf := make([]byte, 0, 2048)
	out := make([]byte, 0, 2048)
	b.ReportAllocs()
	b.SetBytes(1400)
	for i := 0; i < b.N; i++ {
		sealed := r.Seal(buf[:0], plain)
		out, _ = r.Open(out[:0], sealed)
	}
}

func TestLabeledSeals(t *testing.T) {
	r, err := New("prod", k32)
	require.NoError(t, err)
	plain := []byte("a stream frame")
	sealed := r.SealLabeled(nil, plain, []byte("request"))
	assert.Len(t, sealed, len(plain)+Overhead)
	assert.Len(t, Nonce(sealed), nonceSize)
	got, err := r.OpenLabeled(nil, sealed, []byte("request"))
	require.NoError(t, err)
	assert.Equal(t, plain, got)

	_, err = r.OpenLabeled(nil, sealed, []byte("response"))
	assert.ErrorIs(t, err, ErrNoKeyOpened, "another label")
	_, err = r.Open(nil, sealed)
	assert.ErrorIs(t, err, ErrNoKeyOpened, "labelled data never opens as a packet")
	_, err = r.OpenLabeled(nil, r.Seal(nil, plain), nil)
	assert.ErrorIs(t, err, ErrNoKeyOpened, "a packet never opens as labelled data, even with an empty label")
	staging, _ := New("staging", k32)
	_, err = staging.OpenLabeled(nil, sealed, []byte("request"))
	assert.ErrorIs(t, err, ErrNoKeyOpened, "the cluster name is authenticated")
	// A cluster name cannot be shifted into the label: lengths are bound.
	a, _ := New("ab", k32)
	b, _ := New("a", k32)
	_, err = b.OpenLabeled(nil, a.SealLabeled(nil, plain, []byte("x")), []byte("bx"))
	assert.ErrorIs(t, err, ErrNoKeyOpened)

	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 1
		_, err = r.OpenLabeled(nil, bad, []byte("request"))
		assert.Error(t, err, "byte %d", i)
	}
	_, err = r.OpenLabeled(nil, sealed[:Overhead-1], nil)
	assert.ErrorIs(t, err, ErrShort)
	_, err = r.OpenLabeled(nil, nil, nil)
	assert.ErrorIs(t, err, ErrNotSealed)
	assert.Nil(t, Nonce([]byte{Version}))

	// Rotation: data sealed with an installed key opens.
	both, _ := r.Install(k16)
	newer, _ := both.Use(k16)
	got, err = both.OpenLabeled(nil, newer.SealLabeled(nil, plain, []byte("l")), []byte("l"))
	require.NoError(t, err)
	assert.Equal(t, plain, got)
}
