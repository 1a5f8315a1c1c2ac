package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/checks"
)

// localCheck runs `smudge local-check args...` in process.
func localCheck(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runLocalCheck(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// checksFixture writes a resolv.conf, a pid file and a checks file about
// them into a temporary directory. The action, were it run, would create
// the file named "marker".
func checksFixture(t *testing.T, resolv string) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(resolv), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "syslog.pid"), []byte("42\n"), 0o644))
	spec := fmt.Sprintf(`{
  "resolv_has_8888": {
    "type": "file_contains",
    "path": %q,
    "check": "8.8.8.8",
    "action": "touch %s"
  },
  "syslog_pidfile_exists": {"type": "file_exists", "path": %q}
}`, filepath.Join(dir, "resolv.conf"), filepath.Join(dir, "marker"), filepath.Join(dir, "syslog.pid"))
	file = filepath.Join(dir, "checks.json")
	require.NoError(t, os.WriteFile(file, []byte(spec), 0o644))
	return dir, file
}

func TestLocalCheckAllPass(t *testing.T) {
	dir, file := checksFixture(t, "nameserver 8.8.8.8\n")
	code, out, errOut := localCheck(t, "", "-file", file)
	assert.Equal(t, exitOK, code)
	assert.Empty(t, errOut)
	resolv, pid := filepath.Join(dir, "resolv.conf"), filepath.Join(dir, "syslog.pid")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 4, out)
	assert.Regexp(t, `^NAME +TYPE +RESULT +REASON$`, lines[0])
	assert.Regexp(t, `^resolv_has_8888 +file_contains +PASS +`+regexp.QuoteMeta(resolv+` contains "8.8.8.8"`)+`$`, lines[1])
	assert.Regexp(t, `^syslog_pidfile_exists +file_exists +PASS +`+regexp.QuoteMeta(pid+" exists (regular file, 3 bytes)")+`$`, lines[2])
	assert.Equal(t, "2 checks, 2 passed, 0 failed", lines[3])
}

func TestLocalCheckAFailureRunsNoAction(t *testing.T) {
	dir, file := checksFixture(t, "nameserver 1.1.1.1\n")
	code, out, errOut := localCheck(t, "", "-file", file)
	assert.Equal(t, exitError, code)
	assert.Empty(t, errOut)
	assert.Regexp(t, `(?m)^resolv_has_8888 +file_contains +FAIL +.*resolv\.conf does not contain "8\.8\.8\.8" +dry run: action not run$`, out)
	assert.True(t, strings.HasSuffix(out, "\n2 checks, 1 passed, 1 failed\n"), out)
	assert.NoFileExists(t, filepath.Join(dir, "marker"), "local-check ran an action")
}

func TestLocalCheckJSON(t *testing.T) {
	dir, file := checksFixture(t, "nameserver 1.1.1.1\n")
	code, out, errOut := localCheck(t, "", "-json", "-file", file)
	assert.Equal(t, exitError, code)
	assert.Empty(t, errOut)
	var rep checks.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	assert.Equal(t, checks.ReportVersion, rep.Version)
	assert.Equal(t, 2, rep.Checks)
	assert.Equal(t, 1, rep.Passed)
	assert.Equal(t, 1, rep.Failed)
	require.Len(t, rep.Results, 2)
	r := rep.Results[0]
	assert.Equal(t, "resolv_has_8888", r.Name)
	assert.Equal(t, "file_contains", r.Type)
	assert.False(t, r.Passed)
	assert.Equal(t, filepath.Join(dir, "resolv.conf")+` does not contain "8.8.8.8"`, r.Reason)
	assert.False(t, r.ActionRan)
	assert.Equal(t, checks.NoteDryRun, r.ActionNote)
	assert.True(t, rep.Results[1].Passed)
	assert.NoFileExists(t, filepath.Join(dir, "marker"))

	// All passed: exit 0.
	_, file = checksFixture(t, "nameserver 8.8.8.8\n")
	code, _, _ = localCheck(t, "", "-file", file, "-json")
	assert.Equal(t, exitOK, code)
}

func TestLocalCheckReadsStandardInput(t *testing.T) {
	code, out, _ := localCheck(t, `{"root": {"type": "file_exists", "path": "/"}}`, "-file", "-")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "1 check, 1 passed, 0 failed")

	code, _, errOut := localCheck(t, `{"root": {"type": "file_exists"}}`, "-file", "-")
	assert.Equal(t, exitUsage, code)
	assert.Equal(t, "smudge local-check: standard input: line 1: check \"root\": field \"path\": required\n", errOut)
}

func TestLocalCheckBadFilesAndFlags(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}
	unknownField := write("unknown-field.json", "{\n  \"nginx\": {\"type\": \"process_running\", \"path\": \"/usr/sbin/nginx\", \"acton\": \"x\"}\n}")
	missing := write("missing.json", `{"hosts": {"type": "file_exists"}}`)
	empty := write("empty.json", "")
	big := write("big.json", strings.Repeat(" ", checks.MaxFileBytes+1))

	cases := []struct {
		name string
		args []string
		msg  string // the whole of standard error, or a part of it
	}{
		{"unknown field", []string{"-file", unknownField}, "smudge local-check: " + unknownField + `: line 2: check "nginx": field "acton": unknown field; a check has the fields type, path, check, action` + "\n"},
		{"missing field", []string{"-file", missing}, "smudge local-check: " + missing + `: line 1: check "hosts": field "path": required` + "\n"},
		{"empty file", []string{"-file", empty}, "smudge local-check: " + empty + ": the file is empty; it must hold a JSON object of checks\n"},
		{"file too large", []string{"-file", big}, "smudge local-check: " + big + ": the file is larger than 1048576 bytes (1 MiB), the limit\n"},
		{"no such file", []string{"-file", filepath.Join(dir, "nope.json")}, "no such file or directory"},
		{"no -file", nil, "smudge local-check: -file is required: the checks file\n"},
		{"positional argument", []string{"checks.json"}, `smudge local-check: unexpected argument "checks.json" (give the file with -file)` + "\n"},
		{"unknown flag", []string{"-fil", "x"}, "flag provided but not defined: -fil"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := localCheck(t, "", tc.args...)
			assert.Equal(t, exitUsage, code)
			assert.Empty(t, out)
			if strings.HasSuffix(tc.msg, "\n") {
				assert.Equal(t, tc.msg, errOut)
			} else {
				assert.Contains(t, errOut, tc.msg)
			}
		})
	}

	code, _, errOut := localCheck(t, "", "-h")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, errOut, "Usage: smudge local-check -file FILE [-json]")
}
