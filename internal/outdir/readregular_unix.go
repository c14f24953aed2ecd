//go:build unix

package outdir

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// openRegular opens the regular file at p, for reading, and stats it.
// A link there is not followed (errLink), and a named pipe or device is
// not read (errIrregular: one would block, another never end); neither
// is what a build writes. The stat is the opened file's, so nothing
// swapped in after the open is read for it.
func openRegular(p string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, nil, &fs.PathError{Op: "read", Path: p, Err: errLink}
	}
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = &fs.PathError{Op: "read", Path: p, Err: errIrregular}
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}
