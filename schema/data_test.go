package schema_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/hacompile/hacompile/schema"
)

// minimalJSON is the smallest valid stack, as Jsonnet would print it.
const minimalJSON = `{
   "app": {
      "module": "wsgi:app",
      "runtime": "python",
      "working_dir": "/srv/app"
   },
   "balancer": {
      "kind": "cloud"
   },
   "domain": "example.com",
   "hosts": {
      "app1": {
         "address": "10.0.0.11",
         "cores": 1,
         "memory_mb": 1024,
         "roles": [
            "app"
         ]
      }
   },
   "name": "min",
   "tls": {
      "mode": "none"
   }
}
`

// TestLoadDataSameAsCUE proves that a stack given as JSON is validated
// and defaulted exactly like the same stack written in CUE.
func TestLoadDataSameAsCUE(t *testing.T) {
	l, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	d, err := l.LoadData("stacks/min.jsonnet", []byte("source"), []byte(minimalJSON), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := l.Load("stacks/min.cue", []byte(minimalJSON))
	if err != nil {
		t.Fatal(err)
	}
	if d.Source != "stacks/min.jsonnet" || d.SourceDigest == c.SourceDigest {
		t.Errorf("source %q, digest %s: want the Jsonnet file's", d.Source, d.SourceDigest)
	}
	sameStack(t, d, c)
}

func sameStack(t *testing.T, a, b *schema.Stack) {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(ja) != string(jb) {
		t.Errorf("stacks differ:\n data %s\n cue  %s", ja, jb)
	}
}

// TestLoadDataPositions proves that diagnostics about JSON data are
// placed where the source wrote the field, or its closest enclosing
// field, and never at a position in the JSON text.
func TestLoadDataPositions(t *testing.T) {
	l, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"name": "x", "domain": "example.com", "tls": {"mode": "none"},
"hosts": {"app1": {"address": "10.0.0.300", "roles": ["web"], "cores": 1, "memory_mb": 1024}},
"balancer": {"kind": "cloud", "algoritm": "x"},
"app": {"runtime": "python", "module": "wsgi:app", "working_dir": "srv/app"}}`)
	pos := map[string]schema.Position{
		"":                   {Line: 1, Column: 1},
		"hosts.app1":         {File: "stacks/lib.libsonnet", Line: 3, Column: 5},
		"hosts.app1.address": {Line: 7, Column: 14},
		"balancer":           {Line: 9, Column: 3},
		"app":                {Line: 11, Column: 3},
	}
	_, err = l.LoadData("stacks/s.jsonnet", nil, data, pos)
	var se *schema.Error
	if !errors.As(err, &se) {
		t.Fatalf("error %v, want *schema.Error", err)
	}
	want := `stacks/lib.libsonnet:3:5: hosts.app1.roles[0]: invalid value "web" (want one of "app", "cache", "lb", "queue", "worker")
stacks/s.jsonnet:7:14: hosts.app1.address: invalid value "10.0.0.300" (want an IPv4 address such as 10.0.0.5)
stacks/s.jsonnet:9:3: balancer.algoritm: field not allowed (did you mean algorithm?)
stacks/s.jsonnet:11:3: app.working_dir: invalid value "srv/app" (want an absolute path of letters, digits and ._@+- such as /srv/app)`
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}

	_, err = l.LoadData("stacks/s.jsonnet", nil, []byte(`[1]`), map[string]schema.Position{"": {Line: 4, Column: 2}})
	if want := "stacks/s.jsonnet:4:2: a stack file must be a struct of fields (name, domain, hosts, …)"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// FuzzLoadData feeds the JSON→CUE bridge arbitrary bytes. It must never
// panic; it fails only with a *schema.Error whose diagnostics name the
// stack file and no position (none was given, and the JSON text's own
// are never shown); and a stack it accepts is the stack the CUE loader
// makes of the same text, JSON being CUE.
func FuzzLoadData(f *testing.F) {
	for _, seed := range []string{
		minimalJSON,
		`{}`, `[]`, `null`, `"x"`, `1e400`, `{`, ``, `{"name": 1}`,
		`{"name": "a", "name": "b"}`,
		`{"hosts": {"a b": {}}}`,
		`{"tuning": {"sysctl": {"net.core.somaxconn": 1, "x": [1]}}}`,
		`{"app": {"workers": "auto", "bind": {"port": 99999}}}`,
		`{"#Stack": {}, "_hidden": 1, "\u0000": "\ud800"}`,
		`{"name": "x\/y"}`,
		`{"a": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}`,
	} {
		f.Add([]byte(seed))
	}
	l, err := schema.NewLoader("")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := l.LoadData("stacks/f.jsonnet", data, data, nil)
		if err != nil {
			var se *schema.Error
			if !errors.As(err, &se) || len(se.Diags) == 0 {
				t.Fatalf("error %v (%T), want *schema.Error with diagnostics", err, err)
			}
			for _, d := range se.Diags {
				if d.File != "stacks/f.jsonnet" || d.Line != 0 || d.Message == "" {
					t.Fatalf("diagnostic %q: want stacks/f.jsonnet, no position, a message", d)
				}
			}
			return
		}
		c, err := l.Load("stacks/f.cue", data)
		if err != nil {
			t.Fatalf("accepted as JSON, rejected as CUE: %v", err)
		}
		sameStack(t, s, c)
		if !reflect.DeepEqual(s.Hosts, c.Hosts) {
			t.Fatal("hosts differ")
		}
	})
}
