package checks

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mustCheck parses one check of the default registry.
func mustCheck(t *testing.T, typ, path, text string) Check {
	t.Helper()
	c, err := DefaultRegistry.build(Spec{Name: "c", Type: typ, Path: path, Check: text})
	require.NoError(t, err)
	return c
}

// run runs one check in env.
func run(c Check, env Env) (bool, string) {
	return c.Checker.Check(context.Background(), env)
}

func TestFileExists(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pidfile")
	require.NoError(t, os.WriteFile(file, []byte("1234\n"), 0o644))
	env := Env{FS: os.DirFS("/")}

	passed, reason := run(mustCheck(t, TypeFileExists, file, ""), env)
	assert.True(t, passed)
	assert.Equal(t, file+" exists (regular file, 5 bytes)", reason)

	passed, reason = run(mustCheck(t, TypeFileExists, dir, ""), env)
	assert.True(t, passed)
	assert.Equal(t, dir+" exists (directory)", reason)

	passed, reason = run(mustCheck(t, TypeFileExists, "/", ""), env)
	assert.True(t, passed, reason)

	missing := filepath.Join(dir, "missing")
	passed, reason = run(mustCheck(t, TypeFileExists, missing, ""), env)
	assert.False(t, passed)
	assert.Equal(t, missing+" does not exist", reason)

	// A dangling symbolic link does not exist (as test -e).
	link := filepath.Join(dir, "dangling")
	require.NoError(t, os.Symlink(missing, link))
	passed, reason = run(mustCheck(t, TypeFileExists, link, ""), env)
	assert.False(t, passed)
	assert.Equal(t, link+" does not exist", reason)

	// A file in the middle of the path.
	under := filepath.Join(file, "x")
	passed, reason = run(mustCheck(t, TypeFileExists, under, ""), env)
	assert.False(t, passed)
	assert.Equal(t, "cannot stat "+under+": not a directory", reason)
}

func TestFileExistsPermissionDeniedIsAFailure(t *testing.T) {
	fsys := denyFS{
		fsys: fstest.MapFS{"secret/pidfile": {Data: []byte("1")}},
		deny: map[string]bool{"secret/pidfile": true},
	}
	passed, reason := run(mustCheck(t, TypeFileExists, "/secret/pidfile", ""), Env{FS: fsys})
	assert.False(t, passed)
	assert.Equal(t, "cannot stat /secret/pidfile: permission denied", reason)
}

// TestFileChecksRealPermissionDenied uses the operating system's own
// permission check, which root bypasses: it runs only as another user.
// The tests above inject the same error through a file system that
// refuses, and so run as root too.
func TestFileChecksRealPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root bypasses file permissions; TestFileExistsPermissionDeniedIsAFailure covers this with an injected file system")
	}
	dir := t.TempDir()
	locked := filepath.Join(dir, "locked")
	require.NoError(t, os.Mkdir(locked, 0o755))
	file := filepath.Join(locked, "f")
	require.NoError(t, os.WriteFile(file, []byte("needle"), 0o644))
	require.NoError(t, os.Chmod(locked, 0))
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	env := Env{FS: os.DirFS("/")}

	passed, reason := run(mustCheck(t, TypeFileExists, file, ""), env)
	assert.False(t, passed)
	assert.Equal(t, "cannot stat "+file+": permission denied", reason)

	passed, reason = run(mustCheck(t, TypeFileContains, file, "needle"), env)
	assert.False(t, passed)
	assert.Equal(t, "cannot open "+file+": permission denied", reason)
}

func TestFileContains(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "resolv.conf")
	require.NoError(t, os.WriteFile(file, []byte("search example.com\nnameserver 8.8.8.8\n"), 0o644))
	env := Env{FS: os.DirFS("/")}

	passed, reason := run(mustCheck(t, TypeFileContains, file, "8.8.8.8"), env)
	assert.True(t, passed)
	assert.Equal(t, file+` contains "8.8.8.8"`, reason)

	// Across lines.
	passed, _ = run(mustCheck(t, TypeFileContains, file, "example.com\nnameserver"), env)
	assert.True(t, passed)

	passed, reason = run(mustCheck(t, TypeFileContains, file, "1.1.1.1"), env)
	assert.False(t, passed)
	assert.Equal(t, file+` does not contain "1.1.1.1"`, reason)

	missing := filepath.Join(dir, "missing")
	passed, reason = run(mustCheck(t, TypeFileContains, missing, "x"), env)
	assert.False(t, passed)
	assert.Equal(t, missing+" does not exist", reason)

	passed, reason = run(mustCheck(t, TypeFileContains, dir, "x"), env)
	assert.False(t, passed)
	assert.Equal(t, dir+" is a directory", reason)

	// A long text is shortened in the reason.
	long := strings.Repeat("x", 100)
	_, reason = run(mustCheck(t, TypeFileContains, file, long), env)
	assert.Equal(t, file+` does not contain "`+strings.Repeat("x", 64)+`"...`, reason)
}

func TestFileContainsAcrossReadBuffers(t *testing.T) {
	// The text straddles the boundary of the 64 KiB read buffer.
	data := bytes.Repeat([]byte("."), 3*readBufferBytes)
	text := []byte("needle-in-the-haystack")
	at := readBufferBytes - 5
	copy(data[at:], text)
	fsys := fstest.MapFS{"big": {Data: data}}
	passed, reason := run(mustCheck(t, TypeFileContains, "/big", string(text)), Env{FS: fsys})
	assert.True(t, passed, reason)
}

func TestFileContainsPermissionAndReadErrorsAreFailures(t *testing.T) {
	fsys := denyFS{
		fsys: fstest.MapFS{"etc/resolv.conf": {Data: []byte("nameserver 8.8.8.8\n")}},
		deny: map[string]bool{"etc/resolv.conf": true},
	}
	passed, reason := run(mustCheck(t, TypeFileContains, "/etc/resolv.conf", "8.8.8.8"), Env{FS: fsys})
	assert.False(t, passed)
	assert.Equal(t, "cannot open /etc/resolv.conf: permission denied", reason)

	passed, reason = run(mustCheck(t, TypeFileContains, "/etc/resolv.conf", "8.8.8.8"), Env{FS: failingReadFS{}})
	assert.False(t, passed)
	assert.Equal(t, "cannot read /etc/resolv.conf: input/output error", reason)
}

// failingReadFS opens any file, whose reads fail.
type failingReadFS struct{}

func (failingReadFS) Open(name string) (fs.File, error) { return failingFile{}, nil }

type failingFile struct{}

func (failingFile) Stat() (fs.FileInfo, error) { return nil, errors.New("no stat") }
func (failingFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: "x", Err: errors.New("input/output error")}
}
func (failingFile) Close() error { return nil }

func TestStreamContainsFindsTheTextAtEveryOffset(t *testing.T) {
	text := []byte("abcab")
	for size := 0; size < 40; size++ {
		for at := 0; at+len(text) <= size; at++ {
			data := bytes.Repeat([]byte("ab"), size)[:size] // many near-matches
			copy(data[at:], text)
			for _, bufSize := range []int{1, 7, 11} {
				readers := map[string]io.Reader{
					"plain":    bytes.NewReader(data),
					"one byte": iotest.OneByteReader(bytes.NewReader(data)),
					"half":     iotest.HalfReader(bytes.NewReader(data)),
					"data+err": iotest.DataErrReader(bytes.NewReader(data)),
				}
				for name, r := range readers {
					found, err := streamContains(context.Background(), r, text, bufSize)
					require.NoError(t, err)
					require.True(t, found, "size %d at %d buffer %d reader %s", size, at, bufSize, name)
				}
			}
		}
		// Without the text: never a false match.
		data := bytes.Repeat([]byte("ab"), size)[:size]
		found, err := streamContains(context.Background(), iotest.OneByteReader(bytes.NewReader(data)), text, 7)
		require.NoError(t, err)
		require.False(t, found)
	}
}

func TestStreamContainsUsesBoundedMemory(t *testing.T) {
	r := &maxReadReader{r: io.LimitReader(zeroReader{}, 10<<20)}
	found, err := streamContains(context.Background(), r, []byte("x"), 4096)
	require.NoError(t, err)
	assert.False(t, found)
	assert.Equal(t, 4096, r.max, "largest read")

	// A text longer than the buffer grows it to twice the text, no more.
	r = &maxReadReader{r: io.LimitReader(zeroReader{}, 1<<20)}
	_, err = streamContains(context.Background(), r, bytes.Repeat([]byte("x"), 10000), 4096)
	require.NoError(t, err)
	assert.LessOrEqual(t, r.max, 20000)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type maxReadReader struct {
	r   io.Reader
	max int
}

func (m *maxReadReader) Read(p []byte) (int, error) {
	m.max = max(m.max, len(p))
	return m.r.Read(p)
}

func TestStreamContainsStopsWhenTheContextIsDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	found, err := streamContains(ctx, zeroReader{}, []byte("x"), 16) // an endless file
	assert.False(t, found)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestFileExistsSaysWhatKindOfFile(t *testing.T) {
	fsys := fstest.MapFS{
		"run/fifo":   {Mode: fs.ModeNamedPipe},
		"run/sock":   {Mode: fs.ModeSocket},
		"dev/tty":    {Mode: fs.ModeDevice | fs.ModeCharDevice},
		"dev/sda":    {Mode: fs.ModeDevice},
		"run/odd":    {Mode: fs.ModeIrregular},
		"etc/x.conf": {Data: []byte("abc")},
	}
	for name, want := range map[string]string{
		"/run/fifo":   "named pipe",
		"/run/sock":   "socket",
		"/dev/tty":    "character device",
		"/dev/sda":    "block device",
		"/run/odd":    "file of mode ?---------",
		"/etc/x.conf": "regular file, 3 bytes",
		"/etc":        "directory",
	} {
		passed, reason := run(mustCheck(t, TypeFileExists, name, ""), Env{FS: fsys})
		assert.True(t, passed, name)
		assert.Equal(t, name+" exists ("+want+")", reason)
	}
}
