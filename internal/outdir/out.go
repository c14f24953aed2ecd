// Package outdir owns the out/ directory: it writes a rendered tree
// into it (atomically, leaving unchanged files untouched and removing
// what is no longer produced), compares a tree with it (build --check,
// push), serializes builds of one out/ with a lock, and keeps the
// no-change record that lets a build that would change nothing skip
// rendering.
package outdir

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hacompile/hacompile/internal/par"
)

// Tree maps slash-separated paths relative to out/ to file contents.
type Tree map[string][]byte

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

// existing lists the files under dir as slash paths relative to it. A
// missing dir is an empty tree.
func existing(dir string) (map[string]bool, error) {
	list, err := listDir(dir, false)
	if err != nil {
		return nil, err
	}
	files := make(map[string]bool, len(list))
	for p := range list {
		files[p] = true
	}
	return files, nil
}

// listDir is listFiles where a missing dir is an empty tree.
func listDir(dir string, stamped bool) (map[string]FileStamp, error) {
	list, err := listFiles(dir, stamped)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
			return map[string]FileStamp{}, nil
		}
	}
	return list, err
}

// inScope keeps the existing files whose first path element is in
// scope; an empty scope keeps all (the whole of out/ is the build's).
func inScope[V any](have map[string]V, scope []string) map[string]V {
	if len(scope) == 0 {
		return have
	}
	kept := map[string]V{}
	for p, v := range have {
		top, _, _ := strings.Cut(p, "/")
		if slices.Contains(scope, top) {
			kept[p] = v
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
	keys := sortedKeys(t)
	stale := make([]bool, len(keys))
	errs := make([]error, len(keys))
	par.Each(len(keys), func(i int) {
		if !have[keys[i]] {
			return
		}
		stale[i], errs[i] = differs(filepath.Join(dir, filepath.FromSlash(keys[i])), t[keys[i]])
	})
	for i, p := range keys {
		switch {
		case errs[i] != nil:
			return d, errs[i]
		case !have[p]:
			d.Missing = append(d.Missing, p)
		case stale[i]:
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

// differs reports whether the file at full is other than b, for Compare
// and the Checker: a link or a pipe where the build writes a file
// differs too, and is not read.
func differs(full string, b []byte) (bool, error) {
	disk, err := readRegular(full)
	if errors.Is(err, errIrregular) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return !bytes.Equal(disk, b), nil
}

// Write makes dir hold exactly the tree: changed files are replaced
// atomically (temp file + rename), unchanged files are not touched, and
// files no longer produced are removed with the directories they leave
// empty. No file the tree changes is visible before every file is
// written: a top-level directory (a stack, the site) that does not exist
// yet is written whole into a hidden staging directory, a changed or new
// file elsewhere into a temporary file beside its place (new directories
// for them appear empty), and all are renamed into place at the end; a
// write that fails leaves dir as it was (see Finish for the one
// exception). stats is keyed by the first path element. Files are
// compared and written on every core; directories are created once.
//
// With a scope, only the top-level directories in it are the build's:
// files elsewhere are neither compared nor removed.
func Write(dir string, t Tree, scope ...string) (map[string]*Stats, error) {
	return WriteListed(StartListing(dir), t, scope...)
}

// WriteListed is Write to the directory l lists (NewListedWriter).
func WriteListed(l *Listing, t Tree, scope ...string) (map[string]*Stats, error) {
	w, err := NewListedWriter(l, scope...)
	if err != nil {
		return nil, err
	}
	if err := w.Write(t); err != nil {
		w.Abort()
		return nil, err
	}
	return w.Finish()
}

// Writer is Write in steps, so that files can be written as they are
// rendered: Put files or Write trees (from any number of goroutines),
// then Finish, which renames what they wrote into place, or Abort on
// failure, which removes it.
type Writer struct {
	dir  string
	root []string // the directories making dir made, deepest first
	// have are the files on disk in scope, with the stamps they had when
	// listed (irregular for what is not a regular file).
	have  map[string]FileStamp
	owned map[string]bool // files on disk hacompile wrote (OwnerFile), in scope or not
	// unrecorded: dir had no OwnerFile (it was empty), so Finish writes
	// one before it renames anything into place.
	unrecorded bool
	// scoped: have is not all of dir (a scope was given).
	scoped bool
	chmod  bool
	// dirs: directory under dir → its creation (keys are copies, not
	// slices of the file paths they came from, which they would keep).
	dirsMu sync.Mutex
	dirs   map[string]*dirOnce

	mu     sync.RWMutex      // read-locked by what only reads, after Finish
	stages map[string]string // top-level directory → its staging directory ("" when it exists)
	// files are every tree path written or kept: one entry a path, its
	// stamp, digest and key together (at 10,000 hosts, a map each for
	// 160,000 paths made the end of a build mostly map lookups).
	files map[string]fileEnt
	index *Index // the last build's digests, or nil
	stats map[string]*Stats
	// listedPut counts the paths of have in files: when it is all of
	// have, Finish has nothing to remove.
	listedPut int
	// pending are the temporary files Finish renames over their
	// targets; made are the directories created outside staging
	// directories, which Abort removes again when empty.
	pending []rename
	made    []string
	// sorted are the paths of files in order, once Finish is done, and
	// ents their entries, in the same order.
	sorted []string
	ents   []fileEnt
}

// fileEnt is what a writer knows of a file written or kept: its stamp,
// its sha256 (hasSum: where known) and the key of its inputs (keyed:
// PutKeyed).
type fileEnt struct {
	stamp         FileStamp
	sum, key      [sha256.Size]byte
	hasSum, keyed bool
}

// rename is a written temporary file and the file it replaces, at
// tree path p.
type rename struct{ tmp, full, p string }

// dirOnce creates one directory once, however many files go into it.
type dirOnce struct {
	once sync.Once
	err  error
}

// Listing is what an output directory holds, each file with its stamp,
// and the record of the files hacompile wrote there (OwnerFile), read in
// the background so that the reading overlaps the compile.
type Listing struct {
	dir  string
	have map[string]FileStamp
	err  error
	// owned is the set of files the record lists (readOwned), found
	// false when dir has none.
	owned      map[string]bool
	ownedFound bool
	ownedErr   error
	done       chan struct{}
}

// StartListing starts reading what dir holds. It only reads. In a
// directory whose last writer finished, what it holds is what its owner
// record names (listRecorded).
func StartListing(dir string) *Listing {
	if !finishedWriting(dir) {
		return StartListingAll(dir)
	}
	l := &Listing{dir: dir, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		var stamped bool
		var files []string
		l.have, files, l.ownedFound, stamped, l.err = listRecorded(dir)
		if l.ownedFound && l.err == nil {
			l.owned = ownedSet(files)
		}
		if l.err == nil && !stamped {
			l.have, l.err = listDir(dir, true)
		}
	}()
	return l
}

// firstFile is the first file (anything but a directory) under dir/rel
// in a walk of sorted names, not following links and passing over the
// staging directories at dir's top; false when there is none, or a
// directory cannot be read (the listing then says why).
func firstFile(dir, rel string) (string, bool) {
	entries, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return "", false
	}
	for _, e := range entries {
		p := path.Join(rel, e.Name())
		switch {
		case rel == "" && strings.HasPrefix(e.Name(), stagePrefix):
		case !e.IsDir():
			return p, true
		default:
			if f, ok := firstFile(dir, p); ok {
				return f, true
			}
		}
	}
	return "", false
}

// Tops is the top-level directories of what l found (each stack's
// output and the runbook's), sorted. It waits for the listing.
func (l *Listing) Tops() ([]string, error) {
	<-l.done
	if l.err != nil {
		return nil, l.err
	}
	seen := map[string]bool{}
	for p := range l.have {
		if top, _, ok := strings.Cut(p, "/"); ok {
			seen[top] = true
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// StartListingAll is StartListing reading every directory, whatever the
// user's cache directory says of dir's last writer (build --no-cache).
func StartListingAll(dir string) *Listing {
	l := &Listing{dir: dir, done: make(chan struct{})}
	if _, err := os.Lstat(filepath.Join(dir, OwnerFile)); errors.Is(err, fs.ErrNotExist) {
		// Without a record a directory that holds a file is refused
		// (ownedWithoutRecord): the first file found says so, without
		// listing the rest (--out / would list the whole filesystem).
		if p, ok := firstFile(dir, ""); ok {
			l.err = notOwned(dir, p)
			close(l.done)
			return l
		}
	}
	owner := make(chan struct{})
	go func() {
		// The record (170,000 paths at 10,000 hosts) is read beside the
		// listing, not after it: a build's first write waits for both.
		defer close(owner)
		l.owned, l.ownedFound, l.ownedErr = readOwned(dir)
	}()
	go func() {
		defer close(l.done)
		l.have, l.err = listDir(dir, true)
		<-owner
	}()
	return l
}

// NewWriter lists what dir holds (within the scope's top-level
// directories, or all of it) and removes what a build that did not
// finish left behind.
func NewWriter(dir string, scope ...string) (*Writer, error) {
	return NewListedWriter(StartListing(dir), scope...)
}

// NewListedWriter is NewWriter for a directory whose listing was started
// earlier; dir must not have changed since. The writer takes over what
// the listing read: a listing makes one writer.
func NewListedWriter(l *Listing, scope ...string) (*Writer, error) {
	<-l.done
	if l.err != nil {
		return nil, l.err
	}
	owned, err := l.owned, l.ownedErr
	if err == nil && !l.ownedFound {
		owned, err = ownedWithoutRecord(l.dir, l.have)
	}
	if err != nil {
		return nil, err
	}
	unrecorded := !l.ownedFound
	l.owned = nil
	// From here until Finish, or an Abort that removed all it wrote,
	// dir may hold this writer's temporary files.
	markWriting(l.dir)
	if err := removeStages(l.dir); err != nil {
		return nil, err
	}
	// What removeStages just removed is not the writer's to remove again;
	// nor are temporary files a build that did not finish left beside
	// the files it was replacing: they go now, uncounted.
	// The listing's map becomes the writer's (a second map of a large
	// fleet's 160,000 files would be tens of MB): the listing is used
	// once.
	have, temps := l.have, map[string]FileStamp{}
	l.have = nil
	for p := range have {
		switch {
		case strings.HasPrefix(p, stagePrefix):
			delete(have, p)
		case strings.HasPrefix(path.Base(p), stagePrefix):
			temps[p] = have[p]
			delete(have, p)
		}
	}
	for p := range inScope(temps, scope) {
		if err := os.Remove(filepath.Join(l.dir, filepath.FromSlash(p))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	// The directories MkdirAll makes (out/ itself, and parents), deepest
	// first, for Abort to remove again.
	var root []string
	for d := filepath.Clean(l.dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) || filepath.Dir(d) == d {
			break
		}
		root = append(root, d)
	}
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return nil, err
	}
	for p := range owned {
		if _, ok := have[p]; !ok {
			delete(owned, p) // gone since
		}
	}
	// A build mostly writes again the files out holds: the maps of what
	// it writes start that large (growing a 170,000-entry map rehashes
	// it at every doubling).
	have = inScope(have, scope)
	return &Writer{dir: l.dir, root: root, have: have, owned: owned, unrecorded: unrecorded, scoped: len(scope) > 0, chmod: umask()&0o644 != 0,
		stages: map[string]string{}, files: make(map[string]fileEnt, len(have)), stats: map[string]*Stats{}}, nil
}

func (w *Writer) stat(p string) *Stats {
	top, _, _ := strings.Cut(p, "/")
	if w.stats[top] == nil {
		w.stats[top] = &Stats{}
	}
	return w.stats[top]
}

// Write writes the files of t, on every core.
func (w *Writer) Write(t Tree) error {
	keys := sortedKeys(t)
	errs := make([]error, len(keys))
	par.Each(len(keys), func(i int) { errs[i] = w.Put(keys[i], t[keys[i]]) })
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Put writes the file at tree path p unless dir holds it already. A file
// in a top-level directory not on disk yet goes into that directory's
// staging directory, which Finish renames into place.
func (w *Writer) Put(p string, b []byte) error { return w.PutSum(p, b, sha256.Sum256(b)) }

// PutSum is Put of a file whose sha256 the caller knows already (sum
// must be that of b: the digest index records it as the file's).
func (w *Writer) PutSum(p string, b []byte, sum [sha256.Size]byte) error {
	return w.put(p, b, fileEnt{sum: sum, hasSum: true})
}

// put is PutSum of the file whose entry e is, but for its stamp (its
// key, when keyed).
func (w *Writer) put(p string, b []byte, e fileEnt) error {
	sum := e.sum
	target := p
	if top, rest, ok := strings.Cut(p, "/"); ok {
		w.mu.Lock()
		st, seen := w.stages[top]
		if !seen {
			if _, err := os.Lstat(filepath.Join(w.dir, top)); errors.Is(err, fs.ErrNotExist) {
				st = stagePrefix + strconv.Itoa(os.Getpid()) + "-" + top
			}
			w.stages[top] = st
		}
		w.mu.Unlock()
		if st != "" {
			target = path.Join(st, rest)
		}
	}
	full := filepath.Join(w.dir, filepath.FromSlash(target))
	listedAs, listed := w.have[p]
	var err error
	var tmp string // renamed over full by Finish
	var stamp FileStamp
	changed := true
	switch {
	case target != p:
		// Staged: the directory appears by rename once complete.
		if err = w.mkdir(path.Dir(target)); err == nil {
			stamp, err = writeFile(full, b, w.chmod)
		}
	case listed:
		// The digest index knows most files unchanged from their
		// listed stamps (reached through directories, never links).
		same, known := w.unchangedByIndex(p, listedAs, sum)
		if same {
			changed, stamp = false, listedAs
			break
		}
		if err = w.mkdir(path.Dir(target)); err != nil {
			break
		}
		if known { // changed: no need to read the old content
			tmp, stamp, err = writeTemp(full, b, w.chmod)
			break
		}
		old, st, rerr := readOld(full)
		if rerr == nil && bytes.Equal(old, b) {
			changed, stamp = false, st
			break
		}
		if errors.Is(rerr, errLink) {
			return w.linkInWay(full)
		}
		if rerr == nil && !w.unrecorded && !w.owned[p] {
			// Someone else's file where the build now makes one:
			// replacing it would lose it.
			return fmt.Errorf("%s: this build makes a file here, and the one there is not hacompile's (%s does not list it): move it away, and build again", full, OwnerFile)
		}
		tmp, stamp, err = writeTemp(full, b, w.chmod)
	default:
		if err = w.mkdir(path.Dir(target)); err == nil {
			tmp, stamp, err = writeTemp(full, b, w.chmod)
		}
	}
	if errors.Is(err, errLink) {
		return err
	}
	if errors.Is(err, syscall.ENOTDIR) {
		// A file of an earlier build where this one needs a directory.
		for d := filepath.Dir(full); len(d) > len(w.dir); d = filepath.Dir(d) {
			if fi, serr := os.Lstat(d); serr == nil && !fi.IsDir() {
				return fmt.Errorf("writing %s: %s is a file where a directory goes (an earlier build's; remove it and build again)", full, d)
			}
		}
	}
	if err != nil {
		// A directory no file can be made in is said as that, the same
		// for every file (the build says it once), rather than as each
		// file's own error. Only a write meets it: a build that changes
		// nothing in a read-only out/ still passes.
		if derr := writable(w.dir); derr != nil && !errors.Is(derr, fs.ErrNotExist) {
			return derr
		}
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if tmp != "" {
		w.pending = append(w.pending, rename{tmp, full, p})
	}
	e.stamp = stamp
	w.add(p, e, listed)
	if changed {
		w.stat(p).Written++
	} else {
		w.stat(p).Unchanged++
	}
	return nil
}

// add enters e as the entry of p, which have lists or not (w.mu held).
func (w *Writer) add(p string, e fileEnt, listed bool) {
	n := len(w.files)
	w.files[p] = e
	if listed && len(w.files) > n {
		w.listedPut++
	}
}

// mkdir makes the directory d (a slash path under dir) and its parents,
// each once.
func (w *Writer) mkdir(d string) error {
	if d == "." || d == "/" {
		return nil
	}
	w.dirsMu.Lock()
	o := w.dirs[d]
	if o == nil {
		if w.dirs == nil {
			w.dirs = map[string]*dirOnce{}
		}
		d = strings.Clone(d)
		o = &dirOnce{}
		w.dirs[d] = o
	}
	w.dirsMu.Unlock()
	o.once.Do(func() {
		if o.err = w.mkdir(path.Dir(d)); o.err != nil {
			return
		}
		err := os.Mkdir(filepath.Join(w.dir, filepath.FromSlash(d)), 0o755)
		switch {
		case err == nil:
			if top, _, _ := strings.Cut(d, "/"); !strings.HasPrefix(top, stagePrefix) {
				w.mu.Lock()
				w.made = append(w.made, d)
				w.mu.Unlock()
			}
		case !errors.Is(err, fs.ErrExist):
			o.err = err
		default:
			// There already: a directory, never a link to one, which
			// would take the files written into it out of dir.
			full := filepath.Join(w.dir, filepath.FromSlash(d))
			if fi, err := os.Lstat(full); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
				o.err = w.linkInWay(full)
			}
		}
	})
	return o.err
}

// errLink is a symbolic link in dir where the build writes.
var errLink = errors.New("is a symbolic link")

// linkInWay is the error for the link at full: hacompile never writes
// through one, nor replaces it.
func (w *Writer) linkInWay(full string) error {
	return fmt.Errorf("writing %s: %s %w; hacompile does not follow links in %s (remove it and build again)", w.dir, full, errLink, w.dir)
}

// Abort removes what a write that failed wrote: the staging
// directories, the temporary files and the directories made for them.
// dir is left as it was. It must not run concurrently with Put.
func (w *Writer) Abort() {
	var left atomic.Bool // a file this writer wrote is still there
	for _, st := range w.stages {
		if st != "" && os.RemoveAll(filepath.Join(w.dir, st)) != nil {
			left.Store(true)
		}
	}
	par.Each(len(w.pending), func(i int) {
		if err := os.Remove(w.pending[i].tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			left.Store(true)
		}
	})
	if !left.Load() {
		doneWriting(w.dir)
	}
	w.pending = nil
	// Exactly the directories made, deepest first: an empty directory
	// that was there before stays.
	slices.SortFunc(w.made, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, d := range w.made {
		os.Remove(filepath.Join(w.dir, filepath.FromSlash(d))) // fails, and stays, when not empty
	}
	w.made = nil
	// An output directory this writer made goes too, when empty.
	for _, d := range w.root {
		if os.Remove(d) != nil {
			break
		}
	}
	w.root = nil
}

// StampsUnder yields, in path order, the path and stamp of every file
// written or found unchanged whose tree path starts with prefix (after
// Finish), and reports how many there are. It reads the writer's
// sorted paths: no map, no copy.
func (w *Writer) StampsUnder(prefix string) (int, iter.Seq2[string, FileStamp]) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	lo, _ := slices.BinarySearch(w.sorted, prefix)
	hi := lo + sort.Search(len(w.sorted)-lo, func(i int) bool { return !strings.HasPrefix(w.sorted[lo+i], prefix) })
	paths, ents := w.sorted[lo:hi], w.ents[lo:hi]
	return hi - lo, func(yield func(string, FileStamp) bool) {
		for i, p := range paths {
			if !yield(p, ents[i].stamp) {
				return
			}
		}
	}
}

// Finish moves what was written into place — the changed and new files
// in existing directories, then the new top-level directories — and
// removes the files (in scope) that no Write produced, with the
// directories they leave empty. stats is keyed by top-level directory.
// A directory where a file goes fails the write before anything is
// renamed (dir stays as it was). A rename failing otherwise (an I/O
// error) cannot be undone: the renames done stay done, the owner record
// naming every file they put in place (written before them), and the
// rest of the write is removed as Abort would.
func (w *Writer) Finish() (map[string]*Stats, error) {
	errs := make([]error, len(w.pending))
	// A directory where a file goes is the one failure seen coming:
	// checked for all before any rename, it leaves dir as it was. An
	// empty one (left by a build that was killed) holds nothing to keep,
	// and makes way.
	empty := make([]bool, len(w.pending))
	par.Each(len(w.pending), func(i int) {
		full := w.pending[i].full
		if fi, err := os.Lstat(full); err == nil && fi.IsDir() {
			if entries, err := os.ReadDir(full); err == nil && len(entries) == 0 {
				empty[i] = true
				return
			}
			errs[i] = fmt.Errorf("writing %s: a directory is in the way (an earlier build's; remove it and build again)", full)
		}
	})
	if err := errors.Join(errs...); err != nil {
		w.Abort()
		return nil, err
	}
	// The files hacompile owns now: every file written or kept, and
	// those out of scope it wrote before. Sorted once, for the owner
	// record and the digest index and build record after.
	w.sorted, w.ents = w.index.sortedEntries(w.files)
	// A directory that had no owner record (it was empty) gets its
	// record before anything is renamed into place: a build killed
	// while renaming leaves files that the record names, which the next
	// build may then write over or remove, and not a directory it would
	// refuse as one it did not write. The record is then what it will
	// be (nothing was owned before, so nothing is removed).
	if w.unrecorded {
		if err := writeOwner(w.dir, w.sorted, w.chmod); err != nil {
			w.Abort()
			return nil, err
		}
	} else if added := w.added(); added != nil {
		// Likewise the files new to a recorded directory: a rename
		// that fails (or a build killed) after others were done leaves
		// them owned, for the next build to replace or remove, not
		// strays it would keep as someone else's. What it owned before
		// stays listed until it is removed below.
		if err := writeOwner(w.dir, added, w.chmod); err != nil {
			w.Abort()
			return nil, err
		}
	}
	// A rename sets the moved file's change time (ctime), which its
	// stamp holds: each is stamped again where it now is.
	restamped := make([]FileStamp, len(w.pending))
	par.Each(len(w.pending), func(i int) {
		if empty[i] {
			os.Remove(w.pending[i].full) // the rename below says if it did not
		}
		if errs[i] = renameFile(w.pending[i].tmp, w.pending[i].full); errs[i] != nil {
			os.Remove(w.pending[i].tmp)
			return
		}
		fi, err := os.Lstat(w.pending[i].full)
		if err != nil {
			errs[i] = err
			return
		}
		restamped[i] = stampOf(fi)
	})
	if err := errors.Join(errs...); err != nil {
		w.pending = nil
		w.Abort()
		return nil, err
	}
	for i, r := range w.pending {
		e := w.files[r.p]
		e.stamp = restamped[i]
		w.files[r.p] = e
		if j, ok := slices.BinarySearch(w.sorted, r.p); ok {
			w.ents[j].stamp = restamped[i]
		}
	}
	w.pending = nil
	for _, top := range slices.Sorted(maps.Keys(w.stages)) {
		if st := w.stages[top]; st != "" {
			if err := renameFile(filepath.Join(w.dir, st), filepath.Join(w.dir, top)); err != nil {
				w.Abort()
				return nil, err
			}
			w.stages[top] = ""
		}
	}
	// Removed: what hacompile wrote before and does not produce now.
	// Files it did not write stay.
	var dirs, gone []string
	if w.listedPut < len(w.have) {
		for p := range w.have {
			if _, kept := w.files[p]; !kept && w.owned[p] {
				gone = append(gone, p)
			}
		}
	}
	slices.Sort(gone)
	for _, p := range gone {
		if err := os.Remove(filepath.Join(w.dir, filepath.FromSlash(p))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		delete(w.owned, p)
		w.stat(p).Removed++
		dirs = append(dirs, path.Dir(p))
	}
	removeEmpty(w.dir, dirs)
	// The others: files out of scope it wrote before. Without a scope
	// there are none: every file it wrote before was listed, and is
	// written or kept again, or gone.
	var others []string
	if w.scoped {
		for p := range w.owned {
			if _, ok := w.files[p]; !ok {
				others = append(others, p)
			}
		}
	}
	owned := w.sorted
	if len(others) > 0 {
		slices.Sort(others)
		owned = mergeSorted(w.sorted, others)
	}
	w.owned = nil // what the owner record says now
	// Unless written before the renames, as owned is.
	if !w.unrecorded {
		if err := writeOwner(w.dir, owned, w.chmod); err != nil {
			return nil, err
		}
	}
	doneWriting(w.dir)
	return w.stats, nil
}

// readOld reads a file of out/ the build may keep (readStamped); tests
// count the reads.
var readOld = readStamped

// renameFile is os.Rename; tests make it fail.
var renameFile = os.Rename

// added is, when the build makes files its directory's owner record does
// not list yet, that record's files and them, sorted; else nil.
func (w *Writer) added() []string {
	if !slices.ContainsFunc(w.sorted, func(p string) bool { return !w.owned[p] }) {
		return nil
	}
	var before []string
	for p := range w.owned {
		if _, again := w.files[p]; !again {
			before = append(before, p)
		}
	}
	slices.Sort(before)
	return mergeSorted(w.sorted, before)
}

// mergeSorted merges two sorted lists with no path in both.
func mergeSorted(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0] < b[0] {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// StampsDigest is the number of files the writer wrote or kept and the
// digest of their paths and stamps, as LoadCache reads them from disk
// (after Finish).
func (w *Writer) StampsDigest() (int, string) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.sorted), sortedStampsDigest(w.sorted, func(i int) FileStamp { return w.ents[i].stamp })
}

// removeEmpty removes the directories dirs (slash paths under dir) and
// their parents that are empty, deepest first.
func removeEmpty(dir string, dirs []string) {
	dirs = slices.Clone(dirs)
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, d := range dirs {
		for ; d != "." && d != "/"; d = path.Dir(d) {
			if os.Remove(filepath.Join(dir, filepath.FromSlash(d))) != nil {
				break // not empty (or already gone)
			}
		}
	}
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

// writeAtomic replaces full with b: written to a temporary file beside
// it (writeTemp), then renamed over it. The directory must exist.
func writeAtomic(full string, b []byte, chmod bool) (FileStamp, error) {
	tmp, st, err := writeTemp(full, b, chmod)
	if err != nil {
		return st, err
	}
	if err := os.Rename(tmp, full); err != nil {
		os.Remove(tmp)
		return st, err
	}
	return st, nil
}

// writeTemp writes b to a new temporary file beside full, named for this
// process so concurrent builds do not share one, and returns its name
// and stamp (a rename keeps the stamp). The directory must exist.
func writeTemp(full string, b []byte, chmod bool) (string, FileStamp, error) {
	var tmp string
	var st FileStamp
	var err error
	// Created exclusively: a name a killed build left (a container's
	// process is often pid 1 every time), or a link planted there, is
	// never written through; the next name is tried.
	for range 100 {
		tmp = filepath.Join(filepath.Dir(full), stagePrefix+strconv.Itoa(os.Getpid())+"-"+strconv.FormatUint(tempSeq.Add(1), 36)+"-"+filepath.Base(full))
		if st, err = createFile(tmp, b, chmod, os.O_EXCL); !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		if !errors.Is(err, fs.ErrExist) {
			os.Remove(tmp)
		}
		return "", st, fmt.Errorf("writing %s: %w", full, err)
	}
	return tmp, st, nil
}

// tempSeq numbers this process's temporary files.
var tempSeq atomic.Uint64

// writeFile writes b to p, created 0644 (and chmodded to it when the
// umask would take bits away), and returns its stamp (a rename keeps it).
func writeFile(p string, b []byte, chmod bool) (FileStamp, error) {
	return createFile(p, b, chmod, os.O_TRUNC)
}

// readStamped reads the file at p and its stamp, the opened file's
// (openRegular): a link there is errLink, so a link in out/ does not
// defeat the no-change record, and nothing swapped in after the open is
// read for the file.
func readStamped(p string) ([]byte, FileStamp, error) {
	f, fi, err := openRegular(p)
	if err != nil {
		return nil, FileStamp{}, err
	}
	defer f.Close()
	st := stampOf(fi)
	b := make([]byte, st.Size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, st, err
	}
	// A file that grew since the stat is not the file stamped.
	if n, _ := f.Read(make([]byte, 1)); n != 0 {
		return nil, st, fmt.Errorf("%s changed while read", p)
	}
	return b, st, nil
}

// readRegular reads the regular file at p (openRegular); a link there
// is errIrregular too.
func readRegular(p string) ([]byte, error) {
	f, fi, err := openRegular(p)
	if errors.Is(err, errLink) {
		return nil, &fs.PathError{Op: "read", Path: p, Err: errIrregular}
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Sized as the file is, as os.ReadFile does (io.ReadAll from 512
	// bytes up copied a 50 MB manifest some twenty times); to its end,
	// should it grow meanwhile.
	b := make([]byte, 0, fi.Size()+1)
	for {
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// stampOf is a file's stamp, from its FileInfo.
func stampOf(fi fs.FileInfo) FileStamp {
	return FileStamp{Size: fi.Size(), ModTime: fi.ModTime().UnixNano(), Change: changeTime(fi)}
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

// sortedKeys is m's paths in order, sorted on every core (a build's
// writer and its no-op check sort 170,000).
func sortedKeys[V any](m map[string]V) []string {
	keys := slices.AppendSeq(make([]string, 0, len(m)), maps.Keys(m))
	par.Sort(keys)
	return keys
}
