package build

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hacompile/hacompile/schema"
)

// A build that would change nothing — same hacompile binary, same
// inputs, same flags and date, and an out/ exactly as the last build left
// it — can skip rendering. The record of the last build lives in the
// user's cache directory, never in out/ (which is committed), keyed by the
// output directory. build --check never uses it: it always renders and
// compares bytes.

// CacheRecord is what a build leaves for the next one.
type CacheRecord struct {
	Key      string               `json:"key"`
	Stacks   []StackSummary       `json:"stacks"` // in the order build prints them
	Findings []schema.Diagnostic  `json:"findings"`
	Files    map[string]FileStamp `json:"files"` // out-relative path → stamp
}

// StackSummary is what build prints for a stack.
type StackSummary struct {
	Name  string `json:"name"`
	Hosts int    `json:"hosts"`
	Files int    `json:"files"`
}

// FileStamp identifies a file's state cheaply: size and modification time.
type FileStamp struct {
	Size    int64 `json:"size"`
	ModTime int64 `json:"mtime_ns"`
}

// CacheKey hashes the parts of a build's identity.
func CacheKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		io.WriteString(h, p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// HashInputs hashes the names and bytes of every regular file under the
// given files and directories (recursively: Jsonnet imports, generator
// files), in a stable order. A missing path hashes as missing.
func HashInputs(paths []string) (string, error) {
	h := sha256.New()
	for _, root := range paths {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					io.WriteString(h, "missing\x00"+p+"\x00")
					return nil
				}
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			io.WriteString(h, p+"\x00")
			sum := sha256.Sum256(b)
			h.Write(sum[:])
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Stamps reads the stamp of every regular file under dir.
func Stamps(dir string) (map[string]FileStamp, error) {
	out := map[string]FileStamp{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = FileStamp{Size: fi.Size(), ModTime: fi.ModTime().UnixNano()}
		return nil
	})
	return out, err
}

// cachePath is the record's file for an output directory, or "" when the
// user has no cache directory (then nothing is cached).
func cachePath(out string) string {
	base, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return ""
	}
	return filepath.Join(base, "hacompile", "build-"+CacheKey(abs)[:32]+".json")
}

// LoadCache returns the last build's record when its key is key and out
// still holds exactly the files it wrote, untouched.
func LoadCache(out, key string) (*CacheRecord, bool) {
	p := cachePath(out)
	if p == "" {
		return nil, false
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, false
	}
	var rec CacheRecord
	if json.Unmarshal(b, &rec) != nil || rec.Key != key || len(rec.Files) == 0 {
		return nil, false
	}
	now, err := Stamps(out)
	if err != nil || len(now) != len(rec.Files) {
		return nil, false
	}
	for p, st := range rec.Files {
		if now[p] != st {
			return nil, false
		}
	}
	return &rec, true
}

// StoreCache records a finished build. Failing to write the record only
// costs the next build its shortcut.
func StoreCache(out string, rec *CacheRecord) {
	p := cachePath(out)
	if p == "" {
		return
	}
	stamps, err := Stamps(out)
	if err != nil {
		return
	}
	rec.Files = stamps
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
		_ = writeAtomic(p, b, true)
	}
}
