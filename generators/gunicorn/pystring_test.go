package gunicorn

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hacompile/hacompile/internal/testtool"
)

// pyStringCases are the strings worth trying by hand: quotes, escapes,
// controls, invisible and astral characters, and bytes that are not UTF-8.
var pyStringCases = []string{
	"",
	"plain",
	"unix:/run/app/gunicorn.sock",
	`back\slash`,
	`"double" 'single' """triple"""`,
	"line\nfeed\r\ncrlf\ttab",
	"\x00nul\x01\x1f\x7f",
	"trailing backslash \\",
	"\\x41 is not an escape here \\u0041 \\N{BULLET}",
	"{braces} %s %(name)s $HOME",
	"caf\u00e9 \u00ff \u0100 \u4e16\u754c",
	"bidi \u202e override, line sep \u2028, bom \ufeff, nbsp \u00a0",
	"astral \U0001f600 \U0010ffff",
	"replacement \ufffd",
	"bad utf-8 \xff\xfe and a cut \xe4\xb8",
	"\x80",
}

// want is what the literal must decode to: s with every byte that is not
// UTF-8 read as U+FFFD, the way a Go range loop reads it.
func want(s string) string { return string([]rune(s)) }

func checkPyString(t *testing.T, s string) {
	t.Helper()
	q := pyString(s)
	for i := 0; i < len(q); i++ {
		if c := q[i]; c < 0x20 || c > 0x7e {
			t.Fatalf("pyString(%q) = %q: byte %#x at %d is not printable ASCII", s, q, c, i)
		}
	}
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		t.Fatalf("pyString(%q) = %q: not a double-quoted literal", s, q)
	}
	// strconv.Unquote implements Go's escapes; pyString only uses the
	// ones whose meaning Python shares (TestPyStringPython checks that
	// claim against python3 itself).
	got, err := strconv.Unquote(q)
	if err != nil {
		t.Fatalf("pyString(%q) = %q: strconv.Unquote: %v", s, q, err)
	}
	if got != want(s) {
		t.Fatalf("pyString(%q) = %q decodes to %q, want %q", s, q, got, want(s))
	}
	if !utf8.ValidString(got) {
		t.Fatalf("pyString(%q) decodes to invalid UTF-8 %q", s, got)
	}
}

func TestPyString(t *testing.T) {
	t.Parallel()
	for _, s := range pyStringCases {
		checkPyString(t, s)
	}
	if got, want := pyString(`a"b\c`), `"a\"b\\c"`; got != want {
		t.Errorf("pyString = %s, want %s", got, want)
	}
}

func FuzzPyString(f *testing.F) {
	for _, s := range pyStringCases {
		f.Add(s)
	}
	f.Fuzz(checkPyString)
}

// TestPyStringPython has python3 evaluate the literals: the real parser,
// not Go's, decides what the generated file means.
func TestPyStringPython(t *testing.T) {
	t.Parallel()
	py := testtool.Require(t, "python3", "python3")
	inputs := append([]string(nil), pyStringCases...)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		var b strings.Builder
		for range rng.IntN(24) {
			switch rng.IntN(4) {
			case 0:
				b.WriteByte(byte(rng.IntN(256)))
			case 1:
				b.WriteByte(byte(rng.IntN(128)))
			case 2:
				b.WriteRune(rune(rng.IntN(0x3000)))
			default:
				b.WriteRune(rune(rng.IntN(utf8.MaxRune + 1)))
			}
		}
		inputs = append(inputs, b.String())
	}
	var src strings.Builder
	src.WriteString("import json, sys\nvalues = [\n")
	for _, s := range inputs {
		src.WriteString("    " + pyString(s) + ",\n")
	}
	src.WriteString("]\n# Code points, so the comparison does not depend on any encoder.\n")
	src.WriteString("json.dump([[ord(c) for c in v] for v in values], sys.stdout)\n")
	file := filepath.Join(t.TempDir(), "literals.py")
	if err := os.WriteFile(file, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, file).Output()
	if err != nil {
		t.Fatalf("python3 %s: %v\n%s", file, err, stderrOf(err))
	}
	var got [][]rune
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("decoding python output: %v\n%s", err, out)
	}
	if len(got) != len(inputs) {
		t.Fatalf("python returned %d values, want %d", len(got), len(inputs))
	}
	for i, s := range inputs {
		if string(got[i]) != want(s) {
			t.Errorf("python reads %s as %q, want %q", pyString(s), string(got[i]), want(s))
		}
	}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
