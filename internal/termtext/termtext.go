// Package termtext makes text from elsewhere (a rendered file's diff, a
// host's command output, a lock holder's name) safe to print on an
// operator's terminal.
package termtext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape writes the control characters of s other than newline and tab,
// the line and paragraph separators, bidi controls and every byte that
// is not UTF-8 as \xNN (\uNNNN above 0xff). A raw byte 0x9b is CSI to a
// terminal reading 8-bit controls, so bytes that are not UTF-8 are
// escaped as surely as the control runes.
func Escape(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, "\\x%02x", s[0])
		case !escaped(r):
			b.WriteString(s[:size])
		case r <= 0xff:
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			fmt.Fprintf(&b, "\\u%04x", r)
		}
		s = s[size:]
	}
	return b.String()
}

// clean reports whether s is UTF-8 with nothing Escape would change.
func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\n' && c != '\t' || c == 0x7f || c >= 0x80 {
			// Not plain ASCII text: look rune by rune.
			return utf8.ValidString(s) && !strings.ContainsFunc(s, escaped)
		}
	}
	return true
}

func escaped(r rune) bool {
	return r != '\n' && r != '\t' && (unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r))
}
