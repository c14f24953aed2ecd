package site

import (
	"fmt"
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

// cueSamples are CUE texts chroma's CUE lexer reads right: the scanner's
// tokens must give every byte chroma's type.
var cueSamples = []string{
	"a: \"x\\(b+1)y\\(c)z\" // hi\n", // chroma ends an interpolation at its first ")"
	"b: \"tab\\there \\u00e9 \\\\ \\\" end\"\n",
	"@attr(x)\nd: 1 @go(Foo,type=int)\n",
	"crlf: 1\r\nx: \"y\"\r\n",
	"no: \"final newline\"",
	"n: [1, 2.5, 0x1F, 1Ki] & [...int]\nm: *true | false\nl: [for k, v in m if v > 1 {k}]\n",
	"package x\n\nimport \"strings\"\n\n#D: {a?: string, b!: int, _h: null}\ne: strings.ToUpper(\"q\")\n",
}

// TestCUETokens compares the scanner-based CUE tokens with chroma's CUE
// lexer on every example stack and on cueSamples: the same text, the
// same type for every byte outside whitespace, the same listing HTML.
func TestCUETokens(t *testing.T) {
	files, _ := filepath.Glob("../stacks/*.cue")
	if len(files) == 0 {
		t.Fatal("no example stacks")
	}
	inputs := map[string]string{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs[f] = string(src)
	}
	for i, s := range cueSamples {
		inputs[fmt.Sprint("sample ", i)] = s
	}
	for name, src := range inputs {
		got, ok := cueTokens(src)
		if !ok {
			t.Fatalf("%s: scanner failed", name)
		}
		want, err := chroma.Tokenise(chroma.Coalesce(lexers.Get("cue")), nil, src)
		if err != nil {
			t.Fatal(err)
		}
		// The listing's HTML, line numbers and all, is chroma's.
		h := newHighlighter()
		var gh, wh strings.Builder
		if err := h.lines.Format(&gh, h.style, chroma.Literator(got...)); err != nil {
			t.Fatal(err)
		}
		if err := h.lines.Format(&wh, h.style, chroma.Literator(want...)); err != nil {
			t.Fatal(err)
		}
		if gh.String() != wh.String() {
			t.Errorf("%s: HTML differs from chroma's", name)
		}
		gs, gt := byteTypes(got)
		ws, wt := byteTypes(want)
		if gs != ws {
			t.Fatalf("%s: text differs from chroma's:\n got %q\nwant %q", name, gs, ws)
		}
		for i := range gt {
			if gt[i] != wt[i] && strings.TrimSpace(gs[i:i+1]) != "" {
				t.Errorf("%s: byte %d (%q): %v, chroma %v", name, i, lineAt(gs, i), gt[i], wt[i])
			}
		}
	}
}

// TestCUETokensBeyondChroma: where chroma's expressions misread CUE, the
// scanner's reading is shown — a quote inside a multi-line string stays
// in the string, a raw string has no escapes but \#n, and its
// interpolation is \#(…).
func TestCUETokensBeyondChroma(t *testing.T) {
	src := "a: \"\"\"\n\tsay \"hi\"\n\t\"\"\"\nb: #\"raw \\n \\#n \\#(x) \\(y)\"#\n"
	toks, ok := cueTokens(src)
	if !ok {
		t.Fatal("scanner failed")
	}
	var got []string
	for _, tk := range toks {
		if strings.TrimSpace(tk.Value) != "" {
			got = append(got, tk.Type.String()+" "+strings.TrimSpace(tk.Value))
		}
	}
	if want := "LiteralString \"\"\"\n\tsay \"hi\"\n\t\"\"\""; len(got) < 3 || got[2] != want {
		t.Fatalf("multi-line string split:\n%s", strings.Join(got, "\n"))
	}
	joined := strings.Join(got, "\n")
	for _, w := range []string{`LiteralStringEscape \#n`, `LiteralStringInterpol \#(`, "Name x", `LiteralStringInterpol )`} {
		if !strings.Contains(joined, w) {
			t.Errorf("missing %q in:\n%s", w, joined)
		}
	}
	if strings.Contains(joined, `LiteralStringEscape \n`) {
		t.Errorf("\\n in a raw string taken for an escape:\n%s", joined)
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
		"x: #\"\\#(a)(", "x: ##\"\\##(a)(", // unterminated after an interpolation: once a panic
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks, ok := cueTokens(s)
		if !ok {
			return
		}
		want := strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
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
	want := []string{"Name a", "Operator :", `LiteralString "x`, `LiteralStringInterpol \(`, "Name b", "Operator +",
		"Punctuation (", "LiteralNumber 1", "Punctuation )", "LiteralStringInterpol )", "LiteralString y",
		`LiteralStringInterpol \(`, "Name c", "LiteralStringInterpol )", `LiteralString z"`, "CommentSingle // hi"}
	if strings.Join(kinds, "\n") != strings.Join(want, "\n") {
		t.Fatalf("tokens:\n%s\nwant:\n%s", strings.Join(kinds, "\n"), strings.Join(want, "\n"))
	}
}
