package site

import (
	"slices"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/compile"
)

func TestRel(t *testing.T) {
	for _, c := range []struct{ from, to, want string }{
		{"index.html", "stacks/a/index.html", "stacks/a/index.html"},
		{"stacks/a/index.html", "index.html", "../../index.html"},
		{"stacks/a/index.html", "stacks/a/source.html#L3", "source.html#L3"},
		{"stacks/a/hosts/h.html", "stacks/a/source.html#L3", "../source.html#L3"},
		{"stacks/a/hosts/h.html", "stacks/a/hosts/h.html#file-x", "#file-x"},
		{"stacks/a/hosts/h.html", "stacks/b/hosts/g.html", "../../b/hosts/g.html"},
		{"stacks/a/index.html", "assets/x.css", "../../assets/x.css"},
	} {
		if got := rel(c.from, c.to); got != c.want {
			t.Errorf("rel(%q, %q) = %q, want %q", c.from, c.to, got, c.want)
		}
	}
}

func TestLexerFor(t *testing.T) {
	for p, want := range map[string]string{
		"etc/nginx/nginx.conf":                              "nginx",
		"etc/nginx/conf.d/shop.conf":                        "nginx",
		"etc/nginx/ffdhe2048.pem":                           "plaintext",
		"etc/haproxy/haproxy.cfg":                           "ini", // chroma has no HAProxy lexer
		"etc/haproxy/certs/.hacompile":                      "plaintext",
		"etc/systemd/system/shop.service":                   "systemd",
		"etc/systemd/system/nginx.service.d/hacompile.conf": "systemd",
		"etc/shop/gunicorn.conf.py":                         "python",
		"cloud-init/app1.yaml":                              "plaintext",
		"etc/letsencrypt/renewal-hooks/deploy/hook.sh":      "bash",
		"etc/sysctl.d/60-hacompile.conf":                    "ini",
		"aws/launch-template.json":                          "json",
		"stacks/shop.cue":                                   "cue",
	} {
		if got := lexerFor(p); got != want {
			t.Errorf("lexerFor(%q) = %q, want %q", p, got, want)
		}
	}
}

// TestListingMemo: the same bytes are highlighted once, whatever page
// shows them.
func TestListingMemo(t *testing.T) {
	h := newHighlighter()
	conf := []byte("server {\n    listen 80;\n}\n")
	a := h.listing("nginx", conf)
	b := h.listing("nginx", append([]byte(nil), conf...))
	c := h.listing("nginx", []byte("events {}\n"))
	if a != b || h.Calls != 3 || h.Misses != 2 {
		t.Fatalf("calls %d, misses %d; same listing: %v", h.Calls, h.Misses, a == b)
	}
	if a == c || !strings.Contains(string(a), `class="chroma"`) {
		t.Fatalf("unexpected listings: %s / %s", a, c)
	}
}

func TestSentences(t *testing.T) {
	got := sentences("does the host answer ping and ssh? If it does, run `systemctl status x. Y` there. If not, check the console.")
	want := []string{"does the host answer ping and ssh?", "If it does, run `systemctl status x. Y` there.", "If not, check the console."}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q", got)
	}
}

func TestChangedFiles(t *testing.T) {
	f := func(host, path, content, kind string) artifact.File {
		return artifact.File{Host: host, Path: path, Content: []byte(content), Mode: 0o644, Owner: "root:root", Kind: kind, Reload: artifact.ParseAction("r " + path)}
	}
	old := []artifact.File{
		f("", "cloud-init/a.yaml", "x", "cloud-init"), // assembled: never compared
		f("", "stack.json", "1", "x"),
		f("a", "etc/k", "same", "x"),
		f("a", "etc/m", "old", "x"),
		f("b", "etc/gone", "x", "x"),
	}
	cur := []artifact.File{
		f("", "stack.json", "1", "x"),
		f("a", "etc/k", "same", "x"),
		f("a", "etc/l", "new", "x"),
		f("a", "etc/m", "new", "x"),
		f("c", "etc/k", "x", "x"),
	}
	mode := cur[1]
	mode.Mode = 0o600
	var got []string
	for _, c := range changedFiles(compile.Builtin(), old, cur) {
		got = append(got, c.Host+" "+c.Path+" "+c.Change+" "+c.Reload)
	}
	want := []string{"a /etc/l added r etc/l", "a /etc/m changed r etc/m", "b /etc/gone removed ", "c /etc/k added r etc/k"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if cs := changedFiles(compile.Builtin(), cur, append(slices.Clone(cur[:1]), append([]artifact.File{mode}, cur[2:]...)...)); len(cs) != 1 || cs[0].Change != "changed" {
		t.Fatalf("a mode change: %+v", cs)
	}
}
