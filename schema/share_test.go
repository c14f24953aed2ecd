package schema

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"cuelang.org/go/cue/parser"
)

// TestSchemaLeaves pins the fields of #Host a host's value is the
// string it wrote for, and shows that none are found when the schema
// could give a host more than #Host does, or read its fields.
func TestSchemaLeaves(t *testing.T) {
	leaves, def := schemaLeaves()
	if got := slices.Sorted(maps.Keys(leaves)); !slices.Equal(got, []string{"address", "notes"}) {
		t.Errorf("leaf fields %v, want [address notes]", got)
	}
	if !strings.HasPrefix(def, leafDef+": {[#Name]: {") {
		t.Errorf("definition %q", def)
	}
	for _, c := range []struct{ name, from, to string }{
		{"the schema reads the hosts", "\tname!:       #Name\n", "\tname!:       #Name\n\t_n: len(hosts)\n"},
		{"a second hosts field", "\thosts!: [#Name]: #Host\n", "\thosts!: [#Name]: #Host\n\thosts: [string]: notes: \"x\"\n"},
		{"hosts by a pattern of its own", "\thosts!: [#Name]: #Host\n", "\thosts!: [#Name]: #Host & {notes: address}\n"},
		{"#Host twice", "#Host: {\n", "#Host: {notes: \"x\"}\n#Host: {\n"},
		{"#Host embeds", "#Host: {\n", "#Host: {\n\t#Base\n"},
	} {
		if !strings.Contains(string(stackCUE), c.from) {
			t.Fatalf("%s: the schema has no %q", c.name, c.from)
		}
		f, err := parser.ParseFile(schemaFile, strings.Replace(string(stackCUE), c.from, c.to, 1))
		if err != nil {
			t.Fatal(err)
		}
		if l, d := leavesOf(f); l != nil || d != "" {
			t.Errorf("%s: leaf fields %v", c.name, l)
		}
	}
	// A field #Host reads is no leaf.
	f, err := parser.ParseFile(schemaFile, strings.Replace(string(stackCUE), "\tnotes?: string\n", "\tnotes?: string\n\t_a: address\n", 1))
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := leavesOf(f); l["address"] || !l["notes"] {
		t.Errorf("with #Host reading address: leaf fields %v", l)
	}
}
