package outdir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestOwnerRecordIsMarshalIndent: the owner record is written as
// json.MarshalIndent wrote it (out/ is committed: not a byte may move),
// and read back — by the fast reader when no name needs escaping, by
// encoding/json otherwise — as the same files.
func TestOwnerRecordIsMarshalIndent(t *testing.T) {
	plain := []string{"fleet/hosts/app1/etc/nginx/nginx.conf", "site/index.html", "s/é 日本/file name.txt"}
	for i := range 500 {
		plain = append(plain, fmt.Sprintf("fleet/hosts/app%d/etc/x.conf", i))
	}
	awkward := []string{`a"quote`, `back\slash`, "<tag>&", "ctl\x01\t\n", "bad\xffutf8", "line\u2028sep", "\ufffd"}
	for _, c := range []struct {
		name  string
		files []string
		fast  bool
	}{
		{"nil", nil, false},
		{"empty", []string{}, false},
		{"one", plain[:1], true},
		{"plain", plain, true},
		{"awkward", append(slices.Clone(plain[:2]), awkward...), false},
	} {
		for _, files := range append([][]string{c.files}, wrap(c.files)...) {
			want, err := json.MarshalIndent(ownerRecord{Comment: ownerComment, Files: files}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, '\n')
			got := appendOwner(nil, files)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: owner record\n%q\nwant\n%q", c.name, got, want)
			}
			read, ok := parseOwner(got)
			fast := c.fast || len(files) == 1 && files[0] != "" && !slices.ContainsFunc(awkward, func(a string) bool { return a == files[0] })
			if ok != fast {
				t.Errorf("%s %q: read fast %v, want %v", c.name, files, ok, fast)
			}
			if ok && !slices.Equal(read, files) {
				t.Errorf("%s: read %q, want %q", c.name, read, files)
			}
		}
	}
	// Not as appendOwner writes it: left to encoding/json.
	good := appendOwner(nil, plain[:3])
	for _, b := range [][]byte{
		bytes.Replace(good, []byte(`",`), []byte(`" ,`), 1),
		bytes.Replace(good, []byte("\n  ]"), []byte("\n  ] "), 1),
		bytes.TrimSuffix(good, []byte("\n")),
		bytes.Replace(good, []byte(`"comment": "Files`), []byte(`"comment": "Files!`), 1),
		append(bytes.Clone(good), ' '),
		good[:len(good)/2],
	} {
		if files, ok := parseOwner(b); ok {
			t.Errorf("read %q fast from\n%s", files, b)
		}
	}
}

// wrap is each of files alone, as a one-file list.
func wrap(files []string) [][]string {
	var out [][]string
	for _, f := range files {
		out = append(out, []string{f})
	}
	return out
}

// TestFailedRenameLeavesNoStrays: a rename that fails after others were
// done leaves a mixed out/ (Finish cannot undo them), but every file the
// build had put in place is in the owner record: the next build replaces
// or removes it, and none is left behind as someone else's.
func TestFailedRenameLeavesNoStrays(t *testing.T) {
	dir := t.TempDir()
	first := Tree{"s/a.conf": []byte("a\n"), "s/keep.conf": []byte("k\n")}
	if _, err := Write(dir, first); err != nil {
		t.Fatal(err)
	}
	// The second build changes a.conf and adds b.conf and a new
	// directory; a.conf's rename fails.
	second := Tree{"s/a.conf": []byte("a2\n"), "s/keep.conf": []byte("k\n"), "s/b.conf": []byte("b\n"), "s/new/c.conf": []byte("c\n")}
	renameFile = func(from, to string) error {
		if filepath.Base(to) == "a.conf" {
			return &fs.PathError{Op: "rename", Path: to, Err: syscall.EPERM}
		}
		return os.Rename(from, to)
	}
	_, err := Write(dir, second)
	renameFile = os.Rename
	if err == nil {
		t.Fatal("the failed rename was not reported")
	}
	owned, _, err := readOwned(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"s/b.conf", "s/new/c.conf"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil && !owned[p] {
			t.Errorf("%s was put in place and is not in the owner record", p)
		}
	}
	// The next build, of the first tree again, leaves out/ exact.
	if _, err := Write(dir, first); err != nil {
		t.Fatal(err)
	}
	d, err := Compare(dir, first)
	if err != nil || !d.Empty() {
		t.Errorf("after the next build: %+v, %v; want out/ exactly the first tree", d, err)
	}
}

// TestUnrecordedRefusedUnlisted: a directory without an owner record
// that holds a file is refused on the first file found, before the rest
// is listed (--out / listed the whole filesystem first, and failed on
// what it could not read), naming the same file every time.
func TestUnrecordedRefusedUnlisted(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"b/c/d.txt", "a.txt", "c/e.txt"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte("mine\n"), 0o644)
	}
	os.MkdirAll(filepath.Join(dir, stagePrefix+"1-s", "x"), 0o755)
	os.WriteFile(filepath.Join(dir, stagePrefix+"1-s", "x", "f"), nil, 0o644)
	for range 3 {
		l := StartListingAll(dir)
		_, err := NewListedWriter(l)
		if err == nil || !strings.Contains(err.Error(), "it holds "+filepath.Join(dir, "a.txt")+")") {
			t.Fatalf("err = %v, want a refusal naming a.txt", err)
		}
		if l.have != nil {
			t.Error("the directory was listed before it was refused")
		}
	}
	// Staging directories alone (a killed build's) are no one's files.
	for _, p := range []string{"b", "a.txt", "c"} {
		os.RemoveAll(filepath.Join(dir, p))
	}
	if _, err := NewListedWriter(StartListingAll(dir)); err != nil {
		t.Errorf("a directory holding only staging directories: %v", err)
	}
}
