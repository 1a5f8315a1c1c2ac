package liveness

import (
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// MaxIDBytes is the longest member id, in bytes.
const MaxIDBytes = 64

// ErrInvalidID is wrapped by every error about a malformed id.
var ErrInvalidID = errors.New("liveness: invalid id")

// ValidateID checks that id can name a member: 1 to MaxIDBytes bytes of
// valid UTF-8, every character printable and none a space (ids are listed
// space-separated). Any other text is allowed, so the HTML page escapes it.
func ValidateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidID)
	case len(id) > MaxIDBytes:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidID, len(id), MaxIDBytes)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w %q: not valid UTF-8", ErrInvalidID, id)
	}
	for _, r := range id {
		if unicode.IsSpace(r) || !unicode.IsGraphic(r) {
			return fmt.Errorf("%w %q: %U is a space or not printable", ErrInvalidID, id, r)
		}
	}
	return nil
}

// lessID orders ids naturally: numbers by value ("2" before "10"), numbers
// before other ids, the rest bytewise.
func lessID(a, b string) bool {
	na, errA := strconv.ParseUint(a, 10, 64)
	nb, errB := strconv.ParseUint(b, 10, 64)
	switch {
	case errA == nil && errB == nil:
		if na != nb {
			return na < nb
		}
		return a < b // "007" and "7"
	case errA == nil:
		return true
	case errB == nil:
		return false
	}
	return a < b
}

// compareID is lessID as a three-way comparison, for slices.SortFunc.
func compareID(a, b string) int {
	switch {
	case a == b:
		return 0
	case lessID(a, b):
		return -1
	}
	return 1
}
