package build_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/hacompile/hacompile/generators"
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/build"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// TestGolden renders each testdata/golden/*.txtar archive's stack.cue
// and compares the whole out/ tree with the archive's "out/…" files:
// same paths, same bytes. HACOMPILE_UPDATE=1 rewrites the archives.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	l, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txtar")
		t.Run(name, func(t *testing.T) {
			ar, err := txtar.ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var src []byte
			want := map[string][]byte{}
			for _, af := range ar.Files {
				switch {
				case af.Name == "stack.cue":
					src = af.Data
				case strings.HasPrefix(af.Name, "out/"):
					want[strings.TrimPrefix(af.Name, "out/")] = af.Data
				default:
					t.Fatalf("unexpected section %s", af.Name)
				}
			}
			s, err := l.Load("stacks/"+name+".cue", src)
			if err != nil {
				t.Fatal(err)
			}
			r, err := build.Render(s, generators.All(), generators.Assemblers(), artifact.Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := build.TreeOf([]*build.Rendered{r})
			if err != nil {
				t.Fatal(err)
			}
			if testtool.Update() {
				ar.Files = []txtar.File{{Name: "stack.cue", Data: src}}
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
