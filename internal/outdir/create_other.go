//go:build !linux

package outdir

import (
	"errors"
	"os"
)

// createFile is writeFile with extra open flags (O_EXCL, O_TRUNC).
func createFile(p string, b []byte, chmod bool, flag int) (FileStamp, error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|flag, 0o644)
	if err != nil {
		return FileStamp{}, err
	}
	_, werr := f.Write(b)
	var merr, serr error
	if chmod {
		merr = f.Chmod(0o644)
	}
	var st FileStamp
	if werr == nil && merr == nil {
		var fi os.FileInfo
		if fi, serr = f.Stat(); serr == nil {
			st = stampOf(fi)
		}
	}
	return st, errors.Join(werr, merr, serr, f.Close())
}
