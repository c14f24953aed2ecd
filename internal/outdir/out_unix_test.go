//go:build unix

package outdir_test

import (
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/hacompile/hacompile/internal/outdir"
)

// TestWriteModes: written files are 0644 whatever the umask, no
// temporary file is left beside them, and a path whose directory is a
// file fails with the path named.
func TestWriteModes(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	tree := outdir.Tree{"s/hosts/a/etc/x.conf": []byte("x\n"), "s/manifest.json": []byte("{}\n")}
	if _, err := outdir.Write(dir, tree); err != nil {
		t.Fatal(err)
	}
	var names []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if !d.IsDir() {
			fi, _ := d.Info()
			names = append(names, d.Name())
			if fi.Mode().Perm() != 0o644 {
				t.Errorf("%s: mode %04o under umask 077, want 0644", p, fi.Mode().Perm())
			}
		}
		return nil
	})
	if slices.Sort(names); !slices.Equal(names, []string{outdir.OwnerFile, "manifest.json", "x.conf"}) {
		t.Errorf("files after write: %v", names)
	}
	bad := outdir.Tree{"s/manifest.json/inner": []byte("x\n")}
	if _, err := outdir.Write(dir, bad); err == nil || !strings.Contains(err.Error(), "s/manifest.json") {
		t.Errorf("writing under a file: %v, want an error naming s/manifest.json", err)
	}
}
