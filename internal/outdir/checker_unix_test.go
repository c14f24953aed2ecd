//go:build unix

package outdir_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/outdir"
)

// TestCheckIrregular: where the build writes a file, out/ holds a link
// to an identical copy, a named pipe or a link to an endless device.
// Compare and the checker report each as stale, promptly: neither
// follows the link nor blocks on the pipe nor reads without end. A named
// pipe as the owner record is refused, not read.
func TestCheckIrregular(t *testing.T) {
	dir := t.TempDir()
	tree := outdir.Tree{"s/a.conf": []byte("a\n"), "s/b.conf": []byte("b\n"), "s/c.conf": []byte("c\n"), "s/d.conf": []byte("d\n")}
	if _, err := outdir.Write(dir, tree); err != nil {
		t.Fatal(err)
	}
	at := func(p string) string { return filepath.Join(dir, "s", p) }
	copyOfA := filepath.Join(t.TempDir(), "a.conf")
	os.WriteFile(copyOfA, tree["s/a.conf"], 0o644)
	for p, mk := range map[string]func(string) error{
		"a.conf": func(p string) error { return os.Symlink(copyOfA, p) },
		"b.conf": func(p string) error { return syscall.Mkfifo(p, 0o644) },
		"c.conf": func(p string) error { return os.Symlink("/dev/zero", p) },
	} {
		os.Remove(at(p))
		if err := mk(at(p)); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"s/a.conf", "s/b.conf", "s/c.conf"}
	done := make(chan struct{})
	go func() {
		defer close(done)
		d, err := outdir.Compare(dir, tree)
		if err != nil || !reflect.DeepEqual(d.Stale, want) || len(d.Missing)+len(d.Extra) > 0 {
			t.Errorf("Compare: %+v, %v; want stale %v", d, err, want)
		}
		c, err := outdir.NewChecker(dir)
		if err != nil {
			t.Error(err)
			return
		}
		for p, b := range tree {
			if err := c.Put(p, b); err != nil {
				t.Error(err)
			}
		}
		if d := c.Diff(); !reflect.DeepEqual(d.Stale, want) || len(d.Missing)+len(d.Extra) > 0 {
			t.Errorf("checker: %+v; want stale %v", d, want)
		}
		os.Remove(filepath.Join(dir, outdir.OwnerFile))
		if err := syscall.Mkfifo(filepath.Join(dir, outdir.OwnerFile), 0o644); err != nil {
			t.Error(err)
			return
		}
		if _, err := outdir.Write(dir, tree); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Write with a named pipe as the owner record: %v", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("still comparing after 20 s: a pipe or a device was read")
	}
}
