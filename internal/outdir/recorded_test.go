package outdir

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// recordedTree is a small out/ of nested directories.
var recordedTree = Tree{
	"s/manifest.json":                          []byte("{}\n"),
	"s/hosts/a/etc/nginx/nginx.conf":           []byte("a nginx\n"),
	"s/hosts/a/etc/sysctl.d/90-hacompile.conf": []byte("a sysctl\n"),
	"s/hosts/b/etc/nginx/nginx.conf":           []byte("b nginx\n"),
	"site/index.html":                          []byte("<p>index</p>\n"),
}

// finishedBuild writes t into out as a build does (its owner record
// and digest index included) and fails the test unless out then counts
// as written by a writer that finished.
func finishedBuild(t *testing.T, out string, tr Tree) {
	t.Helper()
	w, err := NewWriter(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(tr); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	w.StoreIndex()
	if !finishedWriting(out) {
		t.Fatal("a build that finished left out/ as one that did not")
	}
}

func listed(t *testing.T, l *Listing) map[string]FileStamp {
	t.Helper()
	<-l.done
	if l.err != nil {
		t.Fatal(l.err)
	}
	return l.have
}

// After a build that finished, a listing stamps the files the owner
// record names, as reading every directory stamps them, and leaves out
// a file the record does not name: the build neither removes it nor
// needs it.
func TestListingByRecord(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := t.TempDir()
	finishedBuild(t, out, recordedTree)
	foreign := filepath.Join(out, "s", "hosts", "a", "etc", "notes.txt")
	if err := os.WriteFile(foreign, []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A file changed since, to the same size: its new stamp.
	p := filepath.Join(out, "s", "hosts", "b", "etc", "nginx", "nginx.conf")
	if err := os.WriteFile(p, []byte("B nginx\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	all, err := listDir(out, true)
	if err != nil {
		t.Fatal(err)
	}
	delete(all, "s/hosts/a/etc/notes.txt")
	if got := listed(t, StartListing(out)); !maps.Equal(got, all) {
		t.Errorf("listing by the record:\n%v\nwant what reading the directories stamps of the recorded files:\n%v", got, all)
	}
	if _, ok := listed(t, StartListingAll(out))["s/hosts/a/etc/notes.txt"]; !ok {
		t.Error("StartListingAll did not read the directories")
	}

	// And the writer made from it writes the change back, removes
	// nothing it did not write, and counts the rest unchanged.
	stats, err := Write(out, recordedTree)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "b nginx\n" {
		t.Errorf("the changed file holds %q after the build", b)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("a file hacompile did not write: %v", err)
	}
	if s := stats["s"]; s == nil || s.Written != 1 || s.Unchanged != 3 || s.Removed != 0 {
		t.Errorf("stats of s: %+v; want 1 written, 3 unchanged, 0 removed", s)
	}
}

// Stamped by the record, a file is reached through directories, never
// links: one reached only through a link is not there (and is written
// through no link), a link at a recorded path is not a file of the
// build's, and a path the record names out of out/ is nothing of it
// (nothing outside is removed).
func TestListingByRecordLinks(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out, elsewhere := t.TempDir(), t.TempDir()
	finishedBuild(t, out, recordedTree)
	// Host a's etc/ moved out, times and all, and linked back.
	moved := filepath.Join(elsewhere, "etc")
	if err := os.Rename(filepath.Join(out, "s", "hosts", "a", "etc"), moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(moved, filepath.Join(out, "s", "hosts", "a", "etc")); err != nil {
		t.Fatal(err)
	}
	// b's nginx.conf replaced by a link.
	bconf := filepath.Join(out, "s", "hosts", "b", "etc", "nginx", "nginx.conf")
	if err := os.Remove(bconf); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(moved, "nginx", "nginx.conf"), bconf); err != nil {
		t.Fatal(err)
	}
	// The record names files out of out/ too.
	victim := filepath.Join(elsewhere, "victim")
	if err := os.WriteFile(victim, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Host c a link to b, inside out/.
	if err := os.Symlink("b", filepath.Join(out, "s", "hosts", "c")); err != nil {
		t.Fatal(err)
	}
	owned := append(sortedKeys(recordedTree), "s/hosts/c/etc/nginx/nginx.conf", "../"+filepath.Base(elsewhere)+"/victim", victim)
	if err := writeOwner(out, owned, false); err != nil {
		t.Fatal(err)
	}
	have := listed(t, StartListing(out))
	for _, p := range []string{"s/hosts/a/etc/nginx/nginx.conf", "s/hosts/a/etc/sysctl.d/90-hacompile.conf", "s/hosts/c/etc/nginx/nginx.conf", owned[len(owned)-2], owned[len(owned)-1]} {
		if st, ok := have[p]; ok {
			t.Errorf("%s: stamped %v; want left out", p, st)
		}
	}
	if st := have["s/hosts/b/etc/nginx/nginx.conf"]; st != irregular {
		t.Errorf("a link at a recorded path: stamped %v; want irregular", st)
	}
	if st := have["s/manifest.json"]; st.Size != 3 {
		t.Errorf("s/manifest.json: stamped %v", st)
	}

	// A build writes through no link, and removes nothing outside (a
	// link it wrote it removes, not what the link points at).
	_, err := Write(out, Tree{"s/manifest.json": []byte("{}\n"), "s/hosts/a/etc/nginx/nginx.conf": []byte("a nginx\n")})
	if err == nil || !strings.Contains(err.Error(), "does not follow links") {
		t.Errorf("writing under the link: %v; want the link refused", err)
	}
	if _, err := Write(out, Tree{"s/manifest.json": []byte("{}\n")}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "keep\n" {
		t.Errorf("the file outside out/ that the record named: %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(moved, "nginx", "nginx.conf")); err != nil || string(b) != "a nginx\n" {
		t.Errorf("the file the link pointed at: %q, %v", b, err)
	}
}

// A build killed while writing leaves temporary files beside its
// targets, which only reading the directories finds: until a writer
// finishes, or removes what it wrote, the next build reads them all and
// removes those files.
func TestKilledWriterIsListed(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := t.TempDir()
	finishedBuild(t, out, recordedTree)
	changed := maps.Clone(recordedTree)
	changed["s/hosts/a/etc/nginx/nginx.conf"] = []byte("a nginx, changed\n")

	// Killed: written, never finished nor aborted.
	w, err := NewWriter(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(changed); err != nil {
		t.Fatal(err)
	}
	temps := func() []string {
		m, _ := filepath.Glob(filepath.Join(out, "s", "hosts", "a", "etc", "nginx", stagePrefix+"*"))
		return m
	}
	if len(temps()) != 1 {
		t.Fatalf("the writer left %v; want one temporary file", temps())
	}
	if finishedWriting(out) {
		t.Fatal("out/ counts as finished with a writer's temporary file in it")
	}
	if _, ok := listed(t, StartListing(out))[strings.TrimPrefix(filepath.ToSlash(temps()[0]), filepath.ToSlash(out)+"/")]; !ok {
		t.Error("the listing after a killed writer did not read the directories")
	}
	finishedBuild(t, out, changed)
	if m := temps(); len(m) != 0 {
		t.Errorf("the next build left the killed one's temporary files: %v", m)
	}

	// Aborted: what it wrote is removed, and out/ counts as finished.
	w, err = NewWriter(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(recordedTree); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if m := temps(); len(m) != 0 {
		t.Errorf("Abort left %v", m)
	}
	if !finishedWriting(out) {
		t.Error("a writer that aborted cleanly left out/ as unfinished")
	}
}

// A cache directory that was writable when a build finished and is not
// when the next one writes: that one can neither leave its marker nor
// remove the index in its stead, so if it is killed, the index still
// says out/ is finished. A build does not trust the index of a cache
// directory it cannot write in, and reads every directory.
func TestReadOnlyCacheIsListed(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	out := t.TempDir()
	finishedBuild(t, out, recordedTree)
	if !finishedWriting(out) {
		t.Fatal("a finished build did not count as finished")
	}
	dir := filepath.Dir(cacheFile(out, writingExt))
	t.Cleanup(func() { cacheWritable = writable })
	cacheWritable = func(d string) error {
		if d == dir {
			return fmt.Errorf("cannot write in %s: %w", d, fs.ErrPermission)
		}
		return writable(d)
	}
	// What a killed writer would leave, with its marker unwritten.
	tmp := filepath.Join(out, "s", "hosts", "a", "etc", "nginx", stagePrefix+"killed")
	if err := os.WriteFile(tmp, []byte("half\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if finishedWriting(out) {
		t.Error("out/ counts as finished by the index of a cache directory no marker can be written in")
	}
	if _, ok := listed(t, StartListing(out))["s/hosts/a/etc/nginx/"+stagePrefix+"killed"]; !ok {
		t.Error("the listing trusted the index and did not read the directories")
	}
}
