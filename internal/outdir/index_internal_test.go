package outdir

import (
	"crypto/sha256"
	"testing"
)

// An index is found by halving its entries in path order: one written in
// another order is sorted when loaded, and one naming a path twice is
// not sound.
func TestIndexLookupAnyOrder(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := t.TempDir()
	paths := []string{"s/hosts/b/etc/x", "s/hosts/a/etc/y", "site/index.html", "s/hosts/a/etc/x", "s/manifest.json"}
	entry := func(i int) indexEntry {
		return indexEntry{stamp: FileStamp{Size: int64(i), ModTime: int64(1000 + i)}, sum: sha256.Sum256([]byte(paths[i]))}
	}
	storeIndex(out, len(paths), func(yield func(string, indexEntry)) {
		for i, p := range paths {
			yield(p, entry(i))
		}
	})
	idx := loadIndex(indexPath(out))
	if idx == nil {
		t.Fatal("an index in another order than its paths' was not loaded")
	}
	for i, p := range paths {
		if e, ok := idx.lookup(p); !ok || e != entry(i) {
			t.Errorf("lookup(%q) = %v, %v; want %v", p, e, ok, entry(i))
		}
	}
	for _, p := range []string{"", "s", "s/hosts/a/etc", "s/hosts/c/etc/x", "zzz"} {
		if e, ok := idx.lookup(p); ok {
			t.Errorf("lookup(%q) = %v, found; want none", p, e)
		}
	}

	storeIndex(out, 2, func(yield func(string, indexEntry)) {
		yield(paths[0], entry(0))
		yield(paths[0], entry(1))
	})
	if idx := loadIndex(indexPath(out)); idx != nil {
		t.Errorf("an index naming %s twice was loaded", paths[0])
	}
}
