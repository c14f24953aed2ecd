package nginx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// These tests run the rendered configuration in a real nginx on
// loopback addresses, with a Go HTTP server standing in for gunicorn on
// the app's unix socket, and check behaviour rather than text.

// backend records what the app server receives.
type backend struct {
	mu    sync.Mutex
	seen  []seenRequest
	srv   *http.Server
	ln    net.Listener
	conns int
}

type seenRequest struct {
	path   string
	header http.Header
	conn   int
}

type connKey struct{}

// startBackend serves HTTP on a unix socket that nginx's workers can
// reach, answering "app:<path>".
func startBackend(t *testing.T, socket string) *backend {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(socket), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(socket, 0o777); err != nil {
		t.Fatal(err)
	}
	b := &backend{ln: ln}
	b.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.mu.Lock()
			b.seen = append(b.seen, seenRequest{r.URL.Path, r.Header.Clone(), r.Context().Value(connKey{}).(int)})
			b.mu.Unlock()
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "app:%s", r.URL.Path)
		}),
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.conns++
			return context.WithValue(ctx, connKey{}, b.conns)
		},
	}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(func() { _ = b.srv.Close() })
	return b
}

func (b *backend) last() seenRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.seen) == 0 {
		return seenRequest{}
	}
	return b.seen[len(b.seen)-1]
}

func (b *backend) since(n int) []seenRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.seen[n:])
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.seen)
}

// liveSandbox renders host of s under a fresh root, writes it with
// certificates from a CA, and returns the root and the CA pool.
func liveSandbox(t *testing.T, s *schema.Stack, host string) (string, *x509.CertPool) {
	t.Helper()
	root := t.TempDir()
	openTempDirs(t, root)
	files, err := Gen{}.Generate(s, optionsFor(root))
	if err != nil {
		t.Fatal(err)
	}
	pool := writeSandbox(t, s, root, hostFiles(t, files)[host], caChain)
	return root, pool
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLiveAppBehindBalancer runs an app host's nginx behind a
// TLS-terminating HAProxy balancer (lb1 at 127.0.0.2) and proves: the
// balancer's client address and scheme are believed from the balancer
// only; upstream connections are kept alive; the health check reaches
// the app unlogged; static files come from disk with the cache and
// security headers; nginx's own 502 keeps its status with and without
// the error page file.
func TestLiveAppBehindBalancer(t *testing.T) {
	t.Parallel()
	nginx := testtool.Require(t, "nginx", "nginx")
	port := freePort(t, "127.0.0.1")
	s := loadSource(t, "live", `
name: "live"
domain: "live.example.com"
tls: mode: "certbot"
hosts: {
	lb1: {address: "127.0.0.2", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "127.0.0.1", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: {kind: "haproxy", keepalive: 8}
monitoring: address: "127.0.0.9"
app: {name: "live", runtime: "python", module: "app:app", working_dir: "/srv/live", http_port: `+port+`,
	static: [{url: "/static/", dir: "/srv/live/static"}]}
`)
	root, _ := liveSandbox(t, s, "app1")
	be := startBackend(t, root+"/run/live/gunicorn.sock")
	css := strings.Repeat("body { color: black; }\n", 40)
	writeFile(t, root+"/srv/live/static/site.css", css)
	stop := runNginx(t, nginx, root, root+"/"+ConfPath, "127.0.0.1:"+port)
	defer stop()

	addr := "127.0.0.1:" + port
	url := "http://live.example.com"
	fromLB := client(addr, "127.0.0.2", nil)
	fromElsewhere := client(addr, "127.0.0.1", nil)
	// What HAProxy sends: the chain the client claimed, then the client.
	fwd := http.Header{"X-Forwarded-For": {"198.51.100.9, 203.0.113.7"}, "X-Forwarded-Proto": {"https"}}

	// From the balancer: client address and scheme believed.
	body, resp := do(t, fromLB, "GET", url+"/orders", fwd)
	mustf(t, resp.StatusCode == 200 && body == "app:/orders", "proxied request: %d %q", resp.StatusCode, body)
	got := be.last().header
	mustf(t, got.Get("X-Forwarded-Proto") == "https", "X-Forwarded-Proto from the balancer became %q", got.Get("X-Forwarded-Proto"))
	mustf(t, got.Get("X-Real-Ip") == "203.0.113.7" && got.Get("X-Forwarded-For") == "203.0.113.7",
		"client address: X-Real-IP %q X-Forwarded-For %q", got.Get("X-Real-Ip"), got.Get("X-Forwarded-For"))
	mustf(t, got.Get("X-Forwarded-Host") == "live.example.com", "X-Forwarded-Host %q", got.Get("X-Forwarded-Host"))
	mustf(t, got.Get("Connection") == "", "Connection %q reached the app", got.Get("Connection"))
	for _, h := range securityHeaders {
		mustf(t, resp.Header.Get(h[0]) == h[1], "%s: %q", h[0], resp.Header.Get(h[0]))
	}
	mustf(t, resp.Header.Get("Strict-Transport-Security") == "", "HSTS on a plain HTTP server")

	// From anywhere else: neither is believed.
	do(t, fromElsewhere, "GET", url+"/orders", fwd)
	got = be.last().header
	mustf(t, got.Get("X-Forwarded-Proto") == "http", "spoofed X-Forwarded-Proto passed as %q", got.Get("X-Forwarded-Proto"))
	mustf(t, got.Get("X-Real-Ip") == "127.0.0.1", "spoofed client address passed: %q", got.Get("X-Real-Ip"))

	// No upstream keepalive to the app server, which closes idle
	// connections itself: each request reaches it on a new connection.
	n := be.count()
	for i := range 10 {
		do(t, fromLB, "GET", fmt.Sprintf("%s/k%d", url, i), fwd)
	}
	conns := map[int]bool{}
	for _, r := range be.since(n) {
		conns[r.conn] = true
	}
	mustf(t, len(conns) == 10, "10 requests used %d upstream connections, want 10 (no idle connections kept to the app server)", len(conns))

	// Health check: proxied, not logged.
	body, resp = do(t, fromLB, "GET", url+"/healthz", nil)
	mustf(t, resp.StatusCode == 200 && body == "app:/healthz", "health: %d %q", resp.StatusCode, body)

	// Static: from disk, cached, compressed, with the security headers.
	n = be.count()
	body, resp = do(t, fromLB, "GET", url+"/static/site.css", http.Header{"Accept-Encoding": {"gzip"}})
	mustf(t, resp.StatusCode == 200 && be.count() == n, "static file went to the app or failed: %d", resp.StatusCode)
	mustf(t, resp.Header.Get("Content-Encoding") == "gzip" && resp.Header.Get("Vary") == "Accept-Encoding", "static not gzipped: %v", resp.Header)
	cc := resp.Header.Values("Cache-Control")
	mustf(t, slices.Contains(cc, "public") && slices.Contains(cc, "max-age=2592000"), "Cache-Control %v", cc)
	for _, h := range securityHeaders {
		mustf(t, resp.Header.Get(h[0]) == h[1], "static %s: %q", h[0], resp.Header.Get(h[0]))
	}
	body, _ = do(t, fromLB, "GET", url+"/static/site.css", nil)
	mustf(t, body == css, "static body differs")

	// The app goes away: 502 with the rendered page, then without it.
	_ = be.srv.Close()
	page, err := os.ReadFile(filepath.Join(root, ErrorPagePath(s, "502")))
	if err != nil {
		t.Fatal(err)
	}
	body, resp = do(t, fromLB, "GET", url+"/orders", nil)
	mustf(t, resp.StatusCode == 502 && body == string(page) && strings.Contains(body, "<h1>502 Bad Gateway</h1>"), "app down: %d %q", resp.StatusCode, body)
	mustf(t, resp.Header.Get("X-Frame-Options") == "SAMEORIGIN", "error page without security headers")
	if err := os.Remove(filepath.Join(root, ErrorPagePath(s, "502"))); err != nil {
		t.Fatal(err)
	}
	_, resp = do(t, fromLB, "GET", url+"/orders", nil)
	mustf(t, resp.StatusCode == 502, "app down, no page file: status %d, want 502", resp.StatusCode)

	stop()
	log, err := os.ReadFile(root + "/var/log/nginx/access.log")
	if err != nil {
		t.Fatal(err)
	}
	// Each worker writes its own lines (buffered), so their order is not
	// the requests': look for the lines, not at the first.
	lines := "\n" + string(log)
	mustf(t, strings.Contains(lines, "\n203.0.113.7 - ") && strings.Contains(lines, "\n127.0.0.1 - ") && !strings.Contains(lines, "198.51.100.9"),
		"access log should name the client the balancer vouches for (203.0.113.7) and the unvouched peer itself (127.0.0.1), never the claimed chain:\n%s", log)
	mustf(t, !strings.Contains(string(log), "/healthz"), "health checks are logged")
	mustf(t, strings.Contains(string(log), "ua=unix:"+root+"/run/live/gunicorn.sock"), "log lacks the upstream address")
}

// loopbackNet picks a random 127.x.y.0/24 for one test run, so runs
// of this package at the same time (and fixed ports such as 443) do not
// collide.
func loopbackNet() string {
	return fmt.Sprintf("127.%d.%d.", 1+mrand.IntN(254), 1+mrand.IntN(254))
}

// TestLiveTLSOnApp runs two app hosts that terminate TLS themselves, for
// both profiles, each on its own loopback address with HTTPS on port
// 443: the port-80 server answers ACME challenges (relaying a token it
// lacks to its sibling, once) and health checks and redirects the rest;
// HTTPS speaks HTTP/2 with exactly the profile's protocol versions and
// ciphers, and sends HSTS everywhere, static files included.
func TestLiveTLSOnApp(t *testing.T) {
	t.Parallel()
	nginx := testtool.Require(t, "nginx", "nginx")
	for _, prof := range []string{"intermediate", "modern"} {
		t.Run(prof, func(t *testing.T) {
			net24 := loopbackNet()
			a1, a2 := net24+"3", net24+"4"
			for _, a := range []string{a1, a2} {
				ln, err := net.Listen("tcp", a+":443")
				if err != nil {
					t.Skipf("cannot listen on %s:443 for the HTTPS server (needs root): %v", a, err)
				}
				ln.Close()
			}
			port := freePort(t, a1)
			s := loadSource(t, "live-tls", `
name: "live-tls"
domain: "secure.example.com"
tls: {mode: "certbot", profile: "`+prof+`"}
hosts: {
	app1: {address: "`+a1+`", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "`+a2+`", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "cloud"
app: {name: "live", runtime: "perl", psgi: "/srv/live/app.psgi", working_dir: "/srv/live", http_port: `+port+`,
	static: [{url: "/static/", dir: "/srv/live/static"}]}
`)
			root, pool := liveSandbox(t, s, "app1")
			root2, _ := liveSandbox(t, s, "app2")
			be := startBackend(t, root+"/run/live/starman.sock")
			startBackend(t, root2+"/run/live/starman.sock")
			acme := "/var/www/letsencrypt/.well-known/acme-challenge/"
			writeFile(t, root+acme+"tok-one", "tok-one.thumbprint")
			writeFile(t, root2+acme+"tok-two", "tok-two.thumbprint")
			writeFile(t, root+"/srv/live/static/a.txt", "static a\n")
			stop := runNginx(t, nginx, root, root+"/"+ConfPath, a1+":"+port, a1+":443")
			defer stop()
			stop2 := runNginx(t, nginx, root2, root2+"/"+ConfPath, a2+":"+port, a2+":443")
			defer stop2()

			plain := client(a1+":"+port, "", nil)
			host := http.Header{"Host": {"secure.example.com"}}
			for tok, want := range map[string]string{"tok-one": "tok-one.thumbprint", "tok-two": "tok-two.thumbprint"} {
				body, resp := do(t, plain, "GET", "http://secure.example.com"+acme[len("/var/www/letsencrypt"):]+tok, host)
				mustf(t, resp.StatusCode == 200 && body == want, "ACME challenge %s via app1: %d %q", tok, resp.StatusCode, body)
			}
			start := time.Now()
			_, resp := do(t, plain, "GET", "http://secure.example.com/.well-known/acme-challenge/nowhere", host)
			mustf(t, resp.StatusCode == 404 && time.Since(start) < 5*time.Second, "unknown token: %d after %v, want a prompt 404", resp.StatusCode, time.Since(start))
			_, resp = do(t, plain, "GET", "http://secure.example.com/cart?id=7", host)
			mustf(t, resp.StatusCode == 301 && resp.Header.Get("Location") == "https://secure.example.com/cart?id=7",
				"redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
			body, resp := do(t, plain, "GET", "http://secure.example.com/healthz", host)
			mustf(t, resp.StatusCode == 200 && body == "app:/healthz", "plain health check: %d %q", resp.StatusCode, body)

			https := func(minV, maxV uint16) *http.Client {
				return client(a1+":443", "", func(tr *http.Transport) {
					tr.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: "secure.example.com", MinVersion: minV, MaxVersion: maxV}
					tr.ForceAttemptHTTP2 = true
				})
			}
			body, resp = do(t, https(tls.VersionTLS12, 0), "GET", "https://secure.example.com/account", nil)
			mustf(t, resp.StatusCode == 200 && body == "app:/account", "HTTPS: %d %q", resp.StatusCode, body)
			mustf(t, resp.ProtoMajor == 2, "HTTPS spoke %s, want HTTP/2", resp.Proto)
			mustf(t, resp.TLS.Version == tls.VersionTLS13, "negotiated %s", tls.VersionName(resp.TLS.Version))
			mustf(t, resp.Header.Get("Strict-Transport-Security") == "max-age=63072000", "HSTS %q", resp.Header.Get("Strict-Transport-Security"))
			mustf(t, be.last().header.Get("X-Forwarded-Proto") == "https", "app saw X-Forwarded-Proto %q", be.last().header.Get("X-Forwarded-Proto"))
			_, resp = do(t, https(tls.VersionTLS12, 0), "GET", "https://secure.example.com/static/a.txt", nil)
			mustf(t, resp.Header.Get("Strict-Transport-Security") != "" && resp.Header.Get("X-Content-Type-Options") == "nosniff",
				"static over HTTPS lacks HSTS or security headers: %v", resp.Header)

			// TLS 1.2: intermediate offers it with the profile's ciphers only.
			resp, err := https(tls.VersionTLS12, tls.VersionTLS12).Get("https://secure.example.com/")
			if prof == "modern" {
				mustf(t, err != nil, "modern profile accepted TLS 1.2")
			} else if err != nil {
				t.Errorf("intermediate profile refused TLS 1.2: %v", err)
			} else {
				resp.Body.Close()
				name := openSSLName[tls.CipherSuiteName(resp.TLS.CipherSuite)]
				mustf(t, slices.Contains(profiles[prof].Ciphers, name), "TLS 1.2 cipher %s (%s) not in the profile",
					tls.CipherSuiteName(resp.TLS.CipherSuite), name)
			}
			for _, cs := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA} {
				c := https(tls.VersionTLS12, tls.VersionTLS12)
				c.Transport.(*http.Transport).TLSClientConfig.CipherSuites = []uint16{cs}
				if resp, err := c.Get("https://secure.example.com/"); err == nil {
					resp.Body.Close()
					t.Errorf("CBC suite %s accepted", tls.CipherSuiteName(cs))
				}
			}
			// TLS 1.1 never.
			if resp, err := https(tls.VersionTLS10, tls.VersionTLS11).Get("https://secure.example.com/"); err == nil {
				resp.Body.Close()
				t.Errorf("TLS 1.1 accepted")
			}
		})
	}
}

// openSSLName maps Go's (IANA) suite names to OpenSSL's.
var openSSLName = map[string]string{
	"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256":       "ECDHE-ECDSA-AES128-GCM-SHA256",
	"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256":         "ECDHE-RSA-AES128-GCM-SHA256",
	"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384":       "ECDHE-ECDSA-AES256-GCM-SHA384",
	"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384":         "ECDHE-RSA-AES256-GCM-SHA384",
	"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
	"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256":   "ECDHE-RSA-CHACHA20-POLY1305",
}
