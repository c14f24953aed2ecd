package site

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/chroma/v2"
	"github.com/alecthomas/chroma/v2/lexers"
)

// byteTypes is the token type of every byte of a token stream.
func byteTypes(toks []chroma.Token) (string, []chroma.TokenType) {
	var b strings.Builder
	var types []chroma.TokenType
	for _, t := range toks {
		b.WriteString(t.Value)
		for range len(t.Value) {
			types = append(types, t.Type)
		}
	}
	return b.String(), types
}

// TestCUETokens compares the scanner-based CUE tokens with chroma's CUE
// lexer on every example stack: the same text, and the same type for
// every byte outside whitespace.
func TestCUETokens(t *testing.T) {
	files, _ := filepath.Glob("../stacks/*.cue")
	if len(files) == 0 {
		t.Fatal("no example stacks")
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := cueTokens(string(src))
		if !ok {
			t.Fatalf("%s: scanner failed", f)
		}
		want, err := chroma.Tokenise(chroma.Coalesce(lexers.Get("cue")), nil, string(src))
		if err != nil {
			t.Fatal(err)
		}
		gs, gt := byteTypes(got)
		ws, wt := byteTypes(want)
		if gs != ws {
			t.Fatalf("%s: text differs from chroma's", f)
		}
		for i := range gt {
			if gt[i] != wt[i] && strings.TrimSpace(gs[i:i+1]) != "" {
				t.Errorf("%s: byte %d (%q): %v, chroma %v", f, i, lineAt(gs, i), gt[i], wt[i])
			}
		}
	}
}

func lineAt(s string, i int) string {
	a := strings.LastIndexByte(s[:i], '\n') + 1
	b := strings.IndexByte(s[i:], '\n')
	return s[a:i] + "|" + s[i:i+b]
}

// FuzzCUETokens proves the scanner-based tokens lose and invent nothing:
// whatever they split, they give back the text, newline-terminated.
func FuzzCUETokens(f *testing.F) {
	for _, s := range []string{
		"a: \"x\\(b+(1))y\\(c)z\" // hi\n",
		"#D: _|_ & {\n\t@attr(x)\n}\n",
		"b: '''\n  ml\\(q)\n  '''\n",
		"c: #\"raw \\#(d) \\(e)\"#\n",
		"package x\nimport \"strings\"\nl: [for k, v in m if v > 1 {k}]\n",
		"n: 1Ki + 0x1F + 1.5e3\n", "x: \"unterminated\n", "\\", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks, ok := cueTokens(s)
		if !ok {
			return
		}
		want := s
		if !strings.HasSuffix(want, "\n") {
			want += "\n"
		}
		if got, _ := byteTypes(toks); got != want {
			t.Fatalf("text changed:\n in %q\nout %q", want, got)
		}
	})
}

func TestCUETokensInterpolation(t *testing.T) {
	toks, ok := cueTokens("a: \"x\\(b+(1))y\\(c)z\" // hi\n")
	if !ok {
		t.Fatal("scanner failed")
	}
	var kinds []string
	for _, tk := range toks {
		if strings.TrimSpace(tk.Value) != "" {
			kinds = append(kinds, tk.Type.String()+" "+tk.Value)
		}
	}
	want := []string{"Name a", "Operator :", `LiteralString "x\(`, "Name b", "Operator +",
		"Punctuation (", "LiteralNumber 1", "Punctuation )", `LiteralString )y\(`, "Name c",
		`LiteralString )z"`, "CommentSingle // hi"}
	if strings.Join(kinds, "\n") != strings.Join(want, "\n") {
		t.Fatalf("tokens:\n%s\nwant:\n%s", strings.Join(kinds, "\n"), strings.Join(want, "\n"))
	}
}
