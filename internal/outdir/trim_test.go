package outdir

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestTrimCache: the records unused for TrimAge go, at most once a day;
// records used since, the locks, the system test's images and files not
// the records' stay; a record a build reads is marked used, and stays.
func TestTrimCache(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	dir := filepath.Join(cache, "hacompile")
	now := time.Now()
	old, recent := now.Add(-TrimAge-time.Hour), now.Add(-TrimAge+time.Hour)
	files := map[string]time.Time{
		"build-old.json":          old,
		"build-old.index":         old,
		"build-old.lock":          old,
		"build-new.json":          recent,
		"build-new.index":         recent,
		".hacompile-1-1-x.json":   old,
		"notes.txt":               old,
		"stacks/old.json":         old,
		"stacks/new.json":         recent,
		"stacks/.hacompile-2-1-y": old,
		"images/trixie.tar":       old,
	}
	write := func(p string, mtime time.Time) {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(full, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	for p, m := range files {
		write(p, m)
	}
	left := func() []string {
		var got []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && d.Name() != trimMarker {
				rel, _ := filepath.Rel(dir, p)
				got = append(got, filepath.ToSlash(rel))
			}
			return err
		})
		slices.Sort(got)
		return got
	}
	if n := TrimCache(now); n != 5 {
		t.Errorf("TrimCache removed %d files, want 5", n)
	}
	want := []string{"build-new.index", "build-new.json", "build-old.lock", "images/trixie.tar", "notes.txt", "stacks/new.json"}
	if got := left(); !slices.Equal(got, want) {
		t.Errorf("left %q, want %q", got, want)
	}
	// Within a day it does not look again.
	write("build-old.json", old)
	if n := TrimCache(now.Add(23 * time.Hour)); n != 0 || !slices.Contains(left(), "build-old.json") {
		t.Errorf("a second TrimCache within a day removed %d files", n)
	}
	// A day later it does: the stale record goes, and so do the records
	// that have gone unused since the first look.
	if n := TrimCache(now.Add(25 * time.Hour)); n != 4 {
		t.Errorf("TrimCache a day later removed %d files (left %q), want 4", n, left())
	}
	// A marker in the future (a clock set back) does not stop it.
	write("build-old.json", old)
	if err := os.WriteFile(filepath.Join(dir, trimMarker), []byte("99999999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n := TrimCache(now); n != 1 {
		t.Errorf("TrimCache under a marker in the future removed %d files, want 1", n)
	}

	// A build that reads its records marks them used: they stay.
	out := filepath.Join(t.TempDir(), "out")
	for _, p := range []string{cachePath(out), indexPath(out), stackRecordPath(out, "stacks/web.cue")} {
		write(filepath.ToSlash(mustRel(t, dir, p)), old)
	}
	LoadCache(out, "key")
	StartIndex(out).Wait()
	LoadStackRecord(out, "stacks/web.cue", "key", nil)
	if err := os.Remove(filepath.Join(dir, trimMarker)); err != nil {
		t.Fatal(err)
	}
	if n := TrimCache(now); n != 0 {
		t.Errorf("TrimCache removed %d records a build had just read (left %q)", n, left())
	}
}

func mustRel(t *testing.T, base, p string) string {
	t.Helper()
	rel, err := filepath.Rel(base, p)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}
