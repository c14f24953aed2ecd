//go:build !linux

package outdir

// listFiles lists the files under dir (everything but directories) by
// slash path relative to it, with their stamps when stamped is set.
func listFiles(dir string, stamped bool) (map[string]FileStamp, error) {
	return listFilesReadDir(dir, stamped)
}

// stampFiles needs openat2 (list_linux.go): elsewhere, directories are
// read.
func stampFiles(dir string, files []string) (map[string]FileStamp, error) {
	return nil, errUnsupported
}
