package outdir

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/hacompile/hacompile/internal/par"
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
	Key      string              `json:"key"`
	Stacks   []StackSummary      `json:"stacks"` // in the order build prints them
	Findings []schema.Diagnostic `json:"findings"`
	// Files is how many files out/ held, Stamps the digest of their
	// paths, sizes, modification and change times (a map of a 10,000-host
	// fleet's stamps took as long to encode as to check).
	Files  int    `json:"files"`
	Stamps string `json:"stamps"`
}

// StackSummary is what build prints for a stack.
type StackSummary struct {
	Name  string `json:"name"`
	Hosts int    `json:"hosts"`
	Files int    `json:"files"`
}

// FileStamp identifies a file's state cheaply: size, modification time
// and change time.
type FileStamp struct {
	Size    int64 `json:"size"`
	ModTime int64 `json:"mtime_ns"`
	// Change is the inode's change time (ctime), where the system has
	// one (else 0): no program can set it, so a file edited in place
	// to its old size and then given its old mtime back (touch -r)
	// still differs from its stamp.
	Change int64 `json:"ctime_ns"`
}

// irregular is the stamp a listing gives what is not a regular file (a
// link, a device): no regular file has it, so no record of one matches.
var irregular = FileStamp{Size: -1}

// errIrregular is a path of out/ that holds something other than a
// regular file (a link, a named pipe, a device): readRegular's error.
var errIrregular = errors.New("not a regular file")

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

// Stamps reads the stamp of every file under dir.
func Stamps(dir string) (map[string]FileStamp, error) { return listFiles(dir, true) }

// listFilesReadDir is listFiles with os.ReadDir, for any system: each
// directory is read by its path from dir, level by level, each level's
// on every core.
func listFilesReadDir(dir string, stamped bool) (map[string]FileStamp, error) {
	type entry struct {
		rel   string
		stamp FileStamp
		dir   bool
	}
	out := map[string]FileStamp{}
	level := []string{""} // directories, relative to dir
	for len(level) > 0 {
		found := make([][]entry, len(level))
		errs := make([]error, len(level))
		par.Each(len(level), func(i int) {
			ents, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(level[i])))
			if err != nil {
				errs[i] = err
				return
			}
			for _, d := range ents {
				if level[i] == "" && d.Name() == OwnerFile {
					continue // the record of the files, not one of them
				}
				e := entry{rel: path.Join(level[i], d.Name()), dir: d.IsDir()}
				if !e.dir && stamped {
					fi, err := d.Info()
					if err != nil {
						errs[i] = err
						return
					}
					e.stamp = irregular
					if fi.Mode().IsRegular() {
						e.stamp = stampOf(fi)
					}
				}
				found[i] = append(found[i], e)
			}
		})
		var next []string
		for i := range level {
			if errs[i] != nil {
				return nil, errs[i]
			}
			for _, e := range found[i] {
				if e.dir {
					next = append(next, e.rel)
				} else {
					out[e.rel] = e.stamp
				}
			}
		}
		level = next
	}
	return out, nil
}

// stampsDigest hashes stamps in path order.
func stampsDigest(stamps map[string]FileStamp) string {
	paths := sortedKeys(stamps)
	return sortedStampsDigest(paths, func(i int) FileStamp { return stamps[paths[i]] })
}

// sortedStampsDigest is stampsDigest of the sorted paths, path i's
// stamp being stamp(i). The lines go to the hash some 64 KB at a time
// (one write a line was most of the cost).
func sortedStampsDigest(paths []string, stamp func(i int) FileStamp) string {
	h := sha256.New()
	buf := make([]byte, 0, 64<<10)
	for i, p := range paths {
		st := stamp(i)
		// "%s\x00%d\x00%d\x00%d\n"
		buf = append(append(buf, p...), 0)
		buf = append(strconv.AppendInt(buf, st.Size, 10), 0)
		buf = append(strconv.AppendInt(buf, st.ModTime, 10), 0)
		buf = append(strconv.AppendInt(buf, st.Change, 10), '\n')
		if len(buf) > 60<<10 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil))
}

// cachePath is the record's file for an output directory, or "" when the
// user has no cache directory (then nothing is cached).
func cachePath(out string) string { return cacheFile(out, recordExt) }

// cacheDir is hacompile's directory in the user's cache directory: the
// records of the builds (cacheFile) and of their stacks
// (stackRecordPath), which TrimCache trims.
func cacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "hacompile"), nil
}

// The names of the files in cacheDir: an output directory's build
// record, digest index and lock are buildPrefix + its key + recordExt,
// indexExt and lockExt; a stack's record is stackRecords/ + its key +
// recordExt.
const (
	buildPrefix  = "build-"
	stackRecords = "stacks"
	recordExt    = ".json"
	indexExt     = ".index"
	lockExt      = ".lock"
)

// cacheFile is a file of the user's cache directory that belongs to an
// output directory (named for its absolute path), or "".
func cacheFile(out, ext string) string {
	dir, err := cacheDir()
	if err != nil {
		return ""
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return ""
	}
	return filepath.Join(dir, buildPrefix+CacheKey(abs)[:32]+ext)
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
	markUsed(p)
	var rec CacheRecord
	if json.Unmarshal(b, &rec) != nil || rec.Key != key || rec.Files == 0 {
		return nil, false
	}
	// Files the owner record does not name are not the build's: a
	// build would leave them as they are, as this does.
	var now map[string]FileStamp
	stamped := false
	if finishedWriting(out) {
		now, _, _, stamped, err = listRecorded(out)
	}
	if err == nil && !stamped {
		now, err = Stamps(out)
	}
	if err != nil || len(now) != rec.Files || stampsDigest(now) != rec.Stamps {
		return nil, false
	}
	return &rec, true
}

// StoreCache records a finished build, with the stamps of every file in
// out (nil: read them from out). Failing to write the record only costs
// the next build its shortcut.
func StoreCache(out string, rec *CacheRecord, stamps map[string]FileStamp) {
	if cachePath(out) == "" {
		return
	}
	if stamps == nil {
		var err error
		if stamps, err = Stamps(out); err != nil {
			return
		}
	}
	StoreCacheDigest(out, rec, len(stamps), stampsDigest(stamps))
}

// StoreCacheDigest is StoreCache of a build whose writer gave the number
// of files and their stamps' digest (Writer.StampsDigest).
func StoreCacheDigest(out string, rec *CacheRecord, files int, digest string) {
	p := cachePath(out)
	if p == "" {
		return
	}
	rec.Files, rec.Stamps = files, digest
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
		_, _ = writeAtomic(p, b, true)
	}
}
