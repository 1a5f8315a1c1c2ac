package smudge

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/seed-c7906467/smudge/internal/flood"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIDStoreRemembersAcrossReopens(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	now := time.Unix(1_800_000_000, 0)
	s, err := openIDStore(dir, now, time.Minute)
	require.NoError(t, err)
	assert.Empty(t, s.records())
	recs := []flood.Record{
		{ID: flood.ID{1}, Expires: now.Add(time.Hour)},
		{ID: flood.ID{2}, Expires: now.Add(-30 * time.Second)}, // expired, within the grace
		{ID: flood.ID{3}, Expires: now.Add(-2 * time.Minute)},  // forgotten
	}
	require.NoError(t, s.append(now, recs))
	s.close()
	fi, err := os.Stat(filepath.Join(dir, idFileName))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	s, err = openIDStore(dir, now, time.Minute)
	require.NoError(t, err)
	got := s.records()
	require.Len(t, got, 2)
	assert.Equal(t, flood.ID{1}, got[0].ID)
	assert.True(t, got[0].Expires.Equal(now.Add(time.Hour)))
	assert.Equal(t, flood.ID{2}, got[1].ID)
	s.close()

	// A record cut short by a crash is ignored.
	f, err := os.OpenFile(filepath.Join(dir, idFileName), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	f.Write([]byte{9, 9, 9})
	f.Close()
	s, err = openIDStore(dir, now.Add(2*time.Minute), time.Minute)
	require.NoError(t, err)
	assert.Len(t, s.records(), 1, "the cut record ignored, id 2 forgotten by now")
	s.close()
}

func TestIDStoreCompacts(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1_800_000_000, 0)
	s, err := openIDStore(dir, now, time.Minute)
	require.NoError(t, err)
	defer s.close()
	for i := range idCompactEvery + 10 {
		r := flood.Record{ID: flood.ID{byte(i), byte(i >> 8)}, Expires: now.Add(time.Second)}
		require.NoError(t, s.append(now, []flood.Record{r}))
	}
	later := now.Add(2 * time.Minute)
	for i := range idCompactEvery {
		require.NoError(t, s.append(later, []flood.Record{{ID: flood.ID{7, byte(i), byte(i >> 8)}, Expires: later.Add(time.Hour)}}))
	}
	fi, err := os.Stat(filepath.Join(dir, idFileName))
	require.NoError(t, err)
	assert.LessOrEqual(t, fi.Size(), int64(len(idFileMagic)+(idCompactEvery+10)*idRecordLen), "the forgotten ones were dropped")
}

func TestIDStoreRefusesForeignFiles(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, idFileName), []byte("something else entirely"), 0o600))
	_, err := openIDStore(dir, time.Now(), time.Minute)
	assert.ErrorContains(t, err, "not a file of publication ids")
	// A header cut short while being created is an empty file.
	require.NoError(t, os.WriteFile(filepath.Join(dir, idFileName), []byte(idFileMagic[:5]), 0o600))
	s, err := openIDStore(dir, time.Now(), time.Minute)
	require.NoError(t, err)
	s.close()
	// A state directory that cannot be created fails Start.
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	cfg := udpConfig(t)
	cfg.StateDir = filepath.Join(file, "sub")
	c, err := New(cfg)
	require.NoError(t, err)
	err = c.Start(t.Context())
	assert.ErrorContains(t, err, "state directory")
}
