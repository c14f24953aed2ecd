package rules_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/rules"
	"github.com/hacompile/hacompile/internal/testtool"
)

// TestRenderedExamples: the built-in generators agree with the
// inventory for every example stack.
func TestRenderedExamples(t *testing.T) {
	rs, err := compile.RenderAll(testtool.LoadStacks(t), artifact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if got := rules.CheckRendered(r.Stack, r.Files); len(got) != 0 {
			t.Errorf("%s: %v", r.Stack.Name, got)
		}
	}
}

func TestRenderedRules(t *testing.T) {
	s := testtool.Load(t, "stacks/t.cue", base+`balancer: {kind: "haproxy", failover: "reserved-ip"}
hosts: lb1: {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
`)
	site := func(host string, health bool) artifact.File {
		body := "server {\n    location / { proxy_pass http://app; }\n"
		if health {
			body += "    location = /healthz {\n        proxy_pass http://app;\n    }\n"
		}
		return artifact.File{Host: host, Path: "etc/nginx/conf.d/app.conf", Kind: "nginx", Content: []byte(body + "}\n")}
	}
	lb := func(servers, uri string) artifact.File {
		return artifact.File{Host: "lb1", Path: "etc/haproxy/haproxy.cfg", Kind: "haproxy", Content: []byte(
			"frontend http\n    bind :80\nbackend app\n    option httpchk\n    http-check send meth GET uri " + uri + " ver HTTP/1.1\n" + servers +
				"backend acme\n    server lb1 10.0.0.5:8888\n")}
	}
	good := "    server app1 10.0.0.11:80 check\n    server app2 10.0.0.12:80 check\n"
	cases := []struct {
		name  string
		files []artifact.File
		want  []string
	}{
		{"consistent", []artifact.File{site("app1", true), site("app2", true), lb(good, "/healthz")}, nil},
		{"stale pool", []artifact.File{site("app1", true), site("app2", true), lb("    server app1 10.0.0.11:80 check\n    server old 10.0.0.99:80 check\n", "/healthz")},
			[]string{"stacks/t.cue:11:8: hosts: /etc/haproxy/haproxy.cfg on lb1: pool app lists 10.0.0.11:80 10.0.0.99:80; the inventory's app hosts are 10.0.0.11:80 10.0.0.12:80 (missing 10.0.0.12:80, extra 10.0.0.99:80) [lb-backends]"}},
		{"wrong port", []artifact.File{site("app1", true), site("app2", true), lb("    server app1 10.0.0.11:8080 check\n    server app2 10.0.0.12:80 check\n", "/healthz")},
			[]string{"stacks/t.cue:11:8: hosts: /etc/haproxy/haproxy.cfg on lb1: pool app lists 10.0.0.11:8080 10.0.0.12:80; the inventory's app hosts are 10.0.0.11:80 10.0.0.12:80 (missing 10.0.0.11:80, extra 10.0.0.11:8080) [lb-backends]"}},
		{"health not served", []artifact.File{site("app1", true), site("app2", false), lb(good, "/healthz")},
			[]string{"stacks/t.cue:10:11: balancer.health.path: no nginx location on app host app2 serves /healthz, which the balancer checks [health-path]"}},
		{"health checked elsewhere", []artifact.File{site("app1", true), site("app2", true), lb(good, "/status")},
			[]string{"stacks/t.cue:10:11: balancer.health.path: /etc/haproxy/haproxy.cfg on lb1 checks /status, not the stack's health path /healthz [health-path]"}},
	}
	for _, c := range cases {
		var got []string
		for _, d := range rules.CheckRendered(s, c.files) {
			got = append(got, d.String())
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s:\ngot  %s\nwant %s", c.name, strings.Join(got, "\n     "), strings.Join(c.want, "\n     "))
		}
	}
}
