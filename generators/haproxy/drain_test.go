//go:build unix

package haproxy

import (
	"bytes"
	"fmt"
	"io"
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

// TestLiveDrain runs the rendered HAProxy balancer in master-worker mode
// (as haproxy.service does, -Ws) over two stand-in app hosts, starts
// slow requests on both, then writes the render of the stack with
// hosts.app1.drain over the configuration and reloads the way
// systemctl reload haproxy does (SIGUSR2 to the master). Every slow
// request, app1's included, must finish with 200 on the old worker;
// every new request must go to app2; app1's health checks must go on
// (it turns DOWN when its app dies). The same reload without drain must
// send new requests to app1, or the test proves nothing.
func TestLiveDrain(t *testing.T) {
	t.Parallel()
	bin := testtool.Require(t, "haproxy", "haproxy")
	if testing.Short() {
		t.Skip("starts haproxy")
	}
	for _, drained := range []bool{true, false} {
		name := "drained"
		if !drained {
			name = "not-drained"
		}
		t.Run(name, func(t *testing.T) {
			la, lb, appPort := listenPair(t, "127.0.0.2", "127.0.0.3")
			hosts := []*testtool.AppHost{{Name: "app1"}, {Name: "app2"}}
			for i, l := range []net.Listener{la, lb} {
				h := hosts[i]
				srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/slow" {
						time.Sleep(2 * time.Second)
					}
					h.ServeHTTP(w, r)
				})}
				go srv.Serve(l)
				t.Cleanup(func() { srv.Close() })
			}
			statsPort, httpPort := testtool.FreePort(t, "127.0.0.1"), testtool.FreePort(t, "127.0.0.1")
			sb, cfg := faultRender(t, "drain", statsPort, httpPort, appPort, "")
			drain := ""
			if drained {
				drain = "hosts: app1: drain: true"
			}
			sb2, cfg2 := faultRender(t, "drain", statsPort, httpPort, appPort, drain)
			if drained != strings.Contains(cfg2, "server app1 127.0.0.2:"+fmt.Sprint(appPort)+" check weight 0") {
				t.Fatalf("drain %v rendered:\n%s", drained, cfg2)
			}
			cfgPath := filepath.Join(sb.root, "drain.cfg")
			if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			cmd := exec.Command(bin, "-W", "-db", "-f", cfgPath)
			cmd.Env = append(os.Environ(), PasswordVar+"="+testPassword)
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			t.Cleanup(func() {
				cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					cmd.Process.Kill()
					<-done
				}
			})
			front := fmt.Sprintf("127.0.0.1:%d", httpPort)
			deadline := time.Now().Add(10 * time.Second)
			for {
				if c, err := net.Dial("tcp", front); err == nil {
					c.Close()
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("haproxy did not listen:\n%s", out.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			state := func(sock, want string, limit time.Duration) bool {
				for start := time.Now(); time.Since(start) < limit; time.Sleep(20 * time.Millisecond) {
					if _, err := os.Stat(sock); err == nil && serverState(t, sock, "app", "app1") == want {
						return true
					}
				}
				return false
			}
			if !state(sb.path(adminSocket), "UP", 10*time.Second) {
				t.Fatal("app1 never came up")
			}

			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			wait := testtool.InFlight(c, "http://"+front+"/slow", 4)
			time.Sleep(300 * time.Millisecond)
			if err := os.WriteFile(cfgPath, []byte(cfg2), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd.Process.Signal(syscall.SIGUSR2)
			// The new worker answers on the new admin socket.
			sock2 := sb2.path(adminSocket)
			// Weight 0 is no state: show stat says UP (its health) and
			// the weight column 0.
			want := "UP"
			// A bound against a reload that never comes, not a timing:
			// on a busy machine the new worker took over 5 s.
			if !state(sock2, want, 30*time.Second) {
				got := "no socket"
				if _, err := os.Stat(sock2); err == nil {
					got = serverState(t, sock2, "app", "app1")
				}
				t.Fatalf("app1 %s, not %s, after the reload:\n%s", got, want, out.String())
			}
			to := map[string]int{}
			for range 20 {
				resp, err := c.Get("http://" + front + "/new")
				if err != nil {
					t.Fatalf("new request: %v", err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("new request: %d %q", resp.StatusCode, b)
				}
				to[string(b)]++
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
			if !drained {
				if to["app1"] == 0 {
					t.Errorf("without drain no new request went to app1: the test proves nothing")
				}
				return
			}
			if to["app1"] != 0 {
				t.Errorf("%d new requests went to the draining app1", to["app1"])
			}
			// Health checks go on while draining: app1's app dies, it goes DOWN.
			hosts[0].Dead.Store(true)
			if !state(sock2, "DOWN", 5*time.Second) {
				t.Errorf("draining app1 not DOWN after its app died: its health checks stopped")
			}
		})
	}
}
