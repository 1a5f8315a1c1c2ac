package smudge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/seed-c7906467/smudge/internal/atomicfile"
	"github.com/seed-c7906467/smudge/internal/flood"
)

// The ids of publications are remembered in StateDir/publish-ids:
//
//	magic    "SMUDGE-PUBLISH-IDS 1\n"
//	records  24 bytes each: the id (16 bytes), then when it expires
//	         (Unix nanoseconds, int64 big endian)
//
// Records are appended, and synced, before a publication is delivered;
// the file is rewritten without the forgotten ones at start and after
// every idCompactEvery records. A record cut short by a crash is ignored.
const (
	idFileName     = "publish-ids"
	idFileMagic    = "SMUDGE-PUBLISH-IDS 1\n"
	idRecordLen    = 16 + 8
	idCompactEvery = 4096
	// idFileMax bounds what is read at start.
	idFileMax = 256 << 20
)

// idStore is the file of remembered ids. Used by one goroutine.
type idStore struct {
	path     string
	f        *os.File
	grace    time.Duration
	live     []flood.Record
	appended int // records appended since the last rewrite
}

// openIDStore reads dir's id file (creating dir and the file if need be),
// drops the ids forgotten by now, and opens the file for appending.
func openIDStore(dir string, now time.Time, grace time.Duration) (*idStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &idStore{path: filepath.Join(dir, idFileName), grace: grace}
	recs, err := readIDFile(s.path)
	if err != nil {
		return nil, err
	}
	s.live = recs
	if err := s.rewrite(now); err != nil {
		return nil, err
	}
	return s, nil
}

// readIDFile reads an id file; a missing file holds no ids.
func readIDFile(path string) ([]flood.Record, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, idFileMax+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return parseIDFile(path, data)
}

// parseIDFile decodes an id file's contents.
func parseIDFile(path string, data []byte) ([]flood.Record, error) {
	if len(data) > idFileMax {
		return nil, fmt.Errorf("%s: larger than %d bytes: not a file smudge wrote; move it away", path, idFileMax)
	}
	if !bytes.HasPrefix(data, []byte(idFileMagic)) {
		if len(data) < len(idFileMagic) && bytes.HasPrefix([]byte(idFileMagic), data) {
			return nil, nil // cut short while being created
		}
		return nil, fmt.Errorf("%s: not a file of publication ids (bad header); move it away", path)
	}
	data = data[len(idFileMagic):]
	recs := make([]flood.Record, 0, len(data)/idRecordLen)
	for len(data) >= idRecordLen {
		var r flood.Record
		copy(r.ID[:], data)
		r.Expires = time.Unix(0, int64(binary.BigEndian.Uint64(data[16:])))
		recs = append(recs, r)
		data = data[idRecordLen:]
	}
	return recs, nil
}

// records returns the ids remembered.
func (s *idStore) records() []flood.Record { return append([]flood.Record(nil), s.live...) }

// append stores recs, synced.
func (s *idStore) append(now time.Time, recs []flood.Record) error {
	s.live = append(s.live, recs...)
	s.appended += len(recs)
	if s.appended >= idCompactEvery {
		return s.rewrite(now)
	}
	buf := make([]byte, 0, len(recs)*idRecordLen)
	for _, r := range recs {
		buf = appendIDRecord(buf, r)
	}
	if _, err := s.f.Write(buf); err != nil {
		return err
	}
	return s.f.Sync()
}

func appendIDRecord(dst []byte, r flood.Record) []byte {
	dst = append(dst, r.ID[:]...)
	return binary.BigEndian.AppendUint64(dst, uint64(r.Expires.UnixNano()))
}

// rewrite replaces the file with the ids not yet forgotten at now,
// atomically, and reopens it for appending.
func (s *idStore) rewrite(now time.Time) error {
	kept := s.live[:0]
	seen := make(map[flood.ID]int, len(s.live))
	for _, r := range s.live {
		if !now.Before(r.Expires.Add(s.grace)) {
			continue
		}
		if i, ok := seen[r.ID]; ok {
			if r.Expires.After(kept[i].Expires) {
				kept[i].Expires = r.Expires
			}
			continue
		}
		seen[r.ID] = len(kept)
		kept = append(kept, r)
	}
	s.live = kept
	buf := make([]byte, 0, len(idFileMagic)+len(kept)*idRecordLen)
	buf = append(buf, idFileMagic...)
	for _, r := range kept {
		buf = appendIDRecord(buf, r)
	}
	if err := atomicfile.Write(s.path, buf, 0o600); err != nil {
		return err
	}
	if s.f != nil {
		s.f.Close()
	}
	var err error
	s.f, err = os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0o600)
	s.appended = 0
	return err
}

// close closes the file.
func (s *idStore) close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}
