package outdir

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestListFilesAsReadDir: the openat/fstatat walk lists and stamps what
// os.ReadDir and Lstat find — files, links (to files, to directories,
// dangling: not followed), a FIFO, files in deep and empty directories,
// the owner record at the top (left out) and below it (a file like any
// other) — whether the levels are read by path or walked depth first.
func TestListFilesAsReadDir(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, s string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(OwnerFile, "record")
	write("top.txt", "top")
	for i := range 40 {
		write(fmt.Sprintf("s/hosts/h%d/etc/a/b/c.conf", i), fmt.Sprint(i))
		write(fmt.Sprintf("s/hosts/h%d/etc/x", i), "xx")
		write(fmt.Sprintf("s/hosts/h%d/%s", i, OwnerFile), "not the record")
	}
	for _, d := range []string{"empty", "s/hosts/h3/empty/deeper"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(d)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, to := range map[string]string{"s/link-file": "../top.txt", "s/link-dir": "hosts", "s/hosts/h1/dangling": "nowhere"} {
		if err := os.Symlink(to, filepath.Join(dir, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "s", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, stamped := range []bool{false, true} {
		want, err := listFilesReadDir(dir, stamped)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) != 1+40*3+4 {
			t.Fatalf("os.ReadDir lists %d files", len(want))
		}
		for _, deep := range []int{1000000, 1, 0} {
			deepLevel = deep
			got, err := listFiles(dir, stamped)
			deepLevel = 16
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, want) {
				t.Errorf("stamped %v, deep from %d per core: listed\n%v\nwant\n%v", stamped, deep, got, want)
			}
		}
	}
	if _, err := listFiles(filepath.Join(dir, "missing"), false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: %v, want one that is fs.ErrNotExist", err)
	}
	if _, err := listFiles(filepath.Join(dir, "top.txt"), false); err == nil {
		t.Error("a file listed as a directory")
	}
}
