package build

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/internal/par"
)

// Stats counts what a write did.
type Stats struct {
	Written, Unchanged, Removed int
}

// Diff is how an on-disk out/ differs from a rendered tree.
type Diff struct {
	Stale, Missing, Extra []string
}

// Empty reports whether the directory matches the tree.
func (d Diff) Empty() bool { return len(d.Stale)+len(d.Missing)+len(d.Extra) == 0 }

// existing lists the regular files under dir as slash paths relative to
// it. A missing dir is an empty tree.
func existing(dir string) (map[string]bool, error) {
	files := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == dir {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = true
		return nil
	})
	return files, err
}

// inScope keeps the existing files whose first path element is in
// scope; an empty scope keeps all (the whole of out/ is the build's).
func inScope(have map[string]bool, scope []string) map[string]bool {
	if len(scope) == 0 {
		return have
	}
	kept := map[string]bool{}
	for p := range have {
		top, _, _ := strings.Cut(p, "/")
		if slices.Contains(scope, top) {
			kept[p] = true
		}
	}
	return kept
}

// Compare reports every stale, missing and extra file under dir, within
// the top-level directories in scope (all of dir when none are given).
func Compare(dir string, t Tree, scope ...string) (Diff, error) {
	var d Diff
	have, err := existing(dir)
	if err != nil {
		return d, err
	}
	have = inScope(have, scope)
	for _, p := range sortedKeys(t) {
		if !have[p] {
			d.Missing = append(d.Missing, p)
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			return d, err
		}
		if !bytes.Equal(b, t[p]) {
			d.Stale = append(d.Stale, p)
		}
	}
	for p := range have {
		if _, ok := t[p]; !ok {
			d.Extra = append(d.Extra, p)
		}
	}
	slices.Sort(d.Extra)
	return d, nil
}

// Write makes dir hold exactly the tree: changed files are replaced
// atomically (temp file + rename), unchanged files are not touched, and
// files no longer produced are removed with the directories they leave
// empty. A top-level directory (a stack, the site) that does not exist
// yet is written whole into a hidden staging directory and renamed into
// place, so it appears complete or not at all. stats is keyed by the
// first path element. Files are compared and written on every core;
// directories are created once.
//
// With a scope, only the top-level directories in it are the build's:
// files elsewhere are neither compared nor removed.
func Write(dir string, t Tree, scope ...string) (map[string]*Stats, error) {
	stats := map[string]*Stats{}
	stat := func(p string) *Stats {
		top, _, _ := strings.Cut(p, "/")
		if stats[top] == nil {
			stats[top] = &Stats{}
		}
		return stats[top]
	}
	if err := removeStages(dir); err != nil {
		return nil, err
	}
	have, err := existing(dir)
	if err != nil {
		return nil, err
	}
	have = inScope(have, scope)
	keys := sortedKeys(t)
	// where maps a tree path to the path written under dir: inside the
	// staging directory for a top-level directory not on disk yet.
	stages := map[string]string{}
	where := func(p string) string {
		top, rest, ok := strings.Cut(p, "/")
		if st, staged := stages[top]; ok && staged {
			return path.Join(st, rest)
		}
		return p
	}
	for _, p := range keys {
		top, _, ok := strings.Cut(p, "/")
		if _, seen := stages[top]; !ok || seen {
			continue
		}
		if _, err := os.Lstat(filepath.Join(dir, top)); errors.Is(err, fs.ErrNotExist) {
			stages[top] = stagePrefix + strconv.Itoa(os.Getpid()) + "-" + top
		}
	}
	failed := func(err error) (map[string]*Stats, error) {
		for _, st := range stages {
			os.RemoveAll(filepath.Join(dir, st))
		}
		return nil, err
	}
	targets := make([]string, len(keys))
	for i, p := range keys {
		targets[i] = where(p)
	}
	if err := makeDirs(dir, targets, have); err != nil {
		return failed(err)
	}
	chmod := umask()&0o644 != 0
	written := make([]bool, len(keys))
	errs := make([]error, len(keys))
	par.Each(len(keys), func(i int) {
		p := keys[i]
		full := filepath.Join(dir, filepath.FromSlash(targets[i]))
		switch {
		case targets[i] != p:
			// Staged: the directory appears by rename once complete.
			errs[i] = writeFile(full, t[p], chmod)
		case have[p]:
			if b, err := os.ReadFile(full); err == nil && bytes.Equal(b, t[p]) {
				return
			}
			fallthrough
		default:
			errs[i] = writeAtomic(full, t[p], chmod)
		}
		written[i] = errs[i] == nil
	})
	for i, p := range keys {
		if errs[i] != nil {
			return failed(errs[i])
		}
		if written[i] {
			stat(p).Written++
		} else {
			stat(p).Unchanged++
		}
	}
	for _, top := range slices.Sorted(maps.Keys(stages)) {
		if err := os.Rename(filepath.Join(dir, stages[top]), filepath.Join(dir, top)); err != nil {
			return failed(err)
		}
	}
	var dirs []string
	for _, p := range slices.Sorted(maps.Keys(have)) {
		if _, ok := t[p]; ok {
			continue
		}
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
			return nil, err
		}
		stat(p).Removed++
		dirs = append(dirs, path.Dir(p))
	}
	// Remove directories left empty, deepest first.
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, d := range dirs {
		for ; d != "." && d != "/"; d = path.Dir(d) {
			if os.Remove(filepath.Join(dir, filepath.FromSlash(d))) != nil {
				break // not empty (or already gone)
			}
		}
	}
	return stats, nil
}

// stagePrefix names the staging directories of new top-level
// directories, and the temporary files beside replaced files.
const stagePrefix = ".hacompile-"

// removeStages deletes staging directories that a build which did not
// finish left at the top of dir.
func removeStages(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), stagePrefix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// makeDirs creates, once each and parents first, the directories of the
// files in keys that are not on disk yet.
func makeDirs(dir string, keys []string, have map[string]bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	need := map[string]bool{}
	for _, p := range keys {
		if have[p] {
			continue
		}
		for d := path.Dir(p); d != "." && !need[d]; d = path.Dir(d) {
			need[d] = true
		}
	}
	// Sorted, a parent comes before everything under it.
	for _, d := range slices.Sorted(maps.Keys(need)) {
		if err := os.Mkdir(filepath.Join(dir, filepath.FromSlash(d)), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return nil
}

// writeAtomic replaces full with b: written to a temporary file beside
// it, named for this process so concurrent builds do not share one, then
// renamed over it. The directory must exist.
func writeAtomic(full string, b []byte, chmod bool) error {
	tmp := filepath.Join(filepath.Dir(full), stagePrefix+strconv.Itoa(os.Getpid())+"-"+filepath.Base(full))
	if err := writeFile(tmp, b, chmod); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", full, err)
	}
	if err := os.Rename(tmp, full); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// writeFile writes b to p, created 0644 (and chmodded to it when the
// umask would take bits away).
func writeFile(p string, b []byte, chmod bool) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	var merr error
	if chmod {
		merr = f.Chmod(0o644)
	}
	return errors.Join(werr, merr, f.Close())
}

// umask is the process's file mode creation mask (Linux reports it in
// /proc/self/status); when unknown, 0777, so that every written file is
// chmodded.
func umask() os.FileMode {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0o777
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return os.FileMode(m)
			}
		}
	}
	return 0o777
}

func sortedKeys(t Tree) []string { return slices.Sorted(maps.Keys(t)) }
