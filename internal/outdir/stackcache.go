package outdir

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hacompile/hacompile/internal/par"
	"github.com/hacompile/hacompile/schema"
)

// A build keeps, besides the no-change record of the whole build, one
// record per stack file: what the stack's last build wrote under out/
// (its directory and its runbook pages) and what the site-wide pages
// took from it. A later build whose inputs for that stack hash the same
// (StackRecord.Key) and whose out/ still holds those files untouched
// leaves the stack unloaded and unrendered. The records live in the
// user's cache directory, never in out/; one that is missing, stale,
// truncated or garbled is ignored (the stack renders), so it can cost
// time and never change a byte of output.

// StackRecord is one stack's record.
type StackRecord struct {
	Key      string              `json:"key"`
	Name     string              `json:"name"`
	Source   string              `json:"source"`
	Hosts    int                 `json:"hosts"`
	Files    int                 `json:"files"` // under out/<name>/
	RouterID int                 `json:"router_id,omitempty"`
	Findings []schema.Diagnostic `json:"findings"`
	Site     json.RawMessage     `json:"site"` // the runbook's StackData
	// Stamps are the files the stack's build wrote or kept, by tree
	// path, as they were left.
	Stamps map[string]FileStamp `json:"stamps"`
}

// stackRecordPath is the record's file for the stack file named source
// built into out, or "" without a cache directory.
func stackRecordPath(out, source string) string {
	base, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return ""
	}
	return filepath.Join(base, "hacompile", "stacks", CacheKey(abs, source)[:32]+".json")
}

// LoadStackRecord returns the record of the stack file named source when
// its key is key and out holds every file it lists with the stamp
// recorded.
func LoadStackRecord(out, source, key string) (*StackRecord, bool) {
	p := stackRecordPath(out, source)
	if p == "" || key == "" {
		return nil, false
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	// The first line is the sha256 of the rest and the key: a stale
	// record (tens of MB for a 10,000-host stack) is refused without
	// reading on, and one garbled into other valid JSON is refused too.
	r := bufio.NewReader(f)
	head, err := r.ReadString('\n')
	if err != nil {
		return nil, false
	}
	sum, recKey, ok := strings.Cut(strings.TrimSuffix(head, "\n"), " ")
	if !ok || recKey != key {
		return nil, false
	}
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, false
	}
	got := sha256.Sum256(body)
	if hex.EncodeToString(got[:]) != sum {
		return nil, false
	}
	var rec StackRecord
	if json.Unmarshal(body, &rec) != nil || rec.Key != key || rec.Source != source || rec.Name == "" || len(rec.Stamps) == 0 {
		return nil, false
	}
	paths := make([]string, 0, len(rec.Stamps))
	for q := range rec.Stamps {
		paths = append(paths, q)
	}
	bad := make([]bool, len(paths))
	par.Each(len(paths), func(i int) {
		fi, err := os.Lstat(filepath.Join(out, filepath.FromSlash(paths[i])))
		bad[i] = err != nil || !fi.Mode().IsRegular() || stampOf(fi) != rec.Stamps[paths[i]]
	})
	for _, b := range bad {
		if b {
			return nil, false
		}
	}
	return &rec, true
}

// StoreStackRecord records a stack's build. Failing to write it only
// costs the next build a render.
func StoreStackRecord(out string, rec *StackRecord) {
	p := stackRecordPath(out, rec.Source)
	if p == "" {
		return
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return
	}
	sum := sha256.Sum256(body)
	b := append([]byte(hex.EncodeToString(sum[:])+" "+rec.Key+"\n"), body...)
	if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
		_, _ = writeAtomic(p, b, true)
	}
}

// HashInputsExcept is HashInputs leaving out the files named in skip
// (absolute paths).
func HashInputsExcept(paths []string, skip map[string]bool) (string, error) {
	h := sha256.New()
	for _, root := range paths {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					h.Write([]byte("missing\x00" + p + "\x00"))
					return nil
				}
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			if abs, err := filepath.Abs(p); err == nil && skip[abs] {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write([]byte(p + "\x00"))
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

// Keep marks the file at tree path p as the build's, unchanged, with the
// stamp it has (a stack left unrendered keeps the files its last build
// wrote). It must be on disk.
func (w *Writer) Keep(p string, st FileStamp) error {
	if !w.have[p] {
		return &fs.PathError{Op: "keep", Path: filepath.Join(w.dir, filepath.FromSlash(p)), Err: fs.ErrNotExist}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stamps[p] = st
	w.stat(p).Unchanged++
	return nil
}
