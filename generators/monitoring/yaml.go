package monitoring

import (
	"strings"
	"unicode/utf8"

	"github.com/hacompile/hacompile/generators/artifact"
)

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
			if !artifact.YAMLPrintable(r) {
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
	out, err := artifact.YAMLQuote(s)
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
