package nginx

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// renderApps renders s as the build does for a stack of several apps:
// each app's view in turn (artifact.ForApps), the files they share once.
func renderApps(t testing.TB, s *schema.Stack, opt artifact.Options) map[string]map[string]string {
	t.Helper()
	files, err := artifact.ForApps([]artifact.Generator{Gen{}})[0].Generate(s, opt)
	if err != nil {
		t.Fatal(err)
	}
	return hostFiles(t, files)
}

// appsTLS is a stack of three apps behind two nginx balancers that
// terminate TLS with a certbot certificate per set of host names: web
// answers every path of the stack's names but /api/ (api's), legacy a
// name of its own and runs on edge too, a balancer; rates are limited,
// with rates of their own under /login/ and under api's /api/ (one
// location with the routing's).
const appsTLS = `
name: "apps-tls"
domain: "shop.example.com"
aliases: ["www.shop.example.com"]
tls: {mode: "certbot", email: "ops@example.com"}
hosts: {
	lb1:  {address: "192.0.2.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	edge: {address: "192.0.2.6", roles: ["lb", "app"], cores: 1, memory_mb: 1024}
	app1: {address: "192.0.2.11", roles: ["app"], cores: 2, memory_mb: 2048}
	app2: {address: "192.0.2.12", roles: ["app"], cores: 2, memory_mb: 2048}
}
balancer: kind: "nginx"
rate_limit: {rate: "10r/s", burst: 20, locations: [{path: "/login/", rate: "1r/s", burst: 5}, {path: "/api/", rate: "5r/s", burst: 10}]}
apps: {
	web: {runtime: "python", module: "web:app", working_dir: "/srv/web", hosts: ["app1", "app2"]}
	api: {runtime: "python", module: "api:app", working_dir: "/srv/api", hosts: ["app1"], paths: ["/api/"], http_port: 8081,
		timeout: 20, balancer_timeouts: {read: 25, send: 25}, client_max_body_size: "1m"}
	legacy: {runtime: "perl", psgi: "/srv/legacy/app.psgi", working_dir: "/srv/legacy", hosts: ["app2", "edge"],
		domains: ["legacy.example.com"], http_port: 8082}
}
`

// TestAppsNginxAccepts has the real nginx check every nginx host of a
// stack of several apps behind an nginx balancer (one site routing by
// host name and path, a certificate per set of host names): no error
// and, with CA-issued certificates, no warning either (a duplicate
// location or server name would be one).
func TestAppsNginxAccepts(t *testing.T) {
	nginx := testtool.Require(t, "nginx", "nginx")
	s := loadSource(t, "apps-tls", appsTLS)
	for _, host := range []string{"lb1", "edge", "app1", "app2"} {
		t.Run(host, func(t *testing.T) {
			root := t.TempDir()
			hf := renderApps(t, s, optionsFor(root))[host]
			if host == "edge" {
				mustf(t, hf["etc/nginx/conf.d/legacy.conf"] != "", "edge runs legacy, and has no legacy.conf")
			}
			if host == "lb1" || host == "edge" {
				site := hf[LBSitePath(s)]
				for _, want := range []string{"location /api/ {", "location = /api {", "server_name legacy.example.com;",
					"server_name shop.example.com www.shop.example.com;", "ssl_reject_handshake on;", "limit_req zone=api_rate_1 burst=10 nodelay;"} {
					mustf(t, strings.Contains(site, want), "lb site lacks %q:\n%s", want, site)
				}
			}
			writeSandbox(t, s, root, hf, caChain)
			lines, err := nginxTest(t, nginx, root)
			if err != nil {
				t.Fatalf("nginx -t failed: %v\n%s", err, strings.Join(lines, "\n"))
			}
			for _, l := range lines {
				if !strings.HasSuffix(l, "syntax is ok") && !strings.HasSuffix(l, "test is successful") {
					t.Errorf("unexpected nginx -t output: %s", l)
				}
			}
		})
	}
}

// TestLiveAppsRouting runs the rendered nginx balancer of three apps in
// front of stand-in app hosts on loopback (each answers with its app and
// host) and sends requests with different Host headers and paths: each
// must reach the app the stack's routing rules name (which the HAProxy
// balancer follows too), a name no app answers gets 503, and each app's
// own body size and read timeout hold on its paths alone. The balancer
// without its path locations, without the exact /api location or
// without its default server must fail, or the test proves nothing.
func TestLiveAppsRouting(t *testing.T) {
	t.Parallel()
	nginx := testtool.Require(t, "nginx", "nginx")
	if testing.Short() {
		t.Skip("starts nginx")
	}
	net24 := loopbackNet()
	lb := net24 + "2"
	fx := testtool.StartRouteFixture(t, net24+"3", net24+"4")
	s := loadSource(t, "routes", fx.Stack("nginx", lb, map[string]string{"api": `client_max_body_size: "1k", balancer_timeouts: read: 1`}))
	// The expectations are the routing rules' too.
	for _, p := range testtool.RouteProbes {
		got := ""
		if a := s.RouteOf(p.Host, p.Path); a != nil {
			got = a.Name
		}
		mustf(t, got == p.App, "routing rules send %s%s to %q, want %q", p.Host, p.Path, got, p.App)
	}
	root := t.TempDir()
	openTempDirs(t, root)
	hf := renderApps(t, s, optionsFor(root))["lb1"]
	writeSandbox(t, s, root, hf, caChain)
	site := root + "/" + LBSitePath(s)
	rendered := hf[LBSitePath(s)]
	lbPort := freePort(t, lb)
	mustf(t, strings.Count(rendered, "listen 80;") == 2 && strings.Count(rendered, "listen 80 default_server;") == 1,
		"want a server on port 80 per set of host names and the default server in\n%s", rendered)

	// run starts the balancer on conf and returns what went wrong.
	run := func(t *testing.T, conf string) []string {
		if err := os.WriteFile(site, []byte(strings.ReplaceAll(conf, "listen 80", "listen "+lb+":"+lbPort)), 0o644); err != nil {
			t.Fatal(err)
		}
		stop := runNginx(t, nginx, root, root+"/"+ConfPath, lb+":"+lbPort)
		defer stop()
		c := client(lb+":"+lbPort, "", nil)
		bad := testtool.CheckRoutes(t, c)
		// Each app's body size and read timeout hold on its own paths.
		post := func(path string) int {
			req, _ := http.NewRequest("POST", "http://x"+path, strings.NewReader(strings.Repeat("x", 4096)))
			req.Host = "shop.example.com"
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := post("/api/upload"); code != 413 {
			bad = append(bad, fmt.Sprintf("4 KiB to /api/upload: %d, want 413 (api's client_max_body_size 1k)", code))
		}
		if code := post("/upload"); code != 200 {
			bad = append(bad, fmt.Sprintf("4 KiB to /upload: %d, want 200 (web's 10m)", code))
		}
		if _, resp := do(t, c, "GET", "http://x/api/slow", http.Header{"Host": {"shop.example.com"}}); resp.StatusCode != 504 {
			bad = append(bad, fmt.Sprintf("/api/slow (2 s): %d, want 504 (api's read timeout 1 s)", resp.StatusCode))
		}
		if body, resp := do(t, c, "GET", "http://x/cart/slow", http.Header{"Host": {"shop.example.com"}}); resp.StatusCode != 200 {
			bad = append(bad, fmt.Sprintf("/cart/slow (2 s): %d %q, want 200 (web's read timeout 60 s)", resp.StatusCode, body))
		}
		return bad
	}

	t.Run("rendered", func(t *testing.T) {
		for _, b := range run(t, rendered) {
			t.Error(b)
		}
	})
	for _, v := range []struct{ name, conf string }{
		{"without path locations", dropBlocks(rendered, "location /api/ {", "location = /api {")},
		{"without the exact location", dropBlocks(rendered, "location = /api {")},
		{"without the default server", dropBlocks(rendered, "server {\n    listen 80 default_server;")},
	} {
		t.Run(v.name, func(t *testing.T) {
			if v.conf == rendered {
				t.Fatal("nothing removed")
			}
			bad := run(t, v.conf)
			t.Logf("%s: %q", v.name, bad)
			if len(bad) == 0 {
				t.Errorf("every request reached its app %s: the test proves nothing", v.name)
			}
		})
	}
}

// dropBlocks removes each block of conf that starts with one of heads
// (matched after indentation), up to its closing brace at the same
// indentation.
func dropBlocks(conf string, heads ...string) string {
	lines := strings.SplitAfter(conf, "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		trimmed := strings.TrimLeft(l, " ")
		indent := l[:len(l)-len(trimmed)]
		drop := false
		for _, h := range heads {
			first, _, _ := strings.Cut(h, "\n")
			if strings.TrimSuffix(trimmed, "\n") == first && strings.HasPrefix(strings.Join(lines[i:], ""), indent+strings.ReplaceAll(h, "\n", "\n"+indent)) {
				drop = true
			}
		}
		if !drop {
			out = append(out, l)
			continue
		}
		for i < len(lines) && lines[i] != indent+"}\n" {
			i++
		}
	}
	return strings.Join(out, "")
}
