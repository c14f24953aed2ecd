//go:build unix

package outdir

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestStackRecordCheckedByListing: with out's listing, a record loads
// when every file it names is listed with its recorded stamp, and not
// when one has another size, is gone, is a link in the file's place
// (whatever its own stamp) or was moved back into place, exactly as the
// lstat of each file decides.
func TestStackRecordCheckedByListing(t *testing.T) {
	out, rec := storeTestRecord(t)
	load := func() (byListing, byLstat bool) {
		_, byListing = LoadStackRecord(out, rec.Source, rec.Key, StartListing(out))
		_, byLstat = LoadStackRecord(out, rec.Source, rec.Key, nil)
		return byListing, byLstat
	}
	if l, s := load(); !l || !s {
		t.Fatalf("as stored: loaded by listing %v, by lstat %v", l, s)
	}
	b := filepath.Join(out, "s", "b")
	st, err := os.Lstat(b)
	if err != nil {
		t.Fatal(err)
	}
	// A link in b's place, with b's size and mtime as its own stamp.
	if err := os.Rename(b, b+".real"); err != nil {
		t.Fatal(err)
	}
	LinkWithStamp(t, b, "xy", st)
	if l, s := load(); l || s {
		t.Errorf("a link in a file's place: loaded by listing %v, by lstat %v", l, s)
	}
	os.Remove(b)
	if l, s := load(); l || s {
		t.Errorf("a file gone: loaded by listing %v, by lstat %v", l, s)
	}
	if err := os.WriteFile(b, []byte("bbb"), 0o644); err != nil {
		t.Fatal(err)
	}
	if l, s := load(); l || s {
		t.Errorf("a file of another size: loaded by listing %v, by lstat %v", l, s)
	}
	if err := os.Rename(b+".real", b); err != nil {
		t.Fatal(err)
	}
	// Its size and mtime are as recorded; its ctime, which the rename
	// set, is not (on Linux, where the stamp holds it).
	if l, s := load(); l != s || l != (runtime.GOOS != "linux") {
		t.Errorf("the file back by a rename: loaded by listing %v, by lstat %v", l, s)
	}
}

// LinkWithStamp makes path a symbolic link to target carrying fi's
// stamp: a link's size is its target's length, so a target as long as
// the file fi describes gives the link the file's size, and its mtime is
// set to the file's. The tests of out/'s index use it too.
func LinkWithStamp(t testing.TB, path, target string, fi os.FileInfo) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	mtime := unix.NsecToTimespec(fi.ModTime().UnixNano())
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{mtime, mtime}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
	if li, err := os.Lstat(path); err != nil || li.Size() != fi.Size() || !li.ModTime().Equal(fi.ModTime()) {
		t.Fatalf("the link does not carry the file's stamp: %v %v", li, err)
	}
}
