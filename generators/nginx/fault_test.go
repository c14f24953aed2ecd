package nginx

import (
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/testtool"
)

// TestLiveBalancerFault runs the rendered nginx balancer in front of two
// stand-in app hosts under GET and POST load, kills the app behind app2
// (its nginx answers 502) for two seconds and brings it back. No GET may
// fail, no POST may be sent twice, and app2 must take requests again
// within fail_timeout (rise x interval, 2 s) of its recovery. The same
// run with the balancer as it was rendered before (fail_timeout 30 s, no
// proxy_next_upstream) must fail, or the test proves nothing.
func TestLiveBalancerFault(t *testing.T) {
	t.Parallel()
	nginx := testtool.Require(t, "nginx", "nginx")
	if testing.Short() {
		t.Skip("starts nginx")
	}
	net24 := loopbackNet()
	lbAddr, a1, a2 := net24+"2", net24+"3", net24+"4"
	appPort := freePort(t, a1)
	hosts := []*testtool.AppHost{{Name: "app1"}, {Name: "app2"}}
	for i, a := range []string{a1, a2} {
		l, err := net.Listen("tcp", a+":"+appPort)
		if err != nil {
			t.Skipf("port %s busy on %s: %v", appPort, a, err)
		}
		srv := &http.Server{Handler: hosts[i]}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
	}
	s := loadSource(t, "fault", `
name: "fault"
domain: "fault.example.com"
tls: mode: "none"
hosts: {
	lb1: {address: "`+lbAddr+`", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "`+a1+`", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "`+a2+`", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "nginx"
app: {name: "fault", runtime: "perl", psgi: "/srv/fault/app.psgi", working_dir: "/srv/fault", http_port: `+appPort+`}
`)
	if s.Balancer.FailTimeout != 2 {
		t.Fatalf("fail_timeout defaults to %d, want rise 2 x interval 1", s.Balancer.FailTimeout)
	}
	root, _ := liveSandbox(t, s, "lb1")
	site := root + "/" + LBSitePath(s)
	rendered, err := os.ReadFile(site)
	if err != nil {
		t.Fatal(err)
	}
	lbPort := freePort(t, lbAddr)
	listen := "    listen 80;\n"
	if strings.Count(string(rendered), listen) != 1 {
		t.Fatalf("want one %q in\n%s", listen, rendered)
	}

	run := func(t *testing.T, conf string) (gets, failed int64, back time.Duration, dup []string) {
		if err := os.WriteFile(site, []byte(strings.Replace(conf, listen, "    listen "+lbAddr+":"+lbPort+";\n", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		stop := runNginx(t, nginx, root, root+"/"+ConfPath, lbAddr+":"+lbPort)
		defer stop()
		for _, h := range hosts {
			h.Dead.Store(false)
			h.ResetPosts()
		}
		c := client(lbAddr+":"+lbPort, "", nil)
		load := testtool.StartLoad(c, "http://fault.example.com/order", 4)
		time.Sleep(time.Second)
		hosts[1].Dead.Store(true)
		time.Sleep(2 * time.Second)
		before := hosts[1].Served.Load()
		revived := time.Now()
		hosts[1].Dead.Store(false)
		back = -1
		for time.Since(revived) < 4*time.Second {
			if hosts[1].Served.Load() > before+5 {
				back = time.Since(revived)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		load.Stop()
		dup = testtool.PostsSentTwice(hosts...)
		return load.Gets.Load(), load.FailedGets.Load(), back, dup
	}

	t.Run("rendered", func(t *testing.T) {
		gets, failed, back, dup := run(t, string(rendered))
		t.Logf("rendered: %d GETs, %d failed; app2 back in rotation %v after its app recovered", gets, failed, back)
		if failed != 0 {
			t.Errorf("%d of %d GETs failed, want 0", failed, gets)
		}
		if back < 0 || back > 2500*time.Millisecond {
			t.Errorf("app2 back after %v, want within fail_timeout (2s)", back)
		}
		if len(dup) > 0 {
			t.Errorf("POSTs sent twice: %v", dup)
		}
	})
	t.Run("fail_timeout 30s", func(t *testing.T) {
		off := strings.ReplaceAll(string(rendered), "fail_timeout=2s", "fail_timeout=30s")
		gets, failed, back, _ := run(t, off)
		t.Logf("fail_timeout 30s: %d GETs, %d failed; app2 back %v after its app recovered", gets, failed, back)
		if back >= 0 && back <= 2500*time.Millisecond {
			t.Errorf("app2 back after %v with fail_timeout 30s: the test proves nothing", back)
		}
	})
	t.Run("no proxy_next_upstream", func(t *testing.T) {
		var kept []string
		for _, l := range strings.SplitAfter(string(rendered), "\n") {
			if !strings.Contains(l, "proxy_next_upstream") {
				kept = append(kept, l)
			}
		}
		gets, failed, _, _ := run(t, strings.Join(kept, ""))
		t.Logf("no proxy_next_upstream: %d GETs, %d failed", gets, failed)
		if failed == 0 {
			t.Errorf("no GET failed without proxy_next_upstream: the test proves nothing")
		}
	})
}
