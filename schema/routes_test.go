package schema_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/schema"
)

// TestSitesAndRoutes groups the host names by the apps answering them
// and routes requests the longest prefix first: shop answers
// example.com, www.example.com and shop.example.net; api /api/ and
// /api/v2/ of the first two only; admin /api/v2/admin/ of example.com
// alone. Each set of names answered alike is one site.
func TestSitesAndRoutes(t *testing.T) {
	l, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Load("routes.cue", []byte(`
name: "routes"
domain: "example.com"
aliases: ["www.example.com"]
hosts: {
	lb1: {address: "10.0.0.5", roles: ["lb"], size: "s-1vcpu-2gb"}
	app1: {address: "10.0.0.11", roles: ["app"], size: "s-2vcpu-4gb"}
}
balancer: kind: "nginx"
apps: {
	shop: {runtime: "python", module: "shop:app", working_dir: "/srv/shop", domains: ["example.com", "www.example.com", "shop.example.net"]}
	api: {runtime: "python", module: "api:app", working_dir: "/srv/api", paths: ["/api/", "/api/v2/"], http_port: 8081}
	admin: {runtime: "python", module: "admin:app", working_dir: "/srv/admin", domains: ["example.com"], paths: ["/api/v2/admin/"], http_port: 8082}
}
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range s.Sites() {
		var rs []string
		for _, r := range st.Routes {
			rs = append(rs, r.App.Name+" "+r.Path)
		}
		got = append(got, strings.Join(st.Domains, ",")+": "+strings.Join(rs, "; "))
	}
	want := []string{
		"example.com: admin /api/v2/admin/; api /api/v2/; api /api/; shop ",
		"www.example.com: api /api/v2/; api /api/; shop ",
		"shop.example.net: shop ",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sites:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range []struct{ host, path, app string }{
		{"example.com", "/api/v2/admin/x", "admin"},
		{"www.example.com", "/api/v2/admin/x", "api"},
		{"EXAMPLE.com:443", "/api/v2/x", "api"},
		{"example.com", "/api", "shop"},
		{"example.com", "/apiary", "shop"},
		{"shop.example.net", "/api/x", "shop"},
		{"other.example.org", "/", ""},
	} {
		got := ""
		if a := s.RouteOf(c.host, c.path); a != nil {
			got = a.Name
		}
		if got != c.app {
			t.Errorf("RouteOf(%q, %q) = %q, want %q", c.host, c.path, got, c.app)
		}
	}
}
