package artifact

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// YAMLQuote returns s as a YAML double-quoted scalar that every YAML 1.1 and
// 1.2 parser reads back as exactly s. It never emits a raw line break, so
// the result fits on one line at any indentation. YAML is Unicode text:
// a string that is not valid UTF-8 has no YAML form and is refused.
func YAMLQuote(s string) (string, error) {
	if err := YAMLQuotable(s); err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if YAMLPrintable(r) {
				b.WriteRune(r)
			} else {
				// \u works for every code point below U+10000 in both
				// YAML versions; the only non-printables are there.
				fmt.Fprintf(&b, `\u%04X`, r)
			}
		}
	}
	b.WriteByte('"')
	return b.String(), nil
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
