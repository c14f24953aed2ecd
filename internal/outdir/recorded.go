package outdir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// A build that finds in out/ the owner record (OwnerFile) of a build
// that finished stamps the files the record names, and nothing else:
// at 10,000 hosts, reading out/'s 162,000 directories to find its
// 160,000 files took twice the CPU time of stamping those files by
// path (stampFiles: 1.4 s against 0.7 s, profiled in one-host
// builds). What the record does not name, a build neither removes nor
// needs to know of: a file it writes there it writes as over any
// other.
//
// A build that was killed can leave beside its targets the temporary
// files it had not yet renamed, which only reading the directories
// finds. So every writer leaves a marker in the user's cache
// directory (writingExt) from before its first write until it finishes
// or has removed all it wrote; a build that finds the marker, or no
// digest index (a cache directory deleted since), reads every
// directory as before and removes what it finds there.

// writingExt names, in cacheDir, the marker of an output directory a
// writer may have left temporary files in.
const writingExt = ".writing"

// errUnsupported is stampFiles on a system that cannot stamp a file by
// its path without following links: the directories are read instead.
var errUnsupported = errors.New("stamping by path without following links is not supported here")

// cacheWritable is writable, for finishedWriting (a test's stand-in
// for a read-only cache directory, which root's tests cannot make by
// permissions).
var cacheWritable = writable

// markWriting records that a writer of dir is about to write. When the
// marker cannot be written the digest index goes, which a later build
// takes as the same warning.
func markWriting(dir string) {
	p := cacheFile(dir, writingExt)
	if p == "" {
		return
	}
	if os.MkdirAll(filepath.Dir(p), 0o755) == nil && os.WriteFile(p, nil, 0o644) == nil {
		return
	}
	if ip := indexPath(dir); ip != "" {
		os.Remove(ip)
	}
}

// doneWriting records that the writer of dir left no temporary file.
func doneWriting(dir string) {
	if p := cacheFile(dir, writingExt); p != "" {
		os.Remove(p)
	}
}

// finishedWriting reports whether the last writer of dir finished (or
// removed all it wrote), as its marker and digest index say. In a cache
// directory no file can be made in, neither could the last writer's
// marker, nor could that writer remove the index in its stead: the
// index proves nothing there.
func finishedWriting(dir string) bool {
	m, ip := cacheFile(dir, writingExt), indexPath(dir)
	if m == "" || ip == "" || cacheWritable(filepath.Dir(m)) != nil {
		return false
	}
	if _, err := os.Lstat(m); !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	_, err := os.Stat(ip)
	return err == nil
}

// listRecorded reads dir's owner record, the files it lists (found is
// false when dir has none), and, with openat2, stamps those of them that
// are there, reached through directories (never links):
// listDir(dir, true) of a directory whose last writer finished
// (finishedWriting, which the caller checks). stamped is false when the
// files could not be stamped so (no record, or no openat2): then the
// directory is to be listed.
func listRecorded(dir string) (have map[string]FileStamp, files []string, found, stamped bool, err error) {
	files, found, err = readOwnedList(dir)
	if err != nil || !found {
		return nil, nil, found, false, err
	}
	have, err = stampFiles(dir, files)
	if errors.Is(err, errUnsupported) {
		return nil, files, true, false, nil
	}
	if err != nil {
		return nil, nil, true, false, err
	}
	return have, files, true, true, nil
}
