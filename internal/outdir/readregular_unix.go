//go:build unix

package outdir

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// readRegular reads the regular file at p. A link there is not followed
// and a named pipe or device is not read (one would block, another never
// end): both are errIrregular, what a build never writes.
func readRegular(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, &fs.PathError{Op: "read", Path: p, Err: errIrregular}
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: p, Err: errIrregular}
	}
	return io.ReadAll(f)
}
