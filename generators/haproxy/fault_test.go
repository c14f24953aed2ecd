package haproxy

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/testtool"
)

// faultResult is what one run of the backend-fault scenario measured.
type faultResult struct {
	gets, failedGets   int64
	posts, failedPosts int64
	detect             time.Duration // kill to DOWN on the admin socket; -1 if never
	duplicatePosts     []string
}

// runBackendFault starts HAProxy on cfg in front of two stand-in app
// hosts, drives GET and POST load through it, kills the app behind app2
// one second in, and measures what the clients saw and how long HAProxy
// took to mark app2 down.
func runBackendFault(t *testing.T, bin string, sb *sandbox, cfg string, hosts []*testtool.AppHost, httpPort, statsPort int) faultResult {
	t.Helper()
	cfgPath := filepath.Join(sb.root, "fault.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// A previous run's socket file stays behind its stopped HAProxy: a
	// socket that exists is then no sign that this one listens.
	os.Remove(sb.path(adminSocket))
	stop := runHAProxy(t, bin, cfgPath, []string{PasswordVar + "=" + testPassword}, fmt.Sprintf("127.0.0.1:%d", statsPort))
	defer stop()
	// Wait for both servers to be UP (the first checks). HAProxy may
	// answer on its listeners a moment before its admin socket exists.
	deadline := time.Now().Add(10 * time.Second)
	for c, err := net.Dial("unix", sb.path(adminSocket)); ; c, err = net.Dial("unix", sb.path(adminSocket)) {
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no admin socket after 10 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for serverState(t, sb.path(adminSocket), "app", "app1") != "UP" || serverState(t, sb.path(adminSocket), "app", "app2") != "UP" {
		if time.Now().After(deadline) {
			t.Fatal("the servers did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}

	var res faultResult
	for _, h := range hosts {
		h.ResetPosts()
	}
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	load := testtool.StartLoad(c, fmt.Sprintf("http://127.0.0.1:%d/", httpPort), 5)
	time.Sleep(time.Second)
	killed := time.Now()
	hosts[1].Dead.Store(true)
	res.detect = -1
	for time.Since(killed) < 4*time.Second {
		if serverState(t, sb.path(adminSocket), "app", "app2") == "DOWN" {
			res.detect = time.Since(killed)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Keep the load on a little longer with app2 dead.
	time.Sleep(time.Second)
	load.Stop()
	res.gets, res.failedGets = load.Gets.Load(), load.FailedGets.Load()
	res.posts, res.failedPosts = load.Posts.Load(), load.FailedPosts.Load()
	hosts[1].Dead.Store(false)
	res.duplicatePosts = testtool.PostsSentTwice(hosts...)
	return res
}

// TestLiveBackendFault kills the app behind one app host's nginx under
// load (its nginx answers 502 from then on, health path included) and
// requires what issue 16 asks of the rendered backend: no idempotent
// request fails, no POST is sent twice, and the server is out within 2 s.
// The same scenario on the configuration as it was before (no layer-7
// retries, no observe, 10 s checks) must fail: the test proves the
// settings, not the stand-ins.
func TestLiveBackendFault(t *testing.T) {
	t.Parallel()
	bin := testtool.Require(t, "haproxy", "haproxy")
	if testing.Short() {
		t.Skip("starts haproxy")
	}
	sb, cfg, hosts, httpPort, statsPort := faultSandbox(t, "fault")
	if h := sb.s.Balancer.Health; h.Interval != 1 || h.Fall != 2 || h.Timeout != 1000 {
		t.Fatalf("HAProxy's default health timing is %+v, want interval 1, timeout 1, fall 2", h)
	}

	t.Run("rendered", func(t *testing.T) {
		r := runBackendFault(t, bin, sb, cfg, hosts, httpPort, statsPort)
		t.Logf("rendered: %d GETs, %d failed; %d POSTs, %d failed (sent to app2 as it died, never retried); app2 out after %v",
			r.gets, r.failedGets, r.posts, r.failedPosts, r.detect)
		if r.failedGets != 0 {
			t.Errorf("%d of %d GETs failed, want 0", r.failedGets, r.gets)
		}
		if r.detect < 0 || r.detect > 2*time.Second {
			t.Errorf("app2 out after %v, want within 2s", r.detect)
		}
		if len(r.duplicatePosts) > 0 {
			t.Errorf("POSTs sent twice: %v", r.duplicatePosts)
		}
		if r.gets < 100 || r.posts < 20 {
			t.Errorf("too little load to mean anything: %d GETs, %d POSTs", r.gets, r.posts)
		}
	})

	t.Run("settings off", func(t *testing.T) {
		// The backend as it was rendered before issue 16.
		off := regexp.MustCompile(`(?m)^    default-server .*\n`).ReplaceAllString(cfg, "    default-server inter 10s fall 3 rise 2\n")
		for _, l := range []string{"    option redispatch 1\n", "    retry-on conn-failure empty-response response-timeout 502 503\n",
			"    http-request disable-l7-retry unless retry_safe\n"} {
			if !strings.Contains(off, l) {
				t.Fatalf("no %q in the rendered backend", l)
			}
			off = strings.Replace(off, l, "", 1)
		}
		r := runBackendFault(t, bin, sb, off, hosts, httpPort, statsPort)
		t.Logf("settings off: %d GETs, %d failed; app2 out after %v", r.gets, r.failedGets, r.detect)
		if r.failedGets == 0 {
			t.Errorf("no GET failed without the settings: the scenario proves nothing")
		}
		if r.detect >= 0 && r.detect <= 2*time.Second {
			t.Errorf("app2 out after %v without the settings: the scenario proves nothing", r.detect)
		}
	})
}

// TestLiveHealthTiming measures the health checks alone, with no traffic
// to notice a failure: an app host whose app died (502 on the health
// path) must be out within 2 s and, once the app is back, in again
// within rise x interval; a frozen host must be out within interval +
// fall x timeout + (fall-1) x fastinter.
func TestLiveHealthTiming(t *testing.T) {
	t.Parallel()
	bin := testtool.Require(t, "haproxy", "haproxy")
	if testing.Short() {
		t.Skip("starts haproxy")
	}
	sb, cfg, hosts, _, statsPort := faultSandbox(t, "timing")
	s := sb.s
	cfgPath := filepath.Join(sb.root, "timing.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	runHAProxy(t, bin, cfgPath, []string{PasswordVar + "=" + testPassword}, fmt.Sprintf("127.0.0.1:%d", statsPort))
	sock := sb.path(adminSocket)
	state := func(want string, limit time.Duration) time.Duration {
		start := time.Now()
		for time.Since(start) < limit {
			if serverState(t, sock, "app", "app2") == want {
				return time.Since(start)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return -1
	}
	if state("UP", 10*time.Second) < 0 {
		t.Fatal("app2 never came up")
	}
	h := s.Balancer.Health
	iv := time.Duration(h.Interval) * time.Second

	time.Sleep(1500 * time.Millisecond)
	hosts[1].Dead.Store(true)
	down := state("DOWN", 5*time.Second)
	hosts[1].Dead.Store(false)
	up := state("UP", 5*time.Second)
	t.Logf("app dead, no traffic: out after %v; app back: in after %v (rise %d x interval %v = %v)", down, up, h.Rise, iv, time.Duration(h.Rise)*iv)
	if down < 0 || down > 2*time.Second {
		t.Errorf("out after %v, want within 2s", down)
	}
	if up < 0 || up > time.Duration(h.Rise)*iv+500*time.Millisecond {
		t.Errorf("in after %v, want within rise x interval", up)
	}

	time.Sleep(1500 * time.Millisecond)
	hosts[1].Frozen.Store(true)
	frozen := state("DOWN", 8*time.Second)
	hosts[1].Frozen.Store(false)
	bound := iv + time.Duration(h.Fall)*time.Duration(h.Timeout)*time.Millisecond + time.Duration(h.Fall-1)*250*time.Millisecond
	t.Logf("frozen host: out after %v (bound %v)", frozen, bound)
	if frozen < 0 || frozen > bound+300*time.Millisecond {
		t.Errorf("frozen host out after %v, want within %v", frozen, bound)
	}
	if state("UP", 5*time.Second) < 0 {
		t.Error("app2 did not come back after thawing")
	}
}

// faultSandbox starts two stand-in app hosts on 127.0.0.2 and 127.0.0.3
// and renders an HAProxy balancer for them with the schema's defaults,
// its port 80 moved to a free loopback port (httpPort) and, without
// root, no chroot or user change.
func faultSandbox(t *testing.T, name string) (sb *sandbox, cfg string, hosts []*testtool.AppHost, httpPort, statsPort int) {
	t.Helper()
	la, lb, appPort := listenPair(t, "127.0.0.2", "127.0.0.3")
	hosts = []*testtool.AppHost{{Name: "app1"}, {Name: "app2"}}
	for i, l := range []net.Listener{la, lb} {
		srv := &http.Server{Handler: hosts[i]}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
	}
	statsPort, httpPort = testtool.FreePort(t, "127.0.0.1"), testtool.FreePort(t, "127.0.0.1")
	sb, cfg = faultRender(t, name, statsPort, httpPort, appPort, "")
	return sb, cfg, hosts, httpPort, statsPort
}

// faultRender renders the HAProxy balancer of faultSandbox's stack for
// app hosts at appPort, with extra CUE (such as "hosts: app1: drain:
// true") added, and returns the sandbox and the configuration ready to
// run on loopback.
func faultRender(t *testing.T, name string, statsPort, httpPort, appPort int, extra string) (sb *sandbox, cfg string) {
	t.Helper()
	s := load(t, fmt.Sprintf(`
name:   %q
domain: "shop.example.com"
tls: mode: "none"
hosts: {
	lb1:  {address: "127.0.0.4", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "127.0.0.2", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "127.0.0.3", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: {kind: "haproxy", slowstart: 0, maxconn: 1000, stats: port: %d}
// These tests are about the backend; no metrics listener on loopback.
monitoring: enabled: false
app: {runtime: "perl", psgi: "/srv/shop/app.psgi", working_dir: "/srv/shop", http_port: %d}
%s
`, name, statsPort, appPort, extra))
	sb = newSandbox(t, s)
	cfg = strings.Replace(sb.config(), "    bind :80\n", fmt.Sprintf("    bind 127.0.0.1:%d\n", httpPort), 1)
	if os.Geteuid() != 0 {
		cfg = strings.NewReplacer("    user haproxy\n", "", "    group haproxy\n", "").Replace(cfg)
	}
	i := strings.Index(cfg, "    chroot ")
	cfg = cfg[:i] + cfg[i+strings.Index(cfg[i:], "\n")+1:]
	return sb, cfg
}
