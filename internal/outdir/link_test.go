package outdir_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/outdir"
)

// TestWriteNeverFollowsLinks: a symbolic link planted in out/ where a
// directory or a file of the build goes is an obstacle, named in the
// error; nothing is written where it points, and it stays.
func TestWriteNeverFollowsLinks(t *testing.T) {
	for _, tc := range []struct{ name, link string }{
		{"directory", "s/hosts/app1/etc/nginx"},
		{"file", "s/hosts/app1/etc/nginx/nginx.conf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, elsewhere := t.TempDir(), t.TempDir()
			tree := outdir.Tree{"s/hosts/app1/etc/nginx/nginx.conf": []byte("new\n"), "s/manifest.json": []byte("{}\n")}
			if _, err := outdir.Write(dir, tree); err != nil {
				t.Fatal(err)
			}
			target := elsewhere
			if tc.name == "file" {
				target = filepath.Join(elsewhere, "nginx.conf")
				if err := os.WriteFile(target, []byte("theirs\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			link := filepath.Join(dir, filepath.FromSlash(tc.link))
			if err := os.RemoveAll(link); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			tree["s/hosts/app1/etc/nginx/nginx.conf"] = []byte("changed\n")
			_, err := outdir.Write(dir, tree)
			if err == nil || !strings.Contains(err.Error(), link+" is a symbolic link") {
				t.Errorf("Write through a link: %v", err)
			}
			ents, _ := os.ReadDir(elsewhere)
			for _, e := range ents {
				if b, _ := os.ReadFile(filepath.Join(elsewhere, e.Name())); e.Name() != "nginx.conf" || string(b) != "theirs\n" {
					t.Errorf("written outside out/: %s: %q", e.Name(), b)
				}
			}
			if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the link was replaced: %v", err)
			}
		})
	}
}
