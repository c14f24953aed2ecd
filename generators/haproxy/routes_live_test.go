package haproxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/testtool"
)

// TestLiveAppsRouting runs the rendered HAProxy balancer of three apps
// in front of the stand-in app hosts of the routing fixture the nginx
// balancer's test uses (testtool.RouteProbes): the same requests must
// reach the same apps, and a name no app answers gets 503. Without the
// path rule (use_backend … path_beg /api/) the test must fail.
func TestLiveAppsRouting(t *testing.T) {
	t.Parallel()
	bin := testtool.Require(t, "haproxy", "haproxy")
	if testing.Short() {
		t.Skip("starts haproxy")
	}
	fx := testtool.StartRouteFixture(t, "127.0.0.2", "127.0.0.3")
	s := load(t, fx.Stack("haproxy", "127.0.0.4", map[string]string{"balancer": "maxconn: 1000"}))
	sb := newSandbox(t, s)
	rendered := sb.config()
	httpPort := testtool.FreePort(t, "127.0.0.1")
	bind := "    bind :80\n"
	if strings.Count(rendered, bind) != 1 {
		t.Fatalf("want one %q in\n%s", bind, rendered)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", httpPort))
		}}}
	run := func(t *testing.T, cfg string) []string {
		cfg = strings.Replace(cfg, bind, fmt.Sprintf("    bind 127.0.0.1:%d\n", httpPort), 1)
		p := filepath.Join(sb.root, "routes.cfg")
		if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		stop := runHAProxy(t, bin, p, nil, fmt.Sprintf("127.0.0.1:%d", httpPort))
		defer stop()
		// The health checks bring the servers up.
		deadline := time.Now().Add(10 * time.Second)
		var bad []string
		for {
			if bad = testtool.CheckRoutes(t, c); len(bad) == 0 || time.Now().After(deadline) {
				return bad
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Run("rendered", func(t *testing.T) {
		for _, b := range run(t, rendered) {
			t.Error(b)
		}
	})
	t.Run("without the path rule", func(t *testing.T) {
		var kept []string
		for _, l := range strings.SplitAfter(rendered, "\n") {
			if !strings.Contains(l, "path_beg /api/") {
				kept = append(kept, l)
			}
		}
		if len(kept) == len(strings.SplitAfter(rendered, "\n")) {
			t.Fatalf("no path rule in\n%s", rendered)
		}
		bad := run(t, strings.Join(kept, ""))
		t.Logf("without the path rule: %q", bad)
		if len(bad) == 0 {
			t.Error("every request reached its app without the path rule: the test proves nothing")
		}
	})
}
