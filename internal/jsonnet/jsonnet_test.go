package jsonnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hacompile/hacompile/schema"
)

func evalIn(t *testing.T, fsys fstest.MapFS, o Options) ([]byte, map[string]schema.Position, error) {
	t.Helper()
	return EvalStack(Source{Name: "stacks/s.jsonnet", Data: fsys["stacks/s.jsonnet"].Data, FS: fsys, Path: "stacks/s.jsonnet"}, o)
}

// TestLocate proves that the fields a stack writes literally are found
// in the Jsonnet sources, through locals, imports, mixins (the right
// side wins), arrays and a top-level function, and that computed values
// leave their paths to the closest enclosing field.
func TestLocate(t *testing.T) {
	fsys := fstest.MapFS{
		"stacks/s.jsonnet": file(`local base = import 'base.libsonnet';
local app = { runtime: 'python' };
function(domain='example.com')
base {
  domain: domain,
  hosts+: { app2: base.host('10.0.0.12') },
  app: app + { module: 'wsgi:app' },
  waive: [{ rule: 'x' }] + [{ rule: 'y' }],
  hidden:: 1,
  ['comp' + 'uted']: 2,
}
`),
		"stacks/base.libsonnet": file(`{
  host(a):: { address: a },
  name: 'base',
  domain: 'old.example.com',
  hosts: { app1: { address: '10.0.0.11' } },
}
`),
	}
	_, pos, err := evalIn(t, fsys, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"":                   ":4:1",
		"domain":             ":5:3",
		"hosts":              ":6:3",
		"hosts.app2":         ":6:13",
		"hosts.app1":         "stacks/base.libsonnet:5:12",
		"hosts.app1.address": "stacks/base.libsonnet:5:29",
		"name":               "stacks/base.libsonnet:3:9",
		"app":                ":7:3",
		"app.runtime":        ":2:24",
		"app.module":         ":7:24",
		"waive":              ":8:3",
		"waive[0]":           ":8:11",
		"waive[0].rule":      ":8:19",
		"waive[1].rule":      ":8:37",
	}
	got := map[string]string{}
	for p, at := range pos {
		got[p] = fmt.Sprintf("%s:%d:%d", at.File, at.Line, at.Column)
	}
	for _, p := range slices.Sorted(maps.Keys(want)) {
		if got[p] != want[p] {
			t.Errorf("%q at %q, want %q", p, got[p], want[p])
		}
	}
	for _, p := range []string{"hidden", "computed", "hosts.app2.address"} {
		if at, ok := got[p]; ok {
			t.Errorf("%q located at %s; the walk cannot know it", p, at)
		}
	}
}

// TestEvalErrors pins the diagnostics of Jsonnet errors: each at the
// innermost position in the author's files, with the field path being
// written when the evaluator knows it.
func TestEvalErrors(t *testing.T) {
	lib := file("{\n  a: ,\n}\n")
	tests := []struct {
		name, src string
		o         Options
		want      string
	}{
		{"syntax", "{\n  name: 'x'\n  domain: 'y',\n}", Options{}, "stacks/s.jsonnet:3:3: Expected a comma before next field"},
		{"runtime", "local h = {};\n{\n  hosts: { app1: { address: h.address } },\n}", Options{}, "stacks/s.jsonnet:3:29: hosts.app1.address: Field does not exist: address"},
		{"error", "{ waive: [{}, error 'no waivers here'] }", Options{}, "stacks/s.jsonnet:1:15: waive[1]: no waivers here"},
		{"lib-syntax", "import 'lib.libsonnet'", Options{}, `stacks/lib.libsonnet:2:6: Unexpected: "," while parsing terminal`},
		{"import-outside", "{ a: import '../x.libsonnet' }", Options{}, `stacks/s.jsonnet:1:6: a: cannot import "../x.libsonnet": it is outside the stack's directory and the library paths (-J)`},
		{"tla-missing", "function(domain) { domain: domain }", Options{}, "stacks/s.jsonnet:1:1: Missing argument: domain (top-level arguments are given with --tla-str or --tla-code)"},
		// A call inside the program is not the top-level arguments'.
		{"inner-call-unknown", "local app(name) = { name: name };\n{ x: app(nme='a') }", Options{}, "stacks/s.jsonnet:2:6: x: function has no parameter nme"},
		{"tla-unknown", "function(domain='x') { domain: domain }", Options{TLAStr: map[string]string{"dmain": "y"}}, "stacks/s.jsonnet:1:1: function has no parameter dmain (top-level arguments are given with --tla-str or --tla-code)"},
		{"ext-missing", "{ domain: std.extVar('domain') }", Options{}, "stacks/s.jsonnet:1:11: domain: Undefined external variable: domain"},
		{"ext-code-syntax", "{ a: std.extVar('k') }", Options{ExtCode: map[string]string{"k": "{"}}, "stacks/s.jsonnet: --ext-code k: Unexpected: end of file while parsing field definition"},
		{"tla-code-syntax", "function(k) { a: k }", Options{TLACode: map[string]string{"k": "[1"}}, "stacks/s.jsonnet: --tla-code k: Expected a comma before next array element"},
		{"ext-code-nesting", "{ a: std.extVar('k') }", Options{ExtCode: map[string]string{"k": strings.Repeat("[", 100000)}}, "stacks/s.jsonnet: --ext-code k: line 1 column 1001: brackets nest deeper than 1000 levels (the limit of a Jsonnet file)"},
		{"tla-code-nesting", "function(k) { a: k }", Options{TLACode: map[string]string{"k": "\n" + strings.Repeat("{a:", 5000)}}, "stacks/s.jsonnet: --tla-code k: line 2 column 3001: brackets nest deeper than 1000 levels (the limit of a Jsonnet file)"},
		{"native", "{ a: std.native('parseYaml')('a: 1') }", Options{}, "stacks/s.jsonnet:1:6: a: Unexpected type null, expected function"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{"stacks/s.jsonnet": file(tt.src), "stacks/lib.libsonnet": lib, "x.libsonnet": file("{}")}
			_, _, err := evalIn(t, fsys, tt.o)
			var se *schema.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want *schema.Error", err, err)
			}
			if err.Error() != tt.want {
				t.Errorf("got  %s\nwant %s", err, tt.want)
			}
		})
	}
}

// TestEvalOptions proves that external variables and top-level
// arguments reach the stack as the jsonnet command line passes them.
func TestEvalOptions(t *testing.T) {
	fsys := fstest.MapFS{
		"stacks/s.jsonnet": file("function(a, b) { a: a, b: b, c: std.extVar('c'), d: std.extVar('d'), e: import 'e.libsonnet' }"),
		"lib/e.libsonnet":  file("'from -J'"),
	}
	out, _, err := evalIn(t, fsys, Options{
		TLAStr: map[string]string{"a": "1"}, TLACode: map[string]string{"b": "1 + 1"},
		ExtStr: map[string]string{"c": "x"}, ExtCode: map[string]string{"d": "[true]"},
		JPath: []string{"lib"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := `map[a:1 b:2 c:x d:[true] e:from -J]`
	if fmt.Sprint(got) != want {
		t.Errorf("got %v, want %s", got, want)
	}
}

// TestParseFiles pins what a custom generator may return.
func TestParseFiles(t *testing.T) {
	tests := []struct{ out, want string }{
		{`{"/etc/a": "x", "etc/b": "y"}`, "etc/a 0 x; etc/b 0 y"},
		{`{"/etc/a": {"content": "x", "mode": "0600", "owner": "app:www-data", "validate": "v", "reload": "r"}}`, "etc/a 600 app:www-data v r x"},
		{`{"/etc/a": {"content": "x", "mode": "755"}}`, "etc/a 755 x"},
		{`{}`, ""},
		{`[]`, `error: returned an array, want an object of files {"/path/on/host": "content", …}`},
		{`"x"`, `error: returned a string, want an object of files {"/path/on/host": "content", …}`},
		{`{"/etc/a": 1}`, `error: file "/etc/a": got a number, want the content as a string or an object {content, mode, owner, validate, reload}`},
		{`{"/etc/a": null}`, `error: file "/etc/a": got null, want the content as a string or an object {content, mode, owner, validate, reload}`},
		{`{"/etc/a": {"content": "x", "mod": "0600"}}`, `error: file "/etc/a": unknown field "mod" (want content, mode, owner, validate, reload)`},
		{`{"/etc/a": {"mode": "0600"}}`, `error: file "/etc/a": content is missing`},
		{`{"/etc/a": {"content": "x", "mode": 420}}`, `error: file "/etc/a": mode is a number, want a string`},
		{`{"/etc/a": {"content": "x", "mode": "0800"}}`, `error: file "/etc/a": invalid mode "0800" (want an octal mode such as 0644)`},
		{`{"/etc/a": {"content": "x", "mode": "000"}}`, `error: file "/etc/a": invalid mode "000" (want an octal mode such as 0644)`},
		{`{"/etc/a": {"content": "x", "owner": "root"}}`, `error: file "/etc/a": invalid owner "root" (want user:group such as root:root)`},
	}
	for _, tt := range tests {
		files, err := parseFiles([]byte(tt.out))
		var got []string
		for _, f := range files {
			s := fmt.Sprintf("%s %o", f.Path, f.Mode)
			for _, x := range []string{f.Owner, f.Validate.String(), f.Reload.String(), string(f.Content)} {
				if x != "" {
					s += " " + x
				}
			}
			got = append(got, s)
		}
		g := strings.Join(got, "; ")
		if err != nil {
			g = "error: " + err.Error()
		}
		if g != tt.want {
			t.Errorf("parseFiles(%s)\n got  %s\n want %s", tt.out, g, tt.want)
		}
	}
}

// TestStackView pins the stack generators receive: the schema's field
// names, each host with its name, workers as the stack says them, and
// the generated-file banner.
func TestStackView(t *testing.T) {
	s := &schema.Stack{
		Name: "s", Source: "stacks/s.jsonnet",
		Hosts: map[string]*schema.Host{"app1": {Name: "app1", Address: "10.0.0.11", Roles: []string{"app"}}},
		App:   schema.App{Name: "shop", Workers: 0},
	}
	b, err := viewOf(s)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Name   string `json:"name"`
		Source string `json:"source"`
		Header string `json:"header"`
		Hosts  map[string]struct {
			Name    string `json:"name"`
			Address string `json:"address"`
		} `json:"hosts"`
		App map[string]any `json:"app"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if v.Name != "s" || v.Source != "stacks/s.jsonnet" || v.Hosts["app1"].Name != "app1" || v.Hosts["app1"].Address != "10.0.0.11" || v.App["workers"] != "auto" {
		t.Errorf("view: %s", b)
	}
	if want := "Generated by hacompile from stacks/s.jsonnet. Do not edit: change the stack and rebuild."; v.Header != want {
		t.Errorf("header %q, want %q", v.Header, want)
	}
}
