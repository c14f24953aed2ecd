package gitops_test

import (
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/gitops"
)

// TestWriteTextEscapes: on a terminal (Escape), control characters in a
// rendered file's diff — an OSC title sequence, a C1 CSI — are shown as
// \xNN instead of reaching the terminal; the report's own colours stay.
func TestWriteTextEscapes(t *testing.T) {
	rep := &gitops.Report{Changed: true, Hosts: []gitops.HostDiff{{Stack: "web", Host: "app1", Files: []gitops.FileDiff{{
		Path: "web/hosts/app1/etc/motd",
		Diff: "--- a/etc/motd\n+++ b/etc/motd\n@@ -1 +1 @@\n-old\n+evil\x1b]0;pwned\x07\tx\u009b2J\r\n",
	}}}}}
	var b strings.Builder
	if err := gitops.WriteText(&b, rep, gitops.TextOptions{Color: true, Escape: true}); err != nil {
		t.Fatal(err)
	}
	out := strings.NewReplacer("\x1b[1m", "", "\x1b[31m", "", "\x1b[32m", "", "\x1b[36m", "", "\x1b[0m", "").Replace(b.String())
	if strings.ContainsAny(out, "\x1b\x07\r\u009b") {
		t.Errorf("raw control characters reach the terminal: %q", out)
	}
	if !strings.Contains(out, `+evil\x1b]0;pwned\x07`+"\tx"+`\x9b2J\x0d`+"\n") {
		t.Errorf("escaped line missing: %q", out)
	}
	// A file that is not UTF-8 (latin-1 text, say) with no other control
	// character: its raw 0x9b byte is CSI to a terminal in 8-bit mode.
	latin := &gitops.Report{Changed: true, Hosts: []gitops.HostDiff{{Stack: "web", Host: "app1", Files: []gitops.FileDiff{{
		Path: "web/hosts/app1/etc/motd",
		Diff: "--- a/etc/motd\n+++ b/etc/motd\n@@ -1 +1 @@\n-old\n+caf\xe9 \x9b2J\n",
	}}}}}
	b.Reset()
	if err := gitops.WriteText(&b, latin, gitops.TextOptions{Escape: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `+caf\xe9 \x9b2J`+"\n") {
		t.Errorf("bytes that are not UTF-8 must be escaped on a terminal: %q", b.String())
	}
	b.Reset()
	gitops.WriteText(&b, rep, gitops.TextOptions{})
	if !strings.Contains(b.String(), "\x1b]0;pwned") {
		t.Errorf("without Escape (a pipe) the bytes are as rendered: %q", b.String())
	}
}
