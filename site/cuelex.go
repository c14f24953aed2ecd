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
// types are the ones chroma's CUE lexer gives, so the listing's classes
// and colours stay the same. ok is false when the scanner reports an
// error (the caller falls back to chroma); a stack file on the site
// has compiled already, so that does not happen in practice.
func cueTokens(src string) (toks []chroma.Token, ok bool) {
	if !strings.HasSuffix(src, "\n") {
		src += "\n" // as chroma's lexer (ensure_nl)
	}
	b := []byte(src)
	var s scanner.Scanner
	failed := false
	s.Init(token.NewFile("", -1, len(b)), b, func(token.Pos, string, []any) { failed = true },
		scanner.ScanComments|scanner.DontInsertCommas)
	done := 0 // src[:done] is in toks
	add := func(t chroma.TokenType, v string) {
		if n := len(toks); n > 0 && toks[n-1].Type == t {
			toks[n-1].Value += v // one span, as chroma's Coalesce gives
			return
		}
		toks = append(toks, chroma.Token{Type: t, Value: v})
	}
	emit := func(t chroma.TokenType, start, end int) {
		if start > done {
			add(chroma.Text, src[done:start])
		}
		if end > done {
			add(t, src[max(start, done):end])
			done = end
		}
	}
	// depth counts the parentheses open in each interpolation the
	// scanner is inside: the one closing it resumes the string.
	var depth []int
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF || failed {
			break
		}
		off := pos.Offset()
		text := lit
		if text == "" {
			text = tok.String()
		}
		switch {
		case tok == token.INTERPOLATION:
			emit(chroma.LiteralString, off, off+len(text))
			depth = append(depth, -1) // the scanner repeats the "(" as LPAREN
			continue
		case tok == token.LPAREN && len(depth) > 0:
			depth[len(depth)-1]++
		case tok == token.RPAREN && len(depth) > 0 && depth[len(depth)-1] == 0:
			depth = depth[:len(depth)-1]
			seg := s.ResumeInterpolation()
			emit(chroma.LiteralString, off, off+len(seg))
			if strings.HasSuffix(seg, "(") {
				depth = append(depth, -1)
			}
			continue
		case tok == token.RPAREN && len(depth) > 0:
			depth[len(depth)-1]--
		}
		emit(cueTokenType(tok, lit), off, off+len(text))
	}
	if failed {
		return nil, false
	}
	emit(chroma.Text, done, len(src))
	return toks, true
}

func cueTokenType(tok token.Token, lit string) chroma.TokenType {
	switch tok {
	case token.COMMENT:
		return chroma.CommentSingle
	case token.STRING:
		return chroma.LiteralString
	case token.INT, token.FLOAT:
		return chroma.LiteralNumber
	case token.ATTRIBUTE:
		return chroma.NameDecorator
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
