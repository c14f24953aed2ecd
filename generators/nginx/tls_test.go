package nginx

import (
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/testtool"
)

// mozilla is the shape of the Server Side TLS JSON.
type mozilla struct {
	Source         string `json:"source"`
	Configurations map[string]struct {
		TLSVersions          []string `json:"tls_versions"`
		OpenSSLCiphers       []string `json:"openssl_ciphers"`
		Ciphersuites         []string `json:"ciphersuites"`
		TLSCurves            []string `json:"tls_curves"`
		ServerPreferredOrder bool     `json:"server_preferred_order"`
		HSTSMinAge           int      `json:"hsts_min_age"`
		DHParamSize          *int     `json:"dh_param_size"`
		OCSPStaple           bool     `json:"ocsp_staple"`
	} `json:"configurations"`
}

// loadMozilla reads testdata/mozilla-server-side-tls-5.8.json, a
// verbatim copy of the reference the product follows.
func loadMozilla(t testing.TB) mozilla {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "mozilla-server-side-tls-5.8.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m mozilla
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Source != "Mozilla Server Side TLS guidelines, version 5.8" {
		t.Fatalf("testdata holds %q, want version 5.8", m.Source)
	}
	return m
}

// TestProfilesMatchMozilla proves the Go profile table is the published
// Mozilla 5.8 data, field by field, for exactly the profiles the schema
// offers.
func TestProfilesMatchMozilla(t *testing.T) {
	m := loadMozilla(t)
	for _, name := range []string{"intermediate", "modern"} {
		c, ok := m.Configurations[name]
		if !ok {
			t.Fatalf("reference has no %s profile", name)
		}
		dh := 0
		if c.DHParamSize != nil {
			dh = *c.DHParamSize
		}
		want := profile{
			Protocols:            c.TLSVersions,
			Ciphers:              c.OpenSSLCiphers,
			Ciphersuites:         c.Ciphersuites,
			Curves:               c.TLSCurves,
			ServerPreferredOrder: c.ServerPreferredOrder,
			HSTSMinAge:           c.HSTSMinAge,
			DHParamSize:          dh,
			OCSPStaple:           c.OCSPStaple,
		}
		got := profiles[name]
		if len(want.Ciphers) == 0 {
			want.Ciphers = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("profile %s\n got %+v\nwant %+v", name, got, want)
		}
		if got.DHParamSize != 0 && got.DHParamSize != 2048 {
			t.Errorf("profile %s wants a %d-bit DH group; only ffdhe2048 is rendered", name, got.DHParamSize)
		}
	}
	if len(profiles) != 2 {
		t.Errorf("profiles has %d entries, want intermediate and modern only", len(profiles))
	}
}

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

// rfc7919Prime computes the ffdhe2048 prime from its definition in
// RFC 7919 appendix A.1:
// p = 2^2048 - 2^1984 + {[2^1918 * e] + 560316} * 2^64 - 1.
func rfc7919Prime() *big.Int {
	// floor(2^1918 * e), with e = sum 1/k! evaluated in fixed point with
	// 64 guard bits; the truncation error (under one unit per term) stays
	// far inside the guard bits.
	const guard = 64
	scale := new(big.Int).Lsh(big.NewInt(1), 1918+guard)
	sum := new(big.Int)
	fact := big.NewInt(1)
	for k := int64(0); ; k++ {
		if k > 0 {
			fact.Mul(fact, big.NewInt(k))
		}
		term := new(big.Int).Quo(scale, fact)
		if term.Sign() == 0 {
			break
		}
		sum.Add(sum, term)
	}
	floorE := sum.Rsh(sum, guard)
	one := big.NewInt(1)
	p := new(big.Int).Lsh(one, 2048)
	p.Sub(p, new(big.Int).Lsh(one, 1984))
	mid := new(big.Int).Add(floorE, big.NewInt(560316))
	p.Add(p, mid.Lsh(mid, 64))
	return p.Sub(p, one)
}

// TestDHParamIsRFC7919 proves the embedded PEM holds exactly the
// ffdhe2048 group (prime from the RFC formula, generator 2) and nothing
// else.
func TestDHParamIsRFC7919(t *testing.T) {
	block, rest := pem.Decode([]byte(ffdhe2048))
	if block == nil || block.Type != "DH PARAMETERS" || strings.TrimSpace(string(rest)) != "" {
		t.Fatalf("ffdhe2048.pem is not one DH PARAMETERS block")
	}
	var params struct{ P, G *big.Int }
	if tail, err := asn1.Unmarshal(block.Bytes, &params); err != nil || len(tail) != 0 {
		t.Fatalf("DH parameters: %v (trailing %d bytes)", err, len(tail))
	}
	if want := rfc7919Prime(); params.P.Cmp(want) != 0 {
		t.Errorf("prime is not RFC 7919 ffdhe2048:\n got %x\nwant %x", params.P, want)
	}
	if params.P.BitLen() != 2048 || !params.P.ProbablyPrime(20) {
		t.Errorf("prime has %d bits or is not prime", params.P.BitLen())
	}
	if params.G.Cmp(big.NewInt(2)) != 0 {
		t.Errorf("generator %v, want 2", params.G)
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
