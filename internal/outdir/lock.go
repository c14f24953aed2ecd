package outdir

import (
	"errors"
	"os"
	"path/filepath"
)

// LockOut locks an output directory for the rest of a build, against
// other hacompile processes building into it: exclusive for a build that
// writes, shared for one that only reads it (build --check). Two builds
// writing one out/ at once would each remove the other's staging
// directories and temporary files; with the lock the second waits, and
// waiting is called first so it can say so. The lock is a file in the
// user's cache directory named for out's absolute path (out/ holds only
// what the build writes). Like the no-change record there, it is best
// effort: with no cache directory, one that cannot be written (a
// read-only home in a CI container) or a file system without locks,
// the build goes on unlocked. The kernel releases the lock when the
// process ends, however it ends.
func LockOut(out string, exclusive bool, waiting func()) (unlock func()) {
	none := func() {}
	p := cacheFile(out, lockExt)
	if p == "" || os.MkdirAll(filepath.Dir(p), 0o755) != nil {
		return none
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return none
	}
	err = lockFile(f, exclusive, false)
	if errors.Is(err, errWouldBlock) {
		waiting()
		err = lockFile(f, exclusive, true)
	}
	if err != nil {
		f.Close()
		return none
	}
	return func() { f.Close() } // closing releases the lock
}
