package outdir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
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

// readOwned is the set of files dir's OwnerFile lists, the files in dir
// hacompile may remove; found is false when dir has none (then
// ownedWithoutRecord says what it may remove).
func readOwned(dir string) (owned map[string]bool, found bool, err error) {
	files, found, err := readOwnedList(dir)
	if !found || err != nil {
		return nil, found, err
	}
	return ownedSet(files), true, nil
}

// ownedSet is the set of the files an OwnerFile lists.
func ownedSet(files []string) map[string]bool {
	owned := make(map[string]bool, len(files))
	for _, p := range files {
		owned[p] = true
	}
	return owned
}

// readOwnedList is the list of files dir's OwnerFile lists, as it lists
// them.
func readOwnedList(dir string) (files []string, found bool, err error) {
	b, err := readRegular(filepath.Join(dir, OwnerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if errors.Is(err, errIrregular) {
		return nil, false, fmt.Errorf("%s: not a regular file, so not hacompile's record (remove it and build again)", filepath.Join(dir, OwnerFile))
	}
	if err != nil {
		return nil, false, err
	}
	files, ok := parseOwner(b)
	if !ok {
		var rec ownerRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, false, fmt.Errorf("%s: %v (delete the directory and build again)", filepath.Join(dir, OwnerFile), err)
		}
		files = rec.Files
	}
	return files, true, nil
}

// ownedWithoutRecord is the set of files hacompile may remove in dir, a
// directory without a record whose listing is have: none, when dir is
// empty (or missing) but for what a build that was killed left at its
// top (staging directories, named stagePrefix…, which removeStages
// removes). Any other directory is refused, whatever it holds: without
// the record nothing tells the files hacompile wrote from others, and a
// build writes over the first and removes those it no longer produces.
// (A directory laid out as out/ is, every top entry a directory with a
// manifest.json or an index.html, was once adopted whole, for an out/
// built before the record existed: a website's directory, or an out/
// that lost its record with files added by hand, was taken for
// hacompile's and every file in it removed.)
func ownedWithoutRecord[V any](dir string, have map[string]V) (map[string]bool, error) {
	first := ""
	for p := range have {
		if top, _, _ := strings.Cut(p, "/"); strings.HasPrefix(top, stagePrefix) {
			continue
		}
		if first == "" || p < first {
			first = p // the same one named every time
		}
	}
	if first != "" {
		return nil, notOwned(dir, first)
	}
	return map[string]bool{}, nil
}

// notOwned is the refusal of dir, a non-empty directory without a
// record, which holds p.
func notOwned(dir, p string) error {
	return fmt.Errorf("%s is not empty and hacompile did not write it (no %s; it holds %s): a build writes only into an empty directory or one whose %s names the files hacompile wrote there, the only files it removes\n"+
		"hacompile: hint: name a new or empty directory with --out; or, if %s holds an earlier build's output and nothing else of yours, delete it and build again",
		dir, OwnerFile, filepath.Join(dir, filepath.FromSlash(p)), OwnerFile, dir)
}

// writeOwner records owned as dir's OwnerFile, unless it holds that
// already.
func writeOwner(dir string, owned []string, chmod bool) error {
	b := appendOwner(nil, owned)
	full := filepath.Join(dir, OwnerFile)
	if old, err := os.ReadFile(full); err == nil && string(old) == string(b) {
		return nil
	}
	_, err := writeAtomic(full, b, chmod)
	return err
}

// appendOwner appends OwnerFile's content for files: ownerRecord as
// json.MarshalIndent(rec, "", "  ") writes it, and a newline
// (TestOwnerRecordIsMarshalIndent). A 10,000-host fleet's record lists
// 170,000 files.
func appendOwner(b []byte, files []string) []byte {
	b = append(b, "{\n  \"comment\": "...)
	b = AppendJSONString(b, ownerComment)
	b = append(b, ",\n  \"files\": "...)
	b = AppendJSONStrings(b, files, 1)
	return append(b, "\n}\n"...)
}

// parseOwner reads the files of an OwnerFile laid out as appendOwner lays
// it out whose paths need no escaping, without the reflection of
// encoding/json; ok is false for anything else (then json.Unmarshal
// reads it).
func parseOwner(b []byte) (files []string, ok bool) {
	head := appendOwner(nil, []string{})
	head = head[:len(head)-len("]\n}\n")] // up to the files' "["
	rest, ok := bytes.CutPrefix(b, head)
	if !ok {
		return nil, false
	}
	files = make([]string, 0, bytes.Count(rest, []byte{'\n'}))
	for sep := []byte("\n    \""); ; {
		if bytes.Equal(rest, []byte("\n  ]\n}\n")) && len(files) > 0 {
			return files, true
		}
		r, ok := bytes.CutPrefix(rest, sep)
		if !ok {
			return nil, false
		}
		end := bytes.IndexByte(r, '"')
		if end < 0 {
			return nil, false
		}
		name := r[:end]
		// A name quoted as it is: no escapes, no control characters, no
		// <>& (json.Marshal escapes them), valid UTF-8 without U+2028/9.
		if bytes.IndexFunc(name, func(c rune) bool {
			return c < 0x20 || c == '\\' || c == '<' || c == '>' || c == '&' || c == utf8.RuneError || c == '\u2028' || c == '\u2029'
		}) >= 0 {
			return nil, false
		}
		files = append(files, string(name))
		rest = r[end+1:]
		if len(rest) > 0 && rest[0] == ',' {
			rest = rest[1:]
			if !bytes.HasPrefix(rest, sep) {
				return nil, false
			}
		} else if !bytes.Equal(rest, []byte("\n  ]\n}\n")) {
			return nil, false
		}
	}
}
