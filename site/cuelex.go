package site

import (
	"strings"

	"cuelang.org/go/cue/scanner"
	"cuelang.org/go/cue/token"
	"github.com/alecthomas/chroma/v2"
)

// cueTokens splits CUE source into chroma tokens with CUE's own
// scanner: exact where chroma's regular-expression lexer guesses, and
// about twenty times faster on a 10,000-host stack file. The token
// types are the ones chroma's CUE lexer gives (strings, their escapes
// and interpolation delimiters, numbers, keywords, names, operators,
// punctuation, comments), and line endings and the final newline are
// treated as chroma treats them, so the listing's classes and colours
// stay the same. Where chroma's expressions misread CUE (a quote inside
// a multi-line string, escapes in raw strings), the scanner's reading
// is the one shown. ok is false when the scanner reports an error (the
// caller falls back to chroma); a stack file on the site has compiled
// already, so that does not happen in practice.
func cueTokens(src string) (toks []chroma.Token, ok bool) {
	// As chroma's lexers: CRLF and CR become LF; a final newline is
	// added for the lexer and dropped again after it.
	src = strings.ReplaceAll(strings.ReplaceAll(src, "\r\n", "\n"), "\r", "\n")
	added := !strings.HasSuffix(src, "\n")
	if added {
		src += "\n"
	}
	var t cueTokenizer
	if !t.scan(src) {
		return nil, false
	}
	if added {
		last := &t.toks[len(t.toks)-1]
		last.Value = strings.TrimSuffix(last.Value, "\n")
		if last.Value == "" {
			t.toks = t.toks[:len(t.toks)-1]
		}
	}
	return t.toks, true
}

// cueTokenizer collects the tokens of one piece of CUE source.
type cueTokenizer struct {
	toks []chroma.Token
}

// add appends a token, joined to the last one when of the same type (one
// span, as chroma's Coalesce gives).
func (t *cueTokenizer) add(typ chroma.TokenType, v string) {
	if v == "" {
		return
	}
	if n := len(t.toks); n > 0 && t.toks[n-1].Type == typ {
		t.toks[n-1].Value += v
		return
	}
	t.toks = append(t.toks, chroma.Token{Type: typ, Value: v})
}

// strState is a string the scanner is inside of while it scans an
// interpolation's expression.
type strState struct {
	parens int    // parentheses open in the expression
	hashes string // the string's #s: an escape is \#…
}

func (t *cueTokenizer) scan(src string) bool {
	b := []byte(src)
	var s scanner.Scanner
	failed := false
	s.Init(token.NewFile("", -1, len(b)), b, func(token.Pos, string, []any) { failed = true },
		scanner.ScanComments|scanner.DontInsertCommas)
	done := 0 // src[:done] is in toks
	var open []strState
	opening := false // the next token is the "(" of an interpolation
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF || failed {
			break
		}
		off, end := pos.Offset(), s.Offset()
		if off < done || end < off {
			return false // never expected: the scanner went back
		}
		t.add(chroma.Text, src[done:off])
		text := src[off:end]
		done = end
		switch {
		case opening: // the "(" after \ (or \#)
			opening = false
			t.add(chroma.LiteralStringInterpol, text)
		case tok == token.INTERPOLATION, tok == token.STRING:
			hashes := src[off : off+strings.IndexAny(text, `"'`)]
			t.stringPiece(text, hashes, false, tok == token.INTERPOLATION)
			if tok == token.INTERPOLATION {
				open = append(open, strState{hashes: hashes})
				opening = true
			}
		case tok == token.LPAREN && len(open) > 0:
			open[len(open)-1].parens++
			t.add(chroma.Punctuation, text)
		case tok == token.RPAREN && len(open) > 0 && open[len(open)-1].parens == 0:
			st := open[len(open)-1]
			open = open[:len(open)-1]
			more := strings.HasSuffix(s.ResumeInterpolation(), "(")
			if failed { // an unterminated string: the caller falls back to chroma
				return false
			}
			end = s.Offset() // before that "(", which comes as LPAREN
			text = src[off:end]
			done = end
			t.stringPiece(text, st.hashes, true, more)
			if more {
				open = append(open, st)
				opening = true
			}
		case tok == token.RPAREN && len(open) > 0:
			open[len(open)-1].parens--
			t.add(chroma.Punctuation, text)
		case tok == token.ATTRIBUTE:
			t.attribute(text)
		default:
			t.add(cueTokenType(tok, lit), text)
		}
	}
	if failed || len(open) > 0 {
		return false
	}
	t.add(chroma.Text, src[done:])
	return true
}

// stringPiece adds a piece of a string literal: the whole literal, its
// start up to an interpolation's \ (more), or, after an interpolation,
// its ")" and what follows up to the next \ (more) or the end. Escapes
// (\#n with the string's #s) are LiteralStringEscape, the interpolation
// delimiters LiteralStringInterpol, the rest LiteralString.
func (t *cueTokenizer) stringPiece(text, hashes string, resumed, more bool) {
	if resumed {
		t.add(chroma.LiteralStringInterpol, text[:1])
		text = text[1:]
	}
	tail := ""
	if more && strings.HasSuffix(text, `\`+hashes) { // the \ (and #s) of the next interpolation
		tail = text[len(text)-1-len(hashes):]
		text = text[:len(text)-len(tail)]
	}
	esc := `\` + hashes
	for {
		i := strings.Index(text, esc)
		if i < 0 {
			break
		}
		t.add(chroma.LiteralString, text[:i])
		n := escapeLen(text[i+len(esc):])
		if n == 0 { // not an escape after all: a backslash in a raw string
			t.add(chroma.LiteralString, text[i:i+len(esc)])
			text = text[i+len(esc):]
			continue
		}
		t.add(chroma.LiteralStringEscape, text[i:i+len(esc)+n])
		text = text[i+len(esc)+n:]
	}
	t.add(chroma.LiteralString, text)
	t.add(chroma.LiteralStringInterpol, tail)
}

// escapeLen is the length of the escape sequence s starts with (after
// its backslash and #s), or 0.
func escapeLen(s string) int {
	hex := func(n int) int {
		if len(s) < 1+n {
			return 0
		}
		for _, c := range s[1 : 1+n] {
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return 0
			}
		}
		return 1 + n
	}
	switch {
	case s == "":
		return 0
	case strings.ContainsRune(`abfnrtv/\'"`, rune(s[0])):
		return 1
	case s[0] == 'x':
		return hex(2)
	case s[0] == 'u':
		return hex(4)
	case s[0] == 'U':
		return hex(8)
	case s[0] >= '0' && s[0] <= '7':
		n := 1
		for n < 3 && n < len(s) && s[n] >= '0' && s[n] <= '7' {
			n++
		}
		return n
	}
	return 0
}

// attribute adds an attribute: its name as a Name, then its body, as
// chroma's CUE lexer reads them.
func (t *cueTokenizer) attribute(text string) {
	i := strings.IndexByte(text, '(')
	if i < 0 || !strings.HasSuffix(text, ")") {
		t.add(chroma.Name, text)
		return
	}
	t.add(chroma.Name, text[:i])
	t.add(chroma.Punctuation, "(")
	var inner cueTokenizer
	if body := text[i+1 : len(text)-1]; inner.scan(body) {
		for _, tk := range inner.toks {
			t.add(tk.Type, tk.Value)
		}
	} else {
		t.add(chroma.Text, body)
	}
	t.add(chroma.Punctuation, ")")
}

func cueTokenType(tok token.Token, lit string) chroma.TokenType {
	switch tok {
	case token.COMMENT:
		return chroma.CommentSingle
	case token.INT, token.FLOAT:
		return chroma.LiteralNumber
	case token.TRUE, token.FALSE, token.NULL:
		return chroma.KeywordConstant
	case token.LBRACE, token.RBRACE, token.LPAREN, token.RPAREN, token.PERIOD, token.SEMICOLON:
		return chroma.Punctuation
	case token.IDENT:
		switch lit {
		case "_":
			return chroma.KeywordConstant
		case "import", "package":
			return chroma.Keyword
		case "bool", "float", "int", "string", "uint", "bytes", "number":
			return chroma.KeywordType
		}
		return chroma.Name
	}
	if tok.IsKeyword() {
		return chroma.Keyword
	}
	return chroma.Operator
}
