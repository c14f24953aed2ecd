package outdir_test

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/outdir"
)

func TestWriteCompare(t *testing.T) {
	dir := t.TempDir()
	tree := outdir.Tree{
		"s/hosts/a/etc/x.conf": []byte("x\n"),
		"s/hosts/a/etc/y.conf": []byte("y\n"),
		"s/manifest.json":      []byte("{}\n"),
	}
	stats, err := outdir.Write(dir, tree)
	if err != nil {
		t.Fatal(err)
	}
	if got := *stats["s"]; got != (outdir.Stats{Written: 3}) {
		t.Fatalf("first write: %+v, want 3 written", got)
	}
	if d, err := outdir.Compare(dir, tree); err != nil || !d.Empty() {
		t.Fatalf("after write: %+v, %v", d, err)
	}
	mtime := func(p string) int64 {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime().UnixNano()
	}
	before := mtime("s/hosts/a/etc/x.conf")

	// A stack built once, no longer produced.
	withOld := maps.Clone(tree)
	withOld["old/hosts/gone/f"] = []byte("f\n")
	if _, err := outdir.Write(dir, withOld); err != nil {
		t.Fatal(err)
	}
	// Drift: one file edited, one deleted.
	os.WriteFile(filepath.Join(dir, "s/hosts/a/etc/y.conf"), []byte("edited\n"), 0o644)
	os.Remove(filepath.Join(dir, "s/manifest.json"))
	d, err := outdir.Compare(dir, tree)
	if err != nil {
		t.Fatal(err)
	}
	want := outdir.Diff{Stale: []string{"s/hosts/a/etc/y.conf"}, Missing: []string{"s/manifest.json"}, Extra: []string{"old/hosts/gone/f"}}
	if !slices.Equal(d.Stale, want.Stale) || !slices.Equal(d.Missing, want.Missing) || !slices.Equal(d.Extra, want.Extra) {
		t.Fatalf("compare = %+v, want %+v", d, want)
	}

	stats, err = outdir.Write(dir, tree)
	if err != nil {
		t.Fatal(err)
	}
	if got := *stats["s"]; got != (outdir.Stats{Written: 2, Unchanged: 1}) {
		t.Errorf("rewrite of s: %+v, want 2 written 1 unchanged", got)
	}
	if got := *stats["old"]; got != (outdir.Stats{Removed: 1}) {
		t.Errorf("rewrite of old: %+v, want 1 removed", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "old")); !os.IsNotExist(err) {
		t.Errorf("empty directories of a removed stack remain: %v", err)
	}
	if mtime("s/hosts/a/etc/x.conf") != before {
		t.Error("an unchanged file was rewritten")
	}
	if d, _ := outdir.Compare(dir, tree); !d.Empty() {
		t.Errorf("not exact after rewrite: %+v", d)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "s/hosts/a/etc"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".hacompile-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// TestWriteStaged: a top-level directory that does not exist yet appears
// whole or not at all: a write that fails leaves neither it nor its
// staging directory, and a staging directory a killed build left behind
// is removed by the next write, whatever its scope.
func TestWriteStaged(t *testing.T) {
	dir := t.TempDir()
	bad := outdir.Tree{"new/a": []byte("file\n"), "new/a/b": []byte("under a file\n")}
	if _, err := outdir.Write(dir, bad); err == nil {
		t.Fatal("writing a file and a directory at the same path succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a failed write left %v", entries)
	}
	leftover := filepath.Join(dir, ".hacompile-999-old", "hosts", "a")
	if err := os.MkdirAll(leftover, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(leftover, "half"), []byte("ha"), 0o644)
	tree := outdir.Tree{"new/hosts/a/etc/x.conf": []byte("x\n"), "new/manifest.json": []byte("{}\n")}
	stats, err := outdir.Write(dir, tree, "new")
	if err != nil {
		t.Fatal(err)
	}
	if got := *stats["new"]; got != (outdir.Stats{Written: 2}) {
		t.Errorf("stats %+v, want 2 written", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 || entries[0].Name() != outdir.OwnerFile || entries[1].Name() != "new" {
		t.Errorf("out holds %v, want only new and the record", entries)
	}
	if d, err := outdir.Compare(dir, tree); err != nil || !d.Empty() {
		t.Errorf("after a staged write: %+v, %v", d, err)
	}
}

// TestWriterParts: parts of a tree written concurrently, then Finish,
// leave dir exactly the tree, with files of no part removed.
func TestWriterParts(t *testing.T) {
	dir := t.TempDir()
	if _, err := outdir.Write(dir, outdir.Tree{"gone/f": []byte("f\n"), "b/old": []byte("old\n")}); err != nil {
		t.Fatal(err)
	}
	a := outdir.Tree{"a/hosts/h/etc/x": []byte("x\n"), "a/manifest.json": []byte("{}\n")}
	b := outdir.Tree{"b/index.html": []byte("<p>\n"), "b/assets/s.css": []byte("p{}\n")}
	w, err := outdir.NewWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { errs <- w.Write(a) }()
	go func() { errs <- w.Write(b) }()
	if err := errors.Join(<-errs, <-errs); err != nil {
		t.Fatal(err)
	}
	stats, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if *stats["a"] != (outdir.Stats{Written: 2}) || *stats["b"] != (outdir.Stats{Written: 2, Removed: 1}) || *stats["gone"] != (outdir.Stats{Removed: 1}) {
		t.Errorf("stats a %+v, b %+v, gone %+v", *stats["a"], *stats["b"], *stats["gone"])
	}
	all := outdir.Tree{}
	maps.Copy(all, a)
	maps.Copy(all, b)
	if d, err := outdir.Compare(dir, all); err != nil || !d.Empty() {
		t.Errorf("after parts: %+v, %v", d, err)
	}
}

// TestWriteLeftovers: what a killed build left is cleaned up by the next
// build, even one that runs with the same process id (as a container's
// pid 1 does), and build --check reports it until then.
func TestWriteLeftovers(t *testing.T) {
	dir := t.TempDir()
	tree := outdir.Tree{"s/hosts/h/a.conf": []byte("old\n"), "s/manifest.json": []byte("{}\n")}
	if _, err := outdir.Write(dir, tree); err != nil {
		t.Fatal(err)
	}
	// A temporary file under this very pid, and a staging directory.
	for _, p := range []string{
		fmt.Sprintf("s/hosts/h/.hacompile-%d-1-a.conf", os.Getpid()),
		fmt.Sprintf("s/hosts/h/.hacompile-%d-a.conf", os.Getpid()),
		".hacompile-99-site/index.html",
	} {
		full := filepath.Join(dir, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := outdir.Compare(dir, tree)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Extra) != 3 {
		t.Errorf("--check sees extras %v, want the three leftovers", d.Extra)
	}
	tree["s/hosts/h/a.conf"] = []byte("new\n")
	stats, err := outdir.Write(dir, tree)
	if err != nil {
		t.Fatalf("write after a killed build: %v", err)
	}
	if got := *stats["s"]; got != (outdir.Stats{Written: 1, Unchanged: 1}) {
		t.Errorf("stats %+v: the leftovers are not the stack's files", got)
	}
	if d, err := outdir.Compare(dir, tree); err != nil || !d.Empty() {
		t.Errorf("after the write: %+v, %v", d, err)
	}
}

// TestWriterAllOrNothing: the files a Writer puts are invisible until
// Finish — changed files, new files in new directories of an existing
// stack, and a new top-level directory — and Abort leaves out/ as it
// was, byte for byte and directory for directory. That is what lets build stream the
// runbook to disk and still change nothing when rendering it fails.
func TestWriterAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	old := outdir.Tree{"s/hosts/h/a.conf": []byte("old\n"), "s/manifest.json": []byte("{}\n"), "site/index.html": []byte("<p>old\n")}
	if _, err := outdir.Write(dir, old); err != nil {
		t.Fatal(err)
	}
	// An empty directory that was there before stays there.
	if err := os.MkdirAll(filepath.Join(dir, "s", "etc", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	put := outdir.Tree{
		"s/etc/empty/new/c.conf":   []byte("new\n"),       // new, under the empty directory
		"s/hosts/h/a.conf":         []byte("new\n"),       // changed
		"s/manifest.json":          []byte("{}\n"),        // unchanged
		"s/hosts/g/etc/deep/b.cnf": []byte("new host\n"),  // new, in new directories
		"site/index.html":          []byte("<p>new\n"),    // changed
		"t/manifest.json":          []byte("{\"t\":1}\n"), // a new stack
	}
	for _, finish := range []bool{false, true} {
		w, err := outdir.NewWriter(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(put); err != nil {
			t.Fatal(err)
		}
		// Before Finish, no file shows but under hidden temporary names;
		// new directories may, empty.
		for p, c := range snapshot(t, dir) {
			if strings.Contains(p, ".hacompile-") || strings.HasSuffix(p, "/") {
				continue
			}
			if b, ok := before[p]; !ok || b != c {
				t.Fatalf("before Finish: %s shows (%q)", p, c)
			}
		}
		if !finish {
			w.Abort()
			if after := snapshot(t, dir); !maps.Equal(after, before) {
				t.Fatalf("after Abort:\n%v\nwant:\n%v", after, before)
			}
			continue
		}
		if _, err := w.Finish(); err != nil {
			t.Fatal(err)
		}
		if d, err := outdir.Compare(dir, put); err != nil || !d.Empty() {
			t.Fatalf("after Finish: %+v, %v", d, err)
		}
	}

	// A rename Finish cannot do (a file where a directory of files is)
	// fails the write, and leaves no temporary file or new directory.
	before = snapshot(t, dir)
	w, err := outdir.NewWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	clash := maps.Clone(put)
	delete(clash, "s/etc/empty/new/c.conf")
	clash["s/etc/empty/new"] = []byte("a file now\n")
	clash["s/hosts/f/x"] = []byte("x\n")
	if err := w.Write(clash); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Finish(); err == nil {
		t.Fatal("a file renamed over a directory of files")
	}
	if after := snapshot(t, dir); !maps.Equal(after, before) {
		t.Fatalf("after a failed Finish:\n%v\nwant:\n%v", after, before)
	}
}

// TestWriteShapeChanged: a path that was a file and is now a directory
// (or the reverse) fails the write with the obstacle named and what to
// do, and leaves out/ as it was.
func TestWriteShapeChanged(t *testing.T) {
	for _, c := range []struct {
		name      string
		old, next outdir.Tree
		want      string
	}{
		{"file to directory", outdir.Tree{"s/a/b": []byte("f\n"), "s/k": []byte("k\n")}, outdir.Tree{"s/a/b/c": []byte("c\n"), "s/k": []byte("k\n")},
			"s/a/b is a file where a directory goes (an earlier build's; remove it and build again)"},
		{"directory to file", outdir.Tree{"s/a/b/c": []byte("c\n"), "s/k": []byte("k\n")}, outdir.Tree{"s/a/b": []byte("f\n"), "s/k": []byte("k\n")},
			"s/a/b: a directory is in the way (an earlier build's; remove it and build again)"},
	} {
		dir := t.TempDir()
		if _, err := outdir.Write(dir, c.old); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, dir)
		_, err := outdir.Write(dir, c.next)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if after := snapshot(t, dir); !maps.Equal(after, before) {
			t.Errorf("%s: out/ changed:\n%v\nwant:\n%v", c.name, after, before)
		}
	}

	// An empty directory (a killed build's) where a file goes makes way.
	dir := t.TempDir()
	if _, err := outdir.Write(dir, outdir.Tree{"s/k": []byte("k\n")}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "s", "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	next := outdir.Tree{"s/a/b": []byte("b\n"), "s/k": []byte("k\n")}
	if _, err := outdir.Write(dir, next); err != nil {
		t.Fatal(err)
	}
	if d, err := outdir.Compare(dir, next); err != nil || !d.Empty() {
		t.Errorf("over an empty directory: %+v, %v", d, err)
	}
}

// snapshot is every file and directory under dir with its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			m[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		m[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestWriterRemovesWhatIsNotPutAgain: Finish removes each file the last
// build wrote that this one did not put, however the puts counted: a
// path put twice, a file kept, a page reused, and a file of the last
// build left out.
func TestWriterRemovesWhatIsNotPutAgain(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir := t.TempDir()
	tree := outdir.Tree{"s/a": []byte("a\n"), "s/b": []byte("b\n"), "s/c": []byte("c\n"), "site/p.html": []byte("<p>\n")}
	key := [32]byte{1}
	first := func() map[string]outdir.FileStamp {
		w, err := outdir.NewWriter(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"s/a", "s/b", "s/c"} {
			if err := w.Put(p, tree[p]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.PutKeyed("site/p.html", tree["site/p.html"], key); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Finish(); err != nil {
			t.Fatal(err)
		}
		w.StoreIndex()
		st, err := outdir.Stamps(dir)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	for _, tc := range []struct {
		name string
		puts func(w *outdir.Writer, st map[string]outdir.FileStamp) error
		gone string
	}{
		{"a put twice, c left out", func(w *outdir.Writer, st map[string]outdir.FileStamp) error {
			return errors.Join(w.Put("s/a", tree["s/a"]), w.Put("s/a", tree["s/a"]), w.Put("s/b", tree["s/b"]), w.PutKeyed("site/p.html", tree["site/p.html"], key))
		}, "s/c"},
		{"b kept, page reused, a left out", func(w *outdir.Writer, st map[string]outdir.FileStamp) error {
			if ok, err := w.Reuse("site/p.html", key); !ok || err != nil {
				return fmt.Errorf("page not reused: %v", err)
			}
			return errors.Join(w.Keep("s/b", st["s/b"]), w.Put("s/c", tree["s/c"]))
		}, "s/a"},
		{"page left out", func(w *outdir.Writer, st map[string]outdir.FileStamp) error {
			return errors.Join(w.Put("s/a", tree["s/a"]), w.Put("s/b", tree["s/b"]), w.Put("s/c", tree["s/c"]))
		}, "site/p.html"},
	} {
		st := first()
		w, err := outdir.NewWriter(dir)
		if err != nil {
			t.Fatal(err)
		}
		w.UseIndex(outdir.StartIndex(dir).Wait())
		if err := tc.puts(w, st); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		stats, err := w.Finish()
		if err != nil {
			t.Fatal(err)
		}
		left, err := outdir.Stamps(dir)
		if err != nil {
			t.Fatal(err)
		}
		for p := range tree {
			if _, there := left[p]; there == (p == tc.gone) {
				t.Errorf("%s: %s there: %v", tc.name, p, there)
			}
		}
		top, _, _ := strings.Cut(tc.gone, "/")
		if stats[top].Removed != 1 {
			t.Errorf("%s: stats %+v, want 1 removed", tc.name, *stats[top])
		}
	}
}
