package site

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
)

// relSplit is rel as a plain split of both paths into directories: the
// reference the allocation-free walk of rel must agree with.
func relSplit(from, to string) string {
	target, frag, _ := strings.Cut(to, "#")
	if frag != "" {
		frag = "#" + frag
	}
	if target == from {
		return frag
	}
	fromDir := path.Dir(from)
	if fromDir == "." {
		return target + frag
	}
	fd := strings.Split(fromDir, "/")
	td := strings.Split(path.Dir(target), "/")
	if path.Dir(target) == "." {
		td = nil
	}
	i := 0
	for i < len(fd) && i < len(td) && fd[i] == td[i] {
		i++
	}
	up := strings.Repeat("../", len(fd)-i)
	rest := append(slices.Clone(td[i:]), path.Base(target))
	return up + strings.Join(rest, "/") + frag
}

func TestRelAgreesWithSplit(t *testing.T) {
	paths := []string{
		"index.html", "a.html", "web/index.html", "web/procedures.html", "web/hosts/app1.html",
		"web/hosts/app1.html#file-x", "web/source.html#L12", "webx/hosts/app1.html", "web/hosts/x/y.html",
		"other/hosts/app1.html", "web/same/ab.html", "w/index.html", "web/hosts/", "#top", "web/#x",
		"a/b/c/d.html", "a/b/e/f.html", "a/x.html", "a/b/c/d.html#q", "/abs/x.html", "/abs/y/z.html",
	}
	for _, from := range paths {
		if strings.Contains(from, "#") {
			continue
		}
		for _, to := range paths {
			if got, want := rel(from, to), relSplit(from, to); got != want {
				t.Errorf("rel(%q, %q) = %q, want %q", from, to, got, want)
			}
		}
	}
}

func TestEscapeToAsHTMLEscape(t *testing.T) {
	for _, s := range []string{"", "plain", `a<b>&"c'd` + "\x00e+f", "<<>>", "ünï&cøde"} {
		var a, b strings.Builder
		escapeTo(&a, s)
		escapeHTMLReference(&b, s)
		if a.String() != b.String() {
			t.Errorf("escapeTo(%q) = %q, want %q", s, a.String(), b.String())
		}
	}
}

func escapeHTMLReference(b *strings.Builder, s string) { template.HTMLEscape(b, []byte(s)) }

func TestOctal4AsPrintf(t *testing.T) {
	for _, m := range []uint32{0, 7, 0o44, 0o600, 0o644, 0o755, 0o1777, 0o777} {
		perm := fs.FileMode(m).Perm()
		if got, want := octal4(uint32(perm)), fmt.Sprintf("%04o", perm); got != want {
			t.Errorf("octal4(%o) = %q, want %q", m, got, want)
		}
	}
}

func TestCmpJoinedAsJoined(t *testing.T) {
	parts := []string{"", "a", "ab", "a\x00", "a\x00b", "b", "\x00", "a\x01", "abc"}
	sign := func(c int) int { return min(max(c, -1), 1) }
	for _, a1 := range parts {
		for _, a2 := range parts {
			for _, b1 := range parts {
				for _, b2 := range parts {
					want := strings.Compare(a1+"\x00"+a2, b1+"\x00"+b2)
					if got := cmpJoined(a1, a2, b1, b2); sign(got) != want {
						t.Errorf("cmpJoined(%q, %q, %q, %q) = %d, want %d", a1, a2, b1, b2, got, want)
					}
				}
			}
		}
	}
}

func TestEntryJSONAsMarshal(t *testing.T) {
	strs := []string{"", "plain text", "a <b> & \"c\" \\ d", "tab\there\nnl", "ünï · cøde", "\x7f\x01", "bad \xff utf8", "\u2028"}
	for _, k := range strs {
		for _, x := range strs {
			e := searchEntry{Kind: "file", Title: k, Text: x, URL: k + "/u.html"}
			want, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := appendEntryJSON(&b, e); err != nil {
				t.Fatal(err)
			}
			if b.String() != string(want) {
				t.Errorf("appendEntryJSON(%#v) = %s, want %s", e, b.String(), want)
			}
		}
	}
}
