package site

import (
	"html"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

var tagRE = regexp.MustCompile(`<[^>]*>`)

// FuzzConfListing proves the line highlighter loses and invents nothing:
// with the markup removed and entities decoded, every lexer gives back
// exactly its input, and the spans it opens it closes.
func FuzzConfListing(f *testing.F) {
	for _, s := range []string{
		"server {\n    listen 80;\n    set $x \"a b\"; # c\n}\n",
		"[Service]\nExecStart=/usr/bin/x --a=1 \"q\"\n; note\n",
		"global\n    maxconn 20000\nbackend app\n    server app1 10.0.0.1:80 check\n",
		"- path: /etc/x\n  content: |\n    a: b\nruncmd:\n  - set -e\n",
		"bind = [\"unix:/run/a.sock\"]\nworkers = 5  # auto\n",
		"#!/bin/sh\nset -eu\necho \"$HOME\" 'x' > /dev/null\n",
		"<script>&amp;\n\n\tx\n", "\"unterminated\n", "$", "1.2.3 x1 -5",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
			return // HTML carries neither; the escaper replaces them
		}
		for lexer := range confLexers {
			out := string(confListing(lexer, s))
			if got := html.UnescapeString(tagRE.ReplaceAllString(out, "")); got != s {
				t.Fatalf("%s: text changed:\n in %q\nout %q", lexer, s, got)
			}
			if o, c := strings.Count(out, "<span"), strings.Count(out, "</span>"); o != c {
				t.Fatalf("%s: %d spans opened, %d closed: %s", lexer, o, c, out)
			}
		}
	})
}
