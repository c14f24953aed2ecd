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
	"strings"
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
// empty. stats is keyed by the first path element (the stack).
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
	have, err := existing(dir)
	if err != nil {
		return nil, err
	}
	have = inScope(have, scope)
	for _, p := range sortedKeys(t) {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if have[p] {
			if b, err := os.ReadFile(full); err == nil && bytes.Equal(b, t[p]) {
				stat(p).Unchanged++
				continue
			}
		}
		if err := writeAtomic(full, t[p]); err != nil {
			return nil, err
		}
		stat(p).Written++
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

func writeAtomic(full string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(full), ".hacompile-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", full, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), full); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

func sortedKeys(t Tree) []string { return slices.Sorted(maps.Keys(t)) }
