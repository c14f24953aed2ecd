package outdir

import (
	"strings"
	"unicode/utf8"
)

// AppendJSONString appends s quoted as encoding/json quotes strings (with
// HTML escaping, as json.Marshal and json.MarshalIndent do): <, > and &
// and control characters as \u00XX except \b \f \n \r \t, invalid UTF-8
// as \ufffd, U+2028 and U+2029 escaped.
func AppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendJSONArray appends xs as json.MarshalIndent(v, "", "  ") writes a
// slice depth levels deep in v: null when nil, [] when empty, else each
// element on a line of its own, indented one level more and written by
// elem.
func AppendJSONArray[T any](b []byte, xs []T, depth int, elem func([]byte, *T) []byte) []byte {
	switch {
	case xs == nil:
		return append(b, "null"...)
	case len(xs) == 0:
		return append(b, "[]"...)
	}
	indent := "\n" + strings.Repeat("  ", depth+1)
	b = append(b, '[')
	for i := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, indent...)
		b = elem(b, &xs[i])
	}
	b = append(b, indent[:len(indent)-2]...)
	return append(b, ']')
}

// appendJSONStringAt is AppendJSONString as an element of AppendJSONArray.
func appendJSONStringAt(b []byte, s *string) []byte { return AppendJSONString(b, *s) }

// AppendJSONStrings is AppendJSONArray of strings.
func AppendJSONStrings(b []byte, xs []string, depth int) []byte {
	return AppendJSONArray(b, xs, depth, appendJSONStringAt)
}
