package compile_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/site"
)

// TestFeatures is what each stack option renders, one small case per
// option, in the style of Caddy's caddyfile_adapt tests: each
// testdata/feature/*.txtar archive says in its comment what the option
// means, holds a small stack.cue that sets it, and then sections named
// by a rendered file's path under out/<stack>/ holding an excerpt of that
// file: whole lines that must appear in it, together and in order. A
// section whose name starts with "!" lists lines that must not appear
// anywhere in the file (what the option turns off). A section named
// site/<path> is a page of the stack's runbook, out/site/stacks/<stack>/<path>
// (for what only the runbook shows, such as a host's notes). A section
// named stacks/<path> is no excerpt but a file next to the stack (a
// custom generator).
//
// HACOMPILE_UPDATE=1 refreshes each excerpt from the rendered file
// between its first and last line, which stay as written: a reviewer
// sees the new lines in the diff of the archive.
func TestFeatures(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/feature/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no feature cases: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txtar")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ar, err := txtar.ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(ar.Files) < 2 || ar.Files[0].Name != "stack.cue" || strings.TrimSpace(string(ar.Comment)) == "" {
				t.Fatal("want a comment saying what the option renders, a stack.cue section, then excerpts")
			}
			stack := "stacks/" + name + ".cue"
			fsys := fstest.MapFS{stack: {Data: ar.Files[0].Data}}
			for _, f := range ar.Files[1:] {
				if strings.HasPrefix(f.Name, "stacks/") {
					fsys[f.Name] = &fstest.MapFile{Data: f.Data}
				}
			}
			in, err := compile.ReadInputsFS(fsys, []string{stack})
			if err != nil {
				t.Fatal(err)
			}
			res, err := compile.CompileInputs(in, "2026-11-22")
			if err != nil {
				t.Fatal(err)
			}
			tree, err := compile.TreeOf(res.Rendered)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for p, b := range tree {
				if _, rest, ok := strings.Cut(p, "/"); ok {
					got[rest] = string(b)
				}
			}
			if slices.ContainsFunc(ar.Files, func(f txtar.File) bool { return strings.HasPrefix(strings.TrimPrefix(f.Name, "!"), "site/") }) {
				pages, err := site.Render(res, site.Options{})
				if err != nil {
					t.Fatal(err)
				}
				for p, b := range pages {
					if rest, ok := strings.CutPrefix(p, "stacks/"+name+"/"); ok {
						got["site/"+rest] = string(b)
					}
				}
			}
			changed := false
			for i := 1; i < len(ar.Files); i++ {
				sec := &ar.Files[i]
				if strings.HasPrefix(sec.Name, "stacks/") {
					continue // an input next to the stack
				}
				p, absent := strings.CutPrefix(sec.Name, "!")
				content, ok := got[p]
				if !ok {
					t.Errorf("%s: no such rendered file", p)
					continue
				}
				want := strings.Split(strings.TrimSuffix(string(sec.Data), "\n"), "\n")
				if absent {
					for _, l := range want {
						if containsLine(content, l) {
							t.Errorf("%s has %q, which the option turns off", p, l)
						}
					}
					continue
				}
				if strings.Contains("\n"+content, "\n"+strings.Join(want, "\n")+"\n") {
					continue
				}
				block, found := between(content, want[0], want[len(want)-1])
				if testtool.Update() && found {
					sec.Data = []byte(block)
					changed = true
					continue
				}
				if found {
					t.Errorf("%s: the excerpt differs\n--- rendered\n%s--- excerpt\n%s", p, block, sec.Data)
				} else {
					t.Errorf("%s: no lines %q … %q in\n%s", p, want[0], want[len(want)-1], content)
				}
			}
			if changed {
				if err := os.WriteFile(f, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func containsLine(content, line string) bool {
	return strings.Contains("\n"+content, "\n"+line+"\n")
}

// between is the block of content's whole lines from the first line
// equal to first through the next line equal to last, newline-ended.
func between(content, first, last string) (string, bool) {
	lines := strings.SplitAfter(content, "\n")
	for i, l := range lines {
		if strings.TrimSuffix(l, "\n") != first {
			continue
		}
		for j := i; j < len(lines); j++ {
			if strings.TrimSuffix(lines[j], "\n") == last {
				b := strings.Join(lines[i:j+1], "")
				if !strings.HasSuffix(b, "\n") {
					b += "\n"
				}
				return b, true
			}
		}
	}
	return "", false
}
