package nginx

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
)

// The runbook's drain procedure finds each app host's upstream line in
// the balancer's config.
func TestUpstreamServer(t *testing.T) {
	t.Parallel()
	checked := 0
	for _, s := range allStacks(t) {
		if s.Balancer.Kind != "nginx" {
			continue
		}
		files, err := Gen{}.Generate(s, artifact.Options{})
		if err != nil {
			t.Fatal(err)
		}
		lb := s.HostsWithRole("lb")[0].Name
		for _, h := range s.HostsWithRole("app") {
			target := fmt.Sprintf("%s:%d", h.Address, s.App.HTTPPort)
			found := ""
			for _, f := range files {
				if f.Host == lb && strings.HasPrefix(f.Path, "etc/nginx/conf.d/") {
					found += UpstreamServer(f.Content, target)
				}
			}
			if !strings.HasPrefix(found, "server "+target) || !strings.HasSuffix(found, ";") {
				t.Errorf("%s: upstream line for %s: %q", s.Name, target, found)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no stack with an nginx balancer")
	}
	if got := UpstreamServer([]byte("    server 10.0.0.1:80;\n    # server 10.0.0.2:80;\n"), "10.0.0.2:80"); got != "" {
		t.Errorf("a comment read as a server: %q", got)
	}
}
