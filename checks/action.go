package checks

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// shell runs actions: shell -c ACTION.
const shell = "/bin/sh"

// actionWaitDelay is how long the output of an action that has exited is
// still read while processes it started in the background hold it open.
const actionWaitDelay = 2 * time.Second

// actionResult is how an action ended.
type actionResult struct {
	started   bool
	exitCode  int
	output    string
	truncated bool
	note      string
}

// runAction runs command with the shell in its own process group, and
// kills the whole group when timeout expires or ctx is done. It keeps the
// first maxOut bytes of the combined output.
func runAction(ctx context.Context, command string, timeout time.Duration, maxOut int) actionResult {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := &capWriter{limit: maxOut}
	cmd := exec.CommandContext(actx, shell, "-c", command)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = actionWaitDelay
	ownProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return actionResult{exitCode: -1, note: "cannot start the action: " + err.Error()}
	}
	err := cmd.Wait()
	res := actionResult{started: true, exitCode: -1}
	if cmd.ProcessState != nil {
		res.exitCode = cmd.ProcessState.ExitCode()
	}
	res.output, res.truncated = out.result()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		res.exitCode = -1
		res.note = fmt.Sprintf("stopped (%v); its process group was killed", context.Cause(ctx))
	case actx.Err() != nil:
		res.exitCode = -1
		res.note = fmt.Sprintf("timed out after %v; its process group was killed", timeout)
	case errors.Is(err, exec.ErrWaitDelay):
		res.note = fmt.Sprintf("processes it started in the background still held its output %v after it exited; their output is not collected", actionWaitDelay)
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.note = "killed by signal: " + ws.Signal().String()
		}
	default:
		res.note = err.Error()
	}
	return res
}

// capWriter keeps the first limit bytes written to it and counts the rest.
// Writes never fail, so a chatty action is never stopped by the cap.
type capWriter struct {
	mu      sync.Mutex
	limit   int
	buf     []byte
	dropped int64
}

func (w *capWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	if room := w.limit - len(w.buf); room > 0 {
		k := min(room, len(p))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
	}
	w.dropped += int64(len(p))
	return n, nil
}

// result returns what was kept and whether anything was dropped. A
// truncated output is cut at a UTF-8 character boundary and followed by a
// marker line saying how many bytes were dropped.
func (w *capWriter) result() (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dropped == 0 {
		return string(w.buf), false
	}
	kept := w.buf
	// Do not split a multi-byte character: drop its first bytes too.
	for i := 1; i < utf8.UTFMax && i <= len(kept); i++ {
		if utf8.RuneStart(kept[len(kept)-i]) {
			if !utf8.FullRune(kept[len(kept)-i:]) {
				kept = kept[:len(kept)-i]
			}
			break
		}
	}
	dropped := w.dropped + int64(len(w.buf)-len(kept))
	sep := "\n"
	if len(kept) == 0 || kept[len(kept)-1] == '\n' {
		sep = ""
	}
	return fmt.Sprintf("%s%s[output truncated: %d more bytes]\n", kept, sep, dropped), true
}
