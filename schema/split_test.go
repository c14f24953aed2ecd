package schema_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"cuelang.org/go/cue/cuecontext"

	"github.com/hacompile/hacompile/internal/fleet"
	"github.com/hacompile/hacompile/internal/jsonnet"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// stackSource is a stack file to load, CUE or Jsonnet.
type stackSource struct {
	name string // as diagnostics name it
	data []byte
	dir  string // for a Jsonnet stack's imports
}

// loadBoth loads a stack whole and in parts (every stack in parts,
// however few its hosts) and reports the results.
func loadBoth(t *testing.T, src stackSource) (whole, parts *schema.Stack, werr, perr error, split bool) {
	t.Helper()
	load := func() (*schema.Stack, error, int64) {
		l, err := schema.NewLoader("")
		if err != nil {
			t.Fatal(err)
		}
		var s *schema.Stack
		if jsonnet.IsJsonnet(src.name) {
			data, pos, jerr := jsonnet.EvalStack(jsonnet.Source{Name: src.name, Data: src.data, FS: os.DirFS(src.dir), Path: src.name}, jsonnet.Options{})
			if jerr != nil {
				return nil, jerr, 0
			}
			s, err = l.LoadData(src.name, src.data, data, pos)
		} else {
			s, err = l.Load(src.name, src.data)
		}
		return s, err, l.PartsLoaded()
	}
	restore := schema.SetSplitMin(1 << 30)
	whole, werr, _ = load()
	restore()
	restore = schema.SetSplitMin(1)
	defer restore()
	parts, perr, n := load()
	return whole, parts, werr, perr, n > 0
}

func sameLoad(t *testing.T, name string, whole, parts *schema.Stack, werr, perr error) {
	t.Helper()
	var we, pe *schema.Error
	errors.As(werr, &we)
	errors.As(perr, &pe)
	switch {
	case (werr == nil) != (perr == nil):
		t.Errorf("%s: whole: %v; in parts: %v", name, werr, perr)
	case werr != nil && (we == nil || pe == nil || !reflect.DeepEqual(we.Diags, pe.Diags)):
		t.Errorf("%s: errors differ:\nwhole:    %v\nin parts: %v", name, werr, perr)
	case werr == nil:
		jw, _ := json.Marshal(whole)
		jp, _ := json.Marshal(parts)
		if string(jw) != string(jp) || !reflect.DeepEqual(whole.Positions, parts.Positions) {
			t.Errorf("%s: stacks differ:\nwhole:    %s\nin parts: %s", name, jw, jp)
		}
	}
}

// TestSplitSameAsWhole proves that a stack evaluated in parts, one CUE
// context per core, is exactly the stack evaluated whole: every example
// stack, a generated fleet, and every stack of the bad-input corpus
// (whose errors must be the same messages at the same places).
func TestSplitSameAsWhole(t *testing.T) {
	var srcs []stackSource
	for _, f := range testtool.ExampleStacks(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(testtool.ExampleRoot(), f)
		srcs = append(srcs, stackSource{name: filepath.ToSlash(rel), data: data, dir: testtool.ExampleRoot()})
	}
	srcs = append(srcs, stackSource{name: "fleet.cue", data: fleet.Fleet(300, "")})
	split := 0
	for _, s := range srcs {
		w, p, werr, perr, ok := loadBoth(t, s)
		if werr != nil {
			t.Fatalf("%s: %v", s.name, werr)
		}
		sameLoad(t, s.name, w, p, werr, perr)
		if ok {
			split++
		}
	}
	t.Logf("%d of %d good stacks evaluated in parts", split, len(srcs))
	if split != len(srcs) { // their hosts are written plainly
		t.Errorf("%d of %d good stacks were evaluated in parts", split, len(srcs))
	}

	badSplit := 0
	bad, _ := filepath.Glob("../internal/compile/testdata/bad/*.txtar")
	if len(bad) < 40 {
		t.Fatalf("bad-input corpus: %d files", len(bad))
	}
	for _, f := range bad {
		dir, name, data := testtool.BadStack(t, f)
		if name == "" {
			continue
		}
		src := &stackSource{name: name, data: data, dir: dir}
		w, p, werr, perr, ok := loadBoth(t, *src)
		sameLoad(t, filepath.Base(f), w, p, werr, perr)
		if ok {
			badSplit++
		}
	}
	t.Logf("%d of %d bad-input stacks loaded in parts (their faults are found after loading)", badSplit, len(bad))
}

// TestSplitDeclined lists stacks whose hosts cannot be evaluated apart:
// they load whole, and the same as they would anyway.
func TestSplitDeclined(t *testing.T) {
	base := strings.TrimSuffix(string(fleet.Fleet(3, "")), "\n") // hosts lb0, lb1, app2
	for _, c := range []struct {
		name, extra string
		valid       bool
	}{
		{"a field refers to a host", "\nnotes: hosts.lb0.address\n", true},
		{"a host refers to another", "\nhosts: app2: notes: hosts.lb0.address\n", true},

		{"hosts has a pattern", "\nhosts: [string]: ssh: user: \"deploy\"\n", true},
		{"hosts made by a comprehension", "\nhosts: {for n in [\"x1\"] {(n): {address: \"10.9.0.1\", roles: [\"app\"], cores: 2, memory_mb: 2048}}}\n", true},
		{"an alias of hosts", "\nH=hosts: {}\nnotes: H.lb0.address\n", true},
		{"a let refers to hosts", "\nlet h = hosts\nnotes: h.lb0.address\n", true},
		{"an embedded struct", "\n{hosts: {}}\n", true},
		{"an optional hosts", "\nhosts?: {}\n", true},
		// In x9's part, without lb0, the name would mean something else
		// or nothing.
		{"a host refers to another by name", "", true},
		{"self reaches the hosts", "\nnotes: \"n=\\(len(self[\"hosts\"]))\"\n", true},
		{"a postfix alias", "\nhosts~H: {}\nnotes: H.lb0.address\n", false},
	} {
		src := stackSource{name: "fleet.cue", data: []byte(base + c.extra)}
		if strings.HasPrefix(c.name, "self") || strings.HasPrefix(c.name, "a postfix") {
			src.data = []byte("@experiment(aliasv2)\n" + string(src.data))
		}
		if c.extra == "" { // a host naming another, last in the hosts struct
			src.data = []byte(strings.TrimSuffix(base, "}") + "\tx9: {address: lb0.address, roles: [\"app\"], cores: 2, memory_mb: 2048}\n}\n")
		}
		w, p, werr, perr, split := loadBoth(t, src)
		if split {
			t.Errorf("%s: evaluated in parts", c.name)
		}
		if c.valid && werr != nil {
			t.Errorf("%s: %v", c.name, werr)
		}
		sameLoad(t, c.name, w, p, werr, perr)
	}
}

// TestShareSameAsWhole proves that hosts written alike but for their
// address or notes, evaluated once, load exactly as every host
// evaluated with the schema: the same stack, or the same errors at the
// same places when one of them is wrong (an address, a name, a field)
// and the first of them is right.
func TestShareSameAsWhole(t *testing.T) {
	base := string(fleet.Fleet(300, ""))
	app := func(n int) string { // app298's line, say
		for _, l := range strings.Split(base, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "app"+strconv.Itoa(n)+":") {
				return l
			}
		}
		t.Fatalf("no host app%d in the fleet", n)
		return ""
	}
	line := app(298)
	edit := func(to string) string { return strings.Replace(base, line, to, 1) }
	for _, c := range []struct {
		name, src string
		valid     bool
	}{
		{"the fleet", base, true},
		{"notes on one host", edit(strings.Replace(line, "}", `, notes: "rack 4"}`, 1)), true},
		{"notes on two hosts", strings.Replace(edit(strings.Replace(line, "}", `, notes: "rack 4"}`, 1)), app(297), strings.Replace(app(297), "}", `, notes: "rack 5"}`, 1), 1), true},
		{"a host drained", edit(strings.Replace(line, "}", `, drain: true}`, 1)), true},
		{"two hosts with another ssh user", strings.Replace(edit(strings.Replace(line, "}", `, ssh: {user: "deploy", port: 2222}}`, 1)), app(297), strings.Replace(app(297), "}", `, ssh: {user: "deploy", port: 2222}}`, 1), 1), true},
		{"an ssh user that is no name", edit(strings.Replace(line, "}", `, ssh: {user: "Deploy"}}`, 1)), false},
		{"an address escaped", edit(strings.Replace(line, `"10.`, `"\u0031\u0030.`, 1)), true},
		{"an address that is no IPv4 address", edit(strings.Replace(line, `"10.100.1.42"`, `"10.100.1.420"`, 1)), false},
		{"an address of another type", edit(strings.Replace(line, `"10.100.1.42"`, `10`, 1)), false},
		{"an address as bytes", edit(strings.Replace(line, `"10.100.1.42"`, `'10.100.1.42'`, 1)), true},
		{"notes of another type", edit(strings.Replace(line, "}", `, notes: 4}`, 1)), false},
		{"a host name that is not one", edit(strings.Replace(line, "app298", `"App298"`, 1)), false},
		{"a host name quoted", edit(strings.Replace(line, "app298", `"app298"`, 1)), true},
		{"a host name escaped", edit(strings.Replace(line, "app298", `"app\u0032\u0039\u0038"`, 1)), true},
		{"a field no host has", edit(strings.Replace(line, "}", `, rack: "4"}`, 1)), false},
		{"a host written twice", base + "hosts: app298: notes: \"x\"\n", true},
		{"an address twice", edit(strings.Replace(line, "}", `, address: "10.100.1.43"}`, 1)), false},
		{"a required address", edit(strings.Replace(line, "address:", "address!:", 1)), false},
	} {
		w, p, werr, perr, split := loadBoth(t, stackSource{name: "fleet.cue", data: []byte(c.src)})
		if !split && c.valid {
			t.Errorf("%s: not evaluated in parts", c.name)
		}
		if (werr == nil) != c.valid {
			t.Errorf("%s: valid %v, want %v: %v", c.name, werr == nil, c.valid, werr)
		}
		sameLoad(t, c.name, w, p, werr, perr)
	}
	// The fleet's hosts are four alike: lb, app, cache and worker hosts
	// of one size.
	restore := schema.SetSplitMin(1)
	defer restore()
	l, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Load("fleet.cue", []byte(base)); err != nil {
		t.Fatal(err)
	}
	if got := l.HostsLike(); got != 300-4 {
		t.Errorf("%d hosts evaluated as another, want %d", got, 300-4)
	}
}

// TestShareDataSameAsWhole: a stack given as data (the evaluation of a
// Jsonnet stack) loads the same with hosts evaluated as another, good or
// with a bad address.
func TestShareDataSameAsWhole(t *testing.T) {
	v := cuecontext.New().CompileBytes(fleet.Fleet(300, ""))
	good, err := v.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte(strings.Replace(string(good), `"10.100.1.42"`, `"10.100.1.420"`, 1))
	for _, c := range []struct {
		name  string
		data  []byte
		valid bool
	}{{"good", good, true}, {"a bad address", bad, false}} {
		load := func(min int) (*schema.Stack, error, int64) {
			defer schema.SetSplitMin(min)()
			l, err := schema.NewLoader("")
			if err != nil {
				t.Fatal(err)
			}
			s, err := l.LoadData("fleet.jsonnet", c.data, c.data, map[string]schema.Position{"hosts": {Line: 3, Column: 1}})
			return s, err, l.HostsLike()
		}
		w, werr, _ := load(1 << 30)
		p, perr, like := load(1)
		if (werr == nil) != c.valid {
			t.Errorf("%s: %v", c.name, werr)
		}
		if c.valid && like == 0 {
			t.Errorf("%s: no host evaluated as another", c.name)
		}
		sameLoad(t, c.name, w, p, werr, perr)
	}
}

// TestSplitWithoutWholeSchema: a stack evaluated in parts compiles the
// schema in the parts' contexts only, and the loader's own context is
// compiled by the first stack evaluated whole, which then loads as it
// would with a loader of its own.
func TestSplitWithoutWholeSchema(t *testing.T) {
	l, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	if l.SchemaCompiled() {
		t.Fatal("NewLoader compiled the schema")
	}
	if _, err := l.Load("stacks/fleet.cue", fleet.Fleet(300, "")); err != nil {
		t.Fatal(err)
	}
	if l.PartsLoaded() != 1 || l.SchemaCompiled() {
		t.Fatalf("parts loaded %d, schema compiled %v: want 1 and false", l.PartsLoaded(), l.SchemaCompiled())
	}
	small := fleet.Fleet(3, "")
	got, err := l.Load("stacks/small.cue", small)
	if err != nil {
		t.Fatal(err)
	}
	if !l.SchemaCompiled() {
		t.Fatal("a stack evaluated whole did not compile the schema")
	}
	fresh, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	want, err := fresh.Load("stacks/small.cue", small)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("a stack loaded after one in parts differs from the same stack loaded by a new loader")
	}
}
