package haproxy

import (
	"cmp"
	"regexp"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
)

// TestAdminSocketNote: the admin socket's comment names backends the
// file has ("set server app/<host>" where the backends are app_api,
// app_web, ... named none of them).
func TestAdminSocketNote(t *testing.T) {
	backendRE := regexp.MustCompile(`(?m)^backend (\S+)$`)
	for _, s := range exampleStacks(t) {
		cfg := string(generate(t, s, artifact.Options{})[ConfigPath].Content)
		backends := map[string]bool{}
		for _, m := range backendRE.FindAllStringSubmatch(cfg, -1) {
			backends[m[1]] = true
		}
		i := strings.Index(cfg, "# The admin socket:")
		j := strings.Index(cfg, "    stats socket ")
		if i < 0 || j < i {
			t.Fatalf("%s: no admin socket note", s.Name)
		}
		note := cfg[i:j]
		if s.MultiApp() {
			for _, a := range s.Apps {
				if b := Backend(s, a); !backends[b] || !strings.Contains(note, b) {
					t.Errorf("%s: the admin socket note does not name backend %s: %q", s.Name, b, note)
				}
			}
			if strings.Contains(note, "app/<host>") {
				t.Errorf("%s: the admin socket note names a backend app the file lacks: %q", s.Name, note)
			}
			continue
		}
		if !backends["app"] || !strings.Contains(note, `"set server app/<host> state drain"`) {
			t.Errorf("%s: the admin socket note does not name backend app: %q", s.Name, note)
		}
	}
}

// TestEveryFrontendBacklog: when net.core.somaxconn is below maxconn,
// every frontend listens with a backlog of somaxconn, its own or its
// defaults section's. A named defaults section (the TLS pass-through's)
// starts from nothing, so it must say it again; without it, frontend
// https would ask for maxconn and the kernel would truncate it.
func TestEveryFrontendBacklog(t *testing.T) {
	for _, c := range cases {
		s := load(t, stackSrc(c.extra+"\nbalancer: maxconn: 20000")) // somaxconn: its default, 4096
		cfg := string(generate(t, s, artifact.Options{})[ConfigPath].Content)
		inherited, frontends := "", 0
		for _, sec := range strings.Split(cfg, "\n\n") {
			head, body, _ := strings.Cut(strings.TrimLeft(sec, "\n"), "\n")
			own := ""
			for _, l := range strings.Split(body, "\n") {
				if f := strings.Fields(l); len(f) == 2 && f[0] == "backlog" {
					own = f[1]
				}
			}
			switch {
			case strings.HasPrefix(head, "defaults"):
				inherited = own
			case strings.HasPrefix(head, "frontend"):
				frontends++
				if got := cmp.Or(own, inherited); got != "4096" {
					t.Errorf("%s: %s listens with backlog %q, want 4096 (somaxconn)", c.name, head, got)
				}
			}
		}
		if frontends == 0 {
			t.Fatalf("%s: no frontend found in haproxy.cfg", c.name)
		}
	}
}
