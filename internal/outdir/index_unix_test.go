//go:build unix

package outdir_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/outdir"
)

// A link planted where the index knows a file, with the file's stamp
// (size and modification time), is not taken for the file: the write
// names it as an obstacle, as without an index.
func TestIndexNeverTrustsALink(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := t.TempDir()
	tree := outdir.Tree{"s/hosts/a/etc/x.conf": []byte("xxxx\n"), "s/manifest.json": []byte("{}\n")}
	writeIndexed(t, out, tree, true)
	x := filepath.Join(out, "s/hosts/a/etc/x.conf")
	fi, err := os.Stat(x)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(x); err != nil {
		t.Fatal(err)
	}
	// A link's size is its target's length: five bytes, as the file's.
	outdir.LinkWithStamp(t, x, "../zz", fi)
	w := newWriter(t, out, true)
	err = w.Write(tree)
	if err == nil || !strings.Contains(err.Error(), x+" is a symbolic link") {
		t.Errorf("a link with an indexed file's stamp: %v", err)
	}
	w.Abort()
}
