package checks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of a checks file.
const (
	// MaxFileBytes is the largest checks file accepted: 1 MiB.
	MaxFileBytes = 1 << 20
	// MaxNameBytes is the longest check name, in bytes.
	MaxNameBytes = 128
	// MaxActionBytes is the longest action, in bytes.
	MaxActionBytes = 64 << 10
)

// The fields of a check in a checks file.
const (
	FieldType   = "type"
	FieldPath   = "path"
	FieldCheck  = "check"
	FieldAction = "action"
)

// knownFields lists the fields a check may have, in the order they are
// documented.
var knownFields = []string{FieldType, FieldPath, FieldCheck, FieldAction}

// A Spec is one check as written in a checks file: its name (the key of the
// file's object) and its four fields. Which of Path and Check a type needs is
// up to the type's Factory.
//
// Spec marshals to the file format's per-check object, so a map of names to
// Specs marshals to a checks file.
type Spec struct {
	Name   string `json:"-"`
	Type   string `json:"type"`
	Path   string `json:"path,omitempty"`
	Check  string `json:"check,omitempty"`
	Action string `json:"action,omitempty"`
}

// A Check is a parsed, validated check, ready to run: its Spec and the
// Checker its type's Factory built from it.
type Check struct {
	Spec
	Checker Checker
}

// A ParseError is a problem in a checks file. It names the check and the
// field at fault when there is one, and where in the file it was found.
//
// A Factory reports a problem with one field by returning a ParseError with
// Field set (see FieldErrorf); the parser fills in Check, Line and Column.
type ParseError struct {
	// Check is the name of the check at fault; empty when the problem is
	// not in one check (an empty file, trailing data, ...).
	Check string
	// Field is the field at fault ("type", "path", "check", "action"),
	// or empty.
	Field string
	// Line is the 1-based line of the file where the problem was found;
	// 0 when unknown.
	Line int
	// Column is the 1-based column (in bytes) of a JSON syntax error or
	// of invalid UTF-8; 0 for other problems.
	Column int
	// Err says what is wrong.
	Err error
}

// Error formats the error as, for example,
//
//	line 3: check "nginx": field "path": required
func (e *ParseError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ", column %d", e.Column)
		}
		b.WriteString(": ")
	}
	if e.Check != "" {
		fmt.Fprintf(&b, "check %q: ", e.Check)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "field %q: ", e.Field)
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("invalid")
	}
	return b.String()
}

// Unwrap returns e.Err.
func (e *ParseError) Unwrap() error { return e.Err }

// FieldErrorf returns a *ParseError about one field of a check, for a
// Factory to return; the parser adds the check's name and position.
func FieldErrorf(field, format string, args ...any) error {
	return &ParseError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Parse parses a checks file against DefaultRegistry. See Registry.Parse.
func Parse(data []byte) ([]Check, error) { return DefaultRegistry.Parse(data) }

// ParseFile reads and parses a checks file against DefaultRegistry. See
// Registry.ParseFile.
func ParseFile(name string) ([]Check, error) { return DefaultRegistry.ParseFile(name) }

// ParseReader reads and parses a checks file against DefaultRegistry. See
// Registry.ParseReader.
func ParseReader(rd io.Reader) ([]Check, error) { return DefaultRegistry.ParseReader(rd) }

// ParseFile reads the checks file name and parses it with r.ParseReader.
// Errors are prefixed with the file name.
func (r *Registry) ParseFile(name string) ([]Check, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	checks, err := r.ParseReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return checks, nil
}

// ParseReader reads a checks file from rd, failing without reading further
// if it is larger than MaxFileBytes, and parses it with r.Parse.
func (r *Registry) ParseReader(rd io.Reader) ([]Check, error) {
	data, err := io.ReadAll(io.LimitReader(rd, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, &ParseError{Err: fmt.Errorf("the file is larger than %d bytes (1 MiB), the limit", MaxFileBytes)}
	}
	return r.Parse(data)
}

// Parse parses a checks file: a JSON object whose keys are check names and
// whose values are objects with the string fields type, path, check and
// action. Every check is validated by the Factory registered in r for its
// type. The checks are returned sorted by name.
//
// Every problem is a *ParseError that names the check and the field at
// fault: a syntax error, an empty file, a file larger than MaxFileBytes,
// something else than an object, trailing data after it, no checks, a
// duplicate check name or field, a bad name (empty, not printable, longer
// than MaxNameBytes), an unknown field, a value that is not a string, an
// unknown type, a missing field, a field the type does not use.
func (r *Registry) Parse(data []byte) ([]Check, error) {
	if len(data) > MaxFileBytes {
		return nil, &ParseError{Err: fmt.Errorf("the file is %d bytes, more than the limit of %d (1 MiB)", len(data), MaxFileBytes)}
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // a UTF-8 byte order mark
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &ParseError{Err: errors.New("the file is empty; it must hold a JSON object of checks")}
	}
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, size := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		line, col := position(data, off)
		return nil, &ParseError{Line: line, Column: col, Err: errors.New("invalid UTF-8")}
	}
	p := &parser{data: data, dec: json.NewDecoder(bytes.NewReader(data)), reg: r}
	checks, err := p.file()
	if err != nil {
		return nil, err
	}
	sort.Slice(checks, func(i, j int) bool { return checks[i].Name < checks[j].Name })
	return checks, nil
}

// parser walks a checks file token by token: unlike json.Unmarshal it sees
// duplicate keys, and it knows where each problem is.
type parser struct {
	data []byte
	dec  *json.Decoder
	reg  *Registry
}

// file parses the whole file.
func (p *parser) file() ([]Check, error) {
	tok, err := p.token("", "")
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, p.errorf("", "", "the file must hold a JSON object of checks (name: {type, path, check, action}), not %s", describe(tok))
	}
	var checks []Check
	seen := map[string]bool{}
	for p.dec.More() {
		tok, err := p.token("", "")
		if err != nil {
			return nil, err
		}
		name := tok.(string) // object keys are strings, or Token fails
		if err := validName(name); err != nil {
			return nil, p.errorf(name, "", "bad check name: %v", err)
		}
		if seen[name] {
			return nil, p.errorf(name, "", "duplicate check name")
		}
		seen[name] = true
		line := p.line()
		spec, err := p.check(name)
		if err != nil {
			return nil, err
		}
		c, err := p.reg.build(spec)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				pe = &ParseError{Err: err}
			}
			e := *pe
			e.Check, e.Line = name, line
			return nil, &e
		}
		checks = append(checks, c)
	}
	if _, err := p.token("", ""); err != nil { // the closing '}'
		return nil, err
	}
	if len(checks) == 0 {
		return nil, p.errorf("", "", "the file holds no checks")
	}
	switch tok, err := p.dec.Token(); {
	case err == io.EOF:
	case err != nil:
		return nil, p.wrap("", "", fmt.Errorf("after the checks object: %w", err))
	default:
		return nil, p.errorf("", "", "trailing data after the checks object: %s", describe(tok))
	}
	return checks, nil
}

// check parses the object of the check called name.
func (p *parser) check(name string) (Spec, error) {
	spec := Spec{Name: name}
	tok, err := p.token(name, "")
	if err != nil {
		return spec, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return spec, p.errorf(name, "", "must be an object {type, path, check, action}, not %s", describe(tok))
	}
	seen := map[string]bool{}
	for p.dec.More() {
		tok, err := p.token(name, "")
		if err != nil {
			return spec, err
		}
		field := tok.(string)
		var dst *string
		switch field {
		case FieldType:
			dst = &spec.Type
		case FieldPath:
			dst = &spec.Path
		case FieldCheck:
			dst = &spec.Check
		case FieldAction:
			dst = &spec.Action
		default:
			hint := ""
			for _, f := range knownFields {
				if strings.EqualFold(f, field) {
					hint = fmt.Sprintf(" (did you mean %q? names are case-sensitive)", f)
				}
			}
			return spec, p.errorf(name, field, "unknown field%s; a check has the fields %s", hint, strings.Join(knownFields, ", "))
		}
		if seen[field] {
			return spec, p.errorf(name, field, "duplicate field")
		}
		seen[field] = true
		tok, err = p.token(name, field)
		if err != nil {
			return spec, err
		}
		s, ok := tok.(string)
		if !ok {
			return spec, p.errorf(name, field, "must be a string, not %s", describe(tok))
		}
		*dst = s
	}
	if _, err := p.token(name, ""); err != nil { // the closing '}'
		return spec, err
	}
	if !seen[FieldType] || spec.Type == "" {
		return spec, p.errorf(name, FieldType, "required; known types: %s", strings.Join(p.reg.Types(), ", "))
	}
	if len(spec.Action) > MaxActionBytes {
		return spec, p.errorf(name, FieldAction, "%d bytes, more than the limit of %d", len(spec.Action), MaxActionBytes)
	}
	if strings.IndexByte(spec.Action, 0) >= 0 {
		return spec, p.errorf(name, FieldAction, "contains a NUL character")
	}
	return spec, nil
}

// token reads the next token; a syntax error or a premature end of the
// file becomes a *ParseError about check and field.
func (p *parser) token(check, field string) (json.Token, error) {
	tok, err := p.dec.Token()
	if err == nil {
		return tok, nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, p.wrap(check, field, err)
}

// wrap makes err a *ParseError, positioned at a syntax error's offset or
// at the decoder's current position.
func (p *parser) wrap(check, field string, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(p.data, int(se.Offset))
		return &ParseError{Check: check, Field: field, Line: line, Column: col, Err: fmt.Errorf("JSON syntax error: %s", strings.TrimPrefix(se.Error(), "json: "))}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &ParseError{Check: check, Field: field, Line: p.line(), Err: errors.New("unexpected end of the file: the JSON is incomplete")}
	}
	return &ParseError{Check: check, Field: field, Line: p.line(), Err: err}
}

// errorf returns a *ParseError at the decoder's current line.
func (p *parser) errorf(check, field, format string, args ...any) error {
	return &ParseError{Check: check, Field: field, Line: p.line(), Err: fmt.Errorf(format, args...)}
}

// line is the line of the end of the last token read.
func (p *parser) line() int {
	line, _ := position(p.data, int(p.dec.InputOffset()))
	return line
}

// position converts a byte offset in data to a 1-based line and column.
func position(data []byte, off int) (line, col int) {
	off = min(max(off, 0), len(data))
	before := data[:off]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = off - bytes.LastIndexByte(before, '\n')
	return line, col
}

// describe names the kind of a JSON token, for error messages.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		default:
			return fmt.Sprintf("%q", string(v))
		}
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

// validName checks a check name: non-empty, printable, at most
// MaxNameBytes.
func validName(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case len(name) > MaxNameBytes:
		return fmt.Errorf("%d bytes, more than the limit of %d", len(name), MaxNameBytes)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("contains the non-printable character %U", r)
		}
	}
	return nil
}
