package outdir_test

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/outdir"
)

// writeIndexed writes tree into out as a build does: with the digest
// index of the last build, stored again after it.
func writeIndexed(t *testing.T, out string, tree outdir.Tree, index bool) map[string]*outdir.Stats {
	t.Helper()
	w := newWriter(t, out, index)
	if err := w.Write(tree); err != nil {
		t.Fatal(err)
	}
	stats, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	w.StoreIndex()
	return stats
}

// newWriter is a writer of out, with the digest index of its last build
// when index is set.
func newWriter(t *testing.T, out string, index bool) *outdir.Writer {
	t.Helper()
	w, err := outdir.NewWriter(out)
	if err != nil {
		t.Fatal(err)
	}
	if index {
		w.UseIndex(outdir.StartIndex(out).Wait())
	}
	return w
}

// plant replaces the file at p with b (the same length as its content)
// and gives it back its modification time: a change that size and mtime
// cannot see; the inode's change time (ctime), which no program can set
// back, can.
func plant(t *testing.T, p string, b []byte) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != fi.Size() {
		t.Fatalf("plant: %d bytes for a file of %d", len(b), fi.Size())
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// TestDigestIndex: a file whose stamp the index recorded is known
// unchanged without being read; a change of the rendered content is
// written, also without reading the old file; a file changed in place to
// its old size and mtime (on Linux, where the stamp holds the ctime),
// or whose stamp moved, is read and compared; and an index that is
// garbled is not used at all.
func TestDigestIndex(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := t.TempDir()
	tree := outdir.Tree{
		"s/hosts/a/etc/x.conf": []byte("xxxx\n"),
		"s/hosts/b/etc/x.conf": []byte("bbbb\n"),
		"s/manifest.json":      []byte("{}\n"),
	}
	writeIndexed(t, out, tree, true)
	x := filepath.Join(out, "s/hosts/a/etc/x.conf")
	b := filepath.Join(out, "s/hosts/b/etc/x.conf")
	reads := outdir.CountReads(t)

	// Trusted: nothing in out/ is read.
	tree["s/hosts/b/etc/x.conf"] = []byte("BBBB\n")
	st := writeIndexed(t, out, tree, true)
	if n := reads.Swap(0); n != 0 {
		t.Errorf("%d files of out/ read; the index knows them all", n)
	}
	if got, _ := os.ReadFile(b); string(got) != "BBBB\n" {
		t.Errorf("a changed file: %q", got)
	}
	if st["s"].Written != 1 || st["s"].Unchanged != 2 {
		t.Errorf("stats %+v, want 1 written, 2 unchanged", *st["s"])
	}

	if runtime.GOOS == "linux" {
		// Edited in place, its size and mtime as they were: the ctime
		// moved, so it is read, found different and written again.
		plant(t, x, []byte("yyyy\n"))
		st = writeIndexed(t, out, tree, true)
		if got, _ := os.ReadFile(x); string(got) != "xxxx\n" {
			t.Errorf("a file edited in place to its old size and mtime was kept: %q", got)
		}
		if n := reads.Swap(0); n != 1 || st["s"].Written != 1 {
			t.Errorf("%d files read, stats %+v; want the edited one read and written", n, *st["s"])
		}
	}

	// A stamp that moved: the file is read, found different, rewritten.
	if err := os.WriteFile(x, []byte("vvvv\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(x, later, later); err != nil {
		t.Fatal(err)
	}
	writeIndexed(t, out, tree, true)
	if got, _ := os.ReadFile(x); string(got) != "xxxx\n" {
		t.Errorf("a file whose stamp moved was not compared: %q", got)
	}
	reads.Store(0)

	// A garbled index is not used: every file is read.
	cache, _ := os.UserCacheDir()
	idx, err := filepath.Glob(filepath.Join(cache, "hacompile", "build-*.index"))
	if err != nil || len(idx) != 1 {
		t.Fatalf("index files %v %v", idx, err)
	}
	raw, err := os.ReadFile(idx[0])
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-3] ^= 1 // a path's letter
	if err := os.WriteFile(idx[0], raw, 0o644); err != nil {
		t.Fatal(err)
	}
	writeIndexed(t, out, tree, true)
	if n := reads.Swap(0); n != 3 {
		t.Errorf("a garbled index: %d files read, want all 3", n)
	}

	// Without it (--no-cache), every file is read.
	writeIndexed(t, out, tree, false)
	if n := reads.Swap(0); n != 3 {
		t.Errorf("a write without the index: %d files read, want all 3", n)
	}
}

// TestReuseKeyed: a file put with the key of its inputs is reused by a
// later writer asked for it with the same key while it still has its
// stamp, kept by Finish and indexed again with its key; under another
// key, after the file was touched, without an index or in a directory
// the writer has not listed, it is not reused.
func TestReuseKeyed(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := t.TempDir()
	key := [32]byte{1}
	other := [32]byte{2}
	page := "site/hosts/a.html"
	full := filepath.Join(out, page)
	build := func(index bool, keep func(w *outdir.Writer) bool) (reused bool, st map[string]*outdir.Stats) {
		t.Helper()
		w := newWriter(t, out, index)
		if err := w.Put("s/manifest.json", []byte("{}\n")); err != nil {
			t.Fatal(err)
		}
		if reused = keep(w); !reused {
			if err := w.PutKeyed(page, []byte("<p>a</p>\n"), key); err != nil {
				t.Fatal(err)
			}
		}
		var err error
		if st, err = w.Finish(); err != nil {
			t.Fatal(err)
		}
		w.StoreIndex()
		return reused, st
	}
	reuse := func(k [32]byte) func(w *outdir.Writer) bool {
		return func(w *outdir.Writer) bool {
			ok, err := w.Reuse(page, k)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
	}
	if ok, _ := build(true, reuse(key)); ok {
		t.Fatal("reused a page before any build wrote it")
	}
	ok, st := build(true, reuse(key))
	if !ok {
		t.Fatal("a page put with its key was not reused by the next build")
	}
	if got, err := os.ReadFile(full); err != nil || string(got) != "<p>a</p>\n" || st["site"].Unchanged != 1 || st["site"].Written != 0 {
		t.Fatalf("a reused page: %q %v, stats %+v; want it kept, counted unchanged", got, err, st["site"])
	}
	// The index after a reuse still has the key, and ReuseSum says what
	// the kept file holds.
	if ok, _ := build(true, func(w *outdir.Writer) bool {
		sum, size, ok := w.ReuseSum(page, key)
		if ok && (sum != sha256.Sum256([]byte("<p>a</p>\n")) || size != len("<p>a</p>\n")) {
			t.Errorf("ReuseSum: sha256 %x, size %d; want the kept file's", sum, size)
		}
		return ok
	}); !ok {
		t.Error("a reused page's key was not indexed again")
	}
	if ok, _ := build(true, reuse(key)); !ok {
		t.Error("a page reused by ReuseSum was not indexed again with its key")
	}
	if ok, _ := build(true, reuse(other)); ok {
		t.Error("a page was reused under another key")
	}
	// The last build put it again with key: reusable, until touched.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(full, later, later); err != nil {
		t.Fatal(err)
	}
	if ok, _ := build(true, reuse(key)); ok {
		t.Error("a page whose stamp moved was reused")
	}
	if ok, _ := build(false, reuse(key)); ok {
		t.Error("a page was reused without an index")
	}
	if ok, _ := build(true, func(w *outdir.Writer) bool {
		ok, _ := w.Reuse("site/hosts/b.html", key)
		return ok
	}); ok {
		t.Error("a page the directory does not hold was reused")
	}
}
