package outdir

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"strconv"
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
	// Site is the stack's site data, what the site-wide pages take from
	// it (site.Runbook.EncodeStackData): a card, a search entry and the
	// names of its parts of the search index, a few KB. Its reader,
	// site.DecodeStackData, refuses what is not that.
	Site json.RawMessage `json:"site"`
	// Stamps are the files the stack's build wrote or kept, by tree
	// path, as they were left. They follow the JSON as lines
	// "<size> <mtime ns> <ctime ns> <path>" (a map of 170,000 stamps took seconds
	// to encode as JSON).
	Stamps map[string]FileStamp `json:"-"`
}

// stackRecordPath is the record's file for the stack file named source
// built into out, or "" without a cache directory.
func stackRecordPath(out, source string) string {
	dir, err := cacheDir()
	if err != nil {
		return ""
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return ""
	}
	return filepath.Join(dir, stackRecords, CacheKey(abs, source)[:32]+recordExt)
}

// LoadStackRecord returns the record of the stack file named source when
// its key is key and out holds every file it lists with the stamp
// recorded: as listing l has it, when given (a build lists out/ anyway,
// and a 10,000-host stack's record names 160,000 files), or else by an
// lstat of each.
func LoadStackRecord(out, source, key string, l *Listing) (*StackRecord, bool) {
	p := stackRecordPath(out, source)
	if p == "" || key == "" {
		return nil, false
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	markUsed(p)
	// The first line is the sha256 of the rest and the key: a stale
	// record (some 10 MB of stamps for a 10,000-host stack) is refused
	// without reading on, and one garbled into other valid JSON is
	// refused too.
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
	js, lines, ok := bytes.Cut(body, []byte{'\n'})
	var rec StackRecord
	if !ok || json.Unmarshal(js, &rec) != nil || rec.Key != key || rec.Source != source || rec.Name == "" {
		return nil, false
	}
	if rec.Stamps, ok = parseStamps(lines); !ok || len(rec.Stamps) == 0 {
		return nil, false
	}
	if l != nil {
		<-l.done
		if l.err != nil {
			return nil, false
		}
		for q, st := range rec.Stamps {
			if got, ok := l.have[q]; !ok || got != st || got == irregular {
				return nil, false
			}
		}
		return &rec, true
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
// costs the next build a render. The stamps stream to the file: a
// 10,000-host stack's are some 10 MB, which a build near the end of its
// work need not hold twice. With stamps, those are the record's stamps
// (rec.Stamps is not read): a writer's, streamed without a map
// (Writer.StampsUnder).
func StoreStackRecord(out string, rec *StackRecord, stamps ...iter.Seq2[string, FileStamp]) {
	p := stackRecordPath(out, rec.Source)
	if p == "" || os.MkdirAll(filepath.Dir(p), 0o755) != nil {
		return
	}
	tmp, _, err := writeTemp(p, nil, true)
	if err != nil {
		return
	}
	if len(stamps) == 0 {
		stamps = append(stamps, maps.All(rec.Stamps))
	}
	if storeRecord(tmp, rec, stamps) != nil || os.Rename(tmp, p) != nil {
		os.Remove(tmp)
	}
}

// storeRecord writes rec to the file at tmp.
func storeRecord(tmp string, rec *StackRecord, stamps []iter.Seq2[string, FileStamp]) error {
	f, err := os.OpenFile(tmp, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// The first line, "<sha256 of the rest> <key>", goes before the
	// JSON once the rest is hashed: room is left for it.
	head := make([]byte, 2*sha256.Size+1+len(rec.Key)+1)
	if _, err := f.Write(head); err != nil {
		return err
	}
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	js, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	w.Write(js)
	w.WriteByte('\n')
	var line []byte
	for _, seq := range stamps {
		for q, st := range seq {
			line = appendStamp(line[:0], q, st)
			w.Write(line)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	hex.Encode(head, h.Sum(nil))
	head[2*sha256.Size] = ' '
	copy(head[2*sha256.Size+1:], rec.Key)
	head[len(head)-1] = '\n'
	if _, err := f.WriteAt(head, 0); err != nil {
		return err
	}
	return f.Close()
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
	if !w.listed(p) {
		return &fs.PathError{Op: "keep", Path: filepath.Join(w.dir, filepath.FromSlash(p)), Err: fs.ErrNotExist}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	f := fileEnt{stamp: st}
	if e, ok := w.keepEntry(p, st); ok {
		f.sum, f.hasSum, f.key, f.keyed = e.sum, true, e.key, e.keyed
	}
	w.add(p, f, true)
	w.stat(p).Unchanged++
	return nil
}

// appendStamp appends the line "<size> <mtime ns> <ctime ns> <path>".
func appendStamp(b []byte, p string, st FileStamp) []byte {
	b = strconv.AppendInt(b, st.Size, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, st.ModTime, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, st.Change, 10)
	b = append(b, ' ')
	b = append(b, p...)
	return append(b, '\n')
}

// parseStamps reads appendStamp's lines.
func parseStamps(b []byte) (map[string]FileStamp, bool) {
	stamps := make(map[string]FileStamp, bytes.Count(b, []byte{'\n'}))
	for len(b) > 0 {
		var line []byte
		var ok bool
		if line, b, ok = bytes.Cut(b, []byte{'\n'}); !ok {
			return nil, false
		}
		size, rest, ok1 := bytes.Cut(line, []byte{' '})
		mtime, rest, ok2 := bytes.Cut(rest, []byte{' '})
		ctime, p, ok3 := bytes.Cut(rest, []byte{' '})
		var st FileStamp
		var err1, err2, err3 error
		st.Size, err1 = strconv.ParseInt(string(size), 10, 64)
		st.ModTime, err2 = strconv.ParseInt(string(mtime), 10, 64)
		st.Change, err3 = strconv.ParseInt(string(ctime), 10, 64)
		if !ok1 || !ok2 || !ok3 || err1 != nil || err2 != nil || err3 != nil || len(p) == 0 {
			return nil, false
		}
		stamps[string(p)] = st
	}
	return stamps, true
}
