package outdir_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

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
