package outdir_test

import (
	"os"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/outdir"
)

// TestLockOut: a second writer of the same out/ is told it waits, and
// gets the lock when the first lets go; readers share the lock with each
// other but not with a writer; another out/ is not held up.
func TestLockOut(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := t.TempDir()
	unlock := outdir.LockOut(out, true, func() { t.Error("the first writer waited") })
	outdir.LockOut(t.TempDir(), true, func() { t.Error("another out/ waited") })()

	waiting := make(chan struct{})
	got := make(chan func())
	go func() {
		got <- outdir.LockOut(out, true, func() { close(waiting) })
	}()
	select {
	case <-waiting:
	case <-got:
		t.Fatal("the second writer got the lock while the first held it")
	case <-time.After(time.Minute):
		t.Fatal("the second writer was not told it waits")
	}
	select {
	case <-got:
		t.Fatal("the second writer got the lock while the first held it")
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	second := <-got

	// A reader waits for the writer; two readers do not wait for each other.
	go func() {
		got <- outdir.LockOut(out, false, func() {})
	}()
	select {
	case <-got:
		t.Fatal("a reader got the lock while a writer held it")
	case <-time.After(100 * time.Millisecond):
	}
	second()
	r1 := <-got
	r2 := outdir.LockOut(out, false, func() { t.Error("a reader waited for a reader") })
	r1()
	r2()

	// A cache directory that cannot be written: no lock, no failure.
	ro := t.TempDir()
	if err := os.WriteFile(ro+"/hacompile", []byte("a file, not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", ro)
	outdir.LockOut(out, true, func() { t.Error("waited without a lock file") })()
}
