package outdir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// OwnerFile is the record, at the top of an output directory, of every
// file hacompile wrote there: a build removes only files it lists, and
// refuses a non-empty directory without one. Listings of the directory
// (Compare, Stamps) leave it out.
const OwnerFile = ".hacompile.owned"

// ownerRecord is OwnerFile's content.
type ownerRecord struct {
	Comment string   `json:"comment"`
	Files   []string `json:"files"`
}

const ownerComment = "Files hacompile wrote in this directory; a build removes only these. Delete this directory rather than edit this file."

// ownedFiles is the set of files in dir hacompile may remove, from its
// record, for a directory whose listing is have. A directory without a
// record is owned when it is empty (or missing), or when it is laid out
// as hacompile lays out out/ (a build from before the record: every top
// entry a directory with a manifest.json or an index.html), and then all
// it holds is owned. Any other directory is refused.
func ownedFiles(dir string, have map[string]bool) (map[string]bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, OwnerFile))
	if err == nil {
		var rec ownerRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("%s: %v (delete the directory and build again)", filepath.Join(dir, OwnerFile), err)
		}
		owned := make(map[string]bool, len(rec.Files))
		for _, p := range rec.Files {
			owned[p] = true
		}
		return owned, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	tops := map[string]bool{}
	for p := range have {
		top, rest, ok := strings.Cut(p, "/")
		if !ok || strings.HasPrefix(top, ".") && !strings.HasPrefix(top, stagePrefix) {
			return nil, notOwned(dir, p)
		}
		if rest == "manifest.json" || rest == "index.html" {
			tops[top] = true
		} else if !tops[top] {
			tops[top] = false
		}
	}
	for top, ok := range tops {
		if !ok && !strings.HasPrefix(top, stagePrefix) {
			return nil, notOwned(dir, top)
		}
	}
	return maps.Clone(have), nil
}

func notOwned(dir, p string) error {
	return fmt.Errorf("%s is not empty and hacompile did not write it (no %s; it holds %s): a build removes every file of its output directory it does not produce, so it refuses to write there\nhacompile: hint: name a new or empty directory with --out", dir, OwnerFile, filepath.Join(dir, filepath.FromSlash(p)))
}

// writeOwner records owned as dir's OwnerFile, unless it holds that
// already.
func writeOwner(dir string, owned map[string]bool, chmod bool) error {
	b, err := json.MarshalIndent(ownerRecord{Comment: ownerComment, Files: slices.Sorted(maps.Keys(owned))}, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	full := filepath.Join(dir, OwnerFile)
	if old, err := os.ReadFile(full); err == nil && string(old) == string(b) {
		return nil
	}
	_, err = writeAtomic(full, b, chmod)
	return err
}
