// Package tlsprofile holds Mozilla's Server Side TLS 5.8 profiles and the
// RFC 7919 ffdhe2048 group, the one source of TLS settings for every
// generator that terminates TLS (nginx, HAProxy).
package tlsprofile

import (
	_ "embed"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Profile is one Mozilla Server Side TLS 5.8 configuration, as Go data
// so that rendering needs no file at run time. TestProfilesMatchMozilla
// compares it field by field with the published JSON (a copy lives in
// testdata/).
type Profile struct {
	Protocols []string
	// Ciphers are the OpenSSL names for TLS 1.2; empty for modern,
	// which allows TLS 1.3 only.
	Ciphers []string
	// Ciphersuites are the TLS 1.3 suites. nginx 1.22 has no directive
	// for them; OpenSSL's default TLS 1.3 suites are exactly these three,
	// which is why Mozilla's nginx configuration does not set them either.
	// HAProxy sets them with ssl-default-bind-ciphersuites.
	Ciphersuites []string
	Curves       []string
	// ServerPreferredOrder false means the client's cipher order wins
	// (nginx ssl_prefer_server_ciphers off, HAProxy prefer-client-ciphers).
	ServerPreferredOrder bool
	HSTSMinAge           int
	// DHParamSize is the finite-field DH group size for the DHE
	// ciphers; 0 when the profile has none.
	DHParamSize int
	OCSPStaple  bool
}

var profiles = map[string]Profile{
	"modern": {
		Protocols:    []string{"TLSv1.3"},
		Ciphersuites: []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"},
		Curves:       []string{"X25519", "prime256v1", "secp384r1"},
		HSTSMinAge:   63072000,
		OCSPStaple:   true,
	},
	"intermediate": {
		Protocols: []string{"TLSv1.2", "TLSv1.3"},
		Ciphers: []string{
			"ECDHE-ECDSA-AES128-GCM-SHA256",
			"ECDHE-RSA-AES128-GCM-SHA256",
			"ECDHE-ECDSA-AES256-GCM-SHA384",
			"ECDHE-RSA-AES256-GCM-SHA384",
			"ECDHE-ECDSA-CHACHA20-POLY1305",
			"ECDHE-RSA-CHACHA20-POLY1305",
			"DHE-RSA-AES128-GCM-SHA256",
			"DHE-RSA-AES256-GCM-SHA384",
			"DHE-RSA-CHACHA20-POLY1305",
		},
		Ciphersuites: []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"},
		Curves:       []string{"X25519", "prime256v1", "secp384r1"},
		HSTSMinAge:   63072000,
		DHParamSize:  2048,
		OCSPStaple:   true,
	},
}

// Lookup returns the named profile.
func Lookup(name string) (Profile, error) {
	p, ok := profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("tls.profile %q: no such Mozilla profile (want %s)", name, strings.Join(Names(), " or "))
	}
	return p, nil
}

// Names lists the profiles, sorted.
func Names() []string { return slices.Sorted(maps.Keys(profiles)) }

// All returns a copy of the profile table.
func All() map[string]Profile { return maps.Clone(profiles) }

// FFDHE2048 is the RFC 7919 ffdhe2048 group in PKCS#3 PEM, the file
// Mozilla serves at https://ssl-config.mozilla.org/ffdhe2048.txt and
// what "openssl genpkey -genparam -algorithm DH -pkeyopt
// group:ffdhe2048" prints. A standard group rather than freshly
// generated parameters: per-host parameters buy nothing and would make
// every build differ. TestDHParamIsRFC7919 derives the prime from its
// RFC definition and compares.
//
//go:embed ffdhe2048.pem
var FFDHE2048 string
