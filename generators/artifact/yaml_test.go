package artifact

import (
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// decodeAt decodes the scalar written after "v: " in doc and fails the
// test when doc is not YAML or v is not the string want.
func decodeAt(t *testing.T, doc, want string) {
	t.Helper()
	var got struct {
		V *string `yaml:"v"`
	}
	if err := yaml.Unmarshal([]byte(doc), &got); err != nil {
		t.Fatalf("%q is not YAML: %v", doc, err)
	}
	if got.V == nil || *got.V != want {
		t.Fatalf("YAML %q decodes to %v, want %q", doc, got.V, want)
	}
}

// roundTrip checks a quoted scalar in every position the generator puts
// one: a mapping value, a sequence item and deep in nested blocks.
func roundTrip(t *testing.T, s string) {
	t.Helper()
	q, err := YAMLQuote(s)
	if err != nil {
		t.Fatalf("YAMLQuote(%q): %v", s, err)
	}
	if strings.ContainsAny(q, "\n\r") {
		t.Fatalf("YAMLQuote(%q) = %q spans lines", s, q)
	}
	decodeAt(t, "v: "+q+"\n", s)
	decodeAt(t, "x:\n  - a\nv: "+q+"  # comment\n", s)
	var seq []struct {
		L struct {
			V string `yaml:"v"`
		} `yaml:"l"`
	}
	doc := "- l:\n    v: " + q + "\n"
	if err := yaml.Unmarshal([]byte(doc), &seq); err != nil || len(seq) != 1 || seq[0].L.V != s {
		t.Fatalf("nested YAML %q decodes to %+v (%v), want %q", doc, seq, err, s)
	}
	var items []string
	if err := yaml.Unmarshal([]byte("- "+q+"\n- "+q+"\n"), &items); err != nil || len(items) != 2 || items[0] != s || items[1] != s {
		t.Fatalf("sequence of %q decodes to %q (%v)", q, items, err)
	}
}

// The strings that break naive YAML quoting: indicators, comments,
// booleans and numbers that would lose their type unquoted, escapes,
// line breaks of both YAML versions, the BOM, controls, and templates.
var quoteCases = []string{
	"", " ", "  lead and trail  ", "plain", "yes", "no", "on", "off", "null", "~", "true",
	"0x1F", "1e3", "0755", ".inf", "-", "- item", "? key", ": v", "a: b", "a #b", "#c",
	"[x]", "{x}", "*alias", "&anchor", "!tag", "%dir", "@at", "`tick`", "|", ">",
	`"`, `\`, `\"`, `\\n`, "'", "''", "a\nb", "a\n", "\n", "\r\n", "tab\there", "\t",
	"\x00", "\x01\x1f", "\x7f", "\u0080", "\u0085", "\u009f", "\u00a0", "\u2028", "\u2029",
	"\ufeff", "\ufeffbom", "\ufffd", "\uffff", "\ufffe", "\U0001F600", "é", "日本語",
	`{{ $labels.host }} ({{ $value | printf "%.1f" }})`, "--- doc", "...", "a\n---\nb",
	"private-db.db.ondigitalocean.example.com:25060", "redis://10.0.0.1:6379",
}

func TestQuote(t *testing.T) {
	for _, s := range quoteCases {
		roundTrip(t, s)
	}
	// What a reviewer sees for the common case: plain text, no escapes.
	for s, want := range map[string]string{
		"app1":                   `"app1"`,
		`say "hi"`:               `"say \"hi\""`,
		"a\tb\nc":                `"a\tb\nc"`,
		"\u2028":                 `"\u2028"`,
		"{{ $labels.instance }}": `"{{ $labels.instance }}"`,
	} {
		if got, _ := YAMLQuote(s); got != want {
			t.Errorf("YAMLQuote(%q) = %s, want %s", s, got, want)
		}
	}
	if _, err := YAMLQuote("bad \xff byte"); err == nil {
		t.Error("YAMLQuote accepted invalid UTF-8")
	}
}

// FuzzYAMLQuote proves that YAMLQuote's output reads back, through a real
// YAML parser, as exactly its input, and that only invalid UTF-8 is
// refused.
func FuzzYAMLQuote(f *testing.F) {
	for _, s := range quoteCases {
		f.Add(s)
	}
	f.Add("\xff")
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			if _, err := YAMLQuote(s); err == nil {
				t.Fatalf("YAMLQuote(%q) accepted invalid UTF-8", s)
			}
			return
		}
		roundTrip(t, s)
	})
}
