package checks

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// issueFile is the example of the issue, with real actions.
const issueFile = `{
  "resolv_has_8888": {
    "type": "file_contains",
    "path": "/etc/resolv.conf",
    "check": "8.8.8.8",
    "action": "echo 8.8.8.8 >> /etc/resolv.conf"
  },
  "syslog_pidfile_exists": {"type": "file_exists", "path": "/var/run/syslog.pid", "action": "service rsyslog restart"},
  "check_nginx_running": {"type": "process_running", "path": "/usr/bin/nginx", "action": "service nginx start"}
}`

func TestParseTheIssuesExample(t *testing.T) {
	checks, err := Parse([]byte(issueFile))
	require.NoError(t, err)
	require.Len(t, checks, 3)
	// Sorted by name.
	assert.Equal(t, Spec{Name: "check_nginx_running", Type: TypeProcessRunning, Path: "/usr/bin/nginx", Action: "service nginx start"}, checks[0].Spec)
	assert.Equal(t, Spec{Name: "resolv_has_8888", Type: TypeFileContains, Path: "/etc/resolv.conf", Check: "8.8.8.8", Action: "echo 8.8.8.8 >> /etc/resolv.conf"}, checks[1].Spec)
	assert.Equal(t, Spec{Name: "syslog_pidfile_exists", Type: TypeFileExists, Path: "/var/run/syslog.pid", Action: "service rsyslog restart"}, checks[2].Spec)
	for _, c := range checks {
		assert.NotNil(t, c.Checker, c.Name)
	}
}

func TestParseSpecsRoundTripThroughJSON(t *testing.T) {
	checks, err := Parse([]byte(issueFile))
	require.NoError(t, err)
	m := map[string]Spec{}
	for _, c := range checks {
		m[c.Name] = c.Spec
	}
	data, err := json.Marshal(m)
	require.NoError(t, err)
	again, err := Parse(data)
	require.NoError(t, err)
	require.Len(t, again, len(checks))
	for i := range checks {
		assert.Equal(t, checks[i].Spec, again[i].Spec)
	}
}

func TestParseAcceptsAByteOrderMarkAndEmptyAction(t *testing.T) {
	checks, err := Parse([]byte("\ufeff{\"a\": {\"type\": \"file_exists\", \"path\": \"/\", \"action\": \"\"}}\n\n"))
	require.NoError(t, err)
	require.Len(t, checks, 1)
	assert.Equal(t, "", checks[0].Action)
}

func TestParseErrors(t *testing.T) {
	ok := `{"type": "file_exists", "path": "/x"}`
	long := strings.Repeat("n", MaxNameBytes+1)
	cases := []struct {
		name   string
		file   string
		check  string // the check the error must name
		field  string // the field it must name
		line   int    // its line, when not 0
		column bool   // whether it has a column
		msg    string // a part of its message
	}{
		{name: "empty", file: "", msg: "the file is empty"},
		{name: "blank", file: " \n\t\n", msg: "the file is empty"},
		{name: "array", file: `[]`, line: 1, msg: "must hold a JSON object of checks (name: {type, path, check, action}), not an array"},
		{name: "string", file: `"x"`, line: 1, msg: "not a string"},
		{name: "number", file: `42`, line: 1, msg: "not a number"},
		{name: "null", file: `null`, line: 1, msg: "not null"},
		{name: "no checks", file: `{}`, line: 1, msg: "the file holds no checks"},
		{name: "trailing object", file: `{"a": ` + ok + "}\n{}", line: 2, msg: "trailing data after the checks object: an object"},
		{name: "trailing garbage", file: `{"a": ` + ok + `} x`, line: 1, column: true, msg: "JSON syntax error"},
		{name: "syntax error", file: "{\n\"a\": {\"type\": \"file_exists\",}\n}", check: "a", line: 2, column: true, msg: "JSON syntax error: invalid character '}'"},
		{name: "key not a string", file: `{1: 2}`, line: 1, column: true, msg: "JSON syntax error"},
		{name: "truncated", file: "{\"a\": {\"type\": ", check: "a", field: "type", msg: "unexpected end of the file"},
		{name: "truncated after a check", file: `{"a": ` + ok, msg: "unexpected end of the file"},
		{name: "invalid UTF-8", file: "{\n\"a\xff\": " + ok + "}", line: 2, column: true, msg: "invalid UTF-8"},
		{name: "duplicate check", file: "{\n\"a\": " + ok + ",\n\"b\": " + ok + ",\n\"a\": " + ok + "\n}", check: "a", line: 4, msg: "duplicate check name"},
		{name: "duplicate field", file: `{"a": {"type": "file_exists", "path": "/x", "path": "/y"}}`, check: "a", field: "path", msg: "duplicate field"},
		{name: "unknown field", file: "{\"a\": {\n\"type\": \"file_exists\",\n\"pth\": \"/x\"}}", check: "a", field: "pth", line: 3, msg: "unknown field; a check has the fields type, path, check, action"},
		{name: "field in the wrong case", file: `{"a": {"Type": "file_exists", "path": "/x"}}`, check: "a", field: "Type", msg: `did you mean "type"?`},
		{name: "number value", file: `{"a": {"type": "file_exists", "path": 5}}`, check: "a", field: "path", msg: "must be a string, not a number"},
		{name: "null value", file: `{"a": {"type": null, "path": "/x"}}`, check: "a", field: "type", msg: "must be a string, not null"},
		{name: "object value", file: `{"a": {"type": "file_exists", "check": {}}}`, check: "a", field: "check", msg: "must be a string, not an object"},
		{name: "check not an object", file: `{"a": "file_exists"}`, check: "a", msg: "must be an object {type, path, check, action}, not a string"},
		{name: "check is an array", file: `{"a": []}`, check: "a", msg: "not an array"},
		{name: "empty name", file: `{"": ` + ok + `}`, msg: "bad check name: empty"},
		{name: "long name", file: `{"` + long + `": ` + ok + `}`, check: long, msg: "bad check name: 129 bytes, more than the limit of 128"},
		{name: "unprintable name", file: `{"a\u0007b": ` + ok + `}`, check: "a\ab", msg: "non-printable character U+0007"},
		{name: "missing type", file: "{\n\"a\": {\"path\": \"/x\"}}", check: "a", field: "type", line: 2, msg: "required; known types: file_contains, file_exists, process_running"},
		{name: "empty type", file: `{"a": {"type": "", "path": "/x"}}`, check: "a", field: "type", msg: "required"},
		{name: "unknown type", file: "{\"ok\": " + ok + ",\n\"a\": {\"type\": \"file_contain\", \"path\": \"/x\"}}", check: "a", field: "type", line: 2, msg: `unknown type "file_contain"; known types: file_contains, file_exists, process_running`},
		{name: "file_exists without path", file: `{"a": {"type": "file_exists"}}`, check: "a", field: "path", msg: "required"},
		{name: "relative path", file: `{"a": {"type": "file_exists", "path": "etc/hosts"}}`, check: "a", field: "path", msg: `"etc/hosts" is not an absolute path`},
		{name: "unclean path", file: `{"a": {"type": "file_exists", "path": "/etc/../etc/hosts/"}}`, check: "a", field: "path", msg: `write "/etc/hosts"`},
		{name: "path with NUL", file: `{"a": {"type": "file_exists", "path": "/x\u0000y"}}`, check: "a", field: "path", msg: "NUL"},
		{name: "long path", file: `{"a": {"type": "file_exists", "path": "/` + strings.Repeat("p", MaxPathBytes) + `"}}`, check: "a", field: "path", msg: "more than the limit of 4096"},
		{name: "file_exists with check", file: `{"a": {"type": "file_exists", "path": "/x", "check": "y"}}`, check: "a", field: "check", msg: "not used by type file_exists"},
		{name: "file_contains without check", file: `{"a": {"type": "file_contains", "path": "/x"}}`, check: "a", field: "check", msg: "required: the text to look for"},
		{name: "file_contains without path", file: `{"a": {"type": "file_contains", "check": "x"}}`, check: "a", field: "path", msg: "required"},
		{name: "long check", file: `{"a": {"type": "file_contains", "path": "/x", "check": "` + strings.Repeat("c", MaxCheckBytes+1) + `"}}`, check: "a", field: "check", msg: "more than the limit"},
		{name: "process_running with neither", file: `{"a": {"type": "process_running", "action": "x"}}`, check: "a", msg: `fields "path" and "check" are both empty`},
		{name: "process_running relative path", file: `{"a": {"type": "process_running", "path": "nginx"}}`, check: "a", field: "path", msg: "not an absolute path"},
		{name: "action with NUL", file: `{"a": {"type": "file_exists", "path": "/x", "action": "a\u0000b"}}`, check: "a", field: "action", msg: "NUL"},
		{name: "long action", file: `{"a": {"type": "file_exists", "path": "/x", "action": "` + strings.Repeat("a", MaxActionBytes+1) + `"}}`, check: "a", field: "action", msg: "more than the limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checks, err := Parse([]byte(tc.file))
			require.Error(t, err)
			assert.Nil(t, checks)
			var pe *ParseError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.check, pe.Check, "check named in %q", err)
			assert.Equal(t, tc.field, pe.Field, "field named in %q", err)
			if tc.line != 0 {
				assert.Equal(t, tc.line, pe.Line, "line in %q", err)
			}
			assert.Equal(t, tc.column, pe.Column > 0, "column in %q", err)
			assert.Contains(t, err.Error(), tc.msg)
			if tc.check != "" {
				assert.Contains(t, err.Error(), fmt.Sprintf("check %q", tc.check))
			}
			if tc.field != "" {
				assert.Contains(t, err.Error(), `field "`+tc.field+`"`)
			}
		})
	}
}

func TestParseErrorFormat(t *testing.T) {
	_, err := Parse([]byte("{\n  \"nginx\": {\"type\": \"file_exists\"}\n}"))
	require.EqualError(t, err, `line 2: check "nginx": field "path": required`)

	_, err = Parse([]byte("{\n  \"a\": {\"type\": \"file_exists\" \"path\": \"/\"}\n}"))
	require.EqualError(t, err, `line 2, column 31: check "a": JSON syntax error: invalid character '"' after object key:value pair`)
}

func TestParseSizeLimit(t *testing.T) {
	// Exactly MaxFileBytes is fine; one more byte is not.
	base := `{"a": {"type": "file_exists", "path": "/x"}}`
	fits := base + strings.Repeat(" ", MaxFileBytes-len(base))
	_, err := Parse([]byte(fits))
	require.NoError(t, err)

	_, err = Parse([]byte(fits + " "))
	require.ErrorContains(t, err, "more than the limit of 1048576 (1 MiB)")

	_, err = ParseReader(strings.NewReader(fits))
	require.NoError(t, err)
	_, err = ParseReader(strings.NewReader(fits + " "))
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, err.Error(), "larger than 1048576 bytes (1 MiB)")
}

func TestParseReaderStopsReadingAtTheLimit(t *testing.T) {
	r := &countingReader{}
	_, err := ParseReader(r)
	require.ErrorContains(t, err, "larger than")
	assert.LessOrEqual(t, r.n, int64(MaxFileBytes+1), "read past the limit")
}

// countingReader is an endless stream of spaces that counts what it gives.
type countingReader struct{ n int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	r.n += int64(len(p))
	return len(p), nil
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	require.NoError(t, os.WriteFile(good, []byte(issueFile), 0o644))
	checks, err := ParseFile(good)
	require.NoError(t, err)
	assert.Len(t, checks, 3)

	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"a": {"type": "nope"}}`), 0o644))
	_, err = ParseFile(bad)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), bad+`: line 1: check "a": field "type": unknown type "nope"`), err.Error())
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "a", pe.Check)

	_, err = ParseFile(filepath.Join(dir, "missing.json"))
	require.ErrorIs(t, err, os.ErrNotExist)

	_, err = ParseFile(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), dir)
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	assert.Equal(t, []string{TypeFileContains, TypeFileExists, TypeProcessRunning}, r.Types())

	factory := func(s Spec) (Checker, error) {
		if s.Check != "yes" && s.Check != "no" {
			return nil, FieldErrorf(FieldCheck, "must be yes or no, not %q", s.Check)
		}
		return constChecker{passed: s.Check == "yes"}, nil
	}
	require.NoError(t, r.Register("always", factory))
	assert.Equal(t, []string{"always", TypeFileContains, TypeFileExists, TypeProcessRunning}, r.Types())
	assert.NotContains(t, DefaultRegistry.Types(), "always", "a new Registry is independent of the default one")

	checks, err := r.Parse([]byte(`{"x": {"type": "always", "check": "yes"}}`))
	require.NoError(t, err)
	require.Len(t, checks, 1)
	assert.Equal(t, constChecker{passed: true}, checks[0].Checker)

	_, err = r.Parse([]byte(`{"x": {"type": "always", "check": "maybe"}}`))
	require.EqualError(t, err, `line 1: check "x": field "check": must be yes or no, not "maybe"`)

	_, err = Parse([]byte(`{"x": {"type": "always", "check": "yes"}}`))
	require.ErrorContains(t, err, `unknown type "always"`)

	// A factory's plain error still names the check.
	require.NoError(t, r.Register("broken", func(Spec) (Checker, error) { return nil, errors.New("broken on purpose") }))
	_, err = r.Parse([]byte(`{"y": {"type": "broken"}}`))
	require.EqualError(t, err, `line 1: check "y": broken on purpose`)

	require.NoError(t, r.Register("nil_checker", func(Spec) (Checker, error) { return nil, nil }))
	_, err = r.Parse([]byte(`{"z": {"type": "nil_checker"}}`))
	require.ErrorContains(t, err, `check "z": the factory of type "nil_checker" returned no checker`)

	assert.ErrorContains(t, r.Register("always", factory), "already registered")
	assert.ErrorContains(t, r.Register(TypeFileExists, factory), "already registered")
	assert.ErrorContains(t, r.Register("", factory), "1 to 64")
	assert.ErrorContains(t, r.Register(strings.Repeat("a", 65), factory), "1 to 64")
	assert.ErrorContains(t, r.Register("Bad-Name", factory), "lowercase")
	assert.ErrorContains(t, r.Register("ok_name", nil), "nil factory")
}

func TestRegisterAddsToTheDefaultRegistry(t *testing.T) {
	name := "test_register_default"
	require.NoError(t, Register(name, func(Spec) (Checker, error) { return constChecker{}, nil }))
	t.Cleanup(func() {
		DefaultRegistry.mu.Lock()
		delete(DefaultRegistry.factories, name)
		DefaultRegistry.mu.Unlock()
	})
	_, err := Parse([]byte(`{"x": {"type": "` + name + `"}}`))
	require.NoError(t, err)
}
