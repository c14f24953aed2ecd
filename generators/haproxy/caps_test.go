package haproxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/testtool"
)

// The runbook's drain commands name each app host's server as the
// runtime API knows it, read from the config this package rendered.
func TestServers(t *testing.T) {
	t.Parallel()
	s := testtool.Load(t, "t.cue", stackSrc(cases[0].extra))
	servers := Servers(generate(t, s, artifactOptions())[ConfigPath].Content)
	for _, h := range s.HostsWithRole("app") {
		name, ok := servers[fmt.Sprintf("%s:%d", h.Address, s.App.HTTPPort)]
		if !ok || !strings.HasSuffix(name, "/"+h.Name) || strings.HasPrefix(name, "acme/") {
			t.Errorf("%s: server %q (%v) in %v", h.Name, name, ok, servers)
		}
	}
}
