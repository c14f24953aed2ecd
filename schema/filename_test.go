package schema_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/hacompile/hacompile/schema"
)

func TestCheckFileName(t *testing.T) {
	good := []string{"shop.cue", "stacks/do-python-ha.cue", "/abs/dir with space/a1.jsonnet", "../x/lib.libsonnet", "a.cue"}
	bad := []string{"evil\nX-Injected: 1.cue", "stacks/x\n.cue", "dir\nname/shop.cue", "Shop.cue", "1shop.cue", "shop.json",
		"shop", "-x.cue", "shop.cue\r", "a\x1b[31m.cue", "sh op.cue", ".cue", strings.Repeat("a", 64) + ".cue", "caf\xe9.cue"}
	for _, p := range good {
		if err := schema.CheckFileName(p); err != nil {
			t.Errorf("CheckFileName(%q) = %v", p, err)
		}
	}
	for _, p := range bad {
		if err := schema.CheckFileName(p); err == nil {
			t.Errorf("CheckFileName(%q) accepted", p)
		} else if strings.ContainsAny(err.Error(), "\n\r\x1b") {
			t.Errorf("CheckFileName(%q): message holds a control character: %q", p, err)
		}
	}
}

// FuzzCheckFileName: an accepted name has no unprintable character and
// its base name is the #Name grammar plus an extension; a refusal's
// message is one printable line.
func FuzzCheckFileName(f *testing.F) {
	for _, s := range []string{"shop.cue", "stacks/a-b.jsonnet", "x\n.cue", "A.cue", "a.libsonnet", "dir/\x00/a.cue"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		err := schema.CheckFileName(p)
		if err != nil {
			if strings.IndexFunc(err.Error(), func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 {
				t.Fatalf("message %q is not printable", err)
			}
			return
		}
		if strings.IndexFunc(p, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 {
			t.Fatalf("accepted %q with an unprintable character", p)
		}
		base := p[strings.LastIndex(p, "/")+1:]
		dot := strings.LastIndex(base, ".")
		name, ext := base[:dot], base[dot:]
		if ext != ".cue" && ext != ".jsonnet" && ext != ".libsonnet" || len(name) < 1 || len(name) > 63 || name[0] < 'a' || name[0] > 'z' {
			t.Fatalf("accepted %q", p)
		}
		for _, r := range name {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				t.Fatalf("accepted %q", p)
			}
		}
	})
}
