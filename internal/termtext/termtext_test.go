package termtext

import "testing"

func TestEscape(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain text\tand\nlines", "plain text\tand\nlines"},
		{"é ü → 世界", "é ü → 世界"},
		{"title\x1b]0;pwned\x07", `title\x1b]0;pwned\x07`},
		{"cr\r del\x7f", `cr\x0d del\x7f`},
		{"c1 csi \u009b2J", `c1 csi \x9b2J`},
		// Bytes that are not UTF-8 are escaped whether or not the text
		// holds anything else to escape: a raw 0x9b is CSI to a
		// terminal in 8-bit mode.
		{"latin-1 \x9b2J", `latin-1 \x9b2J`},
		{"caf\xe9", `caf\xe9`},
		{"bidi \u202egnp.exe", `bidi \u202egnp.exe`},
		{"sep\u2028x\u2029", `sep\u2028x\u2029`},
		{"", ""},
	} {
		if got := Escape(c.in); got != c.want {
			t.Errorf("Escape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzEscape: what Escape returns is UTF-8 with nothing left to escape,
// and text with nothing to escape comes back as it was.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"a\x1b[2J", "caf\xe9", "\u202e", "ok\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Escape(s)
		if !clean(got) {
			t.Fatalf("Escape(%q) = %q still holds something to escape", s, got)
		}
		if clean(s) && got != s {
			t.Fatalf("Escape(%q) = %q changed clean text", s, got)
		}
	})
}
