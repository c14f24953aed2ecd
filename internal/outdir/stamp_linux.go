package outdir

import (
	"io/fs"
	"syscall"
)

// changeTime is the inode change time (ctime) of the file fi describes,
// in nanoseconds, for its stamp.
func changeTime(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ctim.Sec*1e9 + st.Ctim.Nsec
	}
	return 0
}
