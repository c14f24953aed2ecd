package haproxy

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/testtool"
)

// TestLiveSubSecondCheckTimeout: balancer.health.timeout "500ms"
// renders "timeout check 500ms", and the real HAProxy takes a frozen
// app host out within interval + fall x 500 ms (+ fastinter), a bound
// the whole-second default (1 s, about 2.7 s measured) misses.
func TestLiveSubSecondCheckTimeout(t *testing.T) {
	t.Parallel()
	bin := testtool.Require(t, "haproxy", "haproxy")
	if testing.Short() {
		t.Skip("starts haproxy")
	}
	la, lb, appPort := listenPair(t, "127.0.0.2", "127.0.0.3")
	hosts := []*testtool.AppHost{{Name: "app1"}, {Name: "app2"}}
	for i, l := range []net.Listener{la, lb} {
		srv := &http.Server{Handler: hosts[i]}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
	}
	statsPort, httpPort := testtool.FreePort(t, "127.0.0.1"), testtool.FreePort(t, "127.0.0.1")
	sb, cfg := faultRender(t, "subsecond", statsPort, httpPort, appPort, `balancer: health: timeout: "500ms"`)
	if !strings.Contains(cfg, "    timeout check 500ms\n") {
		t.Fatalf("no timeout check 500ms in\n%s", cfg)
	}
	cfgPath := filepath.Join(sb.root, "subsecond.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// Ready once its admin socket answers: a file of this test's own,
	// where a port on 127.0.0.1 could be another test's for a moment.
	sock := sb.path(adminSocket)
	runHAProxy(t, bin, cfgPath, []string{PasswordVar + "=" + testPassword}, sock)
	state := func(want string, limit time.Duration) time.Duration {
		for start := time.Now(); time.Since(start) < limit; time.Sleep(20 * time.Millisecond) {
			if serverState(t, sock, "app", "app2") == want {
				return time.Since(start)
			}
		}
		return -1
	}
	if state("UP", 10*time.Second) < 0 {
		t.Fatal("app2 never came up")
	}
	time.Sleep(1500 * time.Millisecond)
	hosts[1].Frozen.Store(true)
	frozen := state("DOWN", 8*time.Second)
	hosts[1].Frozen.Store(false)
	h := sb.s.Balancer.Health
	bound := time.Duration(h.Interval)*time.Second + time.Duration(h.Fall)*time.Duration(h.Timeout)*time.Millisecond + time.Duration(h.Fall-1)*250*time.Millisecond
	t.Logf("frozen host with timeout check 500ms: out after %v (bound %v)", frozen, bound)
	if frozen < 0 || frozen > bound+300*time.Millisecond {
		t.Errorf("frozen host out after %v, want within %v", frozen, bound)
	}
}
