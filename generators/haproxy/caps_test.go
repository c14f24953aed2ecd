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

// The header lists runs of app hosts by their ends, so a large fleet's
// config does not open with a line naming every host.
func TestHeaderListsRuns(t *testing.T) {
	t.Parallel()
	s := testtool.Load(t, "t.cue", stackSrc(`tls: mode: "none"
hosts: {
	app3: {address: "10.0.0.13", roles: ["app"], cores: 2, memory_mb: 2048}
	app4: {address: "10.0.0.14", roles: ["app"], cores: 2, memory_mb: 2048}
	app10: {address: "10.0.0.20", roles: ["app"], cores: 2, memory_mb: 2048}
}`))
	cfg := string(generate(t, s, artifactOptions())[ConfigPath].Content)
	for i, c := range cfg {
		if c > 0x7e {
			t.Fatalf("non-ASCII %q at byte %d: cloud-init would carry the file base64-encoded", c, i)
		}
	}
	if want := "balancing shop.example.com over app1..app4, app10.\n"; !strings.Contains(cfg, want) {
		t.Errorf("the header does not say %q:\n%.600s", want, cfg)
	}
}
