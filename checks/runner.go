package checks

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"sync"
	"time"
)

// Runner defaults, used when a Runner field is zero.
const (
	// DefaultConcurrency is how many checks run at once.
	DefaultConcurrency = 4
	// DefaultCheckTimeout bounds one check (its Checker, not its action).
	DefaultCheckTimeout = 30 * time.Second
	// DefaultActionTimeout bounds one action.
	DefaultActionTimeout = 30 * time.Second
	// DefaultMaxOutputBytes is how much of an action's output is kept.
	DefaultMaxOutputBytes = 4 << 10
)

// Action notes: Result.ActionNote when a failing check's action did not run.
const (
	// NoteActionsDisabled: the Runner does not allow actions.
	NoteActionsDisabled = "actions disabled on this node"
	// NoteDryRun: the Runner is a dry run.
	NoteDryRun = "dry run: action not run"
)

// ReportVersion is the version of the Report and Result JSON schema. It
// changes only if a field is removed or changes meaning; new fields may be
// added without a change.
const ReportVersion = 1

// A Result is what running one check found. Its JSON form is part of the
// stable schema of Report.
type Result struct {
	// Name is the check's name.
	Name string `json:"name"`
	// Type is the check's type.
	Type string `json:"type"`
	// Passed reports whether the check passed (before any action).
	Passed bool `json:"passed"`
	// Reason says what passed, or why the check failed.
	Reason string `json:"reason"`
	// ActionRan reports whether the action was started.
	ActionRan bool `json:"action_ran"`
	// ActionExitCode is the action's exit status; -1 if it was killed (by
	// a signal, its timeout or cancellation); 0 if it did not run.
	ActionExitCode int `json:"action_exit_code"`
	// ActionOutput is the action's standard output and standard error,
	// interleaved, truncated to the Runner's MaxOutputBytes followed by a
	// marker line "[output truncated: N more bytes]".
	ActionOutput string `json:"action_output,omitempty"`
	// ActionOutputTruncated reports whether ActionOutput was truncated.
	ActionOutputTruncated bool `json:"action_output_truncated"`
	// ActionNote says why a failing check's action did not run (actions
	// disabled, dry run, it could not start) or how it ended abnormally
	// (timed out, killed by a signal). Empty otherwise.
	ActionNote string `json:"action_note,omitempty"`
	// Fixed reports whether the check passed when run again after its
	// action.
	Fixed bool `json:"fixed"`
	// RecheckReason is the reason of that second run; empty if there was
	// none.
	RecheckReason string `json:"recheck_reason,omitempty"`
	// Duration is the time taken by the check, its action and the second
	// run, in nanoseconds in JSON.
	Duration time.Duration `json:"duration_ns"`
}

// A Report is the results of one run of a set of checks with their counts.
// Its JSON form is the stable schema of results, version ReportVersion.
type Report struct {
	// Version is ReportVersion.
	Version int `json:"version"`
	// Checks is len(Results).
	Checks int `json:"checks"`
	// Passed counts the results that passed.
	Passed int `json:"passed"`
	// Failed counts the results that failed.
	Failed int `json:"failed"`
	// Results holds one Result per check, sorted by name.
	Results []Result `json:"results"`
}

// NewReport counts results.
func NewReport(results []Result) Report {
	r := Report{Version: ReportVersion, Checks: len(results), Results: results}
	if r.Results == nil {
		r.Results = []Result{}
	}
	for _, res := range results {
		if res.Passed {
			r.Passed++
		} else {
			r.Failed++
		}
	}
	return r
}

// Summary is the report's summary line, such as "3 checks, 2 passed, 1
// failed".
func (r Report) Summary() string {
	return fmt.Sprintf("%d %s, %d passed, %d failed", r.Checks, plural(r.Checks, "check", "checks"), r.Passed, r.Failed)
}

// A Runner runs checks, and the actions of those that fail. The zero Runner
// runs checks on this node's file system and /proc, DefaultConcurrency at a
// time, and runs no action.
type Runner struct {
	// Concurrency is how many checks (with their actions) run at once;
	// 0 means DefaultConcurrency.
	Concurrency int
	// AllowActions lets the actions of failing checks run. When false, a
	// failing check with an action gets the ActionNote
	// NoteActionsDisabled.
	AllowActions bool
	// DryRun runs no action even if AllowActions is set: a failing check
	// with an action gets the ActionNote NoteDryRun.
	DryRun bool
	// CheckTimeout bounds each run of a Checker; 0 means
	// DefaultCheckTimeout.
	CheckTimeout time.Duration
	// ActionTimeout bounds each action; 0 means DefaultActionTimeout. When
	// it expires, the action's whole process group is killed.
	ActionTimeout time.Duration
	// MaxOutputBytes is how much of an action's output a Result keeps;
	// 0 means DefaultMaxOutputBytes.
	MaxOutputBytes int
	// FS is the file system checks look at, rooted at "/"; nil means
	// os.DirFS("/"). Actions always run on the real system.
	FS fs.FS
	// Proc is the process information file system; nil means
	// os.DirFS("/proc").
	Proc fs.FS
}

// Run runs checks, at most r.Concurrency at once, and returns one Result
// per check, sorted by name. The action of a failing check runs, if
// allowed, with /bin/sh -c in its own process group, in the directory "/",
// with the Runner's environment and no standard input; after it the check
// runs again (Result.Fixed). When ctx is done, running checks and actions
// are stopped and the rest fail with ctx's error as their reason.
func (r *Runner) Run(ctx context.Context, checks []Check) []Result {
	env := Env{FS: r.FS, Proc: r.Proc}
	if env.FS == nil {
		env.FS = os.DirFS("/")
	}
	if env.Proc == nil {
		env.Proc = os.DirFS("/proc")
	}
	results := make([]Result, len(checks))
	workers := r.Concurrency
	if workers <= 0 {
		workers = DefaultConcurrency
	}
	workers = min(workers, len(checks))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				results[i] = r.runOne(ctx, env, checks[i])
			}
		})
	}
	for i := range checks {
		next <- i
	}
	close(next)
	wg.Wait()
	sort.SliceStable(results, func(i, j int) bool { return results[i].Name < results[j].Name })
	return results
}

// runOne runs one check, and its action if it fails.
func (r *Runner) runOne(ctx context.Context, env Env, c Check) Result {
	start := time.Now()
	res := Result{Name: c.Name, Type: c.Type}
	if err := ctx.Err(); err != nil {
		res.Reason = "not run: " + err.Error()
		res.Duration = time.Since(start)
		return res
	}
	res.Passed, res.Reason = r.check(ctx, env, c)
	if res.Passed || c.Action == "" {
		res.Duration = time.Since(start)
		return res
	}
	switch {
	case r.DryRun:
		res.ActionNote = NoteDryRun
	case !r.AllowActions:
		res.ActionNote = NoteActionsDisabled
	default:
		timeout := r.ActionTimeout
		if timeout <= 0 {
			timeout = DefaultActionTimeout
		}
		maxOut := r.MaxOutputBytes
		if maxOut <= 0 {
			maxOut = DefaultMaxOutputBytes
		}
		a := runAction(ctx, c.Action, timeout, maxOut)
		res.ActionRan = a.started
		res.ActionExitCode = a.exitCode
		res.ActionOutput = a.output
		res.ActionOutputTruncated = a.truncated
		res.ActionNote = a.note
		if a.started && ctx.Err() == nil {
			res.Fixed, res.RecheckReason = r.check(ctx, env, c)
		}
	}
	res.Duration = time.Since(start)
	return res
}

// check runs c's Checker with the check timeout; a panic is a failure.
func (r *Runner) check(ctx context.Context, env Env, c Check) (passed bool, reason string) {
	timeout := r.CheckTimeout
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			passed, reason = false, fmt.Sprintf("the checker of type %s panicked: %v", c.Type, v)
		}
	}()
	if c.Checker == nil {
		return false, "no checker"
	}
	return c.Checker.Check(ctx, env)
}
