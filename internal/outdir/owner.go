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
// ownedByLayout says what it may remove).
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
	b, err := os.ReadFile(filepath.Join(dir, OwnerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
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

// ownedByLayout is the set of files hacompile may remove in dir, a
// directory without a record whose listing is have: none when dir is
// empty (or missing); all it holds when it is laid out as hacompile lays
// out out/ (a build from before the record: every top entry a directory
// with a manifest.json or an index.html). Any other directory is
// refused.
func ownedByLayout[V any](dir string, have map[string]V) (map[string]bool, error) {
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
	owned := make(map[string]bool, len(have))
	for p := range have {
		owned[p] = true
	}
	return owned, nil
}

func notOwned(dir, p string) error {
	return fmt.Errorf("%s is not empty and hacompile did not write it (no %s; it holds %s): a build removes every file of its output directory it does not produce, so it refuses to write there\nhacompile: hint: name a new or empty directory with --out", dir, OwnerFile, filepath.Join(dir, filepath.FromSlash(p)))
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
