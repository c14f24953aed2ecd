package site

import (
	"html/template"
	"strings"
)

// Rendered configuration is highlighted by a line tokenizer written for
// the formats hacompile itself generates (nginx, HAProxy, systemd and
// sysctl's ini shape, YAML, the gunicorn Python file, shell). chroma's
// regular-expression lexers cost about a millisecond per file, which on a
// fleet of thousands of hosts is most of a build; these formats are
// regular enough that a per-line scan gives the same reading aid at a
// fraction of the cost. chroma still highlights stack sources (CUE,
// Jsonnet) and the code in users' notes. The classes are chroma's, so one
// stylesheet serves both.

// confLexers are the lexers the line tokenizer handles.
var confLexers = map[string]bool{"nginx": true, "ini": true, "systemd": true, "yaml": true, "python": true, "bash": true, "plaintext": true}

// confListing renders content as chroma's HTML formatter does, tokens
// as spans with chroma's classes, but without chroma's two wrapper spans
// per line (the <pre> keeps the lines) and without spans for
// punctuation, which the style colours as plain text: together they
// were most of the bytes of a listing.
func confListing(lexer, content string) template.HTML {
	var b strings.Builder
	b.Grow(len(content) * 2)
	b.WriteString(`<pre class="chroma"><code>`)
	for len(content) > 0 {
		line, rest, found := strings.Cut(content, "\n")
		content = rest
		confLine(&b, lexer, line)
		if found {
			b.WriteByte('\n')
		}
	}
	b.WriteString(`</code></pre>`)
	return template.HTML(b.String())
}

func tok(b *strings.Builder, class, text string) {
	if text == "" {
		return
	}
	if class == "" || class == "p" {
		escapeTo(b, text)
		return
	}
	b.WriteString(`<span class="`)
	b.WriteString(class)
	b.WriteString(`">`)
	escapeTo(b, text)
	b.WriteString(`</span>`)
}

// escapeTo writes s to b escaped as template.HTMLEscape escapes it,
// without copying s to a byte slice first.
func escapeTo(b *strings.Builder, s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		var rep string
		switch s[i] {
		case 0:
			rep = "\uFFFD"
		case '"':
			rep = "&#34;"
		case '\'':
			rep = "&#39;"
		case '&':
			rep = "&amp;"
		case '<':
			rep = "&lt;"
		case '>':
			rep = "&gt;"
		default:
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(rep)
		last = i + 1
	}
	b.WriteString(s[last:])
}

// confLine writes one line: leading space, then a comment or the
// format's key, then the rest with strings, numbers and punctuation.
func confLine(b *strings.Builder, lexer, line string) {
	trimmed := strings.TrimLeft(line, " \t")
	indent := line[:len(line)-len(trimmed)]
	tok(b, "", indent)
	if lexer == "plaintext" {
		tok(b, "", trimmed)
		return
	}
	if strings.HasPrefix(trimmed, "#") || (lexer == "ini" || lexer == "systemd") && strings.HasPrefix(trimmed, ";") {
		tok(b, "c1", trimmed)
		return
	}
	switch lexer {
	case "ini", "systemd":
		if strings.HasPrefix(trimmed, "[") && strings.HasSuffix(trimmed, "]") {
			tok(b, "k", trimmed)
			return
		}
		if k, v, ok := strings.Cut(trimmed, "="); ok && !strings.ContainsAny(k, " \t\"") {
			tok(b, "na", k)
			tok(b, "o", "=")
			words(b, lexer, v)
			return
		}
		// HAProxy: a section keyword at the margin, a directive inside.
		word, rest := firstWord(trimmed)
		if indent == "" {
			tok(b, "kn", word)
		} else {
			tok(b, "k", word)
		}
		words(b, lexer, rest)
	case "nginx":
		word, rest := firstWord(trimmed)
		if word == "}" || word == "{" {
			tok(b, "p", word)
		} else {
			tok(b, "k", word)
		}
		words(b, lexer, rest)
	case "yaml":
		rest := trimmed
		for strings.HasPrefix(rest, "- ") {
			tok(b, "p", "-")
			tok(b, "", " ")
			rest = rest[2:]
		}
		if k, v, ok := strings.Cut(rest, ":"); ok && k != "" && !strings.ContainsAny(k, " \"'{[") && (v == "" || v[0] == ' ') {
			tok(b, "nt", k)
			tok(b, "p", ":")
			words(b, lexer, v)
			return
		}
		words(b, lexer, rest)
	case "python":
		if k, v, ok := strings.Cut(trimmed, " = "); ok && !strings.ContainsAny(k, " \"'(") {
			tok(b, "n", k)
			tok(b, "o", " = ")
			words(b, lexer, v)
			return
		}
		words(b, lexer, trimmed)
	case "bash":
		word, rest := firstWord(trimmed)
		tok(b, "nb", word)
		words(b, lexer, rest)
	default:
		tok(b, "", trimmed)
	}
}

func firstWord(s string) (string, string) {
	i := strings.IndexAny(s, " \t;")
	if i <= 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// words scans the rest of a line: quoted strings, $variables, numbers,
// punctuation, and a trailing comment.
func words(b *strings.Builder, lexer, s string) {
	start := 0
	flush := func(i int) {
		tok(b, "", s[start:i])
		start = i
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				i = len(s)
				continue
			}
			flush(i)
			tok(b, "s2", s[i:i+j+2])
			i += j + 2
			start = i
		case c == '$' && i+1 < len(s) && (isWord(s[i+1]) || s[i+1] == '{'):
			flush(i)
			j := i + 1
			for j < len(s) && (isWord(s[j]) || s[j] == '{' || s[j] == '}') {
				j++
			}
			tok(b, "nv", s[i:j])
			i, start = j, j
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') && lexer != "nginx":
			flush(i)
			tok(b, "c1", s[i:])
			return
		case c >= '0' && c <= '9' && (i == 0 || !isWord(s[i-1]) && s[i-1] != '.' && s[i-1] != '-'):
			j := i
			for j < len(s) && (s[j] >= '0' && s[j] <= '9') {
				j++
			}
			if j == len(s) || !isWord(s[j]) && s[j] != '.' {
				flush(i)
				tok(b, "mi", s[i:j])
				start = j
			}
			i = j
		case c == ';' || c == '{' || c == '}' || c == '[' || c == ']' || c == ',':
			flush(i)
			tok(b, "p", s[i:i+1])
			i++
			start = i
		default:
			i++
		}
	}
	flush(len(s))
}

func isWord(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
