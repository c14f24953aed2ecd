package nginx

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/testtool"
)

// slowHost answers /slow after a delay, as a long request does, and
// everything else at once, through the stand-in app host.
type slowHost struct{ *testtool.AppHost }

func (h slowHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/slow" {
		time.Sleep(2 * time.Second)
	}
	h.AppHost.ServeHTTP(w, r)
}

// TestLiveDrain runs the rendered nginx balancer over two stand-in app
// hosts, starts slow requests on both, then renders the stack again with
// hosts.app1.drain and reloads nginx the way push does (nginx -s reload,
// what systemctl reload runs). Every slow request, app1's included, must
// finish with 200 on the old workers, and every new request must go to
// app2. The same reload with the undrained render must send new
// requests to app1 too, or the test proves nothing.
func TestLiveDrain(t *testing.T) {
	t.Parallel()
	nginx := testtool.Require(t, "nginx", "nginx")
	if testing.Short() {
		t.Skip("starts nginx")
	}
	for _, drained := range []bool{true, false} {
		name := "drained"
		if !drained {
			name = "not-drained"
		}
		t.Run(name, func(t *testing.T) {
			net24 := loopbackNet()
			lbAddr, a1, a2 := net24+"2", net24+"3", net24+"4"
			appPort := freePort(t, a1)
			hosts := []*testtool.AppHost{{Name: "app1"}, {Name: "app2"}}
			for i, a := range []string{a1, a2} {
				l, err := net.Listen("tcp", a+":"+appPort)
				if err != nil {
					t.Skipf("port %s busy on %s: %v", appPort, a, err)
				}
				srv := &http.Server{Handler: slowHost{hosts[i]}}
				go srv.Serve(l)
				t.Cleanup(func() { srv.Close() })
			}
			src := func(drain bool) string {
				d := "false"
				if drain {
					d = "true"
				}
				return `
name: "drain"
domain: "drain.example.com"
tls: mode: "none"
hosts: {
	lb1: {address: "` + lbAddr + `", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "` + a1 + `", roles: ["app"], cores: 1, memory_mb: 1024, drain: ` + d + `}
	app2: {address: "` + a2 + `", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: {kind: "nginx", algorithm: "roundrobin"}
app: {name: "drain", runtime: "perl", psgi: "/srv/drain/app.psgi", working_dir: "/srv/drain", http_port: ` + appPort + `}
`
			}
			s := loadSource(t, "drain", src(false))
			root, _ := liveSandbox(t, s, "lb1")
			lbPort := freePort(t, lbAddr)
			site := root + "/" + LBSitePath(s)
			write := func(stackSrc string) {
				t.Helper()
				s := loadSource(t, "drain", stackSrc)
				files, err := Gen{}.Generate(s, optionsFor(root))
				if err != nil {
					t.Fatal(err)
				}
				conf := hostFiles(t, files)["lb1"][LBSitePath(s)]
				if drained := strings.Contains(stackSrc, "drain: true"); drained != strings.Contains(conf, a1+":"+appPort+" down;") {
					t.Fatalf("drain %v rendered:\n%s", drained, conf)
				}
				conf = strings.Replace(conf, "    listen 80;\n", "    listen "+lbAddr+":"+lbPort+";\n", 1)
				if err := os.WriteFile(site, []byte(conf), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write(src(false))
			stop := runNginx(t, nginx, root, root+"/"+ConfPath, lbAddr+":"+lbPort)
			defer stop()

			c := client(lbAddr+":"+lbPort, "", nil)
			c.Timeout = 10 * time.Second
			wait := testtool.InFlight(c, "http://drain.example.com/slow", 4)
			time.Sleep(300 * time.Millisecond)
			// The next render: app1 draining (or, broken, unchanged).
			write(src(drained))
			if out, err := exec.Command(nginx, "-p", root+"/", "-c", root+"/"+ConfPath, "-s", "reload").CombinedOutput(); err != nil {
				t.Fatalf("nginx -s reload: %v %s", err, out)
			}
			time.Sleep(500 * time.Millisecond)
			to := map[string]int{}
			for range 20 {
				body, resp := do(t, c, "GET", "http://drain.example.com/new", nil)
				if resp.StatusCode != 200 {
					t.Errorf("new request: %d %q", resp.StatusCode, body)
				}
				to[body]++
			}
			slow := wait()
			t.Logf("in flight across the reload: %v; new requests: %v", slow, to)
			app1Slow := 0
			for _, r := range slow {
				if !strings.HasPrefix(r, "200 ") {
					t.Errorf("a request in flight across the reload failed: %s", r)
				}
				if r == "200 OK app1" {
					app1Slow++
				}
			}
			if app1Slow == 0 {
				t.Errorf("no slow request went to app1 before the reload: %v", slow)
			}
			if drained && to["app1"] != 0 {
				t.Errorf("%d new requests went to the draining app1", to["app1"])
			}
			if !drained && to["app1"] == 0 {
				t.Errorf("without drain no new request went to app1: the test proves nothing")
			}
		})
	}
}
