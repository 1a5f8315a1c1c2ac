package checks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// cmdlineLimit bounds how much of a process's command line is read.
const cmdlineLimit = 1 << 20

// deletedSuffix is what Linux appends to /proc/PID/exe when the executable
// was deleted or replaced since the process started (as by an upgrade).
const deletedSuffix = " (deleted)"

// processRunning is the process_running check.
type processRunning struct {
	exe  string // the executable's path, or ""
	text string // a text of the command line, or ""
}

func newProcessRunning(s Spec) (Checker, error) {
	if s.Path == "" && s.Check == "" {
		return nil, errors.New(`fields "path" and "check" are both empty: give the executable (path), a text of its command line (check), or both`)
	}
	if s.Path != "" {
		if err := validPath(s.Path); err != nil {
			return nil, err
		}
	}
	if len(s.Check) > MaxCheckBytes {
		return nil, FieldErrorf(FieldCheck, "%d bytes, more than the limit of %d", len(s.Check), MaxCheckBytes)
	}
	return processRunning{exe: s.Path, text: s.Check}, nil
}

// What inspecting one process found.
const (
	noMatch = iota
	matched
	gone    // the process exited while it was inspected
	unknown // it could not be inspected
)

// inspection is what inspecting one process found.
type inspection struct {
	outcome  int
	fallback bool   // the executable link was unreadable: argv[0] was compared
	how      string // what matched, for a match
	problem  string // why it could not be inspected, for unknown
}

// wanted describes the process the check looks for.
func (c processRunning) wanted() string {
	var parts []string
	if c.exe != "" {
		parts = append(parts, "executable "+c.exe)
	}
	if c.text != "" {
		parts = append(parts, "a command line containing "+quote(c.text))
	}
	return strings.Join(parts, " and ")
}

func (c processRunning) Check(ctx context.Context, env Env) (bool, string) {
	if _, ok := env.Proc.(fs.ReadLinkFS); c.exe != "" && !ok {
		return false, "cannot read executables: the proc file system does not implement fs.ReadLinkFS"
	}
	entries, err := fs.ReadDir(env.Proc, ".")
	if err != nil {
		return false, failure("list", "/proc", err)
	}
	self := os.Getpid()
	var (
		examined, fallbacks, unknowns int
		firstProblem                  string
		first                         inspection
		firstPID                      string
		matches                       int
	)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 || pid == self {
			continue
		}
		if err := ctx.Err(); err != nil {
			return false, fmt.Sprintf("stopped after examining %d processes: %v", examined, err)
		}
		in := c.inspect(env.Proc, e.Name())
		if in.outcome == gone {
			continue
		}
		examined++
		if in.fallback {
			fallbacks++
		}
		switch in.outcome {
		case matched:
			if matches == 0 {
				first, firstPID = in, e.Name()
			}
			matches++
		case unknown:
			if unknowns == 0 {
				firstProblem = in.problem
			}
			unknowns++
		}
	}
	if matches > 0 {
		return true, fmt.Sprintf("%d matching %s; pid %s: %s", matches, plural(matches, "process", "processes"), firstPID, first.how)
	}
	reason := fmt.Sprintf("no process with %s among %d %s", c.wanted(), examined, plural(examined, "process", "processes"))
	if fallbacks > 0 {
		if fallbacks == 1 {
			reason += "; 1 process's executable could not be read, its argv[0] was compared instead"
		} else {
			reason += fmt.Sprintf("; %d processes' executables could not be read, their argv[0] was compared instead", fallbacks)
		}
	}
	if unknowns > 0 {
		reason += fmt.Sprintf("; %d could not be inspected (%s)", unknowns, firstProblem)
	}
	return false, reason
}

// inspect looks at process pid: its executable (the exe link, or argv[0]
// when the link cannot be read) and its command line.
func (c processRunning) inspect(proc fs.FS, pid string) inspection {
	var (
		args    []string
		argsErr error
		argsOK  bool
	)
	cmdline := func() ([]string, error) {
		if !argsOK {
			args, argsErr = readCmdline(proc, pid)
			argsOK = true
		}
		return args, argsErr
	}
	var in inspection
	var how []string
	if c.exe != "" {
		target, err := fs.ReadLink(proc, pid+"/exe")
		if err == nil {
			if target != c.exe && target != c.exe+deletedSuffix {
				return inspection{outcome: noMatch}
			}
			how = append(how, fmt.Sprintf("executable %s (/proc/%s/exe)", target, pid))
		} else {
			a, aerr := cmdline()
			if aerr != nil {
				if errors.Is(aerr, fs.ErrNotExist) {
					return inspection{outcome: gone}
				}
				return inspection{outcome: unknown, problem: fmt.Sprintf("/proc/%s/exe: %s; /proc/%s/cmdline: %s", pid, errText(err), pid, errText(aerr))}
			}
			if len(a) == 0 { // a kernel thread, or a zombie
				return inspection{outcome: noMatch}
			}
			in.fallback = true
			if a[0] != c.exe {
				return inspection{outcome: noMatch, fallback: true}
			}
			how = append(how, fmt.Sprintf("argv[0] %s (/proc/%s/cmdline; /proc/%s/exe is unreadable: %s)", a[0], pid, pid, errText(err)))
		}
	}
	if c.text != "" {
		a, err := cmdline()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return inspection{outcome: gone}
			}
			return inspection{outcome: unknown, fallback: in.fallback, problem: fmt.Sprintf("/proc/%s/cmdline: %s", pid, errText(err))}
		}
		if !strings.Contains(strings.Join(a, " "), c.text) {
			return inspection{outcome: noMatch, fallback: in.fallback}
		}
		how = append(how, "command line contains "+quote(c.text))
	}
	in.outcome = matched
	in.how = strings.Join(how, ", ")
	return in
}

// readCmdline returns the arguments of process pid, from its
// NUL-separated /proc/PID/cmdline (at most cmdlineLimit bytes of it).
func readCmdline(proc fs.FS, pid string) ([]string, error) {
	f, err := proc.Open(pid + "/cmdline")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, cmdlineLimit))
	if err != nil {
		return nil, err
	}
	s := strings.TrimRight(string(b), "\x00")
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, "\x00"), nil
}

// errText is the short text of a file system error.
func errText(err error) string {
	if errors.Is(err, fs.ErrPermission) {
		return "permission denied"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
