package schema_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// TestReferenceMarkdown: schema/REFERENCE.md, which the README links
// for readers on a forge, is what hacompile schema --markdown prints
// from the embedded schema (HACOMPILE_UPDATE=1 rewrites it), and it
// lists every field, each on a row of its own table.
func TestReferenceMarkdown(t *testing.T) {
	got, err := schema.ReferenceMarkdown()
	if err != nil {
		t.Fatal(err)
	}
	if testtool.Update() {
		if err := os.WriteFile("REFERENCE.md", got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("REFERENCE.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("schema/REFERENCE.md is stale: run HACOMPILE_UPDATE=1 go test ./schema -run TestReferenceMarkdown")
	}
	fields, _, err := schema.SchemaFields()
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, l := range strings.Split(string(got), "\n") {
		if !strings.HasPrefix(l, "| `") {
			continue
		}
		// Five cells: escaped pipes are not cell borders.
		if n := strings.Count(strings.ReplaceAll(l, `\|`, ""), "|"); n != 6 && n != 4 {
			t.Errorf("a row that is not 5 (or, for types, 3) cells: %s", l)
		}
		rows++
	}
	for _, f := range fields {
		if !strings.Contains(string(got), "| `"+f.Path+"` |") {
			t.Errorf("field %s has no row", f.Path)
		}
	}
	if rows < len(fields) {
		t.Errorf("%d rows for %d fields", rows, len(fields))
	}
}
