package checks

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
)

// WriteTable writes results as an aligned table with the columns NAME,
// TYPE, RESULT (PASS or FAIL) and REASON, and an ACTION column when an
// action ran or was held back, then the summary line of NewReport.
// Reasons holding control characters are printed quoted.
func WriteTable(w io.Writer, results []Result) error {
	withAction := false
	for _, r := range results {
		if r.ActionRan || r.ActionNote != "" {
			withAction = true
		}
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	header := "NAME\tTYPE\tRESULT\tREASON"
	if withAction {
		header += "\tACTION"
	}
	fmt.Fprintln(tw, header)
	for _, r := range results {
		verdict := "FAIL"
		if r.Passed {
			verdict = "PASS"
		}
		line := cell(r.Name) + "\t" + cell(r.Type) + "\t" + verdict + "\t" + cell(r.Reason)
		if withAction {
			line += "\t" + cell(actionSummary(r))
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush() // into a bytes.Buffer: cannot fail
	var out strings.Builder
	for line := range strings.Lines(buf.String()) {
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteByte('\n')
	}
	out.WriteString(NewReport(results).Summary())
	out.WriteByte('\n')
	_, err := io.WriteString(w, out.String())
	return err
}

// actionSummary is the ACTION cell of a result.
func actionSummary(r Result) string {
	if !r.ActionRan {
		return r.ActionNote
	}
	s := fmt.Sprintf("ran, exit %d", r.ActionExitCode)
	if r.ActionNote != "" {
		s += ", " + r.ActionNote
	}
	switch {
	case r.Fixed:
		s += ", fixed"
	case r.RecheckReason != "":
		s += ", still failing: " + r.RecheckReason
	}
	return s
}

// cell is s, quoted if it holds a character that would break the table.
func cell(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
