package artifact

import (
	"fmt"
	"unicode/utf8"
)

// YAMLQuote returns s as a YAML double-quoted scalar that every YAML 1.1 and
// 1.2 parser reads back as exactly s. It never emits a raw line break, so
// the result fits on one line at any indentation. YAML is Unicode text:
// a string that is not valid UTF-8 has no YAML form and is refused.
func YAMLQuote(s string) (string, error) {
	b, err := AppendYAMLQuote(make([]byte, 0, len(s)+2), s)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// AppendYAMLQuote appends s quoted as YAMLQuote quotes it to dst; on
// error dst comes back as it was. Writers of large documents quote into
// their buffer with it, with no string a value.
func AppendYAMLQuote(dst []byte, s string) ([]byte, error) {
	if err := YAMLQuotable(s); err != nil {
		return dst, err
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		// Runs of printable ASCII other than the escaped characters,
		// the bulk of every value, are copied as they are.
		j := i
		for j < len(s) && 0x20 <= s[j] && s[j] <= 0x7E && s[j] != '"' && s[j] != '\\' {
			j++
		}
		dst = append(dst, s[i:j]...)
		if i = j; i == len(s) {
			break
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch r {
		case '"':
			dst = append(dst, `\"`...)
		case '\\':
			dst = append(dst, `\\`...)
		case '\n':
			dst = append(dst, `\n`...)
		case '\t':
			dst = append(dst, `\t`...)
		case '\r':
			dst = append(dst, `\r`...)
		default:
			if YAMLPrintable(r) {
				dst = utf8.AppendRune(dst, r)
			} else {
				// \u works for every code point below U+10000 in both
				// YAML versions; the only non-printables are there.
				dst = fmt.Appendf(dst, `\u%04X`, r)
			}
		}
	}
	return append(dst, '"'), nil
}

// YAMLQuotable returns the error YAMLQuote returns for s, without
// quoting it: nil for every string YAMLQuote accepts.
func YAMLQuotable(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("value %q is not valid UTF-8", s)
	}
	return nil
}

// YAMLPrintable reports whether r may appear unescaped inside a double-quoted
// scalar: YAML's c-printable set minus the characters YAML 1.1 treats as
// line breaks (NEL, LS, PS) and the byte order mark, which parsers may
// strip.
func YAMLPrintable(r rune) bool {
	switch {
	case r == 0x85, r == 0x2028, r == 0x2029, r == 0xFEFF:
		return false
	case 0x20 <= r && r <= 0x7E:
		return true
	case 0xA0 <= r && r <= 0xD7FF, 0xE000 <= r && r <= 0xFFFD:
		return true
	case 0x10000 <= r && r <= 0x10FFFF:
		return true
	}
	return false
}
