package haproxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/testtool"
)

// appServer is a stand-in app host: /healthz answers 200 or 503 as told,
// every other path answers with the host's name and echoes the
// forwarding headers it received.
type appServer struct {
	name    string
	healthy atomic.Bool
	mu      sync.Mutex
	last    http.Header
}

func (a *appServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		if r.Host != "shop.example.com" {
			http.Error(w, "wrong Host "+r.Host, http.StatusMisdirectedRequest)
			return
		}
		if !a.healthy.Load() {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
		return
	}
	a.mu.Lock()
	a.last = r.Header.Clone()
	a.mu.Unlock()
	io.WriteString(w, a.name)
}

func (a *appServer) header() http.Header {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// listenPair finds one port free on two loopback addresses and listens
// on both.
func listenPair(t *testing.T, a, b string) (net.Listener, net.Listener, int) {
	t.Helper()
	for range 20 {
		la, err := net.Listen("tcp", a+":0")
		if err != nil {
			t.Skipf("cannot listen on %s: %v", a, err)
		}
		port := la.Addr().(*net.TCPAddr).Port
		lb, err := net.Listen("tcp", fmt.Sprintf("%s:%d", b, port))
		if err == nil {
			return la, lb, port
		}
		la.Close()
	}
	t.Skip("no port free on both addresses")
	return nil, nil, 0
}

// runHAProxy starts haproxy in the foreground on cfg and stops it (only
// the process it started) when the test ends. It is ready once ready (a
// TCP address, or a unix socket's path) takes a connection.
func runHAProxy(t *testing.T, bin, cfg string, env []string, ready string) func() {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, "-db", "-f", cfg)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, PasswordVar+"=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop := func() {
		select {
		case <-done:
			return
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		network := "tcp"
		if strings.HasPrefix(ready, "/") {
			network = "unix"
		}
		c, err := net.Dial(network, ready)
		if err == nil {
			c.Close()
			return stop
		}
		select {
		case <-done:
			t.Fatalf("haproxy exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not listen on %s:\n%s", ready, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLive starts HAProxy for real on the rendered configuration, on
// loopback only: two stand-in app hosts on 127.0.0.2 and 127.0.0.3 at the
// stack's http_port, balancers at 127.0.0.4 and 127.0.0.5 (whose port
// 8888 is where certbot would listen). Only the frontends' ":80" and
// ":443" are moved to free loopback ports.
func TestLive(t *testing.T) {
	t.Parallel()
	bin := testtool.Require(t, "haproxy", "haproxy")
	if testing.Short() {
		t.Skip("starts haproxy")
	}
	apps := []*appServer{{name: "app1"}, {name: "app2"}}
	la, lb, appPort := listenPair(t, "127.0.0.2", "127.0.0.3")
	for i, l := range []net.Listener{la, lb} {
		apps[i].healthy.Store(true)
		srv := &http.Server{Handler: apps[i]}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
	}
	statsPort, httpPort, httpsPort := testtool.FreePort(t, "127.0.0.1"), testtool.FreePort(t, "127.0.0.1"), testtool.FreePort(t, "127.0.0.1")
	metricsPort := testtool.FreePort(t, "127.0.0.4")
	s := load(t, fmt.Sprintf(`
name:   "live"
domain: "shop.example.com"
tls: {mode: "certbot", profile: "intermediate"}
hosts: {
	lb1:  {address: "127.0.0.4", roles: ["lb"], cores: 1, memory_mb: 1024}
	lb2:  {address: "127.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "127.0.0.2", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "127.0.0.3", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: {
	kind: "haproxy"
	health: {interval: 1, timeout: 1, fall: 1, rise: 1}
	slowstart: 0
	maxconn: 1000
	stats: port: %d
}
app: {runtime: "perl", psgi: "/srv/shop/app.psgi", working_dir: "/srv/shop", http_port: %d}
monitoring: {address: "127.0.0.9", ports: haproxy: %d}
`, statsPort, appPort, metricsPort))
	sb := newSandbox(t, s)
	cfg := sb.config()
	for from, to := range map[string]string{
		"    bind :80\n": fmt.Sprintf("    bind 127.0.0.1:%d\n", httpPort),
		"    bind :443 ": fmt.Sprintf("    bind 127.0.0.1:%d ", httpsPort),
	} {
		if strings.Count(cfg, from) != 1 {
			t.Fatalf("want one %q in the configuration", from)
		}
		cfg = strings.Replace(cfg, from, to, 1)
	}
	if os.Geteuid() != 0 {
		// chroot and changing user need root; everything else is
		// the same without them.
		for _, l := range []string{"    chroot ", "    user haproxy\n", "    group haproxy\n"} {
			i := strings.Index(cfg, l)
			j := i + strings.Index(cfg[i:], "\n") + 1
			cfg = cfg[:i] + cfg[j:]
		}
	}
	cfgPath := filepath.Join(sb.root, "live.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	statsAddr := fmt.Sprintf("127.0.0.1:%d", statsPort)
	runHAProxy(t, bin, cfgPath, []string{PasswordVar + "=" + testPassword}, statsAddr)

	roots := x509.NewCertPool()
	roots.AddCert(sb.ca)
	client := func(tc *tls.Config) *http.Client {
		tr := &http.Transport{
			Proxy:             nil,
			TLSClientConfig:   tc,
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				port := httpPort
				if strings.HasSuffix(addr, ":443") {
					port = httpsPort
				}
				return (&net.Dialer{}).DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", port))
			},
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	c := client(&tls.Config{RootCAs: roots})
	get := func(c *http.Client, url string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	t.Run("https reaches both app hosts", func(t *testing.T) {
		seen := map[string]bool{}
		for range 6 {
			resp, body := get(c, "https://shop.example.com/")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if resp.ProtoMajor != 2 {
				t.Errorf("protocol %s, want HTTP/2 through ALPN", resp.Proto)
			}
			if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=63072000" {
				t.Errorf("HSTS %q", got)
			}
			if resp.TLS.Version != tls.VersionTLS13 {
				t.Errorf("TLS version %x, want 1.3 by default", resp.TLS.Version)
			}
			seen[body] = true
			for _, a := range apps {
				if a.name == body {
					h := a.header()
					if h.Get("X-Forwarded-Proto") != "https" || h.Get("X-Forwarded-For") != "127.0.0.1" {
						t.Errorf("%s got X-Forwarded-Proto %q, X-Forwarded-For %q", body, h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-For"))
					}
				}
			}
		}
		if !seen["app1"] || !seen["app2"] {
			t.Errorf("round robin reached %v, want app1 and app2", seen)
		}
	})

	t.Run("tls policy", func(t *testing.T) {
		// TLS 1.2 with an ECDHE suite and P-256 only: the intermediate
		// profile and its prime256v1 curve name.
		tc := &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS12, CurvePreferences: []tls.CurveID{tls.CurveP256}}
		if resp, body := get(client(tc), "https://shop.example.com/"); resp.StatusCode != 200 || resp.TLS.Version != tls.VersionTLS12 {
			t.Errorf("TLS 1.2/P-256: %d %x %s", resp.StatusCode, resp.TLS.Version, body)
		}
		// TLS 1.1 is below the profile's minimum.
		old := client(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if _, err := old.Get("https://shop.example.com/"); err == nil {
			t.Errorf("a TLS 1.1 handshake succeeded")
		}
		// A name no certificate covers: strict-sni refuses it.
		other := client(&tls.Config{RootCAs: roots, ServerName: "other.example.org", InsecureSkipVerify: true})
		if _, err := other.Get("https://shop.example.com/"); err == nil {
			t.Errorf("a handshake for another name succeeded")
		}
	})

	t.Run("port 80 redirects except ACME", func(t *testing.T) {
		resp, _ := get(c, "http://shop.example.com/cart?x=1")
		if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://shop.example.com/cart?x=1" {
			t.Errorf("GET http://…/cart: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		// certbot standalone is running on lb2 only; the challenge
		// must reach it whichever balancer HAProxy tries first.
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.5:%d", ACMEPort))
		if err != nil {
			resp, _ := get(c, "http://shop.example.com/.well-known/acme-challenge/tok")
			if resp.StatusCode == 301 {
				t.Errorf("the ACME challenge was redirected")
			}
			t.Skipf("port %d busy on 127.0.0.5 (%v): checked only that the challenge is not redirected", ACMEPort, err)
		}
		certbot := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, strings.TrimPrefix(r.URL.Path, "/.well-known/acme-challenge/")+".key-authorization")
		})}
		go certbot.Serve(l)
		defer certbot.Close()
		for range 4 {
			resp, body := get(c, "http://shop.example.com/.well-known/acme-challenge/tok")
			if resp.StatusCode != 200 || body != "tok.key-authorization" {
				t.Errorf("ACME challenge: %d %q", resp.StatusCode, body)
			}
		}
	})

	t.Run("stats page needs the password", func(t *testing.T) {
		url := "http://" + statsAddr + "/stats"
		for _, tc := range []struct {
			user, pass string
			want       int
		}{{"", "", 401}, {"admin", "wrong", 401}, {"admin", "", 401}, {"admin", testPassword, 200}} {
			req, _ := http.NewRequest("GET", url, nil)
			if tc.user != "" {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s:%s → %d, want %d", tc.user, tc.pass, resp.StatusCode, tc.want)
			}
			if tc.want == 200 && !bytes.Contains(body, []byte("app2")) {
				t.Errorf("stats page does not list the servers")
			}
		}
	})

	t.Run("metrics answer the monitoring host only", func(t *testing.T) {
		// lb1's metrics listener is 127.0.0.4; the monitoring host is
		// 127.0.0.9. Any other client, or any other path, gets a 403.
		get := func(from, path string) (int, string) {
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
			c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 10 * time.Second}
			resp, err := c.Get(fmt.Sprintf("http://127.0.0.4:%d%s", metricsPort, path))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		code, body := get("127.0.0.9", "/metrics")
		if code != 200 {
			t.Fatalf("monitoring host: /metrics answered %d", code)
		}
		for _, m := range []string{"haproxy_backend_http_responses_total{proxy=\"app\",code=\"5xx\"}",
			"haproxy_backend_active_servers{proxy=\"app\"}", "haproxy_server_status{proxy=\"app\",server=\"app1\",state=\"UP\"}"} {
			if !strings.Contains(body, m) {
				t.Errorf("/metrics lacks %s", m)
			}
		}
		if code, _ := get("127.0.0.1", "/metrics"); code != 403 {
			t.Errorf("another client: /metrics answered %d, want 403", code)
		}
		if code, _ := get("127.0.0.9", "/stats"); code != 403 {
			t.Errorf("monitoring host: /stats answered %d, want 403", code)
		}
	})

	t.Run("a failing health check takes a host out", func(t *testing.T) {
		apps[1].healthy.Store(false)
		defer apps[1].healthy.Store(true)
		deadline := time.Now().Add(8 * time.Second)
		for {
			if state := serverState(t, sb.path(adminSocket), "app", "app2"); state == "DOWN" {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("app2 still %s after its health check failed", state)
			}
			time.Sleep(200 * time.Millisecond)
		}
		for range 6 {
			if _, body := get(c, "https://shop.example.com/"); body != "app1" {
				t.Fatalf("a request reached %q while app2 is down", body)
			}
		}
	})
}

// serverState asks the admin socket for a server's status (UP, DOWN, …).
func serverState(t *testing.T, socket, backend, server string) string {
	t.Helper()
	conn, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatalf("admin socket: %v", err)
	}
	defer conn.Close()
	io.WriteString(conn, "show stat\n")
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ",")
		if len(f) > 17 && f[0] == backend && f[1] == server {
			return f[17]
		}
	}
	t.Fatalf("admin socket: no %s/%s in show stat", backend, server)
	return ""
}

// TestLiveEmptyPassword: an environment file that lacks the password must
// not turn the stats page into one that "admin" enters with none.
func TestLiveEmptyPassword(t *testing.T) {
	t.Parallel()
	bin := testtool.Require(t, "haproxy", "haproxy")
	if testing.Short() {
		t.Skip("starts haproxy")
	}
	statsPort := testtool.FreePort(t, "127.0.0.1")
	// maxconn 1000: HAProxy refuses to start when it cannot raise its
	// open-files limit to 2 × maxconn, which needs CAP_SYS_RESOURCE here.
	s := load(t, stackSrc(fmt.Sprintf(`tls: mode: "none"
monitoring: enabled: false // no metrics listener on 10.0.0.5, which this machine lacks
balancer: {maxconn: 1000, stats: port: %d}`, statsPort)))
	sb := newSandbox(t, s)
	cfg := strings.Replace(sb.config(), "    bind :80\n", fmt.Sprintf("    bind 127.0.0.1:%d\n", testtool.FreePort(t, "127.0.0.1")), 1)
	if os.Geteuid() != 0 {
		cfg = strings.NewReplacer("    user haproxy\n", "", "    group haproxy\n", "").Replace(cfg)
		i := strings.Index(cfg, "    chroot ")
		cfg = cfg[:i] + cfg[i+strings.Index(cfg[i:], "\n")+1:]
	}
	cfgPath := filepath.Join(sb.root, "live.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	statsAddr := fmt.Sprintf("127.0.0.1:%d", statsPort)
	for _, env := range [][]string{{PasswordVar + "="}, nil} {
		stop := runHAProxy(t, bin, cfgPath, append([]string{}, env...), statsAddr)
		for _, auth := range [][2]string{{"admin", ""}, {"", ""}} {
			req, _ := http.NewRequest("GET", "http://"+statsAddr+"/stats", nil)
			if auth[0] != "" {
				req.SetBasicAuth(auth[0], auth[1])
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 503 {
				t.Errorf("env %q, auth %q: stats answered %d, want 503", env, auth, resp.StatusCode)
			}
		}
		stop()
	}
}
