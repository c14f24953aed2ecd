package compile

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/fleet"
)

// sameAsMarshalIndent fails unless appendManifestJSON writes m as
// json.MarshalIndent does.
func sameAsMarshalIndent(t *testing.T, name string, m Manifest) {
	t.Helper()
	want, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got := appendManifestJSON(nil, &m)
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-80)
	t.Fatalf("%s: manifest JSON differs from json.MarshalIndent at byte %d of %d:\ngot:  %q\nwant: %q", name, i, len(want), got[lo:min(len(got), i+80)], want[lo:min(len(want), i+80)])
}

// TestManifestJSONIsMarshalIndent: the manifests of the example stacks
// and of a fleet come out as json.MarshalIndent writes them.
func TestManifestJSONIsMarshalIndent(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Compile([]string{filepath.Join(root, "stacks")}, root, "2026-11-22")
	if err != nil {
		t.Fatal(err)
	}
	fl, err := CompileInputs([]Input{{Name: "stacks/fleet.cue", Data: fleet.Fleet(50, "")}}, "2026-11-22")
	if err != nil {
		t.Fatal(err)
	}
	rs := append(res.Rendered, fl.Rendered...)
	if len(rs) < 5 {
		t.Fatalf("only %d stacks rendered", len(rs))
	}
	actions := 0
	for _, r := range rs {
		m := ManifestOf(r)
		for _, e := range m.Files {
			if !e.Reload.IsZero() || !e.Validate.IsZero() {
				actions++
			}
		}
		sameAsMarshalIndent(t, r.Stack.Name, m)
		b, err := ManifestJSON(r)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.MarshalIndent(m, "", "  ")
		if !bytes.Equal(b, append(want, '\n')) {
			t.Fatalf("%s: ManifestJSON is not json.MarshalIndent and a newline", r.Stack.Name)
		}
	}
	if actions == 0 {
		t.Fatal("no file with an action: the test covers less than it says")
	}
}

// TestManifestJSONAwkwardStrings: strings json.Marshal escapes (quotes,
// backslashes, <>&, control characters, U+2028/9, invalid UTF-8) in
// every field, empty and nil lists, and random bytes.
func TestManifestJSONAwkwardStrings(t *testing.T) {
	t.Parallel()
	awkward := []string{
		"", "plain", `"quoted"`, `back\slash`, "<script>&amp;</script>", "tab\there\nnewline\r\b\f",
		"\x00\x01\x1f\x7f", "line\u2028sep\u2029para", "bad\xffutf8\xc3", "\xe2\x80", "é ü 日本 🙂",
		"trailing\\", "\u2027\u202a", "\xed\xa0\x80 surrogate", "</" + "x>",
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		n := rnd.IntN(12)
		b := make([]byte, n)
		for i := range b {
			switch rnd.IntN(4) {
			case 0:
				b[i] = byte(rnd.IntN(0x20))
			case 1:
				set := "\"\\<>&\xe2\x80\xa8\xa9"
				b[i] = set[rnd.IntN(len(set))]
			case 2:
				b[i] = byte(0x80 + rnd.IntN(0x80))
			default:
				b[i] = byte(0x20 + rnd.IntN(0x60))
			}
		}
		awkward = append(awkward, string(b))
	}
	invalid := 0
	for _, s := range awkward {
		if !utf8.ValidString(s) {
			invalid++
		}
	}
	if invalid < 10 {
		t.Fatalf("only %d invalid UTF-8 strings", invalid)
	}
	pick := func(i int) string { return awkward[i%len(awkward)] }
	for i := range awkward {
		m := Manifest{Stack: pick(i), Source: pick(i + 1), SourceSHA256: pick(i + 2), Hosts: []string{pick(i + 3), pick(i + 4)}}
		for j := range 3 {
			k := i + 5 + 9*j
			e := ManifestEntry{Host: pick(k), Path: pick(k + 1), Kind: pick(k + 2), SHA256: pick(k + 3), Size: k * 1000, Mode: pick(k + 4), Owner: pick(k + 5)}
			if j > 0 {
				e.Validate = artifact.ParseAction(pick(k+6) + " x && " + pick(k+7))
			}
			if j != 1 {
				e.Reload = artifact.ParseAction("systemctl reload " + strings.ReplaceAll(pick(k+8), "&&", "&"))
			}
			m.Files = append(m.Files, e)
		}
		sameAsMarshalIndent(t, "awkward", m)
	}
	sameAsMarshalIndent(t, "nil lists", Manifest{Stack: "s"})
	sameAsMarshalIndent(t, "empty lists", Manifest{Stack: "s", Hosts: []string{}, Files: []ManifestEntry{}})
	sameAsMarshalIndent(t, "negative size", Manifest{Files: []ManifestEntry{{Size: -1}}})
}

// TestDigestsOf: the digests handed to the writer are those of the
// files' contents, and a file the stack does not hold as given (another
// path or host, another size) has none.
func TestDigestsOf(t *testing.T) {
	t.Parallel()
	res, err := CompileInputs([]Input{{Name: "stacks/fleet.cue", Data: fleet.Fleet(20, "")}}, "2026-11-22")
	if err != nil {
		t.Fatal(err)
	}
	r := res.Rendered[0]
	d := DigestsOf(r)
	hosts := map[string]bool{}
	for _, f := range r.Files {
		hosts[f.Host] = true
		sum, ok := d.Of(f)
		if !ok || sum != sha256.Sum256(f.Content) {
			t.Fatalf("%s %s: digest %x, %v; want that of its content", f.Host, f.Path, sum, ok)
		}
	}
	if len(hosts) < 20 {
		t.Fatalf("files of %d hosts", len(hosts))
	}
	f := r.Files[len(r.Files)/2]
	longer := f
	longer.Content = append(slices.Clone(f.Content), 'x')
	other := f
	other.Path += ".other"
	nowhere := f
	nowhere.Host = "no-such-host"
	for _, g := range []artifact.File{longer, other, nowhere} {
		if sum, ok := d.Of(g); ok {
			t.Errorf("%s %s (%d bytes): digest %x, want none", g.Host, g.Path, len(g.Content), sum)
		}
	}
	twice := &Rendered{Stack: r.Stack, Files: []artifact.File{f, f}}
	if _, ok := DigestsOf(twice).Of(f); ok {
		t.Error("a path a stack holds twice has a digest")
	}
}
