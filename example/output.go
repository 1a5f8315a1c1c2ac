package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/seed-c7906467/smudge"
	"github.com/seed-c7906467/smudge/liveness"
)

// timeFormat is the time stamp at the start of every output line.
const timeFormat = "15:04:05.000"

// lineWriter writes whole lines, each in one Write call, from any number of
// goroutines. It does not buffer: a line reaches the file (or pipe) at once.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func newLineWriter(w io.Writer) *lineWriter { return &lineWriter{w: w} }

// printLine writes "<time> <text>\n".
func (lw *lineWriter) printLine(text string) {
	line := time.Now().Format(timeFormat) + " " + text + "\n"
	lw.mu.Lock()
	defer lw.mu.Unlock()
	io.WriteString(lw.w, line)
}

// statusPrinter prints "<time> <address> <STATUS>[ (left)]".
type statusPrinter struct{ out *lineWriter }

func (p statusPrinter) OnChange(node *smudge.Node, status smudge.NodeStatus) {
	text := node.Address() + " " + status.String()
	if node.Left() {
		text += " (left)"
	}
	p.out.printLine(text)
}

// OnRemove prints "<time> <address> REMOVED" when a dead or left member is
// forgotten (after SMUDGE_REMOVE_DEAD_AFTER).
func (p statusPrinter) OnRemove(node *smudge.Node) {
	p.out.printLine(node.Address() + " REMOVED")
}

// broadcastPrinter prints "<time> <origin address> BROADCAST <payload>".
type broadcastPrinter struct{ out *lineWriter }

func (p broadcastPrinter) OnBroadcast(b *smudge.Broadcast) {
	if liveness.IsMessage(b.Bytes()) {
		return // the liveness store's own; it says what they did on standard error
	}
	origin := "?"
	if o := b.Origin(); o != nil {
		origin = o.Address()
	}
	p.out.printLine(origin + " BROADCAST " + printable(b.Bytes()))
}

// printable returns payload as is if it is valid UTF-8 without control
// characters, else as a Go quoted string, so that a broadcast is always
// one output line.
func printable(payload []byte) string {
	if utf8.Valid(payload) && bytes.IndexFunc(payload, unicode.IsControl) < 0 {
		return string(payload)
	}
	return strconv.Quote(string(payload))
}

// lineReader splits input into lines, holding at most limit+1 bytes of a
// line: longer lines are consumed but only their length is reported.
type lineReader struct {
	r     *bufio.Reader
	limit int
	buf   []byte
}

func newLineReader(r io.Reader, limit int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 4096), limit: limit}
}

// next returns the next line without its "\n" or "\r\n", and the line's
// length n. When n > limit, line holds only its first limit+1 bytes. A last
// line without a newline is returned before io.EOF. line is valid until the
// next call.
func (lr *lineReader) next() (line []byte, n int, err error) {
	lr.buf = lr.buf[:0]
	var prev, last byte // the last two bytes read
	for {
		chunk, err := lr.r.ReadSlice('\n')
		n += len(chunk)
		if room := lr.limit + 1 - len(lr.buf); room > 0 {
			lr.buf = append(lr.buf, chunk[:min(room, len(chunk))]...)
		}
		for _, b := range chunk[max(0, len(chunk)-2):] {
			prev, last = last, b
		}
		switch {
		case err == nil: // a whole line, ending in "\n"
			n--
			if n > 0 && prev == '\r' {
				n--
			}
			return lr.buf[:min(len(lr.buf), n)], n, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && n > 0: // a last line without "\n"
			if last == '\r' {
				n--
			}
			return lr.buf[:min(len(lr.buf), n)], n, nil
		default:
			return nil, 0, err
		}
	}
}
