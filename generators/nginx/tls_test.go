package nginx

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/testtool"
)

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

// TestDHParamOpenSSL has OpenSSL check the rendered file, header comment
// included, and recognise it as the named group.
func TestDHParamOpenSSL(t *testing.T) {
	openssl := testtool.Require(t, "openssl", "openssl")
	s := loadInline(t, "modern-cloud")
	s.TLS.Profile = "intermediate"
	files, err := Gen{}.Generate(s, optionsFor(""))
	if err != nil {
		t.Fatal(err)
	}
	var content []byte
	for _, f := range files {
		if f.Path == DHParamPath {
			content = f.Content
			break
		}
	}
	if content == nil {
		t.Fatal("no ffdhe2048.pem rendered for an intermediate TLS host")
	}
	p := filepath.Join(t.TempDir(), "ffdhe2048.pem")
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "dhparam", "-in", p, "-check", "-text", "-noout").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl dhparam: %v\n%s", err, out)
	}
	for _, want := range []string{"DH Parameters: (2048 bit)", "GROUP: ffdhe2048", "DH parameters appear to be ok."} {
		if !strings.Contains(string(out), want) {
			t.Errorf("openssl dhparam output lacks %q:\n%s", want, out)
		}
	}
}
