package outdir

import (
	"crypto/sha256"
	"slices"
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

// A writer's files come out in path order whether or not the index names
// them all: taken from the index's order when it does, sorted when it
// does not (a new file), or when there is no index.
func TestIndexSortedKeys(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := t.TempDir()
	paths := []string{"s/hosts/b/etc/x", "s/hosts/a/etc/y", "site/index.html", "s/hosts/a/etc/x", "s/manifest.json", "s/hosts/a/etc/x2"}
	storeIndex(out, len(paths), func(yield func(string, indexEntry)) {
		for _, p := range paths {
			yield(p, indexEntry{sum: sha256.Sum256([]byte(p))})
		}
	})
	idx := loadIndex(indexPath(out))
	if idx == nil {
		t.Fatal("index not loaded")
	}
	cases := [][]string{
		paths,                                  // every path the index names
		{"site/index.html", "s/hosts/a/etc/x"}, // some
		{"s/hosts/a/etc/x", "s/hosts/new", "site/index.html"}, // one it does not name
		{"zz", "aa"}, // none it names
		{},
	}
	for _, c := range cases {
		m := map[string]fileEnt{}
		for i, p := range c {
			m[p] = fileEnt{stamp: FileStamp{Size: int64(i)}}
		}
		want := sortedKeys(m)
		for _, x := range []*Index{idx, nil} {
			got, ents := x.sortedEntries(m)
			if !slices.Equal(got, want) {
				t.Errorf("index %v: sortedEntries of %q = %q; want %q", x != nil, c, got, want)
			}
			for i, p := range got {
				if i >= len(ents) || ents[i] != m[p] {
					t.Errorf("index %v: sortedEntries of %q: entry of %s is not its own", x != nil, c, p)
				}
			}
		}
	}
}
