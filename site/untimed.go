package site

import (
	"maps"
	"math"
	"slices"
	"time"

	"github.com/alecthomas/chroma/v2"
	"github.com/alecthomas/chroma/v2/lexers"
)

// chroma gives each regular-expression match of a lexer 250 ms of wall
// time and, past it, treats the rule as not matching, so on a busy
// machine the same file could be highlighted differently: a CI run's two
// renders of the example site differed. A page must be a function of its
// input, so at start every lexer in chroma's registry (the one
// goldmark's highlighting also asks) is replaced by a copy whose
// matches never time out.
func init() {
	for _, l := range slices.Clone(lexers.GlobalLexerRegistry.Lexers) {
		if rl, ok := l.(*chroma.RegexLexer); ok {
			lexers.GlobalLexerRegistry.Register(untimed(rl))
		}
	}
}

// untimed is a copy of l with one more rule, first in its root state,
// whose mutator lifts the timeout of every compiled rule and removes
// itself when the lexer compiles (before any text is matched).
func untimed(l *chroma.RegexLexer) *chroma.RegexLexer {
	u := chroma.MustNewLexer(l.Config(), func() chroma.Rules {
		rules, err := l.Rules()
		if err != nil {
			// The original fails the same way: tokenising reports it.
			return chroma.Rules{"root": {{Pattern: "(", Mutator: noTimeout{}}}}
		}
		rules = maps.Clone(rules)
		rules["root"] = append([]chroma.Rule{{Pattern: "(?!)", Mutator: noTimeout{}}}, rules["root"]...)
		return rules
	})
	u.SetAnalyser(l.AnalyseText)
	return u
}

// forever is regexp2's "no timeout" (its DefaultMatchTimeout).
const forever = time.Duration(math.MaxInt64)

// noTimeout is the mutator of untimed's rule.
type noTimeout struct{}

func (noTimeout) Mutate(*chroma.LexerState) error { return nil }

func (noTimeout) MutateLexer(rules chroma.CompiledRules, state string, i int) error {
	for _, rs := range rules {
		for _, r := range rs {
			if r.Regexp != nil {
				r.Regexp.MatchTimeout = forever
			}
		}
	}
	rules[state] = slices.Delete(rules[state], i, i+1)
	return nil
}
