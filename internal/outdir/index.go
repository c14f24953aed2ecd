package outdir

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/internal/par"
)

// The digest index is what a finished build left in an output directory,
// file by file: the stamp (size, modification and change time) and the
// sha256 of each file it wrote or found unchanged. A later build that renders a
// file whose entry's stamp the file still has, and whose content hashes
// to the entry's digest, knows the file unchanged from one lstat, without
// opening or reading it (at 10,000 hosts, reading and comparing out/'s
// 160,000 files was most of a one-host change). An entry whose stamp the
// file no longer has is ignored (the file is read and compared as
// without an index), and so is an index that is missing, truncated or
// garbled: its first line carries the sha256 of the rest. It lives in the
// user's cache directory, beside the no-change record, never in out/.

// indexMagic starts an index's first line (its format's version).
const indexMagic = "hacompile-digest-index-3"

// indexEntry is one file's line in the index.
type indexEntry struct {
	stamp FileStamp
	sum   [sha256.Size]byte
	// key, when keyed, names everything the file was made from (a
	// runbook page's inputs: Writer.PutKeyed).
	key   [sha256.Size]byte
	keyed bool
}

// Index is a loaded digest index: its entries in tree path order, each
// path a slice of one string of them all (a map of 160,000 paths was
// twice the memory).
type Index struct {
	paths string
	ents  []indexRec
}

// indexRec is an entry and where its path is in Index.paths.
type indexRec struct {
	off, n uint32
	e      indexEntry
}

func (idx *Index) path(i int) string {
	r := &idx.ents[i]
	return idx.paths[r.off : r.off+r.n]
}

// lookup is the entry of tree path p.
func (idx *Index) lookup(p string) (indexEntry, bool) {
	i, ok := sort.Find(len(idx.ents), func(i int) int { return strings.Compare(p, idx.path(i)) })
	if !ok {
		return indexEntry{}, false
	}
	return idx.ents[i].e, true
}

// sortedEntries is m's paths in order and their entries in the same
// order, the order taken from the index's when the index names every
// path of m (a build that changed no file's path: at 10,000 hosts, one
// pass over 160,000 paths rather than a sort of them). A nil index, or
// one that does not name them all, sorts them.
func (idx *Index) sortedEntries(m map[string]fileEnt) ([]string, []fileEnt) {
	if idx != nil && len(idx.ents) >= len(m) {
		keys, ents := make([]string, 0, len(m)), make([]fileEnt, 0, len(m))
		for i := range idx.ents {
			p := idx.path(i)
			if e, ok := m[p]; ok {
				keys, ents = append(keys, p), append(ents, e)
			}
		}
		if len(keys) == len(m) {
			return keys, ents
		}
	}
	keys := sortedKeys(m)
	ents := make([]fileEnt, len(keys))
	par.Each(len(keys), func(i int) { ents[i] = m[keys[i]] })
	return keys, ents
}

// IndexLoad is an index being read in the background.
type IndexLoad struct {
	idx  *Index
	done chan struct{}
}

// StartIndex starts reading the digest index of the output directory out.
func StartIndex(out string) *IndexLoad {
	l := &IndexLoad{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.idx = loadIndex(indexPath(out))
	}()
	return l
}

// Wait returns the index read (nil when there is none, or it is not
// sound).
func (l *IndexLoad) Wait() *Index {
	if l == nil {
		return nil
	}
	<-l.done
	return l.idx
}

func indexPath(out string) string { return cacheFile(out, indexExt) }

func loadIndex(p string) *Index {
	if p == "" {
		return nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	markUsed(p)
	head, body, ok := bytes.Cut(b, []byte{'\n'})
	if !ok {
		return nil
	}
	magic, sum, ok := bytes.Cut(head, []byte{' '})
	got := sha256.Sum256(body)
	if !ok || string(magic) != indexMagic || hex.EncodeToString(got[:]) != string(sum) {
		return nil
	}
	n := bytes.Count(body, []byte{'\n'})
	idx := &Index{ents: make([]indexRec, 0, n)}
	// The paths' length first, so that the one string of them is made
	// to size.
	size := 0
	for rest := body; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		if len(line) > 2*sha256.Size {
			_, rest, _ := bytes.Cut(line[2*sha256.Size+1:], []byte{' '})
			_, rest, _ = bytes.Cut(rest, []byte{' '})
			_, rest, _ = bytes.Cut(rest, []byte{' '})
			_, p, _ := bytes.Cut(rest, []byte{' '})
			size += len(p)
		}
	}
	var paths strings.Builder
	paths.Grow(size)
	for len(body) > 0 {
		var line []byte
		line, body, _ = bytes.Cut(body, []byte{'\n'})
		// <sha256 hex> <size> <mtime ns> <ctime ns> <key hex, or -> <path>
		if len(line) < 2*sha256.Size+1 || line[2*sha256.Size] != ' ' {
			return nil
		}
		var e indexEntry
		if _, err := hex.Decode(e.sum[:], line[:2*sha256.Size]); err != nil {
			return nil
		}
		rest := line[2*sha256.Size+1:]
		size, rest, ok1 := bytes.Cut(rest, []byte{' '})
		mtime, rest, ok2 := bytes.Cut(rest, []byte{' '})
		ctime, rest, ok4 := bytes.Cut(rest, []byte{' '})
		key, p, ok3 := bytes.Cut(rest, []byte{' '})
		var err1, err2, err3, err4 error
		e.stamp.Size, err1 = strconv.ParseInt(string(size), 10, 64)
		e.stamp.ModTime, err2 = strconv.ParseInt(string(mtime), 10, 64)
		e.stamp.Change, err4 = strconv.ParseInt(string(ctime), 10, 64)
		if string(key) != "-" {
			e.keyed = true
			if len(key) != 2*sha256.Size {
				err3 = hex.ErrLength
			} else {
				_, err3 = hex.Decode(e.key[:], key)
			}
		}
		if !ok1 || !ok2 || !ok3 || !ok4 || err1 != nil || err2 != nil || err3 != nil || err4 != nil || len(p) == 0 || paths.Len()+len(p) > math.MaxUint32 {
			return nil
		}
		idx.ents = append(idx.ents, indexRec{off: uint32(paths.Len()), n: uint32(len(p)), e: e})
		paths.Write(p)
	}
	idx.paths = paths.String()
	// Stored in path order; an index in another order is sorted, and
	// one naming a path twice is not sound.
	byPath := func(a, b indexRec) int {
		return strings.Compare(idx.paths[a.off:a.off+a.n], idx.paths[b.off:b.off+b.n])
	}
	if !slices.IsSortedFunc(idx.ents, byPath) {
		slices.SortFunc(idx.ents, byPath)
	}
	for i := 1; i < len(idx.ents); i++ {
		if idx.path(i) == idx.path(i-1) {
			return nil
		}
	}
	return idx
}

// storeIndex writes the index of the files each yields (tree path,
// stamp and digest). Failing to write it only costs the next build its
// reads.
func storeIndex(out string, n int, each func(yield func(p string, e indexEntry))) {
	p := indexPath(out)
	if p == "" {
		return
	}
	// The first line, with the digest of the rest, is written last
	// into the room left for it.
	headLen := len(indexMagic) + 2 + 2*sha256.Size
	b := make([]byte, headLen, headLen+n*128)
	each(func(q string, e indexEntry) {
		b = hex.AppendEncode(b, e.sum[:])
		b = append(b, ' ')
		b = strconv.AppendInt(b, e.stamp.Size, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, e.stamp.ModTime, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, e.stamp.Change, 10)
		b = append(b, ' ')
		if e.keyed {
			b = hex.AppendEncode(b, e.key[:])
		} else {
			b = append(b, '-')
		}
		b = append(b, ' ')
		b = append(b, q...)
		b = append(b, '\n')
	})
	sum := sha256.Sum256(b[headLen:])
	head := append(append(append(b[:0], indexMagic...), ' '), hex.EncodeToString(sum[:])...)
	head = append(head, '\n')
	if len(head) != headLen {
		return
	}
	if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
		_, _ = writeAtomic(p, b, true)
	}
}

// UseIndex gives the writer the digest index of its directory (nil: none).
// Call it before the first Put.
func (w *Writer) UseIndex(idx *Index) { w.index = idx }

// StoreIndex records the stamp and digest of every file the writer wrote
// or found unchanged (after Finish), for the next build of the
// directory. Only a writer whose scope was all of its directory knows
// every file.
func (w *Writer) StoreIndex() {
	w.mu.RLock()
	defer w.mu.RUnlock()
	storeIndex(w.dir, len(w.sorted), func(yield func(string, indexEntry)) {
		for i, p := range w.sorted {
			if e := &w.ents[i]; e.hasSum {
				yield(p, indexEntry{stamp: e.stamp, sum: e.sum, key: e.key, keyed: e.keyed})
			}
		}
	})
}

// unchangedByIndex reports whether the file at tree path p, listed on
// disk with stamp st, holds content whose digest is sum, by the index
// alone: the file had, when listed, the stamp its entry records, and the
// entry's digest is sum (the file's stamp is then st). known is false
// when the index cannot tell (no entry, another stamp, not a regular
// file).
func (w *Writer) unchangedByIndex(p string, st FileStamp, sum [sha256.Size]byte) (same, known bool) {
	e, ok := w.indexedAs(p, st)
	return ok && e.sum == sum, ok
}

// indexed is the index's entry of the listed file at tree path p when
// the file had, when listed, the stamp the entry records: its content is
// then what the entry says.
func (w *Writer) indexed(p string) (indexEntry, bool) {
	st, listed := w.have[p]
	if !listed {
		return indexEntry{}, false
	}
	return w.indexedAs(p, st)
}

// indexedAs is indexed of the file at p listed with stamp st.
func (w *Writer) indexedAs(p string, st FileStamp) (indexEntry, bool) {
	if w.index == nil || st == irregular {
		return indexEntry{}, false
	}
	e, ok := w.index.lookup(p)
	return e, ok && e.stamp == st
}

// listed reports whether the writer's listing of its directory has a
// file at tree path p.
func (w *Writer) listed(p string) bool {
	_, ok := w.have[p]
	return ok
}

// keepEntry is the index's entry of a kept file at p with stamp st, when
// it has one.
func (w *Writer) keepEntry(p string, st FileStamp) (indexEntry, bool) {
	if w.index == nil {
		return indexEntry{}, false
	}
	e, ok := w.index.lookup(p)
	return e, ok && e.stamp == st
}

// PutKeyed is Put of a file made from the inputs key names: the index
// records the key beside the file's digest, for Reuse.
func (w *Writer) PutKeyed(p string, b []byte, key [sha256.Size]byte) error {
	return w.PutSumKeyed(p, b, sha256.Sum256(b), key)
}

// PutSumKeyed is PutKeyed of a file whose sha256 the caller knows
// already (PutSum).
func (w *Writer) PutSumKeyed(p string, b []byte, sum, key [sha256.Size]byte) error {
	return w.put(p, b, fileEnt{sum: sum, hasSum: true, key: key, keyed: true})
}

// Reuse reports whether dir holds at p, as the last build left it, the
// file that build made from the inputs key names (PutKeyed): the digest
// index records that key for p, and the file had, when listed, the
// stamp the index records. The writer then keeps the file, as Put would
// of the same content, and it need not be made again. Without an index,
// or with one that cannot tell, it reports false.
func (w *Writer) Reuse(p string, key [sha256.Size]byte) (bool, error) {
	_, _, ok := w.ReuseSum(p, key)
	return ok, nil
}

// ReuseSum is Reuse that also returns the reused file's sha256 and
// size, for a caller that stands the file in for one it would have made
// (artifact.Options.Reuse).
func (w *Writer) ReuseSum(p string, key [sha256.Size]byte) (sum [sha256.Size]byte, size int, ok bool) {
	e, ok := w.indexed(p)
	if !ok || !e.keyed || e.key != key {
		return sum, 0, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.add(p, fileEnt{stamp: e.stamp, sum: e.sum, hasSum: true, key: key, keyed: true}, true)
	w.stat(p).Unchanged++
	return e.sum, int(e.stamp.Size), true
}
