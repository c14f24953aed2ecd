package outdir

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hacompile/hacompile/schema"
)

// TestRecordJSON: a stack record's JSON, with its site data put in as it
// is, is what json.Marshal writes of the record, and the record stored
// loads back as it was, its site data as it was stored.
func TestRecordJSON(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := t.TempDir()
	if _, err := Write(out, Tree{"s/a": []byte("a"), "site/stacks/s/index.html": []byte("<p>")}); err != nil {
		t.Fatal(err)
	}
	stamps, err := Stamps(out)
	if err != nil {
		t.Fatal(err)
	}
	site, _ := json.Marshal(map[string]any{"card": "<b>&amp;</b>", "hosts": []string{"a\u2028b", "c"}, "n": 3})
	rec := &StackRecord{Key: "k", Name: "s", Source: "stacks/s.cue", Hosts: 1, Files: 1, RouterID: 7,
		Findings: []schema.Diagnostic{{File: "stacks/s.cue", Severity: "warning", Message: `a "quoted" <finding>`}}, Site: site, Stamps: stamps}
	got, err := recordJSON(rec)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(rec)
	if !bytes.Equal(got, want) {
		t.Fatalf("record JSON\n%s\nwant\n%s", got, want)
	}
	noSite := *rec
	noSite.Site = nil
	if got, _ := recordJSON(&noSite); !bytes.HasSuffix(got, []byte(`"site":null}`)) {
		t.Errorf("without site data: %s", got)
	}
	StoreStackRecord(out, rec)
	back, ok := LoadStackRecord(out, rec.Source, rec.Key, nil)
	if !ok || !bytes.Equal(back.Site, site) || back.RouterID != 7 || len(back.Stamps) != 2 || back.Findings[0].Message != rec.Findings[0].Message {
		t.Fatalf("loaded back: %+v, %v", back, ok)
	}
	// Streamed in Site's place, the same data loads back alike.
	streamed := *rec
	streamed.Site = nil
	streamed.SiteTo = func(w io.Writer) error { _, err := w.Write(site); return err }
	os.Remove(stackRecordPath(out, rec.Source))
	StoreStackRecord(out, &streamed)
	back, ok = LoadStackRecord(out, rec.Source, rec.Key, nil)
	if !ok || !bytes.Equal(back.Site, site) || back.RouterID != 7 || len(back.Stamps) != 2 {
		t.Fatalf("streamed, loaded back: %+v, %v", back, ok)
	}
	// A stream that fails leaves no record.
	os.Remove(stackRecordPath(out, rec.Source))
	streamed.SiteTo = func(w io.Writer) error { return fmt.Errorf("disk full") }
	StoreStackRecord(out, &streamed)
	if _, err := os.Stat(stackRecordPath(out, rec.Source)); !os.IsNotExist(err) {
		t.Fatalf("a record whose site data failed to stream: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(stackRecordPath(out, rec.Source)), "*")); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	// Site data that is not JSON comes back as it was stored, for its
	// reader (site.DecodeStackData) to refuse; the rest of the record
	// must be JSON.
	bad := *rec
	bad.Site = []byte(`{"card": `)
	StoreStackRecord(out, &bad)
	if back, ok := LoadStackRecord(out, rec.Source, rec.Key, nil); !ok || !bytes.Equal(back.Site, bad.Site) || back.RouterID != 7 {
		t.Fatalf("a record with site data not JSON: %+v, %v", back, ok)
	}
	bad = *rec
	bad.Findings = []schema.Diagnostic{{Message: `ends in ,"site":`}}
	StoreStackRecord(out, &bad)
	if back, ok := LoadStackRecord(out, rec.Source, rec.Key, nil); !ok || !bytes.Equal(back.Site, site) || back.Findings[0].Message != bad.Findings[0].Message {
		t.Fatalf("a finding quoting the site field's name: %+v, %v", back, ok)
	}
	p := stackRecordPath(out, rec.Source)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// The head's JSON broken, the checksum made to match it.
	head, body, _ := bytes.Cut(b, []byte{'\n'})
	body = bytes.Replace(body, []byte(`"name":"s"`), []byte(`"name":s"`), 1)
	sum := sha256.Sum256(body)
	_, key, _ := bytes.Cut(head, []byte{' '})
	if err := os.WriteFile(p, append([]byte(hex.EncodeToString(sum[:])+" "+string(key)+"\n"), body...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := LoadStackRecord(out, rec.Source, rec.Key, nil); ok {
		t.Fatal("a record whose head is not JSON loaded")
	}
}

// TestStampsDigest: the no-change record's digest of out/'s stamps hashes
// the lines "<path>\x00<size>\x00<mtime>\n" in path order, as records
// written before have it.
func TestStampsDigest(t *testing.T) {
	stamps := map[string]FileStamp{"b/x": {Size: 12, ModTime: -5}, "a": {Size: 0, ModTime: 1764979200123456789}, "a/é": {Size: 1 << 40}}
	h := sha256.New()
	for _, p := range []string{"a", "a/é", "b/x"} {
		fmt.Fprintf(h, "%s\x00%d\x00%d\n", p, stamps[p].Size, stamps[p].ModTime)
	}
	if got, want := stampsDigest(stamps), hex.EncodeToString(h.Sum(nil)); got != want {
		t.Fatalf("digest %s, want %s", got, want)
	}
}

// TestStackRecordCheckedByListing: with out's listing, a record loads
// when every file it names is listed with its recorded stamp, and not
// when one has another size, is gone, or is a link in the file's place
// (whatever its own stamp), exactly as the lstat of each file decides.
func TestStackRecordCheckedByListing(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := t.TempDir()
	if _, err := Write(out, Tree{"s/a": []byte("a"), "s/b": []byte("bb"), "site/stacks/s/index.html": []byte("<p>")}); err != nil {
		t.Fatal(err)
	}
	stamps, err := Stamps(out)
	if err != nil {
		t.Fatal(err)
	}
	site, _ := json.Marshal(map[string]any{"card": "c"})
	rec := &StackRecord{Key: "k", Name: "s", Source: "stacks/s.cue", Hosts: 1, Files: 2, Site: site, Stamps: stamps}
	StoreStackRecord(out, rec)
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
	if l, s := load(); !l || !s {
		t.Errorf("the file back: loaded by listing %v, by lstat %v", l, s)
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
