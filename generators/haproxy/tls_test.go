package haproxy

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
)

// TestNoDHGroup: Mozilla 6.0 has no DHE cipher, so no balancer carries
// a DH group file or names one.
func TestNoDHGroup(t *testing.T) {
	for _, c := range cases {
		s := load(t, stackSrc(c.extra))
		for path, f := range generate(t, s, artifact.Options{}) {
			if strings.Contains(path, "ffdhe") || strings.Contains(string(f.Content), "ssl-dh-param-file") || dheCipher.Match(f.Content) {
				t.Errorf("%s: %s carries DH parameters or DHE ciphers", c.name, path)
			}
		}
	}
}

// dheCipher matches a finite-field DHE cipher name (not ECDHE).
var dheCipher = regexp.MustCompile(`(^|[\s:])DHE-`)
