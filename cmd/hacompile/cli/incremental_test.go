package cli_test

import (
	"bytes"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/fleet"
	"github.com/hacompile/hacompile/internal/outdir"
)

// fileID is a file as fileIDs identifies it: the file itself (its
// inode, compared with os.SameFile) and its modification time.
type fileID struct {
	fi    fs.FileInfo
	mtime int64
}

// fileIDs identifies every file under dir by inode and modification
// time: build replaces a file it writes (a new inode by rename) and
// leaves one it does not write untouched, so a file whose id changed was
// written, whatever the build says it did.
func fileIDs(t *testing.T, dir string) map[string]fileID {
	t.Helper()
	ids := map[string]fileID{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		ids[filepath.ToSlash(rel)] = fileID{fi, fi.ModTime().UnixNano()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// writtenSince lists the files of after that are new or replaced since
// before, and those of before that are gone.
func writtenSince(before, after map[string]fileID) []string {
	var changed []string
	for p, id := range after {
		if old, ok := before[p]; !ok || !os.SameFile(old.fi, id.fi) || old.mtime != id.mtime {
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
// page, which also lists its cloud-init, the stack overview's inventory,
// the source page, the stack's part of the search index, whose
// directives name the hosts that carry each line, and of the two host
// parts of the index the one that holds app2's entries). No value that
// changes with every edit sits on every page.
func TestOneHostChangeWritesOneHostsFiles(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", filepath.Join(t.TempDir(), "cache"))
	dir := t.TempDir()
	stack := filepath.Join(dir, "stacks", "fleet.cue")
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(filepath.Dir(stack), 0o755); err != nil {
		t.Fatal(err)
	}
	build := func(size string) map[string]fileID {
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
		"site/stacks/fleet/hosts/app2.html",
		"site/stacks/fleet/index.html",
		"site/stacks/fleet/search-index.js",
		"site/stacks/fleet/search/hosts-1.js", // app2's; hosts-2.js stays
		"site/stacks/fleet/source.html",
	}
	if _, ok := first["site/stacks/fleet/search/hosts-2.js"]; !ok {
		t.Errorf("the 200-host fleet has no second host part of the search index")
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
	// The host pages and cloud-init documents the build did not make
	// again (their inputs were the last build's) are what a build that
	// makes every file writes; one edited in out/ by hand is made again.
	page := filepath.Join(out, "site", "stacks", "fleet", "hosts", "app5.html")
	edit(t, page, "</h1>", "</h1>edited")
	edit(t, filepath.Join(out, "fleet", "cloud-init", "app6.yaml"), "#cloud-config", "#cloud-config edited")
	mustBuild(t, "--out", out, filepath.Join(dir, "stacks"))
	full := filepath.Join(t.TempDir(), "full")
	mustBuild(t, "--no-cache", "--out", full, filepath.Join(dir, "stacks"))
	sameTree(t, out, full)
}

// copyStacks copies the example stacks into a new directory.
func copyStacks(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "stacks")
	if err := os.CopyFS(dir, os.DirFS("../../../stacks")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// readTree reads every file under dir.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		tree[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// sameTree fails unless the two directories hold the same files, byte
// for byte (the writer's record of its files aside).
func sameTree(t *testing.T, got, want string) {
	t.Helper()
	g, w := readTree(t, got), readTree(t, want)
	delete(g, ".hacompile.owned")
	delete(w, ".hacompile.owned")
	for p := range w {
		if _, ok := g[p]; !ok {
			t.Errorf("%s: missing (a build without the cache writes it)", p)
		} else if g[p] != w[p] {
			t.Errorf("%s: differs from a build without the cache", p)
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			t.Errorf("%s: extra (a build without the cache does not write it)", p)
		}
	}
}

func mustBuild(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := hc(t, append([]string{"build"}, args...)...)
	if code != 0 {
		t.Fatalf("build %q: exit %d\n%s%s", args, code, stdout, stderr)
	}
	return stdout
}

// keptStacks are the stacks a build's output says it kept.
func keptStacks(stdout string) []string {
	var kept []string
	for _, l := range strings.Split(stdout, "\n") {
		if name, _, ok := strings.Cut(l, ":"); ok && strings.HasSuffix(l, "(kept: not rendered, unchanged since its last build)") {
			kept = append(kept, name)
		}
	}
	return kept
}

// A change to one stack among several renders that stack only (and the
// Jsonnet stack, which may import any file and always renders); the
// others keep their files, and out/ ends byte for byte as a build that
// renders everything (--no-cache) leaves it, which build --check agrees
// with.
func TestOneStackChangeRendersOneStack(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", filepath.Join(t.TempDir(), "cache"))
	stacks := copyStacks(t)
	// And a fleet large enough to have host parts of the search index,
	// which the site-wide index lists from the kept stack's record.
	if err := os.WriteFile(filepath.Join(stacks, "fleet.cue"), fleet.Fleet(200, ""), 0o644); err != nil {
		t.Fatal(err)
	}
	out, full := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "full")
	first := mustBuild(t, "--out", out, stacks)
	if k := keptStacks(first); len(k) != 0 {
		t.Fatalf("a first build kept %q", k)
	}
	before := fileIDs(t, out)
	edit(t, filepath.Join(stacks, "do-python-ha.cue"), `size: "s-2vcpu-4gb"`, `size: "s-4vcpu-8gb"`)
	second := mustBuild(t, "--out", out, stacks)
	want := []string{"aws-spot-asg", "do-perl-ha", "do-python-50k", "fleet", "multi-app", "python-celery-cache"}
	if got := keptStacks(second); !slices.Equal(got, want) {
		t.Errorf("after a change to do-python-ha, the build kept %q, want %q\n%s", got, want, second)
	}
	// Nothing of the other stacks is written, the site-wide search
	// index (which lists the stacks' parts) neither: only the changed
	// stack's files and pages, its part of the index among them, and
	// the writer's record.
	written := writtenSince(before, fileIDs(t, out))
	for _, p := range written {
		if !strings.HasPrefix(p, "do-python-ha/") && !strings.HasPrefix(p, "site/stacks/do-python-ha/") && p != ".hacompile.owned" {
			t.Errorf("a change to do-python-ha wrote %s", p)
		}
	}
	if !slices.Contains(written, "site/stacks/do-python-ha/search-index.js") {
		t.Errorf("a change to do-python-ha's host size did not write its part of the search index; it wrote %q", written)
	}
	if idx, err := os.ReadFile(filepath.Join(out, "site/assets/search-index.js")); err != nil || !bytes.Contains(idx, []byte(`"stacks/fleet/search/hosts-2.js"`)) {
		t.Errorf("the search index does not list the kept fleet's host parts (%v)", err)
	}
	mustBuild(t, "--no-cache", "--out", full, stacks)
	sameTree(t, out, full)
	mustBuild(t, "--check", "--out", out, stacks)
	// A kept stack's file changed in out/ by hand is not kept: the stack
	// renders and the file is put back.
	edit(t, filepath.Join(out, "do-perl-ha", "manifest.json"), `"stack"`, `"stack "`)
	edit(t, filepath.Join(stacks, "do-python-ha.cue"), `size: "s-4vcpu-8gb"`, `size: "s-2vcpu-4gb"`)
	third := mustBuild(t, "--out", out, stacks)
	if got := keptStacks(third); slices.Contains(got, "do-perl-ha") || slices.Contains(got, "do-python-ha") || len(got) != 5 {
		t.Errorf("after do-perl-ha's manifest was edited in out/ and do-python-ha changed back, the build kept %q\n%s", got, third)
	}
	mustBuild(t, "--no-cache", "--out", full, stacks)
	sameTree(t, out, full)
}

// A cache that is corrupt — every record and the digest index
// truncated, garbled, or replaced by other valid content — costs
// renders and reads and changes no byte of out/.
func TestCorruptCacheChangesNoOutput(t *testing.T) {
	for _, corrupt := range []struct {
		name string
		f    func([]byte) []byte
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }},
		{"empty", func([]byte) []byte { return nil }},
		{"garbled", func(b []byte) []byte {
			b = slices.Clone(b)
			for i := 70; i < len(b); i += 97 {
				b[i] ^= 0x20
			}
			return b
		}},
		// The checksum line kept, a record's body changed to other
		// valid JSON: the files it lists, its findings, its site data.
		{"rewritten", func(b []byte) []byte {
			return []byte(strings.NewReplacer(`"hosts":`, `"hosts":1`, `"warning"`, `"waived"`, `"Warnings":`, `"Warnings":9`, `,"size":`, `,"size":1`, " 1", " 2").Replace(string(b)))
		}},
	} {
		t.Run(corrupt.name, func(t *testing.T) {
			cache := filepath.Join(t.TempDir(), "cache")
			t.Setenv("XDG_CACHE_HOME", cache)
			stacks := copyStacks(t)
			out, full := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "full")
			mustBuild(t, "--out", out, stacks)
			n := 0
			err := filepath.WalkDir(filepath.Join(cache, "hacompile"), func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || filepath.Ext(p) != ".json" && filepath.Ext(p) != ".index" {
					return err
				}
				b, err := os.ReadFile(p)
				if err == nil {
					err = os.WriteFile(p, corrupt.f(b), 0o644)
				}
				n++
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if n < 7 {
				t.Fatalf("corrupted %d cache files; want the build's record, its digest index and the stacks'", n)
			}
			edit(t, filepath.Join(stacks, "do-python-ha.cue"), `size: "s-2vcpu-4gb"`, `size: "s-4vcpu-8gb"`)
			stdout := mustBuild(t, "--out", out, stacks)
			if k := keptStacks(stdout); len(k) != 0 {
				t.Errorf("a build with a corrupt cache kept %q", k)
			}
			mustBuild(t, "--no-cache", "--out", full, stacks)
			sameTree(t, out, full)
			// The build after it has sound records again.
			edit(t, filepath.Join(stacks, "do-python-ha.cue"), `size: "s-4vcpu-8gb"`, `size: "s-2vcpu-4gb"`)
			if k := keptStacks(mustBuild(t, "--out", out, stacks)); len(k) != 5 {
				t.Errorf("the build after the corrupt cache's kept %q", k)
			}
		})
	}
}

// edit replaces old with new in the file at p, which must hold old.
func edit(t *testing.T, p, old, new string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s holds no %q", p, old)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A build trims the cache: another output directory's records, unused
// for longer than outdir.TrimAge, go; this build's own stay and still
// make the next build a no-op.
func TestBuildTrimsTheCache(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache")
	t.Setenv("XDG_CACHE_HOME", cache)
	stacks := copyStacks(t)
	out := filepath.Join(t.TempDir(), "out")
	mustBuild(t, "--out", out, stacks)
	stale := []string{filepath.Join(cache, "hacompile", "build-0123456789abcdef0123456789abcdef.json"), filepath.Join(cache, "hacompile", "stacks", "0123456789abcdef0123456789abcdef.json")}
	long := time.Now().Add(-outdir.TrimAge - time.Hour)
	for _, p := range stale {
		if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, long, long); err != nil {
			t.Fatal(err)
		}
	}
	// The first build looked already today.
	if err := os.Remove(filepath.Join(cache, "hacompile", "trim.txt")); err != nil {
		t.Fatal(err)
	}
	mustBuild(t, "--out", out, stacks)
	for _, p := range stale {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s: unused for %v, still there after a build", p, outdir.TrimAge)
		}
	}
	if got := mustBuild(t, "--output", "json", "--out", out, stacks); !strings.Contains(got, `"cached": true`) {
		t.Errorf("after the trim the build was not a no-op from its record:\n%.400s", got)
	}
}
