package monitoring

import (
	"testing"

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

var literalCases = []string{
	`up{job="node"} == 0`,
	"sum by (instance) (rate(x[5m]))\n  / sum by (instance) (rate(y[5m]))\n  * 100 > 5",
	"# not a comment\n- not an item\n--- not a document\n... nor an end",
	"a: b\n  c: d", "'quoted'", `"quoted"`, "key: |-", "日本語\n  é",
}

// literalRoundTrip checks a literal block after a key at column 0 and
// after a nested key, as the generator writes exprs.
func literalRoundTrip(t *testing.T, s string, extra int) bool {
	t.Helper()
	lit, ok := literal(s, extra+1)
	if !ok {
		return false
	}
	decodeAt(t, "v: "+lit+"\nw: after\n", s)
	nested, ok := literal(s, extra+8)
	if !ok {
		t.Fatalf("literal(%q) depends on the indentation", s)
	}
	doc := "- rules:\n    - alert: X\n      v: " + nested + "\n      for: 5m\n"
	var got []struct {
		Rules []struct {
			V   string `yaml:"v"`
			For string `yaml:"for"`
		} `yaml:"rules"`
	}
	if err := yaml.Unmarshal([]byte(doc), &got); err != nil || len(got) != 1 || len(got[0].Rules) != 1 ||
		got[0].Rules[0].V != s || got[0].Rules[0].For != "5m" {
		t.Fatalf("nested literal %q decodes to %+v (%v), want %q", doc, got, err, s)
	}
	return true
}

func TestLiteral(t *testing.T) {
	for _, s := range literalCases {
		if !literalRoundTrip(t, s, 1) {
			t.Errorf("literal refused %q", s)
		}
	}
	// Refused: the caller quotes these instead.
	for _, s := range []string{"", " lead", "trail ", "a\n\nb", "a\n", "\nb", "tab\tin", "nel\u0085", "bom\ufeff", "bad \xff"} {
		if lit, ok := literal(s, 2); ok {
			t.Errorf("literal(%q) = %q, want refusal", s, lit)
		}
	}
	// And block falls back to a quoted scalar for them.
	w := &yamlWriter{}
	w.block(0, "v", "a\n\nb")
	decodeAt(t, w.b.String(), "a\n\nb")
}

// FuzzYAMLLiteral proves that every string literal accepts reads back as
// exactly itself from a literal block, at any indentation.
func FuzzYAMLLiteral(f *testing.F) {
	for _, s := range literalCases {
		f.Add(s, uint8(1))
	}
	f.Fuzz(func(t *testing.T, s string, extra uint8) {
		literalRoundTrip(t, s, int(extra%6))
	})
}
