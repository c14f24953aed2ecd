package artifact

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// shellWords runs one real sh over every value quoted, each printed as
// one argument between markers, and returns what the shell printed.
func shellWords(t testing.TB, vals []string) []string {
	t.Helper()
	var script strings.Builder
	for _, v := range vals {
		fmt.Fprintf(&script, "printf '<%%s>\\n' %s\n", ShellQuote(v))
	}
	if out, err := exec.Command("sh", "-n", "-c", script.String()).CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v: %s\n%s", err, out, script.String())
	}
	out, err := exec.Command("sh", "-c", script.String()).Output()
	if err != nil {
		t.Fatalf("sh: %v\n%s", err, script.String())
	}
	var got []string
	for _, part := range strings.Split(string(out), ">\n") {
		if part != "" {
			got = append(got, strings.TrimPrefix(part, "<"))
		}
	}
	return got
}

// TestShellQuote: what an attacker would write in a stack value (the
// ones found reaching cloud-init's runcmd among them) reaches the
// command as one argument, unchanged, and runs nothing.
func TestShellQuote(t *testing.T) {
	vals := []string{"ops@example.com", "ops@example.com;touch${IFS}/tmp/x;#", "$(id)", "`id`", "a|sh", "a b", "it's",
		"''", "'", "\\", "\\'", "*", "~root", "a\nb", "-n", "$HOME", "!x", "{a,b}", "a&b", "#x", "", "x>y", "日本"}
	got := shellWords(t, vals)
	if len(got) != len(vals) {
		t.Fatalf("%d words back for %d values: %q", len(got), len(vals), got)
	}
	for i, v := range vals {
		if got[i] != v {
			t.Errorf("%q came back as %q (quoted %s)", v, got[i], ShellQuote(v))
		}
	}
	for _, plain := range []string{"ops@example.com", "/etc/letsencrypt/live/example.com/fullchain.pem", "www.example.com"} {
		if q := ShellQuote(plain); q != plain {
			t.Errorf("ShellQuote(%q) = %s: a plain value stays as written", plain, q)
		}
	}
}

// FuzzShellQuote: any value without NUL (which no shell argument can
// hold) reaches sh as one argument, byte for byte.
func FuzzShellQuote(f *testing.F) {
	for _, s := range []string{"ops@example.com;touch${IFS}/tmp/x;#", "$(id)", "it's", "a\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, 0) || strings.Contains(s, ">\n") {
			t.Skip()
		}
		got := shellWords(t, []string{s})
		if len(got) != 1 || got[0] != s {
			t.Fatalf("%q came back as %q (quoted %s)", s, got, ShellQuote(s))
		}
		if !bytes.Equal([]byte(got[0]), []byte(s)) {
			t.Fatal("bytes differ")
		}
	})
}
