package compile_test

import (
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/testtool"
)

// TestCheckOnlyReportsWhatBuildReports compiles every stack the tests
// have twice, as build compiles it and as vet does (Options.CheckOnly):
// the bad corpus, the example stacks, the golden and feature cases. Vet
// must report what build reports — the same error, byte for byte, or
// the same findings and the same files — and may leave out only the
// cloud-init documents' content.
func TestCheckOnlyReportsWhatBuildReports(t *testing.T) {
	t.Parallel()
	const today = "2026-11-22"
	skipped := 0
	both := func(t *testing.T, in []compile.Input) {
		t.Helper()
		built, berr := compile.CompileInputsWith(in, today, compile.Options{})
		vetted, verr := compile.CompileInputsWith(in, today, compile.Options{CheckOnly: true})
		if berr != nil || verr != nil {
			if berr == nil || verr == nil || berr.Error() != verr.Error() {
				t.Fatalf("build: %v\nvet: %v", berr, verr)
			}
			return
		}
		if !reflect.DeepEqual(built.Findings, vetted.Findings) {
			t.Fatalf("findings differ\nbuild: %v\nvet: %v", built.Findings, vetted.Findings)
		}
		if len(built.Rendered) != len(vetted.Rendered) {
			t.Fatalf("build rendered %d stacks, vet %d", len(built.Rendered), len(vetted.Rendered))
		}
		for i, b := range built.Rendered {
			bf, vf := b.Files, vetted.Rendered[i].Files
			if len(bf) != len(vf) {
				t.Fatalf("%s: build rendered %d files, vet %d", b.Stack.Name, len(bf), len(vf))
			}
			for j, f := range bf {
				g := vf[j]
				if f.Kind == "cloud-init" && g.Content == nil {
					skipped++
					g.Content = f.Content
				}
				if !reflect.DeepEqual(f, g) {
					t.Errorf("%s: build's %s/%s (%s, %d bytes) is vet's %s/%s (%s, %d bytes)",
						b.Stack.Name, f.Host, f.Path, f.Kind, len(f.Content), g.Host, g.Path, g.Kind, len(g.Content))
				}
			}
		}
	}

	bad, err := filepath.Glob("testdata/bad/*.txtar")
	if err != nil || len(bad) < 40 {
		t.Fatalf("want at least 40 bad stacks, have %d (%v)", len(bad), err)
	}
	for _, f := range bad {
		t.Run("bad/"+strings.TrimSuffix(filepath.Base(f), ".txtar"), func(t *testing.T) {
			dir, name, _ := testtool.BadStack(t, f)
			in, err := compile.ReadInputs([]string{filepath.Join(dir, filepath.FromSlash(name))}, dir)
			if err != nil {
				t.Fatal(err)
			}
			both(t, in)
		})
	}
	t.Run("examples", func(t *testing.T) {
		root := testtool.ExampleRoot()
		in, err := compile.ReadInputs([]string{filepath.Join(root, "stacks")}, root)
		if err != nil {
			t.Fatal(err)
		}
		both(t, in)
	})
	cases, err := filepath.Glob("testdata/golden/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	features, err := filepath.Glob("testdata/feature/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(cases, features...) {
		name := strings.TrimSuffix(filepath.Base(f), ".txtar")
		t.Run(filepath.Base(filepath.Dir(f))+"/"+name, func(t *testing.T) {
			ar, err := txtar.ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			fsys := fstest.MapFS{}
			var stack string
			for _, af := range ar.Files {
				switch {
				case af.Name == "stack.cue" || af.Name == "stack.jsonnet":
					stack = "stacks/" + name + path.Ext(af.Name)
					fsys[stack] = &fstest.MapFile{Data: af.Data}
				case strings.HasPrefix(af.Name, "stacks/"):
					fsys[af.Name] = &fstest.MapFile{Data: af.Data}
				case !strings.Contains(af.Name, "/") && !strings.HasPrefix(af.Name, "!"):
					fsys["stacks/"+af.Name] = &fstest.MapFile{Data: af.Data} // a golden case's imports
				}
			}
			in, err := compile.ReadInputsFS(fsys, []string{stack})
			if err != nil {
				t.Fatal(err)
			}
			both(t, in)
		})
	}
	if skipped == 0 {
		t.Error("vet wrote every cloud-init document: nothing was left out")
	}
}
