package nginx

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/testtool"
)

// TestLivePROXYBehindCloudBalancer runs an app host of a DigitalOcean
// stack whose load balancer passes TLS through with the PROXY protocol,
// in a real nginx from the rendered files, behind a real HAProxy that
// stands in for the cloud balancer (mode tcp, send-proxy-v2, from its
// own loopback address). The client's address, not the balancer's,
// must reach the access log, the app's X-Forwarded-For and X-Real-IP,
// and the per-client rate limit; the health check DigitalOcean sends
// (PROXY v1, GET /healthz on the port-80 listener) must pass. The
// broken variants (the balancer without PROXY; nginx rendered without
// it while the balancer sends it) must fail the health check.
func TestLivePROXYBehindCloudBalancer(t *testing.T) {
	t.Parallel()
	nginx := testtool.Require(t, "nginx", "nginx")
	haproxy := testtool.Require(t, "haproxy", "haproxy")
	for _, tc := range []struct {
		name                     string
		nginxPROXY, balancerSend bool
	}{
		{"proxy-on-both", true, true},
		{"balancer-sends-none", true, false},
		{"nginx-expects-none", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net24 := loopbackNet()
			app, lb, cl := net24+"3", net24+"5", net24+"9"
			if ln, err := net.Listen("tcp", app+":443"); err != nil {
				t.Skipf("cannot listen on %s:443 (needs root): %v", app, err)
			} else {
				ln.Close()
			}
			port := freePort(t, app)
			s := loadSource(t, "live-proxy", fmt.Sprintf(`
name: "live-proxy"
provider: "digitalocean"
region: "fra1"
domain: "secure.example.com"
tls: {mode: "certbot", profile: "intermediate"}
hosts: app1: {address: %q, roles: ["app"], size: "c-2"}
balancer: {kind: "cloud", trusted_proxies: ["%s/32"], digitalocean: proxy_protocol: %v}
app: {name: "live", runtime: "perl", psgi: "/srv/live/app.psgi", working_dir: "/srv/live", http_port: %s}
rate_limit: {rate: "1r/m", burst: 2}
`, app, lb, tc.nginxPROXY, port))
			root, pool := liveSandbox(t, s, "app1")
			be := startBackend(t, root+"/run/live/starman.sock")
			stop := runNginx(t, nginx, root, root+"/"+ConfPath, app+":"+port, app+":443")
			defer stop()

			// The stand-in balancer: TCP pass-through on 443 and 80.
			fe443, fe80 := freePort(t, lb), freePort(t, lb)
			send := ""
			if tc.balancerSend {
				send = " send-proxy-v2 check-send-proxy"
			}
			cfg := fmt.Sprintf(`global
    maxconn 100
defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend tls
    bind %[1]s:%[2]s
    default_backend app_tls
frontend plain
    bind %[1]s:%[3]s
    default_backend app_plain
backend app_tls
    server app1 %[4]s:443 source %[1]s%[6]s
backend app_plain
    option httpchk
    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host secure.example.com
    server app1 %[4]s:%[5]s source %[1]s check inter 200ms rise 1 fall 1%[6]s
`, lb, fe443, fe80, app, port, send)
			stopLB := runHAProxy(t, haproxy, cfg, lb+":"+fe443, lb+":"+fe80)
			defer stopLB()

			// DigitalOcean's own health check: PROXY v1 (when the balancer
			// has it on), then GET /healthz.
			status := doHealthCheck(t, lb, app+":"+port, cl, tc.balancerSend)
			https := client(lb+":"+fe443, cl, func(tr *http.Transport) {
				tr.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: "secure.example.com"}
			})
			if !tc.nginxPROXY || !tc.balancerSend {
				mustf(t, status != "200", "%s: DigitalOcean's health check passed (%q) though one side speaks no PROXY", tc.name, status)
				// HAProxy's own check marks the server down: the
				// frontend answers nothing useful.
				time.Sleep(600 * time.Millisecond)
				req, _ := http.NewRequest("GET", "https://secure.example.com/who", nil)
				if resp, err := https.Do(req); err == nil {
					resp.Body.Close()
					mustf(t, tc.balancerSend && tc.nginxPROXY, "%s: HTTPS through the balancer answered %d", tc.name, resp.StatusCode)
				}
				return
			}
			mustf(t, status == "200", "DigitalOcean's PROXY v1 health check got %q, want 200", status)
			// HAProxy's check (PROXY v2 on the port-80 listener) brings
			// the server up: /healthz through the plain frontend.
			plain := client(lb+":"+fe80, cl, nil)
			deadline := time.Now().Add(5 * time.Second)
			for {
				body, resp := do(t, plain, "GET", "http://secure.example.com/healthz", http.Header{"Host": {"secure.example.com"}})
				if resp.StatusCode == 200 && body == "app:/healthz" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("health check through the balancer: %d %q", resp.StatusCode, body)
				}
				time.Sleep(100 * time.Millisecond)
			}

			spoof := http.Header{"X-Forwarded-For": {"203.0.113.66"}}
			body, resp := do(t, https, "GET", "https://secure.example.com/who", spoof)
			mustf(t, resp.StatusCode == 200 && body == "app:/who", "HTTPS through the balancer: %d %q", resp.StatusCode, body)
			got := be.last().header
			mustf(t, got.Get("X-Forwarded-For") == cl, "app saw X-Forwarded-For %q, want the client %s alone", got.Get("X-Forwarded-For"), cl)
			mustf(t, got.Get("X-Real-IP") == cl, "app saw X-Real-IP %q, want %s", got.Get("X-Real-IP"), cl)

			// The rate limit counts the client: 1r/m with a burst of 2
			// lets three through and refuses the fourth — for this
			// client only; another client address is still served.
			codes := []int{}
			for range 4 {
				_, resp := do(t, https, "GET", "https://secure.example.com/limited", nil)
				codes = append(codes, resp.StatusCode)
			}
			mustf(t, codes[len(codes)-1] == 429, "client over its rate got %v, want a 429 at the end", codes)
			other := client(lb+":"+fe443, net24+"10", func(tr *http.Transport) {
				tr.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: "secure.example.com"}
			})
			_, resp = do(t, other, "GET", "https://secure.example.com/limited", nil)
			mustf(t, resp.StatusCode == 200, "another client got %d: the limit counts the balancer, not the client", resp.StatusCode)

			stop()
			logb, err := os.ReadFile(filepath.Join(root, "var/log/nginx/access.log"))
			if err != nil {
				t.Fatal(err)
			}
			mustf(t, strings.Contains(string(logb), cl+" - ") && !strings.Contains(string(logb), lb+" - "),
				"access log should name the client %s and never the balancer %s:\n%s", cl, lb, logb)
		})
	}
}

// doHealthCheck sends what DigitalOcean's health check sends with the
// PROXY protocol on (proxy): a version-1 header, then GET /healthz, from the
// balancer's address. It returns the status code, or the error.
func doHealthCheck(t *testing.T, from, to, client string, proxy bool) string {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", to)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	host, port, _ := net.SplitHostPort(to)
	if proxy {
		fmt.Fprintf(c, "PROXY TCP4 %s %s 40000 %s\r\n", client, host, port)
	}
	fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: secure.example.com\r\nConnection: close\r\n\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "no answer: " + err.Error()
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return line
	}
	return f[1]
}

// runHAProxy starts HAProxy in the foreground (-db) on cfg and returns
// the function that stops it, by its own pid.
func runHAProxy(t *testing.T, haproxy, cfg string, listens ...string) func() {
	t.Helper()
	p := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(haproxy, "-c", "-f", p).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	cmd := exec.Command(haproxy, "-db", "-f", p)
	var stderr testtool.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, a := range listens {
		for {
			c, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				stop()
				t.Fatalf("haproxy did not listen on %s: %s", a, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return stop
}
