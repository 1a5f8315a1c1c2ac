package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestLineReader(t *testing.T) {
	type line struct {
		text string
		n    int
	}
	for _, tc := range []struct {
		name  string
		in    string
		limit int
		want  []line
	}{
		{"lines", "a\nbc\n\nd", 10, []line{{"a", 1}, {"bc", 2}, {"", 0}, {"d", 1}}},
		{"crlf", "ab\r\n\r\nc\r", 10, []line{{"ab", 2}, {"", 0}, {"c", 1}}},
		{"at limit", "abcd\nabcde\n", 4, []line{{"abcd", 4}, {"abcde", 5}}},
		{"long crlf", strings.Repeat("y", 9000) + "\r\nok\n", 4, []line{{"yyyyy", 9000}, {"ok", 2}}},
		{"very long", strings.Repeat("x", 10000) + "\nok\n", 256, []line{{strings.Repeat("x", 257), 10000}, {"ok", 2}}},
		{"empty", "", 10, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lr := newLineReader(iotest.OneByteReader(strings.NewReader(tc.in)), tc.limit)
			var got []line
			for {
				b, n, err := lr.next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, line{string(b), n})
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d lines %+v, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("line %d: got %q (n=%d), want %q (n=%d)", i, got[i].text, got[i].n, tc.want[i].text, tc.want[i].n)
				}
			}
		})
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"hello world": "hello world",
		"héllo":       "héllo",
		"two\nlines":  `"two\nlines"`,
		"\xff":        `"\xff"`,
		"":            "",
	} {
		if got := printable([]byte(in)); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}
