package outdir

import (
	"sync/atomic"
	"testing"
)

// CountReads counts, until t ends, the files of out/ a writer reads to
// compare with what it renders.
func CountReads(t testing.TB) *atomic.Int64 {
	n := new(atomic.Int64)
	prev := readOld
	readOld = func(p string) ([]byte, FileStamp, error) {
		n.Add(1)
		return prev(p)
	}
	t.Cleanup(func() { readOld = prev })
	return n
}
