package haproxy

import (
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
