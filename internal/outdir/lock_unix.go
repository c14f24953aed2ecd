//go:build unix

package outdir

import (
	"os"
	"syscall"
)

// errWouldBlock is lockFile's error when another process holds the
// lock and wait is false.
const errWouldBlock = syscall.EWOULDBLOCK

// lockFile takes f's lock (flock), shared or exclusive; with wait, once
// the holder lets go, else at once or not at all (errWouldBlock).
func lockFile(f *os.File, exclusive, wait bool) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if !wait {
		how |= syscall.LOCK_NB
	}
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}
