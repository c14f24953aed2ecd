package osrelease

import (
	"strings"
	"testing"

	"github.com/hacompile/hacompile/schema"
)

// TestSchemaOffersTheTable: the schema's os values are exactly the
// table's releases, and a stack without os gets Default.
func TestSchemaOffersTheTable(t *testing.T) {
	l, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	src := func(os string) string {
		return `name: "demo"
domain: "example.com"
` + os + `
hosts: {
	app1: {address: "10.0.0.1", roles: ["app"], size: "s-2vcpu-4gb"}
	app2: {address: "10.0.0.2", roles: ["app"], size: "s-2vcpu-4gb"}
}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app"}
`
	}
	s, err := l.Load("t.cue", []byte(src("")))
	if err != nil {
		t.Fatal(err)
	}
	if s.OS != Default {
		t.Errorf("default os %q, want %q", s.OS, Default)
	}
	for _, name := range Names() {
		s, err := l.Load("t.cue", []byte(src(`os: "`+name+`"`)))
		if err != nil || s.OS != name {
			t.Errorf("os %q: %v (got %q)", name, err, s.OS)
		}
	}
	_, err = l.Load("t.cue", []byte(src(`os: "debian-11"`)))
	if err == nil || !strings.Contains(err.Error(), `(want one of "`+strings.Join(Names(), `", "`)+`")`) {
		t.Errorf("the schema's os values are not the table's %v: %v", Names(), err)
	}
}

// TestTable: every release names every component and binary, and the
// thresholds fall where the releases say.
func TestTable(t *testing.T) {
	for _, name := range Names() {
		r := MustLookup(name)
		if r.Name != name || r.Pretty == "" || r.Codename == "" {
			t.Errorf("%s: incomplete identity %+v", name, r)
		}
		for _, c := range []string{"nginx", "haproxy", "gunicorn", "starman", "redis", "openssl", "certbot"} {
			if r.Package(c) == "" {
				t.Errorf("%s: no package for %s", name, c)
			}
		}
		for _, c := range []string{"nginx", "haproxy", "systemd"} {
			if !strings.HasPrefix(r.Binary(c), "/") {
				t.Errorf("%s: no path for %s", name, c)
			}
		}
	}
	for name, want := range map[string][2]bool{"debian-12": {false, false}, "debian-13": {true, true}, "ubuntu-24.04": {false, false}} {
		r := MustLookup(name)
		if r.NginxHTTP2Directive() != want[0] || r.HybridPQGroups() != want[1] {
			t.Errorf("%s: http2 on %v, X25519MLKEM768 %v; want %v", name, r.NginxHTTP2Directive(), r.HybridPQGroups(), want)
		}
	}
	if !V("1.25.1").AtLeast(V("1.25")) || V("1.24.9").AtLeast(V("1.25.1")) || !V("3.5").AtLeast(V("3.5.0")) {
		t.Error("Version.AtLeast")
	}
	if _, err := Lookup("debian-11"); err == nil {
		t.Error("debian-11 found")
	}
}
