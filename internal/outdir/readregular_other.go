//go:build !unix

package outdir

import (
	"io/fs"
	"os"
)

// openRegular opens the regular file at p, for reading, and stats it: a
// link there is errLink, anything else not a regular file (a device)
// errIrregular, and so is a file swapped in between the look and the
// open.
func openRegular(p string) (*os.File, fs.FileInfo, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, nil, &fs.PathError{Op: "read", Path: p, Err: errLink}
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, &fs.PathError{Op: "read", Path: p, Err: errIrregular}
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	opened, err := f.Stat()
	if err == nil && !os.SameFile(fi, opened) {
		err = &fs.PathError{Op: "read", Path: p, Err: errIrregular}
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, opened, nil
}
