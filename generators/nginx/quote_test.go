package nginx

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/testtool"
)

// roundTrip renders s with render into a directive and reads it back
// with the transcription of nginx's tokenizer.
func roundTrip(t testing.TB, render func(string) (string, error), s string) {
	t.Helper()
	tok, err := render(s)
	refuse := strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '$' })
	if refuse {
		if err == nil {
			t.Fatalf("%q rendered as %s; want an error ($ or a control character)", s, tok)
		}
		return
	}
	if err != nil {
		t.Fatalf("%q: unexpected error %v", s, err)
	}
	src := "add_header X-Test " + tok + " always;\n"
	words, kind, next, err := readDirective(src, 0)
	if err != nil || kind != tokEnd {
		t.Fatalf("%q rendered as %s does not parse as one directive: kind %d, %v", s, tok, kind, err)
	}
	if want := []string{"add_header", "X-Test", s, "always"}; !slices.Equal(words, want) {
		t.Fatalf("%q rendered as %s reads back as %q", s, tok, words)
	}
	if _, kind, _, err := readDirective(src, next); err != nil || kind != tokEOF {
		t.Fatalf("%q rendered as %s leaves input behind: kind %d, %v", s, tok, kind, err)
	}
}

// FuzzQuote proves that Quote and word either refuse a value (only for
// "$" and control characters) or produce exactly one token that nginx's
// tokenizer reads back as the value, never ending the directive early or
// opening a block.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{
		"", "plain", "max-age=63072000", `a"b`, `a\b`, `\`, `\"`, `"`, "a;b", "a{b}", "}", "#x",
		"'", "a b", `\n`, "$host", "x\ny", "é", "\x7f", "${", `"\";{`, "/etc/nginx/x.conf", "unix:/run/a.sock",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		roundTrip(t, Quote, s)
		roundTrip(t, word, s)
		if q, err := Quote(s); err == nil && (!strings.HasPrefix(q, `"`) || !strings.HasSuffix(q, `"`) || strings.ContainsAny(q, "\n\r")) {
			t.Fatalf("Quote(%q) = %s, want one double-quoted line", s, q)
		}
	})
}

// TestQuoteNginxAccepts runs tricky quoted values through the real
// nginx parser: a value that broke out of its quotes would end the
// directive early and fail the test.
func TestQuoteNginxAccepts(t *testing.T) {
	nginx := testtool.Require(t, "nginx", "nginx")
	values := []string{`say "hi"`, `back\slash`, `trailing\`, `semi;colon`, `brace{open`, `}`, `#hash`, `it's`, `\n literal`, ``}
	root := t.TempDir()
	var b strings.Builder
	b.WriteString("pid " + root + "/nginx.pid;\nerror_log " + root + "/error.log;\nevents {}\nhttp {\n")
	for _, d := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		b.WriteString(d + "_temp_path " + root + "/" + d + ";\n")
	}
	port := freePort(t, "127.0.0.1")
	b.WriteString("access_log off;\nserver {\nlisten 127.0.0.1:" + port + ";\n")
	for i, v := range values {
		q, err := Quote(v)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("location = /" + string(rune('a'+i)) + " { return 200 " + q + "; }\n")
	}
	b.WriteString("}\n}\n")
	conf := filepath.Join(root, "nginx.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginx, "-t", "-q", "-p", root+"/", "-c", conf).CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Fatalf("nginx -t: %v\n%s\n%s", err, out, b.String())
	}
	// And the parse nginx made is the one the tests' tokenizer makes.
	ds, err := parseConf("q", b.String())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	walk(ds, func(d *directive) {
		if d.name == "return" {
			got = append(got, d.args[1])
		}
	})
	if !slices.Equal(got, values) {
		t.Errorf("tokenizer read back %q, want %q", got, values)
	}

	// Finally nginx itself, serving each value as a response body.
	stop := runNginx(t, nginx, root, conf)
	defer stop()
	for i, v := range values {
		body, _ := get(t, "http://127.0.0.1:"+port+"/"+string(rune('a'+i)), nil)
		if body != v {
			t.Errorf("nginx served %q for %q", body, v)
		}
	}
}
