//go:build !unix

package outdir

import (
	"io/fs"
	"os"
)

// readRegular reads the regular file at p; anything else there (a link,
// a device) is errIrregular.
func readRegular(p string) ([]byte, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: p, Err: errIrregular}
	}
	return os.ReadFile(p)
}
