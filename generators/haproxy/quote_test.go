package haproxy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hacompile/hacompile/internal/testtool"
)

// parseWords is a model of HAProxy 2.6's line tokenizer (configuration
// manual 2.2 and 2.3) for one line: it returns the words, with quotes and
// escapes resolved, and reports environment-variable expansion (which
// would make the value depend on the host) as an error. It is checked
// against haproxy itself in TestQuoteMatchesHAProxy.
func parseWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	const (
		none = iota
		weak
		strong
	)
	q := none
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch q {
		case strong:
			if c == '\'' {
				q = none
			} else {
				cur.WriteByte(c)
			}
			continue
		case weak:
			switch c {
			case '"':
				q = none
			case '\\':
				if i+1 >= len(line) {
					return nil, fmt.Errorf("trailing backslash")
				}
				i++
				cur.WriteByte(line[i])
			case '$':
				return nil, fmt.Errorf("environment variable expansion at %d", i)
			default:
				cur.WriteByte(c)
			}
			continue
		}
		switch c {
		case ' ', '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			continue
		case '#':
			if !inWord {
				return words, nil
			}
			return nil, fmt.Errorf("unescaped # inside a word at %d", i)
		case '\'':
			q = strong
		case '"':
			q = weak
		case '\\':
			if i+1 >= len(line) {
				return nil, fmt.Errorf("trailing backslash")
			}
			i++
			cur.WriteByte(line[i])
		default:
			cur.WriteByte(c)
		}
		inWord = true
	}
	if q != none {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

var quoteSeeds = []string{
	"", "plain", "with space", "it's", `say "hi"`, `back\slash`, "#hash", "a#b", "$HOME", "${HAPROXY_STATS_PASSWORD}",
	`'"$\#`, "tab\there", "ünïcödé", "' '", `\`, `"`, "'", "$", "a b'c\"d$e\\f#g", "{ acl }", "(x)", "!not",
}

// FuzzQuote: every string is either refused (control characters only)
// or quoted into exactly one word that reads back as itself, with no
// environment expansion; word() agrees, and leaves only safe strings
// bare.
func FuzzQuote(f *testing.F) {
	for _, s := range quoteSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Quote(s)
		hasCtl := strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
		if hasCtl {
			if err == nil {
				t.Fatalf("Quote(%q) accepted a control character: %q", s, q)
			}
			return
		}
		if err != nil {
			t.Fatalf("Quote(%q): %v", s, err)
		}
		for _, v := range []string{q, mustWord(t, s)} {
			if strings.ContainsAny(v, "\n\r") {
				t.Fatalf("%q spans lines", v)
			}
			words, err := parseWords("kw " + v + " next")
			if err != nil {
				t.Fatalf("%q (for %q): %v", v, s, err)
			}
			if len(words) != 3 || words[1] != s || words[2] != "next" {
				t.Fatalf("%q reads back as %q, want [kw %q next]", v, words, s)
			}
		}
	})
}

func mustWord(t *testing.T, s string) string {
	t.Helper()
	w, err := word(s)
	if err != nil {
		t.Fatalf("word(%q): %v", s, err)
	}
	return w
}

// TestQuoteMatchesHAProxy asks haproxy itself what the quoted words mean:
// ".notice <word>" makes it print the one word it parsed (and fail when
// there is more than one), so each seed must come back unchanged.
func TestQuoteMatchesHAProxy(t *testing.T) {
	bin := testtool.Require(t, "haproxy", "haproxy")
	var cfg strings.Builder
	var want []string
	for _, s := range quoteSeeds {
		if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 }) || !utf8.ValidString(s) {
			continue
		}
		for _, v := range []string{mustQuote(t, s), mustWord(t, s)} {
			cfg.WriteString(".notice " + v + "\n")
			want = append(want, s)
		}
	}
	p := filepath.Join(t.TempDir(), "q.cfg")
	if err := os.WriteFile(p, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", "-f", p)
	// An environment that would show through if anything were expanded.
	cmd.Env = append(os.Environ(), "HOME=/expanded", "HAPROXY_STATS_PASSWORD=expanded")
	out, _ := cmd.CombinedOutput()
	re := regexp.MustCompile(`parsing \[[^\]]*:(\d+)\]: '(.*)'\.$`)
	got := map[int]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "[ALERT]") && strings.Contains(l, "parsing [") {
			t.Errorf("haproxy: %s", l)
		}
		if m := re.FindStringSubmatch(l); m != nil {
			var n int
			fmt.Sscan(m[1], &n)
			got[n] = m[2]
		}
	}
	for i, s := range want {
		if g, ok := got[i+1]; !ok || g != s {
			t.Errorf("line %d: haproxy read %q (found %v), want %q", i+1, g, ok, s)
		}
	}
}

func mustQuote(t *testing.T, s string) string {
	t.Helper()
	q, err := Quote(s)
	if err != nil {
		t.Fatalf("Quote(%q): %v", s, err)
	}
	return q
}

// TestModelMatchesHAProxy guards the fuzz oracle itself: words written in
// every quoting style HAProxy knows parse the same in the model as in
// haproxy.
func TestModelMatchesHAProxy(t *testing.T) {
	bin := testtool.Require(t, "haproxy", "haproxy")
	forms := []string{`a\ b`, `"a b"`, `'a b'`, `"x'y"`, `'x"y'`, `\#x`, `"\$x"`, `'$x'`, `a"b c"d`, `'a'"b"c`, `"\\"`, `'\'`}
	var cfg strings.Builder
	for _, f := range forms {
		cfg.WriteString(".notice " + f + "\n")
	}
	p := filepath.Join(t.TempDir(), "m.cfg")
	if err := os.WriteFile(p, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(bin, "-c", "-f", p).CombinedOutput()
	re := regexp.MustCompile(`parsing \[[^\]]*:(\d+)\]: '(.*)'\.$`)
	got := map[int]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			var n int
			fmt.Sscan(m[1], &n)
			got[n] = m[2]
		}
	}
	for i, f := range forms {
		w, err := parseWords(f)
		if err != nil || len(w) != 1 {
			t.Errorf("model: %q → %q, %v", f, w, err)
			continue
		}
		if g, ok := got[i+1]; !ok || g != w[0] {
			t.Errorf("%q: haproxy read %q (found %v), model %q", f, g, ok, w[0])
		}
	}
}
