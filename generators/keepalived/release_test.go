package keepalived

import (
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/osrelease"
)

// TestReleaseVersion: keepalived.conf names the keepalived of the
// stack's own target release (trixie ships 2.3, not bookworm's 2.2), and
// every release a stack can target has a version here.
func TestReleaseVersion(t *testing.T) {
	for name, want := range map[string]string{
		"debian-12": "keepalived 2.2 (Debian bookworm)",
		"debian-13": "keepalived 2.3 (Debian trixie)",
	} {
		if got := release(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	for _, n := range osrelease.Names() {
		if _, ok := versions[n]; !ok {
			t.Errorf("%s: no keepalived version", n)
		}
	}
	for _, s := range failoverStacks(t) {
		files, err := Gen{}.Generate(s, artifact.Options{})
		if err != nil {
			t.Fatal(err)
		}
		want := "# " + release(s.OS) + " on "
		for _, f := range files {
			if f.Path == ConfigPath && !strings.Contains(string(f.Content), want) {
				t.Errorf("%s %s: no %q", s.Name, f.Host, want)
			}
		}
	}
}
