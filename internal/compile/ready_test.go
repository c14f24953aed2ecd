package compile_test

import (
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/schema"
)

// TestReadyOnceRulesPass requires Options.Ready to be called once, for a
// stack that passed the rules, before the first file is handed over;
// and not at all for a stack the rules refuse, whose build must not
// touch out/.
func TestReadyOnceRulesPass(t *testing.T) {
	const stack = `name: "demo"
domain: "example.com"
tls: mode: "none"
hosts: {
	lb1:  {address: "10.0.0.5", roles: ["lb"], size: "s-1vcpu-2gb"}
	lb2:  {address: "10.0.0.6", roles: ["lb"], size: "s-1vcpu-2gb"}
	app1: {address: "10.0.0.11", roles: ["app"], size: "s-2vcpu-4gb"}
	app2: {address: "10.0.0.12", roles: ["app"], size: "s-2vcpu-4gb"}
}
balancer: {kind: "haproxy", failover: "keepalived", vrrp: {virtual_address: "10.0.0.4", router_id: 9}}
monitoring: address: "10.0.0.2"
apps: {
	web: {runtime: "python", module: "web.wsgi:app", working_dir: "/srv/web"}
	API
}
`
	compileWith := func(t *testing.T, api string) (ready int, handedBeforeReady int, err error) {
		t.Helper()
		in := []compile.Input{{Name: "stack.cue", Data: []byte(strings.Replace(stack, "API", api, 1))}}
		handed := 0
		_, err = compile.CompileInputsWith(in, "2026-11-22", compile.Options{
			Ready: func() { ready++; handedBeforeReady = handed },
			Hand: func(s *schema.Stack, f artifact.File) (artifact.File, error) {
				handed++
				return f, nil
			},
		})
		if handed == 0 && err == nil {
			t.Fatal("no file was handed over")
		}
		return ready, handedBeforeReady, err
	}
	ready, before, err := compileWith(t, `api: {runtime: "python", module: "api.wsgi:app", working_dir: "/srv/api", paths: ["/api/"], http_port: 8081, user: "api"}`)
	if err != nil {
		t.Fatal(err)
	}
	if ready != 1 || before != 0 {
		t.Errorf("a stack that passed the rules: Ready called %d times, after %d files were handed over; want once, before any", ready, before)
	}
	// Two apps on port 80 of the same hosts: an error of the rules.
	ready, _, err = compileWith(t, `api: {runtime: "python", module: "api.wsgi:app", working_dir: "/srv/api", paths: ["/api/"], user: "api"}`)
	if err == nil || !strings.Contains(err.Error(), "both use port 80") {
		t.Fatalf("want the rules' error of two apps on port 80, got %v", err)
	}
	if ready != 0 {
		t.Errorf("a stack the rules refuse: Ready called %d times, want none", ready)
	}
}
