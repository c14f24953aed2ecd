package compile_test

import (
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/testtool"
)

// TestGolden compiles each testdata/golden/*.txtar archive's stack
// (stack.cue or stack.jsonnet, named stacks/<archive>.cue or .jsonnet,
// with the other non-output sections beside it in stacks/: Jsonnet
// imports, custom generators) through the whole pipeline, and compares
// the out/ tree with the archive's "out/…" files: same paths, same
// bytes. HACOMPILE_UPDATE=1 rewrites the archives.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txtar")
		t.Run(name, func(t *testing.T) {
			ar, err := txtar.ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var stack string
			var inputs []txtar.File
			fsys := fstest.MapFS{}
			want := map[string][]byte{}
			for _, af := range ar.Files {
				switch {
				case strings.HasPrefix(af.Name, "out/"):
					want[strings.TrimPrefix(af.Name, "out/")] = af.Data
					continue
				case af.Name == "stack.cue" || af.Name == "stack.jsonnet":
					stack = "stacks/" + name + path.Ext(af.Name)
					fsys[stack] = &fstest.MapFile{Data: af.Data}
				default:
					fsys["stacks/"+af.Name] = &fstest.MapFile{Data: af.Data}
				}
				inputs = append(inputs, af)
			}
			if stack == "" {
				t.Fatal("archive has no stack.cue or stack.jsonnet section")
			}
			in, err := compile.ReadInputsFS(fsys, []string{stack})
			if err != nil {
				t.Fatal(err)
			}
			res, err := compile.CompileInputs(in, "2026-11-22")
			if err != nil {
				t.Fatal(err)
			}
			got, err := compile.TreeOf(res.Rendered)
			if err != nil {
				t.Fatal(err)
			}
			if testtool.Update() {
				ar.Files = inputs
				for _, p := range slices.Sorted(maps.Keys(got)) {
					ar.Files = append(ar.Files, txtar.File{Name: "out/" + p, Data: got[p]})
				}
				if err := os.WriteFile(f, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, p := range slices.Sorted(maps.Keys(got)) {
				w, ok := want[p]
				switch {
				case !ok:
					t.Errorf("unexpected file %s", p)
				case string(w) != string(got[p]):
					t.Errorf("%s differs\n--- got\n%s--- want\n%s", p, got[p], w)
				}
			}
			for _, p := range slices.Sorted(maps.Keys(want)) {
				if _, ok := got[p]; !ok {
					t.Errorf("missing file %s", p)
				}
			}
		})
	}
}
