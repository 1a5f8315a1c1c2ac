package smudge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LogLevel is the severity of a log message, and the threshold below which
// messages are dropped (see SetLogThreshold and Config.LogThreshold).
type LogLevel byte

const (
	// LogAll allows all log output of all levels to be emitted.
	LogAll LogLevel = iota

	// LogTrace restricts log output to trace level and above.
	LogTrace

	// LogDebug restricts log output to debug level and above.
	LogDebug

	// LogInfo restricts log output to info level and above.
	LogInfo

	// LogWarn restricts log output to warn level and above.
	LogWarn

	// LogError restricts log output to error level and above.
	LogError

	// LogFatal restricts log output to fatal level. Smudge never exits the
	// process because of a fatal-level message.
	LogFatal

	// LogOff prevents all log output entirely.
	LogOff
)

var logLevelNames = [...]string{
	LogAll:   "All",
	LogTrace: "Trace",
	LogDebug: "Debug",
	LogInfo:  "Info",
	LogWarn:  "Warn",
	LogError: "Error",
	LogFatal: "Fatal",
	LogOff:   "Off",
}

// String returns the level's name: "All", "Trace", "Debug", "Info", "Warn",
// "Error", "Fatal" or "Off" ("LogLevel(N)" for a value outside that range).
func (l LogLevel) String() string {
	if int(l) < len(logLevelNames) {
		return logLevelNames[l]
	}
	return "LogLevel(" + strconv.Itoa(int(l)) + ")"
}

// ParseLogLevel parses a level name ("all", "trace", "debug", "info",
// "warn" or "warning", "error", "fatal", "off"; case-insensitive, surrounding
// spaces ignored) or a number from 0 (LogAll) to 7 (LogOff).
func ParseLogLevel(s string) (LogLevel, error) {
	t := strings.TrimSpace(s)
	if n, err := strconv.Atoi(t); err == nil {
		if n < int(LogAll) || n > int(LogOff) {
			return LogInfo, fmt.Errorf("log level %q: number out of range 0-7", s)
		}
		return LogLevel(n), nil
	}
	if strings.EqualFold(t, "warning") {
		return LogWarn, nil
	}
	for i, name := range logLevelNames {
		if strings.EqualFold(t, name) {
			return LogLevel(i), nil
		}
	}
	return LogInfo, fmt.Errorf("log level %q: not one of all, trace, debug, info, warn, error, fatal, off or 0-7", s)
}

// Logger is the logging interface used by smudge, unchanged from Smudge v1.
// Plug one in with SetLogger or Config.Logger. Implementations must be safe
// for concurrent use. The level threshold is applied before a Logger is
// called, so a Logger need not filter.
type Logger interface {
	// Log writes a message made of a, formatted as by fmt.Sprintln.
	Log(level LogLevel, a ...interface{}) (n int, err error)

	// Logf writes a message formatted as by fmt.Sprintf.
	Logf(level LogLevel, format string, a ...interface{}) (n int, err error)
}

// DefaultLogger is the Logger used when none is configured. It writes one
// line per message to os.Stderr, in Smudge v1's format:
//
//	" Info 02/Jan/2006:15:04:05 MST - message"
//
// It is safe for concurrent use (each message is a single write) and does
// not filter by level: the threshold is applied by the caller.
type DefaultLogger struct{}

// defaultLoggerMu serializes DefaultLogger's writes so that concurrent
// messages never interleave. It also guards defaultLoggerOutput and
// defaultLoggerNow.
var defaultLoggerMu sync.Mutex

// defaultLoggerOutput is where DefaultLogger writes; tests may replace it
// while holding defaultLoggerMu.
var defaultLoggerOutput io.Writer = os.Stderr

// defaultLoggerNow is DefaultLogger's clock; tests may replace it while
// holding defaultLoggerMu.
var defaultLoggerNow = time.Now

// Log writes "<LEVEL> <timestamp> - " followed by a formatted as by
// fmt.Sprintln to os.Stderr. It returns the number of bytes written.
func (DefaultLogger) Log(level LogLevel, a ...interface{}) (n int, err error) {
	return writeDefaultLog(level, fmt.Sprintln(a...))
}

// Logf writes "<LEVEL> <timestamp> - " followed by the message formatted as
// by fmt.Sprintf to os.Stderr, adding a newline if the message has none.
// It returns the number of bytes written.
func (DefaultLogger) Logf(level LogLevel, format string, a ...interface{}) (n int, err error) {
	msg := fmt.Sprintf(format, a...)
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	return writeDefaultLog(level, msg)
}

// writeDefaultLog writes the prefixed message in one call.
func writeDefaultLog(level LogLevel, msg string) (int, error) {
	defaultLoggerMu.Lock()
	defer defaultLoggerMu.Unlock()
	line := fmt.Sprintf("%5s %s - %s", level.String(),
		defaultLoggerNow().Format("02/Jan/2006:15:04:05 MST"), msg)
	return io.WriteString(defaultLoggerOutput, line)
}

// slogLogger adapts a *slog.Logger to Logger.
type slogLogger struct {
	l *slog.Logger
}

// Slog levels for the smudge levels without a direct slog equivalent.
const (
	slogLevelTrace = slog.LevelDebug - 4
	slogLevelFatal = slog.LevelError + 4
)

// NewSlogLogger returns a Logger that writes to l (slog.Default() if l is
// nil). Levels map as follows: LogAll and LogDebug to slog.LevelDebug,
// LogTrace to slog.LevelDebug-4, LogInfo to slog.LevelInfo, LogWarn to
// slog.LevelWarn, LogError to slog.LevelError and LogFatal to
// slog.LevelError+4. A LogFatal message never exits the process. Messages
// at LogOff or above are dropped. A trailing newline is removed from each
// message. The returned count is the length of the message.
func NewSlogLogger(l *slog.Logger) Logger {
	if l == nil {
		l = slog.Default()
	}
	return slogLogger{l: l}
}

// slogLevel maps a smudge level to a slog level; ok is false for LogOff and
// above.
func slogLevel(level LogLevel) (lvl slog.Level, ok bool) {
	switch level {
	case LogAll, LogDebug:
		return slog.LevelDebug, true
	case LogTrace:
		return slogLevelTrace, true
	case LogInfo:
		return slog.LevelInfo, true
	case LogWarn:
		return slog.LevelWarn, true
	case LogError:
		return slog.LevelError, true
	case LogFatal:
		return slogLevelFatal, true
	default:
		return 0, false
	}
}

// Log implements Logger.
func (s slogLogger) Log(level LogLevel, a ...interface{}) (n int, err error) {
	return s.emit(level, fmt.Sprintln(a...))
}

// Logf implements Logger.
func (s slogLogger) Logf(level LogLevel, format string, a ...interface{}) (n int, err error) {
	return s.emit(level, fmt.Sprintf(format, a...))
}

func (s slogLogger) emit(level LogLevel, msg string) (int, error) {
	lvl, ok := slogLevel(level)
	if !ok {
		return 0, nil
	}
	msg = strings.TrimSuffix(msg, "\n")
	ctx := context.Background()
	if !s.l.Enabled(ctx, lvl) {
		return 0, nil
	}
	s.l.Log(ctx, lvl, msg)
	return len(msg), nil
}

// levelLogger wraps a Logger with a level threshold. Both the Logger and the
// threshold may be changed at any time; it is safe for concurrent use. A nil
// *levelLogger drops everything.
type levelLogger struct {
	out atomic.Pointer[loggerBox]
	min atomic.Uint32
}

// loggerBox lets an interface value be stored in an atomic.Pointer.
type loggerBox struct {
	l Logger
}

// newLevelLogger returns a levelLogger writing to l (DefaultLogger{} if l is
// nil) the messages at threshold or above.
func newLevelLogger(l Logger, threshold LogLevel) *levelLogger {
	ll := &levelLogger{}
	ll.setLogger(l)
	ll.setThreshold(threshold)
	return ll
}

// setLogger replaces the underlying Logger (DefaultLogger{} if l is nil).
func (ll *levelLogger) setLogger(l Logger) {
	if l == nil {
		l = DefaultLogger{}
	}
	ll.out.Store(&loggerBox{l: l})
}

// logger returns the underlying Logger.
func (ll *levelLogger) logger() Logger {
	return ll.out.Load().l
}

// setThreshold sets the level below which messages are dropped. At LogOff
// every message is dropped.
func (ll *levelLogger) setThreshold(level LogLevel) {
	ll.min.Store(uint32(level))
}

// threshold returns the current threshold.
func (ll *levelLogger) threshold() LogLevel {
	return LogLevel(ll.min.Load())
}

// enabled reports whether a message at level would be written; callers can
// use it to skip building expensive messages.
func (ll *levelLogger) enabled(level LogLevel) bool {
	if ll == nil {
		return false
	}
	t := ll.threshold()
	return t < LogOff && level >= t
}

// logf writes a formatted message at level, unless it is below the
// threshold or the threshold is LogOff. Errors from the Logger are ignored.
func (ll *levelLogger) logf(level LogLevel, format string, args ...any) {
	if !ll.enabled(level) {
		return
	}
	_, _ = ll.logger().Logf(level, format, args...)
}

// log writes a message made of args (as by fmt.Sprintln) at level, unless it
// is below the threshold or the threshold is LogOff.
func (ll *levelLogger) log(level LogLevel, args ...any) {
	if !ll.enabled(level) {
		return
	}
	_, _ = ll.logger().Log(level, args...)
}
