package liveness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/seed-c7906467/smudge/internal/atomicfile"
)

// StateFile is the name of the file the store keeps in Config.StateDir.
const StateFile = "liveness.json"

// maxStateBytes bounds the state file read at start.
const maxStateBytes = 16 << 20

// stateVersion is the version of the state file's format.
const stateVersion = 1

// state is the state file: the decommissioned ids, each with the time this
// node learned it, and the id of the node that wrote it (for people).
type state struct {
	Version        int                  `json:"version"`
	ID             string               `json:"id"`
	Decommissioned map[string]time.Time `json:"decommissioned"`
}

// loadState reads dir's state file; a missing file is an empty state. A
// file that cannot be read or parsed is an error: forgetting decommissions
// silently could let a decommissioned node back in.
func loadState(dir string) (map[string]time.Time, error) {
	path := filepath.Join(dir, StateFile)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]time.Time{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("liveness: state file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateBytes+1))
	if err != nil {
		return nil, fmt.Errorf("liveness: state file %s: %w", path, err)
	}
	if len(data) > maxStateBytes {
		return nil, fmt.Errorf("liveness: state file %s: larger than %d bytes", path, maxStateBytes)
	}
	var st state
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("liveness: state file %s: %v (fix the file, or remove it to forget every decommissioned id)", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("liveness: state file %s: version %d, this program reads version %d", path, st.Version, stateVersion)
	}
	set := make(map[string]time.Time, len(st.Decommissioned))
	for id, t := range st.Decommissioned {
		if err := ValidateID(id); err != nil {
			return nil, fmt.Errorf("liveness: state file %s: %v", path, err)
		}
		set[id] = t
	}
	return set, nil
}

// saveState writes dir's state file atomically: a new file, synced, renamed
// over the old one, and the directory synced, so that a crash leaves either
// the old file or the new one, never a mix.
func saveState(dir, id string, set map[string]time.Time) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("liveness: state directory: %w", err)
	}
	data, err := json.MarshalIndent(state{Version: stateVersion, ID: id, Decommissioned: set}, "", "  ")
	if err != nil {
		return fmt.Errorf("liveness: state file: %w", err)
	}
	data = append(data, '\n')
	if err := atomicfile.Write(filepath.Join(dir, StateFile), data, 0o600); err != nil {
		return fmt.Errorf("liveness: writing the state file: %w", err)
	}
	return nil
}
