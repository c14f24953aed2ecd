package testtool

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// MozillaConfig is one profile of Mozilla's Server Side TLS JSON.
type MozillaConfig struct {
	TLSVersions []string `json:"tls_versions"`
	Ciphers     struct {
		IANA    []string `json:"iana"`
		OpenSSL []string `json:"openssl"`
	} `json:"ciphers"`
	Ciphersuites         []string `json:"ciphersuites"`
	TLSCurves            []string `json:"tls_curves"`
	ServerPreferredOrder bool     `json:"server_preferred_order"`
	HSTSMinAge           int      `json:"hsts_min_age"`
	DHParamSize          *int     `json:"dh_param_size"`
	OCSPStaple           bool     `json:"ocsp_staple"`
}

// Mozilla is the Server Side TLS guidelines as published.
type Mozilla struct {
	Version        float64                  `json:"version"`
	Href           string                   `json:"href"`
	Configurations map[string]MozillaConfig `json:"configurations"`
}

// MozillaPath is the repository's one copy of the guidelines the
// product follows, verbatim.
func MozillaPath() string {
	return filepath.Join(RepoRoot(), "generators", "tlsprofile", "testdata", "mozilla-server-side-tls-6.0.json")
}

// MozillaTLS reads MozillaPath; every test comparing rendered TLS
// settings with the guidelines reads them through it.
func MozillaTLS(t testing.TB) Mozilla {
	t.Helper()
	b, err := os.ReadFile(MozillaPath())
	if err != nil {
		t.Fatal(err)
	}
	var m Mozilla
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Version != 6.0 {
		t.Fatalf("%s holds version %v, want 6.0", MozillaPath(), m.Version)
	}
	return m
}

// CurvesFor is the profile's curve list as Mozilla's generator renders
// it for a server whose OpenSSL is opensslMajor.opensslMinor: the
// hybrid X25519MLKEM768 only from OpenSSL 3.5.
func (c MozillaConfig) CurvesFor(opensslMajor, opensslMinor int) []string {
	var out []string
	for _, g := range c.TLSCurves {
		if g == "X25519MLKEM768" && (opensslMajor < 3 || opensslMajor == 3 && opensslMinor < 5) {
			continue
		}
		out = append(out, g)
	}
	return out
}

// HasDHE reports whether the profile offers a finite-field DHE cipher.
func (c MozillaConfig) HasDHE() bool {
	for _, s := range c.Ciphers.OpenSSL {
		if len(s) > 4 && s[:4] == "DHE-" {
			return true
		}
	}
	return false
}
