package systemd

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// parseExecLine is a reference reader of Exec= lines, written from
// systemd.service(5) and systemd.unit(5), and kept strict: it accepts the
// subset ExecLine should produce and rejects the rest, so output that
// merely happens to work is caught too. TestExecQuoteSystemd holds it
// against systemd's own parser.
func parseExecLine(line string) ([]string, error) {
	// 1. Specifiers, over the whole line.
	var spec strings.Builder
	for i := 0; i < len(line); i++ {
		if line[i] != '%' {
			spec.WriteByte(line[i])
			continue
		}
		if i+1 < len(line) && line[i+1] == '%' {
			spec.WriteByte('%')
			i++
			continue
		}
		return nil, errors.New("a specifier would be expanded: " + strconv.Quote(line[i:]))
	}
	s := spec.String()
	// 2. Words: bare, or one double-quoted string with C escapes.
	var words []string
	for i := 0; i < len(s); {
		if s[i] == ' ' {
			i++
			continue
		}
		if s[i] != '"' {
			j := strings.IndexByte(s[i:], ' ')
			if j < 0 {
				j = len(s) - i
			}
			w := s[i : i+j]
			if strings.ContainsAny(w, "\\\"'\t\r\n") {
				return nil, errors.New("bare word with quotes, escapes or whitespace: " + strconv.Quote(w))
			}
			if w == ";" {
				return nil, errors.New("a lone ; separates commands")
			}
			words = append(words, w)
			i += j
			continue
		}
		var w []byte
		i++
		for {
			if i >= len(s) {
				return nil, errors.New("unterminated quote")
			}
			c := s[i]
			if c == '"' {
				i++
				break
			}
			if c < 0x20 || c >= 0x7f {
				return nil, errors.New("raw control or non-ASCII byte inside quotes")
			}
			if c != '\\' {
				w = append(w, c)
				i++
				continue
			}
			if i+1 >= len(s) {
				return nil, errors.New("dangling backslash")
			}
			switch n := s[i+1]; n {
			case '\\', '"':
				w = append(w, n)
				i += 2
			case 'n', 't', 'r':
				w = append(w, map[byte]byte{'n': '\n', 't': '\t', 'r': '\r'}[n])
				i += 2
			case 'x':
				if i+4 > len(s) {
					return nil, errors.New("short \\x escape")
				}
				v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
				if err != nil || v == 0 {
					return nil, errors.New("bad \\x escape " + strconv.Quote(s[i:i+4]))
				}
				w = append(w, byte(v))
				i += 4
			default:
				return nil, errors.New("escape systemd would not read as meant: " + strconv.Quote(s[i:i+2]))
			}
		}
		if i < len(s) && s[i] != ' ' {
			return nil, errors.New("quoted word continues after its closing quote")
		}
		words = append(words, string(w))
	}
	// 3. Environment: "$$" is a dollar; any other "$" would expand.
	for k, w := range words {
		var b strings.Builder
		for i := 0; i < len(w); i++ {
			if w[i] != '$' {
				b.WriteByte(w[i])
				continue
			}
			if i+1 < len(w) && w[i+1] == '$' {
				b.WriteByte('$')
				i++
				continue
			}
			return nil, errors.New("a $ would expand: " + strconv.Quote(w))
		}
		words[k] = b.String()
	}
	return words, nil
}

var execQuoteCases = []string{
	"",
	"plain",
	"/srv/app/venv/bin/gunicorn",
	"127.0.0.1:8000",
	"-I/srv/my app/lib",
	"two words",
	"tab\there",
	"new\nline\r\n",
	`"double"`,
	`'single'`,
	`back\slash\`,
	`\;`,
	";",
	"a;b",
	"%",
	"%n%i%%",
	"$HOME",
	"${HOME}",
	"$$",
	"cost: $5 or 50%",
	"#not a comment",
	"\x01\x1f\x7f",
	"caf\u00e9 \u4e16\u754c \U0001f600",
	"bad utf-8 \xff\xfe\xe4\xb8",
	"`backtick` (paren) <angle> |pipe| &amp *glob? [x] !bang ~tilde",
	"trailing space ",
	" leading space",
	"=",
	"@at",
	"-dash",
}

func TestExecQuote(t *testing.T) {
	t.Parallel()
	exact := map[string]string{
		"plain":         "plain",
		"/srv/app.psgi": "/srv/app.psgi",
		"":              `""`,
		"two words":     `"two words"`,
		"$HOME":         "$$HOME",
		"50%":           "50%%",
		";":             `";"`,
		`a"b\c`:         `"a\"b\\c"`,
		"\xff":          `"\xff"`,
		"x y$%":         `"x y$$%%"`,
	}
	for in, want := range exact {
		if got, err := ExecQuote(in); err != nil || got != want {
			t.Errorf("ExecQuote(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, c := range execQuoteCases {
		checkExecLine(t, "/bin/echo", c, "after")
	}
	if _, err := ExecQuote("nul\x00byte"); err == nil {
		t.Error("ExecQuote accepted a NUL byte")
	}
	if _, err := ExecLine("gunicorn", "--config"); err == nil {
		t.Error("ExecLine accepted a relative executable")
	}
	if _, err := ExecLine("-/bin/true"); err == nil {
		t.Error("ExecLine accepted a prefixed executable")
	}
}

func checkExecLine(t *testing.T, argv ...string) {
	t.Helper()
	line, err := ExecLine(argv...)
	if err != nil {
		t.Fatalf("ExecLine(%q): %v", argv, err)
	}
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < 0x20 || c > 0x7e {
			t.Fatalf("ExecLine(%q) = %q: byte %#x is not printable ASCII", argv, line, c)
		}
	}
	got, err := parseExecLine(line)
	if err != nil {
		t.Fatalf("ExecLine(%q) = %q: %v", argv, line, err)
	}
	if !slices.Equal(got, argv) {
		t.Fatalf("ExecLine(%q) = %q reads back as %q", argv, line, got)
	}
}

func FuzzExecQuote(f *testing.F) {
	for _, c := range execQuoteCases {
		f.Add(c, "x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if strings.IndexByte(a+b, 0) >= 0 {
			if _, err := ExecLine("/bin/echo", a, b); err == nil {
				t.Fatalf("ExecLine accepted a NUL in %q %q", a, b)
			}
			return
		}
		checkExecLine(t, "/bin/echo", a, b)
	})
}

// TestExecQuoteSystemd has systemd itself parse quoted lines: the hand
// cases and random bytes go into one unit, and systemd's dump of the
// loaded unit must show every argument intact. The dump is taken before
// $VAR expansion, which turns each "$$" into "$" when the command runs.
func TestExecQuoteSystemd(t *testing.T) {
	t.Parallel()
	inputs := append([]string(nil), execQuoteCases...)
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte(" \t\n\"'\\;%$#{}=:-@/ab")
	for range 200 {
		b := make([]byte, rng.IntN(16))
		for i := range b {
			if rng.IntN(2) == 0 {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				b[i] = byte(1 + rng.IntN(255))
			}
		}
		inputs = append(inputs, string(b))
	}
	var unit strings.Builder
	unit.WriteString("[Service]\nType=oneshot\n")
	for _, in := range inputs {
		line, err := ExecLine("/bin/echo", in, "end")
		if err != nil {
			t.Fatal(err)
		}
		unit.WriteString("ExecStart=" + line + "\n")
	}
	dir := readableTempDir(t)
	if err := os.WriteFile(filepath.Join(dir, "hacompile-quote.service"), []byte(unit.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	verify(t, nil, "systemd-analyze verify "+filepath.Join(dir, "hacompile-quote.service"))
	cmds := dump(t, dir, "hacompile-quote.service").commands(t, "ExecStart")
	if len(cmds) != len(inputs) {
		t.Fatalf("systemd loaded %d commands, want %d", len(cmds), len(inputs))
	}
	for i, in := range inputs {
		want := []string{"/bin/echo", strings.ReplaceAll(in, "$", "$$"), "end"}
		if !slices.Equal(cmds[i], want) {
			t.Errorf("systemd reads %q as %q, want %q", in, cmds[i], want)
		}
	}
}
