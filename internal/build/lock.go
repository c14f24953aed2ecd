package build

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// LockOut locks an output directory for the rest of a build, against
// other hacompile processes building into it: exclusive for a build that
// writes, shared for one that only reads it (build --check). Two builds
// writing one out/ at once would each remove the other's staging
// directories and temporary files; with the lock the second waits, and
// waiting is called first so it can say so. The lock is a file in the
// user's cache directory named for out's absolute path (out/ holds only
// what the build writes); with no cache directory there is no lock. The
// kernel releases it when the process ends, however it ends.
func LockOut(out string, exclusive bool, waiting func()) (unlock func(), err error) {
	p := cacheFile(out, ".lock")
	if p == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	err = flock(f, how|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		waiting()
		err = flock(f, how)
	}
	if err != nil {
		f.Close()
		return nil, &os.PathError{Op: "lock", Path: p, Err: err}
	}
	return func() { f.Close() }, nil // closing releases the lock
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}
