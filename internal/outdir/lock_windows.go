package outdir

import (
	"math"
	"os"

	"golang.org/x/sys/windows"
)

// errWouldBlock is lockFile's error when another process holds the
// lock and wait is false.
const errWouldBlock = windows.ERROR_LOCK_VIOLATION

// lockFile takes f's lock (LockFileEx over the whole file), shared or
// exclusive; with wait, once the holder lets go, else at once or not at
// all (errWouldBlock). Windows releases it when the handle closes.
func lockFile(f *os.File, exclusive, wait bool) error {
	var flags uint32
	if exclusive {
		flags |= windows.LOCKFILE_EXCLUSIVE_LOCK
	}
	if !wait {
		flags |= windows.LOCKFILE_FAIL_IMMEDIATELY
	}
	return windows.LockFileEx(windows.Handle(f.Fd()), flags, 0, math.MaxUint32, math.MaxUint32, new(windows.Overlapped))
}
