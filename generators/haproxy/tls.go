package haproxy

import (
	_ "embed"
	"fmt"
	"strings"
)

// profile is one Mozilla Server Side TLS 5.8 configuration as Go data,
// so rendering reads no file at run time. TestProfilesMatchMozilla
// compares it field by field with the published JSON (testdata/ holds a
// copy).
type profile struct {
	Protocols []string
	// Ciphers are the OpenSSL names for TLS 1.2; empty for modern,
	// which allows TLS 1.3 only.
	Ciphers      []string
	Ciphersuites []string
	Curves       []string
	// ServerPreferredOrder false is HAProxy's prefer-client-ciphers:
	// HAProxy otherwise imposes its own order.
	ServerPreferredOrder bool
	HSTSMinAge           int
	// DHParamSize is the finite-field DH group size for the DHE
	// ciphers; 0 when the profile has none.
	DHParamSize int
	OCSPStaple  bool
}

var profiles = map[string]profile{
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

func profileFor(name string) (profile, error) {
	p, ok := profiles[name]
	if !ok {
		return profile{}, fmt.Errorf("tls.profile %q: no such Mozilla profile (want intermediate or modern)", name)
	}
	return p, nil
}

// bindOptions is ssl-default-bind-options for the profile: the lowest
// protocol version, the profile's cipher-order rule and no session
// tickets (the profile's session-ticket advice: without key rotation,
// tickets undo forward secrecy).
func (p profile) bindOptions() string {
	var opts []string
	if !p.ServerPreferredOrder {
		opts = append(opts, "prefer-client-ciphers")
	}
	opts = append(opts, "ssl-min-ver", p.Protocols[0], "no-tls-tickets")
	return strings.Join(opts, " ")
}

// ffdhe2048 is the RFC 7919 ffdhe2048 group in PKCS#3 PEM, the file
// Mozilla serves at https://ssl-config.mozilla.org/ffdhe2048.txt and
// what "openssl genpkey -genparam -algorithm DH -pkeyopt
// group:ffdhe2048" prints. A standard group rather than freshly
// generated parameters: per-host parameters buy nothing and would make
// every build differ. TestDHParamIsFFDHE2048 asks openssl to name it.
//
//go:embed ffdhe2048.pem
var ffdhe2048 string
