package testtool

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The routing fixture: three apps behind one balancer, the same for the
// nginx and the HAProxy balancer tests, so both are held to the same
// answers. web answers every path of shop.example.com but api's /api/;
// legacy answers legacy.example.com.

// RouteProbe is a request and the app that must answer it ("" for none:
// the balancer answers 503).
type RouteProbe struct {
	Host, Path, App string
}

// RouteProbes are the fixture's requests.
var RouteProbes = []RouteProbe{
	{"shop.example.com", "/", "web"},
	{"shop.example.com", "/cart/checkout", "web"},
	{"shop.example.com", "/api/", "api"},
	{"shop.example.com", "/api/orders/7", "api"},
	// /api/ is api's; /api itself is not, nor is /apiary.
	{"shop.example.com", "/api", "web"},
	{"shop.example.com", "/apiary", "web"},
	{"SHOP.example.com:8080", "/api/x", "api"},
	{"legacy.example.com", "/", "legacy"},
	{"legacy.example.com", "/api/x", "legacy"},
	{"unknown.example.org", "/", ""},
	{"unknown.example.org", "/api/x", ""},
}

// RouteFixture is the fixture's app hosts: stand-ins on app1 and app2
// (two loopback addresses), each answering "<app>@<host> <path>", after
// 2 s for a path ending in /slow.
type RouteFixture struct {
	App1, App2                   string
	WebPort, APIPort, LegacyPort int
}

// StartRouteFixture starts the stand-in app hosts on app1 and app2.
func StartRouteFixture(t testing.TB, app1, app2 string) *RouteFixture {
	t.Helper()
	listen := func(addr string, port int) net.Listener {
		l, err := net.Listen("tcp", net.JoinHostPort(addr, fmt.Sprint(port)))
		if err != nil {
			t.Skipf("cannot listen on %s port %d: %v", addr, port, err)
		}
		return l
	}
	f := &RouteFixture{App1: app1, App2: app2}
	serve := func(l net.Listener, app, host string) int {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			if strings.HasSuffix(r.URL.Path, "/slow") {
				time.Sleep(2 * time.Second)
			}
			fmt.Fprintf(w, "%s@%s %s", app, host, r.URL.Path)
		})}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { _ = srv.Close() })
		return l.Addr().(*net.TCPAddr).Port
	}
	f.WebPort = serve(listen(app1, 0), "web", "app1")
	serve(listen(app2, f.WebPort), "web", "app2")
	f.APIPort = serve(listen(app1, 0), "api", "app1")
	f.LegacyPort = serve(listen(app2, 0), "legacy", "app2")
	return f
}

// Stack is the fixture's stack source behind a balancer of kind on lb,
// with the fields of each app given in extra ("api": `timeout: 20`), and
// the balancer's in extra["balancer"].
func (f *RouteFixture) Stack(kind, lb string, extra map[string]string) string {
	more := func(app string) string {
		if e := extra[app]; e != "" {
			return ", " + e
		}
		return ""
	}
	return fmt.Sprintf(`
name: "routes"
domain: "shop.example.com"
tls: mode: "none"
hosts: {
	lb1:  {address: %q, roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: %q, roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: %q, roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: {kind: %q%s}
monitoring: enabled: false
apps: {
	web: {runtime: "python", module: "web:app", working_dir: "/srv/web", hosts: ["app1", "app2"], http_port: %d%s}
	api: {runtime: "python", module: "api:app", working_dir: "/srv/api", hosts: ["app1"], paths: ["/api/"], http_port: %d%s}
	legacy: {runtime: "perl", psgi: "/srv/legacy/app.psgi", working_dir: "/srv/legacy", hosts: ["app2"],
		domains: ["legacy.example.com"], http_port: %d%s}
}
`, lb, f.App1, f.App2, kind, more("balancer"), f.WebPort, more("web"), f.APIPort, more("api"), f.LegacyPort, more("legacy"))
}

// CheckRoutes sends every probe through c (plain HTTP, whatever address
// c dials) and says what reached the wrong app, or what the balancer
// answered where no app should; and whether web's requests reach both
// its hosts.
func CheckRoutes(t testing.TB, c *http.Client) []string {
	t.Helper()
	get := func(host, path string) (int, string) {
		req, err := http.NewRequest("GET", "http://x"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s%s: %v", host, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var bad []string
	for _, p := range RouteProbes {
		code, body := get(p.Host, p.Path)
		app, _, _ := strings.Cut(body, "@")
		switch {
		case p.App == "" && code != 503:
			bad = append(bad, fmt.Sprintf("%s%s: %d %q, want 503 from the balancer", p.Host, p.Path, code, body))
		case p.App != "" && (code != 200 || app != p.App || !strings.HasSuffix(body, " "+p.Path)):
			bad = append(bad, fmt.Sprintf("%s%s: %d %q, want app %s", p.Host, p.Path, code, body, p.App))
		}
	}
	hosts := map[string]bool{}
	for range 4 {
		_, body := get("shop.example.com", "/")
		hosts[body] = true
	}
	if len(hosts) != 2 {
		bad = append(bad, fmt.Sprintf("web's requests reached %v, want both its hosts", hosts))
	}
	return bad
}
