package smudge

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bufferLogger is a Logger that records each message with its level.
type bufferLogger struct {
	mu    sync.Mutex
	lines []string
}

func (b *bufferLogger) Log(level LogLevel, a ...interface{}) (int, error) {
	return b.add(level, strings.TrimSuffix(fmt.Sprintln(a...), "\n"))
}

func (b *bufferLogger) Logf(level LogLevel, format string, a ...interface{}) (int, error) {
	return b.add(level, fmt.Sprintf(format, a...))
}

func (b *bufferLogger) add(level LogLevel, msg string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	line := level.String() + ": " + msg
	b.lines = append(b.lines, line)
	return len(line), nil
}

func (b *bufferLogger) get() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.lines...)
}

func TestLogLevelValues(t *testing.T) {
	assert.Equal(t, LogLevel(0), LogAll)
	assert.Equal(t, LogLevel(1), LogTrace)
	assert.Equal(t, LogLevel(2), LogDebug)
	assert.Equal(t, LogLevel(3), LogInfo)
	assert.Equal(t, LogLevel(4), LogWarn)
	assert.Equal(t, LogLevel(5), LogError)
	assert.Equal(t, LogLevel(6), LogFatal)
	assert.Equal(t, LogLevel(7), LogOff)
}

func TestLogLevelString(t *testing.T) {
	want := []string{"All", "Trace", "Debug", "Info", "Warn", "Error", "Fatal", "Off"}
	for i, w := range want {
		assert.Equal(t, w, LogLevel(i).String())
	}
	assert.Equal(t, "LogLevel(9)", LogLevel(9).String())
}

func TestParseLogLevel(t *testing.T) {
	tests := map[string]LogLevel{
		"all": LogAll, "TRACE": LogTrace, "Debug": LogDebug, "info": LogInfo, " warn ": LogWarn,
		"warning": LogWarn, "error": LogError, "fatal": LogFatal, "OFF": LogOff,
		"0": LogAll, "1": LogTrace, "3": LogInfo, "7": LogOff,
	}
	for s, want := range tests {
		got, err := ParseLogLevel(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
	for i := LogAll; i <= LogOff; i++ {
		got, err := ParseLogLevel(i.String())
		require.NoError(t, err)
		assert.Equal(t, i, got)
	}
	for _, s := range []string{"", "8", "-1", "verbose", "info!", "999999999999999999999"} {
		_, err := ParseLogLevel(s)
		assert.Error(t, err, s)
		assert.Contains(t, err.Error(), fmt.Sprintf("%q", s))
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// captureDefaultLogger redirects DefaultLogger to a buffer with a fixed
// clock for the duration of the test.
func captureDefaultLogger(t *testing.T) *lockedBuffer {
	t.Helper()
	buf := &lockedBuffer{}
	defaultLoggerMu.Lock()
	oldOut, oldNow := defaultLoggerOutput, defaultLoggerNow
	defaultLoggerOutput = buf
	defaultLoggerNow = func() time.Time { return time.Date(2024, 3, 9, 14, 5, 6, 0, time.UTC) }
	defaultLoggerMu.Unlock()
	t.Cleanup(func() {
		defaultLoggerMu.Lock()
		defaultLoggerOutput, defaultLoggerNow = oldOut, oldNow
		defaultLoggerMu.Unlock()
	})
	return buf
}

func TestDefaultLoggerFormat(t *testing.T) {
	buf := captureDefaultLogger(t)
	var l Logger = DefaultLogger{}

	n, err := l.Log(LogInfo, "hello", 42)
	require.NoError(t, err)
	want := " Info 09/Mar/2024:14:05:06 UTC - hello 42\n"
	assert.Equal(t, want, buf.String())
	assert.Equal(t, len(want), n)

	buf.Reset()
	_, err = l.Logf(LogWarn, "port %d", 9999)
	require.NoError(t, err)
	assert.Equal(t, " Warn 09/Mar/2024:14:05:06 UTC - port 9999\n", buf.String())

	buf.Reset()
	_, err = l.Logf(LogError, "already terminated\n")
	require.NoError(t, err)
	assert.Equal(t, "Error 09/Mar/2024:14:05:06 UTC - already terminated\n", buf.String())
}

func TestDefaultLoggerDoesNotFilter(t *testing.T) {
	buf := captureDefaultLogger(t)
	for l := LogAll; l <= LogOff; l++ {
		_, _ = DefaultLogger{}.Log(l, "m")
	}
	assert.Equal(t, 8, strings.Count(buf.String(), "\n"))
	assert.Contains(t, buf.String(), "Trace 09/Mar/2024")
}

func TestDefaultLoggerConcurrent(t *testing.T) {
	buf := captureDefaultLogger(t)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				_, _ = DefaultLogger{}.Logf(LogInfo, "goroutine %d message %d", g, i)
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	assert.Len(t, lines, 400)
	for _, line := range lines {
		assert.True(t, strings.HasPrefix(line, " Info 09/Mar/2024:14:05:06 UTC - goroutine "), line)
	}
}

// newSlogBuffer returns a slog.Logger writing text to a buffer, with every
// level enabled.
func newSlogBuffer() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelDebug - 8,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	})
	return slog.New(h), &buf
}

func TestSlogLoggerLevels(t *testing.T) {
	tests := []struct {
		level LogLevel
		want  string
	}{
		{LogAll, "level=DEBUG"},
		{LogTrace, "level=DEBUG-4"},
		{LogDebug, "level=DEBUG"},
		{LogInfo, "level=INFO"},
		{LogWarn, "level=WARN"},
		{LogError, "level=ERROR"},
		{LogFatal, "level=ERROR+4"},
	}
	for _, tt := range tests {
		t.Run(tt.level.String(), func(t *testing.T) {
			sl, buf := newSlogBuffer()
			l := NewSlogLogger(sl)
			n, err := l.Logf(tt.level, "value %d", 7)
			require.NoError(t, err)
			assert.Equal(t, len("value 7"), n)
			assert.Equal(t, tt.want+` msg="value 7"`+"\n", buf.String())
		})
	}
}

func TestSlogLoggerMessages(t *testing.T) {
	sl, buf := newSlogBuffer()
	l := NewSlogLogger(sl)

	_, err := l.Log(LogInfo, "a", 1, "b")
	require.NoError(t, err)
	assert.Equal(t, `level=INFO msg="a 1 b"`+"\n", buf.String())

	buf.Reset()
	_, err = l.Logf(LogInfo, "line\n")
	require.NoError(t, err)
	assert.Equal(t, "level=INFO msg=line\n", buf.String())

	buf.Reset()
	n, err := l.Log(LogOff, "never")
	require.NoError(t, err)
	assert.Equal(t, 0, n)
	assert.Empty(t, buf.String())
}

func TestSlogLoggerRespectsHandlerLevel(t *testing.T) {
	var buf bytes.Buffer
	l := NewSlogLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	n, err := l.Log(LogInfo, "dropped")
	require.NoError(t, err)
	assert.Equal(t, 0, n)
	_, _ = l.Log(LogFatal, "kept")
	assert.NotContains(t, buf.String(), "dropped")
	assert.Contains(t, buf.String(), "msg=kept")
}

func TestSlogLoggerNil(t *testing.T) {
	l := NewSlogLogger(nil)
	require.NotNil(t, l)
	// slog.Default() discards nothing here; just make sure it does not panic.
	_, err := l.Log(LogTrace, "trace via slog.Default")
	assert.NoError(t, err)
}

func TestLevelLoggerThreshold(t *testing.T) {
	var b bufferLogger
	ll := newLevelLogger(&b, LogInfo)
	assert.Equal(t, LogInfo, ll.threshold())

	ll.logf(LogDebug, "debug %d", 1)
	ll.logf(LogInfo, "info %d", 2)
	ll.logf(LogError, "error %d", 3)
	ll.log(LogTrace, "trace", 4)
	ll.log(LogWarn, "warn", 5)
	assert.Equal(t, []string{"Info: info 2", "Error: error 3", "Warn: warn 5"}, b.get())

	ll.setThreshold(LogAll)
	assert.Equal(t, LogAll, ll.threshold())
	ll.logf(LogTrace, "now visible")
	assert.Equal(t, "Trace: now visible", b.get()[3])

	ll.setThreshold(LogOff)
	ll.logf(LogFatal, "dropped")
	ll.logf(LogOff, "dropped")
	ll.log(LogFatal, "dropped")
	assert.Len(t, b.get(), 4)
	assert.False(t, ll.enabled(LogFatal))

	ll.setThreshold(LogFatal)
	ll.logf(LogFatal, "fatal does not exit")
	assert.Equal(t, "Fatal: fatal does not exit", b.get()[4])
}

func TestLevelLoggerDefaultsAndSwap(t *testing.T) {
	buf := captureDefaultLogger(t)
	ll := newLevelLogger(nil, LogWarn)
	assert.Equal(t, DefaultLogger{}, ll.logger())
	ll.logf(LogWarn, "to stderr")
	assert.Equal(t, " Warn 09/Mar/2024:14:05:06 UTC - to stderr\n", buf.String())

	var b bufferLogger
	ll.setLogger(&b)
	ll.logf(LogError, "to buffer")
	assert.Equal(t, []string{"Error: to buffer"}, b.get())

	ll.setLogger(nil)
	assert.Equal(t, DefaultLogger{}, ll.logger())

	var nilLL *levelLogger
	assert.False(t, nilLL.enabled(LogFatal))
	nilLL.logf(LogFatal, "nothing happens")
	nilLL.log(LogFatal, "nothing happens")
}

func TestLevelLoggerConcurrent(t *testing.T) {
	var b bufferLogger
	ll := newLevelLogger(&b, LogInfo)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				ll.logf(LogError, "g%d %d", g, i)
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				ll.setThreshold(LogLevel(i % 6))
				_ = ll.threshold()
				ll.setLogger(&b)
			}
		}()
	}
	wg.Wait()
	assert.Len(t, b.get(), 400, "LogError is never below a threshold of 0-5")
}
