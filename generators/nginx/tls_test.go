package nginx

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/osrelease"
	"github.com/hacompile/hacompile/generators/tlsprofile"
	"github.com/hacompile/hacompile/internal/testtool"
)

// mozilla is the Server Side TLS guidelines, read from the repository's
// one copy.
type mozilla = testtool.Mozilla

func loadMozilla(t testing.TB) mozilla { return testtool.MozillaTLS(t) }

// profiles is the generator's table, as published.
var profiles = tlsprofile.All()

// TestOpenSSLKnowsTheProfiles backs two claims with the OpenSSL nginx
// links: every TLS 1.2 cipher name of a profile means a cipher (a typo
// would be dropped silently from ssl_ciphers), and nginx needs no TLS 1.3
// suite directive because OpenSSL's default TLS 1.3 suites are the
// profile's, as a set.
func TestOpenSSLKnowsTheProfiles(t *testing.T) {
	openssl := testtool.Require(t, "openssl", "openssl")
	ciphers := func(args ...string) []string {
		t.Helper()
		out, err := exec.Command(openssl, append([]string{"ciphers", "-s", "-v"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl ciphers %v: %v\n%s", args, err, out)
		}
		var names []string
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) > 0 {
				names = append(names, f[0])
			}
		}
		slices.Sort(names)
		return names
	}
	defaults := ciphers("-tls1_3")
	for name, p := range profiles {
		if len(p.Ciphers) > 0 {
			got := ciphers("-tls1_2", strings.Join(p.Ciphers, ":"))
			if want := slices.Sorted(slices.Values(p.Ciphers)); !slices.Equal(got, want) {
				t.Errorf("%s: OpenSSL resolves ssl_ciphers to %v, want %v", name, got, want)
			}
		}
		if want := slices.Sorted(slices.Values(p.Ciphersuites)); !slices.Equal(defaults, want) {
			t.Errorf("%s: OpenSSL's default TLS 1.3 suites are %v, profile wants %v", name, defaults, want)
		}
	}
}

// TestNoDHParam: Mozilla 6.0 offers no DHE cipher, so no host gets a DH
// group file or an ssl_dhparam line, whatever its release.
func TestNoDHParam(t *testing.T) {
	for _, osName := range osrelease.Names() {
		s := loadInline(t, "modern-cloud")
		s.TLS.Profile = "intermediate"
		s.OS = osName
		files, err := Gen{}.Generate(s, optionsFor(""))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.Contains(f.Path, "ffdhe") || strings.Contains(string(f.Content), "ssl_dhparam") {
				t.Errorf("%s: %s renders DH parameters", osName, f.Path)
			}
		}
	}
}

// TestHTTP2Syntax: nginx from 1.25.1 takes "http2 on;" (the listen
// parameter is deprecated and warns), older nginx only the listen
// parameter.
func TestHTTP2Syntax(t *testing.T) {
	for _, osName := range osrelease.Names() {
		rel := osrelease.MustLookup(osName)
		s := loadInline(t, "modern-cloud")
		s.OS = osName
		files, err := Gen{}.Generate(s, optionsFor(""))
		if err != nil {
			t.Fatal(err)
		}
		var all strings.Builder
		for _, f := range files {
			all.Write(f.Content)
		}
		newSyntax := rel.Nginx.AtLeast(osrelease.V("1.25.1"))
		if got := strings.Contains(all.String(), "\n    http2 on;\n"); got != newSyntax {
			t.Errorf("%s (nginx %s): http2 on; rendered %v", osName, rel.Nginx, got)
		}
		if got := strings.Contains(all.String(), " ssl http2;"); got == newSyntax {
			t.Errorf("%s (nginx %s): listen ... http2 rendered %v", osName, rel.Nginx, got)
		}
	}
}
