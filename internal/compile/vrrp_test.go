package compile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hacompile/hacompile/internal/compile"
)

// TestRouterIDAcrossStacks: two stacks of one build with one VRRP router
// id fail it, positioned at the second stack's router_id.
func TestRouterIDAcrossStacks(t *testing.T) {
	dir := t.TempDir()
	stack := func(name, lbNet string) string {
		return `name: "` + name + `"
domain: "` + name + `.example.com"
hosts: {
	lb1: {address: "` + lbNet + `.5", roles: ["lb"], size: "s-1vcpu-2gb"}
	lb2: {address: "` + lbNet + `.6", roles: ["lb"], size: "s-1vcpu-2gb"}
	app1: {address: "` + lbNet + `.11", roles: ["app"], size: "s-2vcpu-4gb"}
	app2: {address: "` + lbNet + `.12", roles: ["app"], size: "s-2vcpu-4gb"}
}
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app"}
tls: mode: "none"
balancer: {
	kind:     "nginx"
	failover: "keepalived"
	vrrp: {virtual_address: "` + lbNet + `.4", router_id: 9}
}
`
	}
	os.MkdirAll(filepath.Join(dir, "stacks"), 0o755)
	for name, src := range map[string]string{"one": stack("one", "10.0.0"), "two": stack("two", "10.0.1")} {
		if err := os.WriteFile(filepath.Join(dir, "stacks", name+".cue"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := compile.Compile([]string{filepath.Join(dir, "stacks")}, dir, "2026-11-22")
	want := `stacks/two.cue:14:49: balancer.vrrp.router_id: VRRP router id 9 is also stack one's (stacks/one.cue): router ids must be unique among the stacks of one build [vrrp-router-id]`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}
