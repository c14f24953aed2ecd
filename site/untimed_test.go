package site

import (
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/chroma/v2"
	"github.com/alecthomas/chroma/v2/lexers"
)

// TestLexersUntimed: the lexers in chroma's registry (the site's
// listings and goldmark's code blocks ask it) are untimed copies that
// lex as the originals.
func TestLexersUntimed(t *testing.T) {
	for _, name := range []string{"json", "jsonnet", "cue", haproxyLexer(), "sh", "go"} {
		l, ok := lexers.Get(name).(*chroma.RegexLexer)
		if !ok {
			t.Fatalf("no regex lexer %q", name)
		}
		src := `{"a": [1, 2.5, true, null], "b": "x\n"}` + "\n"
		it, err := l.Tokenise(nil, src)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got strings.Builder
		for tok := it(); tok != chroma.EOF; tok = it() {
			got.WriteString(tok.Value)
		}
		if got.String() != src {
			t.Errorf("%s: tokens spell %q, want %q", name, got.String(), src)
		}
		if rules, _ := l.Rules(); len(rules["root"]) == 0 || rules["root"][0].Mutator != (noTimeout{}) {
			t.Errorf("%s: the registry's lexer is not an untimed copy", name)
		}
	}
}

// TestUntimedRules: every compiled rule of an untimed lexer, as the
// lexer matches with it, has no timeout; the original's have chroma's.
func TestUntimedRules(t *testing.T) {
	timeouts := func(l chroma.Lexer) []time.Duration {
		it, err := l.Tokenise(nil, "x\n")
		if err != nil {
			t.Fatal(err)
		}
		for tok := it(); tok != chroma.EOF; tok = it() {
		}
		seen := seenTimeouts
		seenTimeouts = nil
		return seen
	}
	probe := func() *chroma.RegexLexer {
		return chroma.MustNewLexer(&chroma.Config{Name: "probe"}, func() chroma.Rules {
			return chroma.Rules{"root": {
				{Pattern: `\n`, Type: chroma.Text},
				{Pattern: `.`, Type: chroma.EmitterFunc(func(groups []string, state *chroma.LexerState) chroma.Iterator {
					for _, rs := range state.Rules {
						for _, r := range rs {
							seenTimeouts = append(seenTimeouts, r.Regexp.MatchTimeout)
						}
					}
					return chroma.Literator(chroma.Token{Type: chroma.Text, Value: groups[0]})
				})},
			}}
		})
	}
	for _, d := range timeouts(probe()) {
		if d == forever {
			t.Fatalf("chroma's own lexer matched without a timeout: the probe cannot tell the copy from it")
		}
	}
	got := timeouts(untimed(probe()))
	if len(got) != 2 {
		t.Fatalf("the untimed probe has %d compiled rules, want its 2 (the timeout rule removed)", len(got))
	}
	for _, d := range got {
		if d != forever {
			t.Errorf("a rule of the untimed copy times out after %s", d)
		}
	}
}

var seenTimeouts []time.Duration
