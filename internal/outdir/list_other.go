//go:build !linux

package outdir

// listFiles lists the files under dir (everything but directories) by
// slash path relative to it, with their stamps when stamped is set.
func listFiles(dir string, stamped bool) (map[string]FileStamp, error) {
	return listFilesReadDir(dir, stamped)
}
