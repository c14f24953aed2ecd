package schema_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/encoding/jsonschema"

	"github.com/hacompile/hacompile/internal/jsonnet"
	"github.com/hacompile/hacompile/schema"
)

// stackJSON is a stack file as JSON data: the CUE file's value, the
// Jsonnet file's evaluation.
func stackJSON(t *testing.T, path string) []byte {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".jsonnet") {
		dir := filepath.Dir(path)
		b, _, err := jsonnet.EvalStack(jsonnet.Source{Name: path, Data: src, FS: os.DirFS(dir), Path: filepath.Base(path)}, jsonnet.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v := cuecontext.New().CompileBytes(src, cue.Filename(path))
	b, err := v.MarshalJSON()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// validator compiles the exported JSON Schema back into CUE with CUE's
// JSON Schema decoder, an implementation of JSON Schema independent of
// the export.
func validator(t *testing.T) (*cue.Context, cue.Value) {
	t.Helper()
	js, err := schema.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	ctx := cuecontext.New()
	sv := ctx.CompileBytes(js, cue.Filename("stack.schema.json"))
	if err := sv.Err(); err != nil {
		t.Fatal(err)
	}
	f, err := jsonschema.Extract(sv, &jsonschema.Config{Strict: true})
	if err != nil {
		t.Fatalf("decoding the exported schema: %v", err)
	}
	v := ctx.BuildFile(f)
	if err := v.Err(); err != nil {
		t.Fatal(err)
	}
	return ctx, v
}

func check(ctx *cue.Context, v cue.Value, data []byte) error {
	d := ctx.CompileBytes(data, cue.Filename("stack.json"))
	if err := d.Err(); err != nil {
		return err
	}
	return v.Unify(d).Validate(cue.Concrete(true))
}

// TestJSONSchemaStacks: every stack of stacks/ passes the exported
// schema, and stacks with a misspelt field, a value outside an enum, a
// bound broken or a required field missing do not.
func TestJSONSchemaStacks(t *testing.T) {
	ctx, v := validator(t)
	files, _ := filepath.Glob("../stacks/*.cue")
	js, _ := filepath.Glob("../stacks/*.jsonnet")
	files = append(files, js...)
	if len(files) < 5 {
		t.Fatalf("stacks: %v", files)
	}
	var shop []byte
	for _, f := range files {
		data := stackJSON(t, f)
		if err := check(ctx, v, data); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if strings.HasSuffix(f, "do-python-ha.cue") {
			shop = data
		}
	}
	for _, bad := range []struct{ name, old, new string }{
		{"misspelt field", `"algorithm":`, `"algoritm":`},
		{"enum", `"kind": "nginx"`, `"kind": "nginix"`},
		{"bound", `"workers": 3`, `"workers": 0`},
		{"pattern", `"name": "do-python-ha"`, `"name": "Do_Python"`},
		{"required", `"domain": "shop.example.com",`, ``},
		{"host field", `"size": "s-1vcpu-2gb"`, `"sise": "s-1vcpu-2gb"`},
		{"role", `"roles": [`, `"roles": ["web", `},
	} {
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, shop, "", " "); err != nil {
			t.Fatal(err)
		}
		s := pretty.String()
		if !strings.Contains(s, bad.old) {
			t.Fatalf("%s: the stack lacks %s", bad.name, bad.old)
		}
		if err := check(ctx, v, []byte(strings.Replace(s, bad.old, bad.new, 1))); err == nil {
			t.Errorf("%s: accepted", bad.name)
		}
	}
	// No host: the loader refuses it, and so does the schema.
	var m map[string]any
	if err := json.Unmarshal(shop, &m); err != nil {
		t.Fatal(err)
	}
	m["hosts"] = map[string]any{}
	noHosts, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(ctx, v, noHosts); err == nil {
		t.Error("no hosts: accepted")
	}
}

// TestJSONSchemaShape: deterministic, draft 2020-12, closed, with doc
// comments, defaults and the fields set under a condition.
func TestJSONSchemaShape(t *testing.T) {
	a, err := schema.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := schema.JSONSchema()
	if !bytes.Equal(a, b) {
		t.Error("two exports differ")
	}
	var doc struct {
		Schema     string                     `json:"$schema"`
		Props      map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
		Additional bool                       `json:"additionalProperties"`
		Defs       map[string]struct {
			Props       map[string]map[string]any `json:"properties"`
			Description string                    `json:"description"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(a, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Schema != schema.JSONSchemaID || doc.Additional || strings.Join(doc.Required, ",") != "name,domain,hosts,balancer" {
		t.Errorf("root: %s %v %v", doc.Schema, doc.Additional, doc.Required)
	}
	app := doc.Defs["App"].Props
	if app["worker_class"]["default"] != "sync" || app["module"] == nil || app["psgi"] == nil {
		t.Errorf("app: %v", app)
	}
	if d, _ := app["timeout"]["description"].(string); d != "" {
		// timeout has no comment of its own
		t.Errorf("timeout description %q", d)
	}
	if d, _ := app["name"]["description"].(string); d != "Used in unit names, socket paths and log names." {
		t.Errorf("app.name description %q", d)
	}
	if doc.Defs["Workers"].Props["beat"] == nil || doc.Defs["Cache"].Props["engine"]["default"] != "redis" {
		t.Error("workers.beat or cache.engine missing")
	}
}
