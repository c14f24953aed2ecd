package cli_test

import (
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/hacompile/hacompile/internal/fleet"
)

// fileIDs identifies every file under dir by inode and modification
// time: build replaces a file it writes (a new inode by rename) and
// leaves one it does not write untouched, so a file whose id changed was
// written, whatever the build says it did.
func fileIDs(t *testing.T, dir string) map[string][2]int64 {
	t.Helper()
	ids := map[string][2]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		ids[filepath.ToSlash(rel)] = [2]int64{int64(fi.Sys().(*syscall.Stat_t).Ino), fi.ModTime().UnixNano()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// writtenSince lists the files of after that are new or replaced since
// before, and those of before that are gone.
func writtenSince(before, after map[string][2]int64) []string {
	var changed []string
	for p, id := range after {
		if old, ok := before[p]; !ok || old != id {
			changed = append(changed, p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			changed = append(changed, "removed "+p)
		}
	}
	slices.Sort(changed)
	return changed
}

// A one-host change to a 200-host fleet writes exactly the files whose
// content changes: that host's gunicorn settings (its worker count
// follows its cores), its cloud-init, the manifest, and the runbook
// pages that show the host's size or the numbers it changed (its host
// page, the stack overview's inventory, the stack files page's digest of
// its cloud-init, the source page, the search index). No value that
// changes with every edit sits on every page.
func TestOneHostChangeWritesOneHostsFiles(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", filepath.Join(t.TempDir(), "cache"))
	dir := t.TempDir()
	stack := filepath.Join(dir, "stacks", "fleet.cue")
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(filepath.Dir(stack), 0o755); err != nil {
		t.Fatal(err)
	}
	build := func(size string) map[string][2]int64 {
		t.Helper()
		if err := os.WriteFile(stack, fleet.Fleet(200, size), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _, stderr := hc(t, "build", "--out", out, filepath.Join(dir, "stacks")); code != 0 {
			t.Fatalf("build: exit %d\n%s", code, stderr)
		}
		return fileIDs(t, out)
	}
	first := build("")
	if len(first) < 3000 {
		t.Fatalf("the fleet rendered %d files; want a large fleet", len(first))
	}
	changed := build("s-4vcpu-8gb") // app2: 2 cores, 4 GB → 4 cores, 8 GB
	want := []string{
		"fleet/cloud-init/app2.yaml",
		"fleet/hosts/app2/etc/fleet/gunicorn.conf.py",
		"fleet/manifest.json",
		"site/assets/search-index.js",
		"site/stacks/fleet/files.html",
		"site/stacks/fleet/hosts/app2.html",
		"site/stacks/fleet/index.html",
		"site/stacks/fleet/source.html",
	}
	if got := writtenSince(first, changed); !slices.Equal(got, want) {
		t.Errorf("a one-host change wrote\n%q\nwant exactly\n%q", got, want)
	}
	// Changing it back writes the same files again, and only them.
	back := build("")
	if got := writtenSince(changed, back); !slices.Equal(got, want) {
		t.Errorf("changing the host back wrote\n%q\nwant exactly\n%q", got, want)
	}
	if !slices.Equal(slices.Sorted(maps.Keys(back)), slices.Sorted(maps.Keys(first))) {
		t.Errorf("the tree's files differ from the first build's")
	}
}
