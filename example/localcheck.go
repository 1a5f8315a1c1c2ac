package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/seed-c7906467/smudge/checks"
)

// runLocalCheck is `smudge local-check`: a dry run of a checks file on
// this node. It runs the checks one after another, runs no action, and
// prints a table (name, type, PASS or FAIL, reason; an ACTION column says
// which failures have an action that was not run) and a summary line, or
// with -json the results as a checks.Report.
//
//	smudge local-check -file checks.json [-json]
//
// -file - reads the checks from standard input. Exit status: 0 if every
// check passed, 1 if any failed, 2 for a bad file or flag (the message
// names the check and the field).
func runLocalCheck(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("smudge local-check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "`path` of the checks file (JSON); - for standard input")
	asJSON := fs.Bool("json", false, "print the results as JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: smudge local-check -file FILE [-json]\n\n"+
			"Runs the checks of FILE on this node, one after another, without running\n"+
			"their actions, and prints the results. Exit status: 0 if all passed, 1 if\n"+
			"any failed, 2 for a bad file or flag.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "smudge local-check: unexpected argument %q (give the file with -file)\n", fs.Arg(0))
		return exitUsage
	}
	if *file == "" {
		fmt.Fprintln(stderr, "smudge local-check: -file is required: the checks file")
		return exitUsage
	}

	var list []checks.Check
	var err error
	if *file == "-" {
		list, err = checks.ParseReader(stdin)
		if err != nil {
			err = fmt.Errorf("standard input: %w", err)
		}
	} else {
		list, err = checks.ParseFile(*file)
	}
	if err != nil {
		fmt.Fprintf(stderr, "smudge local-check: %v\n", err)
		return exitUsage
	}

	runner := &checks.Runner{Concurrency: 1, DryRun: true}
	results := runner.Run(context.Background(), list)
	report := checks.NewReport(results)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(report)
	} else {
		err = checks.WriteTable(stdout, results)
	}
	if err != nil {
		fmt.Fprintf(stderr, "smudge local-check: %v\n", err)
		return exitError
	}
	if report.Failed > 0 {
		return exitError
	}
	return exitOK
}
