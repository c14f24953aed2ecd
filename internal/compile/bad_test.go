package compile_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// TestBad runs the corpus of bad stacks through the whole pipeline
// (load, schema, HA rules, render): each testdata/bad/*.txtar holds a
// stack — stack.cue, or stack.jsonnet — with any files it imports or
// lists as generators (a stack in a subdirectory leaves room for files
// outside its sandbox), and the exact diagnostics it must produce in a
// want section; nothing may be rendered. HACOMPILE_UPDATE=1 rewrites
// the want sections.
func TestBad(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.txtar")
	if err != nil || len(files) < 40 {
		t.Fatalf("want at least 40 bad stacks, have %d (%v)", len(files), err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			dir, name, _ := testtool.BadStack(t, f)
			if name == "" {
				t.Fatal("archive has no stack.cue or stack.jsonnet section")
			}
			stack := filepath.Join(dir, filepath.FromSlash(name))
			res, err := compile.Compile([]string{stack}, dir, "2026-11-22")
			if err == nil {
				t.Fatalf("stack compiled; findings: %v", res.Findings)
			}
			var se *schema.Error
			if !errors.As(err, &se) {
				t.Fatalf("error is %T, want *schema.Error: %v", err, err)
			}
			got := err.Error() + "\n"
			if testtool.Update() {
				setSection(ar, "want", []byte(got))
				if err := os.WriteFile(f, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != string(section(t, ar, "want")) {
				t.Errorf("diagnostics differ\n--- got\n%s--- want\n%s", got, section(t, ar, "want"))
			}
		})
	}
}

func section(t *testing.T, ar *txtar.Archive, name string) []byte {
	t.Helper()
	for _, f := range ar.Files {
		if f.Name == name {
			return f.Data
		}
	}
	t.Fatalf("archive has no %s section", name)
	return nil
}

func setSection(ar *txtar.Archive, name string, data []byte) {
	for i := range ar.Files {
		if ar.Files[i].Name == name {
			ar.Files[i].Data = data
			return
		}
	}
	ar.Files = append(ar.Files, txtar.File{Name: name, Data: data})
}
