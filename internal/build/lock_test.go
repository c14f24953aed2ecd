package build_test

import (
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/build"
)

// TestLockOut: a second writer of the same out/ is told it waits, and
// gets the lock when the first lets go; readers share the lock with each
// other but not with a writer; another out/ is not held up.
func TestLockOut(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := t.TempDir()
	unlock, err := build.LockOut(out, true, func() { t.Error("the first writer waited") })
	if err != nil {
		t.Fatal(err)
	}
	other, err := build.LockOut(t.TempDir(), true, func() { t.Error("another out/ waited") })
	if err != nil {
		t.Fatal(err)
	}
	other()

	waiting := make(chan struct{})
	got := make(chan func())
	go func() {
		u, err := build.LockOut(out, true, func() { close(waiting) })
		if err != nil {
			t.Error(err)
		}
		got <- u
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
		u, err := build.LockOut(out, false, func() {})
		if err != nil {
			t.Error(err)
		}
		got <- u
	}()
	select {
	case <-got:
		t.Fatal("a reader got the lock while a writer held it")
	case <-time.After(100 * time.Millisecond):
	}
	second()
	r1 := <-got
	r2, err := build.LockOut(out, false, func() { t.Error("a reader waited for a reader") })
	if err != nil {
		t.Fatal(err)
	}
	r1()
	r2()
}
