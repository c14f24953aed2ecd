package systemd

import (
	"errors"
	"fmt"
	"strings"
)

// ExecQuote returns arg as one word of a systemd Exec*= command line,
// meaning exactly arg to the process started, whatever it contains.
//
// systemd reads an Exec= line in three passes, and each needs its own
// escape: specifiers first, over the whole line, quotes included ("%" is
// written "%%"); then the line is split into words, where double quotes
// group and backslash escapes are C-like; finally, when the command runs,
// "$NAME" and "${NAME}" are replaced from the environment in every word,
// quoted or not ("$" is written "$$"). Words made only of safe characters
// are left bare; anything else is double-quoted, and every byte outside
// printable ASCII becomes \xNN, so the line is ASCII, holds any bytes
// (unit files must be UTF-8; arguments need not be) and stays on one
// line. A NUL cannot be passed in argv at all, so it is an error.
func ExecQuote(arg string) (string, error) {
	if strings.IndexByte(arg, 0) >= 0 {
		return "", errors.New("a command-line argument cannot contain a NUL byte")
	}
	if arg != "" && strings.Trim(arg, safeChars) == "" {
		return doubleSpecials(arg), nil
	}
	var b strings.Builder
	b.Grow(len(arg) + 2)
	b.WriteByte('"')
	for i := 0; i < len(arg); i++ {
		switch c := arg[i]; {
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '%' || c == '$':
			b.WriteByte(c)
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

// safeChars need no quoting anywhere in a word, once "%" and "$" are
// doubled. A lone ";" would separate commands and is not among them.
const safeChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+=:,./@%$"

var specials = strings.NewReplacer("%", "%%", "$", "$$")

func doubleSpecials(s string) string { return specials.Replace(s) }

// ExecLine renders argv as the value of an Exec*= setting. argv[0] must
// be an absolute path: systemd gives a leading "-", "@", ":", "+" or "!"
// a meaning of its own.
func ExecLine(argv ...string) (string, error) {
	if len(argv) == 0 || !strings.HasPrefix(argv[0], "/") {
		return "", fmt.Errorf("command %q: the executable must be an absolute path", argv)
	}
	words := make([]string, len(argv))
	for i, a := range argv {
		w, err := ExecQuote(a)
		if err != nil {
			return "", fmt.Errorf("command %q: %w", argv[0], err)
		}
		words[i] = w
	}
	return strings.Join(words, " "), nil
}

// specEscape makes free text (a Description=) literal to systemd's
// specifier expansion.
func specEscape(s string) string { return strings.ReplaceAll(s, "%", "%%") }
