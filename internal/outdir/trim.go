package outdir

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The user's cache directory gains records for every output directory a
// build writes (the build's record, its digest index, one record per
// stack): a CI runner that builds into a new temporary directory each
// time, and keeps its cache, would fill it. TrimCache removes, at most
// once a day, the records no build has read or written for TrimAge; a
// build that reads a record last marked more than a day ago marks it
// used (its modification time, markUsed), so a record in use is never
// removed. A removed record costs the next build of its directory a
// render, never a byte of out/. The locks (empty files a build holds
// while it writes) stay: removing one another build has just opened
// would let two builds write one out/ at once.

// TrimAge is how long a record may go unused before TrimCache removes it.
const TrimAge = 5 * 24 * time.Hour

// trimEvery is how often TrimCache looks, and how stale a record's mark
// may be before a read marks it again.
const trimEvery = 24 * time.Hour

// trimMarker, in the cache's directory, holds when TrimCache last looked
// (Unix seconds).
const trimMarker = "trim.txt"

// TrimCache removes the records of the user's cache directory unused for
// TrimAge, and the temporary files a killed build left there as long,
// unless it looked less than a day before now. It returns how many
// files it removed. Failing to read or remove only leaves files.
func TrimCache(now time.Time) int {
	dir, err := cacheDir()
	if err != nil {
		return 0
	}
	marker := filepath.Join(dir, trimMarker)
	if b, err := os.ReadFile(marker); err == nil {
		// A mark in the future is a clock set back: not a reason to wait.
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			if last := time.Unix(n, 0); now.Sub(last) < trimEvery && last.Before(now.Add(time.Minute)) {
				return 0
			}
		}
	}
	if _, err := os.Stat(dir); err != nil {
		return 0
	}
	// Marked first: builds that end at once do not all look.
	if _, err := writeAtomic(marker, []byte(strconv.FormatInt(now.Unix(), 10)+"\n"), true); err != nil {
		return 0
	}
	removed := 0
	for _, d := range []string{dir, filepath.Join(dir, stackRecords)} {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !e.Type().IsRegular() || !trimmable(d == dir, e.Name()) {
				continue
			}
			fi, err := e.Info()
			if err != nil || now.Sub(fi.ModTime()) < TrimAge {
				continue
			}
			if os.Remove(filepath.Join(d, e.Name())) == nil {
				removed++
			}
		}
	}
	return removed
}

// trimmable reports whether name, a file of the cache's directory (top)
// or of its stacks/ directory, is one TrimCache may remove: a build's
// record or digest index, a stack's record, or a temporary file beside
// them. Nothing else there is the records' (a lock, the system test's
// images).
func trimmable(top bool, name string) bool {
	if strings.HasPrefix(name, stagePrefix) {
		return true
	}
	if !top {
		return strings.HasSuffix(name, recordExt)
	}
	// Not a writingExt marker: while there, however old, it is what
	// says a killed build may have left temporary files (recorded.go).
	return strings.HasPrefix(name, buildPrefix) && (strings.HasSuffix(name, recordExt) || strings.HasSuffix(name, indexExt))
}

// markUsed marks the record at p used now, when its mark is more than a
// day old, so that TrimCache leaves it.
func markUsed(p string) {
	fi, err := os.Stat(p)
	if err != nil {
		return
	}
	if now := time.Now(); now.Sub(fi.ModTime()) > trimEvery {
		_ = os.Chtimes(p, now, now)
	}
}
