package compile_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/schema"
	"github.com/hacompile/hacompile/site"
)

// nameStack is a stack that compiles, with its name on line 3.
const nameStack = `// A stack.
domain: "example.com"
name:   "NAME"
hosts: {
	app1: {address: "10.0.0.1", roles: ["app"], size: "s-2vcpu-4gb"}
	app2: {address: "10.0.0.2", roles: ["app"], size: "s-2vcpu-4gb"}
}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app"}
`

// TestStackNames: two stack files of one name, and a stack named as
// the runbook's directory, are errors at the name field; the duplicate
// names where the first file wrote it. Both are the compile's (Load's),
// so vet reports them as build does.
func TestStackNames(t *testing.T) {
	named := func(file, name string) compile.Input {
		return compile.Input{Name: file, Data: []byte(strings.Replace(nameStack, "NAME", name, 1))}
	}
	for _, c := range []struct {
		in   []compile.Input
		want string
	}{
		{[]compile.Input{named("stacks/shop.cue", "shop"), named("stacks/shop2.cue", "shop")},
			`stacks/shop2.cue:3:9: name: stack name "shop" is already used by stacks/shop.cue:3:9`},
		{[]compile.Input{named("stacks/a.cue", "site")},
			`stacks/a.cue:3:9: name: stack name "site" is reserved for the runbook site (out/site/); rename the stack`},
		{[]compile.Input{named("stacks/a.cue", "site"), named("stacks/b.cue", "shop"), named("stacks/c.cue", "shop")},
			`stacks/a.cue:3:9: name: stack name "site" is reserved for the runbook site (out/site/); rename the stack` + "\n" +
				`stacks/c.cue:3:9: name: stack name "shop" is already used by stacks/b.cue:3:9`},
	} {
		for _, checkOnly := range []bool{true, false} {
			_, err := compile.CompileInputsWith(c.in, "2026-11-22", compile.Options{CheckOnly: checkOnly})
			var se *schema.Error
			if !errors.As(err, &se) {
				t.Fatalf("CheckOnly %v: error %T %v, want *schema.Error", checkOnly, err, err)
			}
			if got := err.Error(); got != c.want {
				t.Errorf("CheckOnly %v:\n got %s\nwant %s", checkOnly, got, c.want)
			}
			for _, d := range se.Diags {
				if d.Path != "name" || d.Line == 0 {
					t.Errorf("diagnostic %+v: want it at the name field", d)
				}
			}
		}
	}
	if compile.SiteDir != site.Dir {
		t.Errorf("compile.SiteDir %q, site.Dir %q: the reserved stack name is the runbook's directory", compile.SiteDir, site.Dir)
	}
}
