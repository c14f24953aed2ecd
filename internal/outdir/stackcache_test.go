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

	"github.com/hacompile/hacompile/schema"
)

// TestRecordJSON: a stack record's JSON, with its site data put in as it
// is, is what json.Marshal writes of the record, and the record stored
// loads back as it was; one whose site data is not JSON is refused.
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
	back, ok := LoadStackRecord(out, rec.Source, rec.Key)
	if !ok || !bytes.Equal(back.Site, site) || back.RouterID != 7 || len(back.Stamps) != 2 || back.Findings[0].Message != rec.Findings[0].Message {
		t.Fatalf("loaded back: %+v, %v", back, ok)
	}
	// Streamed in Site's place, the same data loads back alike.
	streamed := *rec
	streamed.Site = nil
	streamed.SiteTo = func(w io.Writer) error { _, err := w.Write(site); return err }
	os.Remove(stackRecordPath(out, rec.Source))
	StoreStackRecord(out, &streamed)
	back, ok = LoadStackRecord(out, rec.Source, rec.Key)
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
	bad := *rec
	bad.Site = []byte(`{"card": `)
	StoreStackRecord(out, &bad)
	if _, ok := LoadStackRecord(out, rec.Source, rec.Key); ok {
		t.Fatal("a record whose site data is not JSON loaded")
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
