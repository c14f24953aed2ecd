package schema

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
)

// evaluatedPaths walks a value of the schema with CUE's evaluator, not
// its syntax: every field, optional and required ones too, pattern keys
// as <*> and list elements as [].
func evaluatedPaths(t *testing.T, v cue.Value, prefix string, out map[string]bool, depth int) {
	if depth > 8 {
		return
	}
	it, err := v.Fields(cue.Optional(true))
	if err != nil {
		return
	}
	for it.Next() {
		sel := it.Selector()
		if sel.IsDefinition() || sel.PkgPath() != "" && strings.HasPrefix(sel.String(), "_") {
			continue
		}
		name := sel.Unquoted()
		if strings.HasPrefix(name, "_") {
			continue
		}
		if !labelPlain.MatchString(name) {
			name = sel.String()
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		out[p] = true
		evaluatedPaths(t, it.Value(), p, out, depth+1)
		if e := it.Value().LookupPath(cue.MakePath(cue.AnyIndex)); e.Exists() && e.IncompleteKind()&cue.StructKind != 0 {
			evaluatedPaths(t, e, p+"[]", out, depth+1)
		}
	}
	if e := v.LookupPath(cue.MakePath(cue.AnyString)); e.Exists() && prefix != "" {
		p := prefix + ".<*>"
		out[p] = true
		evaluatedPaths(t, e, p, out, depth+1)
	}
}

var patternKey = regexp.MustCompile(`<[a-z]+>`)

// TestSchemaFields: the fields read from the schema's syntax are every
// field CUE's evaluator finds in #Stack, for several variants that
// switch conditional fields on, and the conditional ones say when.
func TestSchemaFields(t *testing.T) {
	fields, defs, err := SchemaFields()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Field{}
	for _, f := range fields {
		got[patternKey.ReplaceAllString(f.Path, "<*>")] = f
	}
	ctx := cuecontext.New()
	root := ctx.CompileBytes(stackCUE, cue.Filename(schemaFile))
	want := map[string]bool{}
	for _, variant := range []string{
		`{}`,
		`{app: runtime: "python", balancer: kind: "haproxy", cache: {engine: "redis"}, queue: {engine: "rabbitmq", tls: true}, workers: {pool: "prefork"}}`,
		`{app: runtime: "perl", balancer: kind: "nginx", cache: {engine: "memcached"}, queue: {engine: "redis"}, workers: {pool: "gevent"}}`,
		`{scaling: app_source: kind: "s3"}`,
	} {
		v := root.LookupPath(cue.ParsePath("#Stack")).Unify(ctx.CompileString(variant))
		evaluatedPaths(t, v, "", want, 0)
	}
	var missing []string
	for p := range want {
		if _, ok := got[p]; !ok {
			missing = append(missing, p)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("fields the evaluator finds but the reference lacks: %q", missing)
	}
	if len(want) < 150 {
		t.Errorf("the evaluator found only %d fields", len(want))
	}
	for p, when := range map[string]string{"app.worker_class": `runtime == "python"`, "app.psgi": `runtime == "perl"`, "app.name": ""} {
		if got[p].When != when {
			t.Errorf("%s: when %q, want %q", p, got[p].When, when)
		}
	}
	if f := got["app.threads"]; len(f.Defaults) != 2 || f.Defaults[0] != (CondDefault{"4", `worker_class == "gthread"`}) {
		t.Errorf("app.threads defaults %+v", f.Defaults)
	}
	if f := got["balancer.kind"]; !f.Required || f.Type != `"haproxy" | "nginx" | "cloud"` {
		t.Errorf("balancer.kind %+v", f)
	}
	if f := got["balancer.algorithm"]; f.Default != `"roundrobin"` || !strings.HasPrefix(f.Doc, "roundrobin, leastconn") {
		t.Errorf("balancer.algorithm %+v", f)
	}
	if !slices.ContainsFunc(defs, func(d Definition) bool { return d.Name == "#Seconds" && d.Type == "int & >=1 & <=86400" }) {
		t.Error("no #Seconds definition")
	}
}
