package checks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of check fields.
const (
	// MaxPathBytes is the longest path, in bytes (Linux's PATH_MAX).
	MaxPathBytes = 4096
	// MaxCheckBytes is the longest check text, in bytes.
	MaxCheckBytes = 64 << 10
)

// readBufferBytes is the size of file_contains's read buffer: with the
// part of the previous read it keeps, a file is searched in at most
// max(readBufferBytes, 2*len(text)) bytes of memory.
const readBufferBytes = 64 << 10

// validPath checks a path field: absolute, clean, no NUL, bounded.
func validPath(p string) error {
	switch {
	case p == "":
		return FieldErrorf(FieldPath, "required")
	case len(p) > MaxPathBytes:
		return FieldErrorf(FieldPath, "%d bytes, more than the limit of %d", len(p), MaxPathBytes)
	case strings.IndexByte(p, 0) >= 0:
		return FieldErrorf(FieldPath, "contains a NUL character")
	case !strings.HasPrefix(p, "/"):
		return FieldErrorf(FieldPath, "%q is not an absolute path", p)
	case path.Clean(p) != p:
		return FieldErrorf(FieldPath, "%q is not a clean path (no ., .. or empty elements, no trailing /); write %q", p, path.Clean(p))
	}
	return nil
}

// validText checks the check field of types that need a text.
func validText(s string) error {
	switch {
	case s == "":
		return FieldErrorf(FieldCheck, "required: the text to look for")
	case len(s) > MaxCheckBytes:
		return FieldErrorf(FieldCheck, "%d bytes, more than the limit of %d", len(s), MaxCheckBytes)
	}
	return nil
}

// unused rejects a field a type does not use, so that a user who sets it
// does not believe it is checked.
func unused(typ, field, value string) error {
	if value != "" {
		return FieldErrorf(field, "not used by type %s; remove it", typ)
	}
	return nil
}

// fsName converts an absolute, clean path to an fs.FS name rooted at "/".
func fsName(p string) string {
	if p == "/" {
		return "."
	}
	return strings.TrimPrefix(p, "/")
}

// failure describes an error of operation op on path p as a reason.
func failure(op, p string, err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return p + " does not exist"
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("cannot %s %s: permission denied", op, p)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("cannot %s %s: timed out", op, p)
	case errors.Is(err, context.Canceled):
		return fmt.Sprintf("cannot %s %s: canceled", op, p)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Sprintf("cannot %s %s: %v", op, p, err)
}

// quote quotes s for a reason, shortened to about 64 bytes.
func quote(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

// describeFile says what kind of file fi is.
func describeFile(fi fs.FileInfo) string {
	m := fi.Mode()
	switch {
	case m.IsRegular():
		return fmt.Sprintf("regular file, %d bytes", fi.Size())
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return "file of mode " + m.String()
}

// fileExists is the file_exists check.
type fileExists struct{ path string }

func newFileExists(s Spec) (Checker, error) {
	if err := validPath(s.Path); err != nil {
		return nil, err
	}
	if err := unused(s.Type, FieldCheck, s.Check); err != nil {
		return nil, err
	}
	return fileExists{path: s.Path}, nil
}

func (c fileExists) Check(ctx context.Context, env Env) (bool, string) {
	fi, err := fs.Stat(env.FS, fsName(c.path))
	if err != nil {
		return false, failure("stat", c.path, err)
	}
	return true, fmt.Sprintf("%s exists (%s)", c.path, describeFile(fi))
}

// fileContains is the file_contains check.
type fileContains struct {
	path string
	text []byte
}

func newFileContains(s Spec) (Checker, error) {
	if err := validPath(s.Path); err != nil {
		return nil, err
	}
	if err := validText(s.Check); err != nil {
		return nil, err
	}
	return fileContains{path: s.Path, text: []byte(s.Check)}, nil
}

func (c fileContains) Check(ctx context.Context, env Env) (bool, string) {
	f, err := env.FS.Open(fsName(c.path))
	if err != nil {
		return false, failure("open", c.path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return false, c.path + " is a directory"
	}
	found, err := streamContains(ctx, f, c.text, readBufferBytes)
	switch {
	case err != nil:
		return false, failure("read", c.path, err)
	case found:
		return true, fmt.Sprintf("%s contains %s", c.path, quote(string(c.text)))
	}
	return false, fmt.Sprintf("%s does not contain %s", c.path, quote(string(c.text)))
}

// streamContains reports whether r holds text, reading it in chunks of
// about bufSize bytes. It keeps the last len(text)-1 bytes of each chunk,
// so a match across two chunks is found, and it stops at the first match,
// at the end of r, or when ctx is done.
func streamContains(ctx context.Context, r io.Reader, text []byte, bufSize int) (bool, error) {
	if len(text) == 0 {
		return true, nil
	}
	bufSize = max(bufSize, 2*len(text))
	buf := make([]byte, bufSize)
	keep := 0 // bytes carried over from the previous read
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		n, err := r.Read(buf[keep:])
		if n > 0 {
			window := buf[:keep+n]
			if bytes.Contains(window, text) {
				return true, nil
			}
			keep = min(len(text)-1, len(window))
			copy(buf, window[len(window)-keep:])
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
}
