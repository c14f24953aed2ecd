package jsonnet_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hacompile/hacompile/internal/jsonnet"
)

// TestDeepNesting: a file nested far deeper than any stack (it used to
// overflow the Go stack in go-jsonnet's parser, killing the process) is
// an error at the position where it passes the limit, whether it is the
// stack file or an import; brackets in strings and comments do not count.
func TestDeepNesting(t *testing.T) {
	deep := "{a: 1, b: " + strings.Repeat("[", 200000) + strings.Repeat("]", 200000) + "}"
	_, _, err := jsonnet.EvalStack(jsonnet.Source{Name: "stacks/deep.jsonnet", Data: []byte(deep)}, jsonnet.Options{})
	if err == nil || !strings.Contains(err.Error(), "stacks/deep.jsonnet:1:1010") || !strings.Contains(err.Error(), "deeper than 1000 levels") {
		t.Errorf("deep stack: %v", err)
	}
	fsys := fstest.MapFS{
		"stacks/s.jsonnet":     {Data: []byte(`(import "lib.libsonnet") + {name: "s"}`)},
		"stacks/lib.libsonnet": {Data: []byte(deep)},
	}
	src := jsonnet.Source{Name: "stacks/s.jsonnet", Data: fsys["stacks/s.jsonnet"].Data, FS: fsys, Path: "stacks/s.jsonnet"}
	if _, _, err := jsonnet.EvalStack(src, jsonnet.Options{}); err == nil || !strings.Contains(err.Error(), "deeper than 1000 levels") {
		t.Errorf("deep import: %v", err)
	}
	ok := `{s: "` + strings.Repeat("[", 5000) + `", t: @'` + strings.Repeat("{", 5000) + `', u: |||
  ` + strings.Repeat("(", 5000) + `
|||} // ` + strings.Repeat("[", 5000) + "\n"
	if _, _, err := jsonnet.EvalStack(jsonnet.Source{Name: "ok.jsonnet", Data: []byte(ok)}, jsonnet.Options{}); err != nil {
		t.Errorf("brackets in strings and comments: %v", err)
	}
}
