package outdir_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/outdir"
	"github.com/hacompile/hacompile/internal/par"
)

// TestCheckerIsCompare: files offered one at a time, from several
// goroutines, give the Diff Compare gives for their tree: stale,
// missing and extra files, within a scope and without, and nothing
// when the directory matches. The checker writes nothing.
func TestCheckerIsCompare(t *testing.T) {
	dir := t.TempDir()
	tree := outdir.Tree{}
	for i := range 300 {
		tree[fmt.Sprintf("s/hosts/h%03d/etc/x.conf", i)] = fmt.Appendf(nil, "x %d\n", i)
	}
	tree["s/manifest.json"] = []byte("{}\n")
	tree["site/index.html"] = []byte("<p>\n")
	if _, err := outdir.Write(dir, tree); err != nil {
		t.Fatal(err)
	}
	check := func(tr outdir.Tree, scope ...string) outdir.Diff {
		t.Helper()
		want, err := outdir.Compare(dir, tr, scope...)
		if err != nil {
			t.Fatal(err)
		}
		c, err := outdir.NewChecker(dir, scope...)
		if err != nil {
			t.Fatal(err)
		}
		keys := make([]string, 0, len(tr))
		for p := range tr {
			keys = append(keys, p)
		}
		errs := make([]error, len(keys))
		par.Each(len(keys), func(i int) {
			if i%2 == 0 {
				errs[i] = c.Put(keys[i], tr[keys[i]])
			} else {
				errs[i] = c.PutSum(keys[i], tr[keys[i]], sha256.Sum256(tr[keys[i]]))
			}
		})
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got := c.Diff()
		if len(got.Stale)+len(want.Stale) > 0 && !reflect.DeepEqual(got.Stale, want.Stale) ||
			len(got.Missing)+len(want.Missing) > 0 && !reflect.DeepEqual(got.Missing, want.Missing) ||
			len(got.Extra)+len(want.Extra) > 0 && !reflect.DeepEqual(got.Extra, want.Extra) {
			t.Fatalf("scope %v: checker %+v, Compare %+v", scope, got, want)
		}
		return got
	}
	if d := check(tree); !d.Empty() {
		t.Fatalf("a matching directory: %+v", d)
	}
	// Drift: edited, deleted, and files nothing produces.
	os.WriteFile(filepath.Join(dir, "s/hosts/h007/etc/x.conf"), []byte("edited\n"), 0o644)
	os.Remove(filepath.Join(dir, "s/manifest.json"))
	os.MkdirAll(filepath.Join(dir, "old/hosts/gone"), 0o755)
	os.WriteFile(filepath.Join(dir, "old/hosts/gone/f"), []byte("f\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "s/hosts/h001/etc/stray"), []byte("s\n"), 0o644)
	d := check(tree)
	if len(d.Stale) != 1 || len(d.Missing) != 1 || len(d.Extra) != 2 {
		t.Fatalf("drift: %+v", d)
	}
	check(tree, "s")
	before, _ := os.ReadFile(filepath.Join(dir, "s/hosts/h007/etc/x.conf"))
	if string(before) != "edited\n" {
		t.Fatal("the checker wrote")
	}
}

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
