package gunicorn

import (
	"fmt"
	"strings"
)

// pyString returns s as a Python string literal, in the spirit of repr():
// double-quoted, with only printable ASCII left as is. Everything else is
// escaped with the escapes Python and Go agree on (\\ \" \n \r \t \xNN
// below 0x80, \uXXXX, \UXXXXXXXX), so the file stays ASCII, nothing
// invisible (bidi controls, U+2028) hides in it, and Go's strconv.Unquote
// decodes the literal to the same string Python does. A byte that is not
// UTF-8 becomes U+FFFD, as Go's range loop reads it: Python source text
// cannot hold raw bytes in a str.
func pyString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '\\' || r == '"':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
