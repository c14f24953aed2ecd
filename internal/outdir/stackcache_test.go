package outdir

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hacompile/hacompile/schema"
)

// storeTestRecord stores, in a cache directory of the test's own, the
// record of a stack s built into a new out/ (s/a, s/b and its index
// page), with site data and a finding, and returns out and the record.
// The site data is as site.Runbook.EncodeStackData makes it:
// json.Marshal's, its strings escaped.
func storeTestRecord(t *testing.T) (string, *StackRecord) {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := t.TempDir()
	if _, err := Write(out, Tree{"s/a": []byte("a"), "s/b": []byte("bb"), "site/stacks/s/index.html": []byte("<p>")}); err != nil {
		t.Fatal(err)
	}
	stamps, err := Stamps(out)
	if err != nil {
		t.Fatal(err)
	}
	site, err := json.Marshal(map[string]any{
		"card":  map[string]any{"Name": "s", "Notes": "<b>&amp;</b> a\u2028b"},
		"entry": map[string]string{"k": "stack", "t": "s", "u": "stacks/s/index.html"},
		"parts": []string{"stacks/s/search-index.js"},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := &StackRecord{Key: "k", Name: "s", Source: "stacks/s.cue", Hosts: 1, Files: 2, RouterID: 7,
		Findings: []schema.Diagnostic{{File: "stacks/s.cue", Severity: "warning", Message: `a "quoted" <finding> ,"site":{}`}},
		Site:     site, Stamps: stamps}
	StoreStackRecord(out, rec)
	return out, rec
}

// recordFile is a record file holding body under its first line: the
// sha256 of body and key.
func recordFile(key string, body []byte) []byte {
	sum := sha256.Sum256(body)
	return append([]byte(hex.EncodeToString(sum[:])+" "+key+"\n"), body...)
}

// TestStackRecordRoundTrip: a stored record loads back as it was, its
// site data byte for byte; one whose site data is not JSON is not
// stored, and leaves nothing behind.
func TestStackRecordRoundTrip(t *testing.T) {
	out, rec := storeTestRecord(t)
	back, ok := LoadStackRecord(out, rec.Source, rec.Key, nil)
	if !ok || !reflect.DeepEqual(back, rec) {
		t.Fatalf("loaded back (%v):\n%+v\nwant\n%+v", ok, back, rec)
	}
	p := stackRecordPath(out, rec.Source)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	bad := *rec
	bad.Site = []byte(`{"card": `)
	StoreStackRecord(out, &bad)
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), "*")); len(left) != 0 {
		t.Fatalf("a record whose site data is not JSON left %v", left)
	}
}

// TestStackRecordCorruptRefused: a record file truncated, emptied or
// garbled does not load, even garbled with its checksum made to match;
// the file as stored loads.
func TestStackRecordCorruptRefused(t *testing.T) {
	out, rec := storeTestRecord(t)
	p := stackRecordPath(out, rec.Source)
	good, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := bytes.Cut(good, []byte{'\n'})
	js, stamps, _ := bytes.Cut(body, []byte{'\n'})
	after := len(head) + 1 // where the body starts
	for name, b := range map[string][]byte{
		"empty":                        nil,
		"cut in its first line":        good[:len(head)/2],
		"its first line alone":         good[:after],
		"cut in its JSON":              good[:after+len(js)/2],
		"cut after its JSON":           good[:after+len(js)+1],
		"its last byte cut":            good[:len(good)-1],
		"a byte of its site data":      bytes.Replace(good, []byte(`"card"`), []byte(`"cord"`), 1),
		"a byte of a stamp":            bytes.Replace(good, []byte("\n2 "), []byte("\n3 "), 1),
		"JSON broken, checksum fixed":  recordFile(rec.Key, bytes.Replace(body, []byte(`"name":"s"`), []byte(`"name":s"`), 1)),
		"JSON cut, checksum fixed":     recordFile(rec.Key, append(js[:len(js)-1:len(js)-1], append([]byte{'\n'}, stamps...)...)),
		"no stamps, checksum fixed":    recordFile(rec.Key, body[:len(js)+1]),
		"stamp broken, checksum fixed": recordFile(rec.Key, bytes.Replace(body, []byte("\n2 "), []byte("\nx "), 1)),
	} {
		if bytes.Equal(b, good) {
			t.Fatalf("%s: the record as stored", name)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, ok := LoadStackRecord(out, rec.Source, rec.Key, nil); ok {
			t.Errorf("a record %s loaded", name)
		}
	}
	if err := os.WriteFile(p, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := LoadStackRecord(out, rec.Source, rec.Key, nil); !ok {
		t.Fatal("the record as stored did not load")
	}
}

// TestStackRecordOldFormatIgnored: a record of an older format is not
// loaded. Its key says its format (the build's keys name it,
// "stack-record-2"), so one stored under another key is not read; and
// one of the format before, its stamps a JSON map in the JSON and no
// stamp lines (its first line with the key or, earlier, without), is
// refused even under the key asked for and with a sound checksum.
func TestStackRecordOldFormatIgnored(t *testing.T) {
	out, rec := storeTestRecord(t)
	if _, ok := LoadStackRecord(out, rec.Source, rec.Key, nil); !ok {
		t.Fatal("the record as stored did not load")
	}
	if _, ok := LoadStackRecord(out, rec.Source, "k2", nil); ok {
		t.Error("a record stored under another key loaded")
	}
	first, err := json.Marshal(struct {
		*StackRecord
		Stamps map[string]FileStamp `json:"stamps"`
	}{rec, rec.Stamps})
	if err != nil {
		t.Fatal(err)
	}
	p := stackRecordPath(out, rec.Source)
	sum := sha256.Sum256(first)
	for name, b := range map[string][]byte{
		"stamps in its JSON":                           recordFile(rec.Key, first),
		"stamps in its JSON, no key in its first line": append([]byte(hex.EncodeToString(sum[:])+"\n"), first...),
	} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, ok := LoadStackRecord(out, rec.Source, rec.Key, nil); ok {
			t.Errorf("a record with %s loaded", name)
		}
	}
}

// TestStampsDigest: the no-change record's digest of out/'s stamps hashes
// the lines "<path>\x00<size>\x00<mtime>\x00<ctime>\n" in path order.
func TestStampsDigest(t *testing.T) {
	stamps := map[string]FileStamp{"b/x": {Size: 12, ModTime: -5, Change: 7}, "a": {Size: 0, ModTime: 1764979200123456789, Change: 1764979200123456790}, "a/é": {Size: 1 << 40}}
	h := sha256.New()
	for _, p := range []string{"a", "a/é", "b/x"} {
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00%d\n", p, stamps[p].Size, stamps[p].ModTime, stamps[p].Change)
	}
	if got, want := stampsDigest(stamps), hex.EncodeToString(h.Sum(nil)); got != want {
		t.Fatalf("digest %s, want %s", got, want)
	}
}
