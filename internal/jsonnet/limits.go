package jsonnet

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	gojsonnet "github.com/google/go-jsonnet"
)

// MaxNesting bounds how deeply a Jsonnet file's brackets ((, [, {) may
// nest. go-jsonnet's parser recurses once a level, and a file nested a
// hundred thousand levels deep overflowed the Go stack, which kills the
// process; real stacks nest a few dozen levels.
const MaxNesting = 1000

// NestingError is a file nested deeper than MaxNesting, at Line:Column.
type NestingError struct{ Line, Column int }

func (e *NestingError) Error() string {
	return fmt.Sprintf("line %d column %d: brackets nest deeper than %d levels (the limit of a Jsonnet file)", e.Line, e.Column, MaxNesting)
}

// checkNesting returns a *NestingError where src nests deeper than
// MaxNesting, skipping strings and comments.
func checkNesting(src []byte) error {
	depth := 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		skip := 0 // bytes of a string or comment starting at i
		switch {
		case c == '#' || c == '/' && i+1 < len(src) && src[i+1] == '/':
			skip = bytes.IndexByte(src[i:], '\n')
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			if skip = bytes.Index(src[i+2:], []byte("*/")); skip >= 0 {
				skip += 4
			}
		case c == '|' && bytes.HasPrefix(src[i:], []byte("|||")):
			if skip = bytes.Index(src[i+3:], []byte("|||")); skip >= 0 {
				skip += 6
			}
		case c == '"' || c == '\'':
			verbatim := i > 0 && src[i-1] == '@'
			skip = -1
			for j := i + 1; j < len(src); j++ {
				if src[j] == '\\' && !verbatim {
					j++
				} else if src[j] == c {
					if verbatim && j+1 < len(src) && src[j+1] == c {
						j++
						continue
					}
					skip = j + 1 - i
					break
				}
			}
		case c == '(' || c == '[' || c == '{':
			if depth++; depth > MaxNesting {
				nl := bytes.LastIndexByte(src[:i], '\n')
				return &NestingError{Line: bytes.Count(src[:i], []byte("\n")) + 1, Column: i - nl}
			}
		case c == ')' || c == ']' || c == '}':
			depth = max(depth-1, 0)
		}
		if skip < 0 { // runs to the end of the file
			return nil
		}
		if skip > 0 {
			i += skip - 1
		}
	}
	return nil
}

// CheckArg checks the Jsonnet code given on the command line as flag's
// name (--ext-code x=CODE, --tla-code): its nesting, then its syntax,
// whether or not a stack reads it. The error says where in the code,
// as NAME:LINE:COL. Code read from the environment (--ext-code x) is
// fromEnv: the parser's message, which quotes the code ("Unknown
// variable: …", "got (STRING_DOUBLE, \"…\")"), is not shown, as the
// variable may hold secrets.
func CheckArg(flag, name, code string, fromEnv bool) error {
	var ne *NestingError
	if errors.As(checkNesting([]byte(code)), &ne) {
		return fmt.Errorf("%s %s:%d:%d: brackets nest deeper than %d levels (the limit of a Jsonnet file)", flag, name, ne.Line, ne.Column, MaxNesting)
	}
	if _, err := gojsonnet.SnippetToAST(name, code); err != nil {
		var se staticError
		if errors.As(err, &se) {
			if loc := se.Loc(); loc.IsSet() {
				if fromEnv {
					return fmt.Errorf("%s %s:%d:%d: the environment variable %s is not valid Jsonnet there (the parser's message is not shown: it quotes the code)", flag, name, loc.Begin.Line, loc.Begin.Column, name)
				}
				return fmt.Errorf("%s %s:%d:%d: %s", flag, name, loc.Begin.Line, loc.Begin.Column, strings.TrimPrefix(se.Error(), loc.String()+" "))
			}
		}
		if fromEnv {
			return fmt.Errorf("%s %s: the environment variable %s is not valid Jsonnet (the parser's message is not shown: it quotes the code)", flag, name, name)
		}
		return fmt.Errorf("%s %s: %v", flag, name, err)
	}
	return nil
}
