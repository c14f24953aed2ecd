package monitoring

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Quote returns s as a YAML double-quoted scalar that every YAML 1.1 and
// 1.2 parser reads back as exactly s. It never emits a raw line break, so
// the result fits on one line at any indentation. YAML is Unicode text:
// a string that is not valid UTF-8 has no YAML form and is refused.
func Quote(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("value %q is not valid UTF-8", s)
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
			if printable(r) {
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

// printable reports whether r may appear unescaped inside a double-quoted
// scalar: YAML's c-printable set minus the characters YAML 1.1 treats as
// line breaks (NEL, LS, PS) and the byte order mark, which parsers may
// strip.
func printable(r rune) bool {
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

// literal returns s as a YAML literal block scalar ("|-" and the lines of
// s, each indented by indent spaces) for a value placed after "key: ".
// PromQL reads far better that way in a pull request than as a quoted
// string full of \". It reports false when s cannot be written as a
// literal block that reads back as exactly s, and the caller quotes it
// instead: a literal block keeps no trailing line break (with "-"), finds
// its indentation from the first line, and holds only printable
// characters.
func literal(s string, indent int) (string, bool) {
	if s == "" || indent < 1 || !utf8.ValidString(s) {
		return "", false
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l == "" {
			return "", false // blank lines: chomping and indentation rules get subtle
		}
		if i == 0 && l[0] == ' ' {
			return "", false // would change the detected indentation
		}
		if l[len(l)-1] == ' ' {
			return "", false // trailing white space: invisible in review, fragile in parsers
		}
		for _, r := range l {
			if !printable(r) {
				return "", false // tabs too: YAML never allows them as indentation
			}
		}
	}
	pad := strings.Repeat(" ", indent)
	var b strings.Builder
	b.WriteString("|-")
	for _, l := range lines {
		b.WriteString("\n" + pad + l)
	}
	return b.String(), true
}

// yamlWriter builds a YAML document line by line. Structure (keys,
// indentation, sequence dashes) is written by the generator; every value
// that comes from the stack goes through Quote. The first quoting error
// is kept and reported by done.
type yamlWriter struct {
	b   strings.Builder
	err error
}

// raw writes a line as is (comments, keys, fixed values).
func (w *yamlWriter) raw(indent int, line string) {
	if line == "" {
		w.b.WriteString("\n")
		return
	}
	w.b.WriteString(strings.Repeat(" ", indent) + line + "\n")
}

// comment writes each line of text as a YAML comment.
func (w *yamlWriter) comment(indent int, text string) {
	for _, l := range strings.Split(text, "\n") {
		w.raw(indent, strings.TrimRight("# "+l, " "))
	}
}

// q quotes a value.
func (w *yamlWriter) q(s string) string {
	out, err := Quote(s)
	if err != nil && w.err == nil {
		w.err = err
	}
	return out
}

// str writes "key: value" with the value quoted.
func (w *yamlWriter) str(indent int, key, value string) {
	w.raw(indent, key+": "+w.q(value))
}

// block writes "key: |-" and value as a literal block indented two
// spaces deeper than the key, or quoted when no literal block can hold it.
func (w *yamlWriter) block(indent int, key, value string) {
	if lit, ok := literal(value, indent+2); ok {
		w.b.WriteString(strings.Repeat(" ", indent) + key + ": " + lit + "\n")
		return
	}
	w.str(indent, key, value)
}

// list writes "key:" and one quoted sequence item per value, indented
// below the key. key may open a sequence item itself ("- targets").
func (w *yamlWriter) list(indent int, key string, values []string) {
	w.raw(indent, key+":")
	col := indent
	if strings.HasPrefix(key, "- ") {
		col += 2
	}
	for _, v := range values {
		w.raw(col+2, "- "+w.q(v))
	}
}

func (w *yamlWriter) done() ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	return []byte(w.b.String()), nil
}
