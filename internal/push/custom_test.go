package push

import (
	"slices"
	"testing"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/testtool"
)

// Under --root the stack is rendered again with a prefix; that render
// must run the same generators as the build, the stack's custom ones
// included (it used to run the built-in table only, and the custom
// generators' files vanished from the push).
func TestTargetsRootKeepsCustomGenerators(t *testing.T) {
	t.Parallel()
	fsys := testtool.CustomStack
	res, err := compile.CompileInputs([]compile.Input{{Name: testtool.CustomStackFile, Data: fsys[testtool.CustomStackFile].Data, FS: fsys, Path: testtool.CustomStackFile}}, "2026-01-01")
	if err != nil {
		t.Fatal(err)
	}
	paths := func(root string) []string {
		hosts, err := Targets(res.Rendered[0], TargetOptions{Root: root, Hosts: []string{"app1"}, NoHealth: true})
		if err != nil {
			t.Fatal(err)
		}
		var ps []string
		for _, f := range hosts[0].Files {
			ps = append(ps, f.Path)
		}
		return ps
	}
	at, under := paths("/"), paths("/srv/staging/{host}")
	if !slices.Contains(at, "/etc/motd") {
		t.Fatalf("the custom generator's file is missing at /: %q", at)
	}
	if !slices.Equal(at, under) {
		t.Fatalf("files at / and under --root differ:\n/: %q\nroot: %q", at, under)
	}
}
