package nginx

import (
	_ "embed"
	"strings"
)

// profile is one Mozilla Server Side TLS 5.8 configuration, as Go data
// so that rendering needs no file at run time. TestProfilesMatchMozilla
// compares it field by field with the published JSON (a copy lives in
// testdata/).
type profile struct {
	Protocols []string
	// Ciphers are the OpenSSL names for TLS 1.2; empty for modern,
	// which allows TLS 1.3 only.
	Ciphers []string
	// Ciphersuites are the TLS 1.3 suites. nginx 1.22 has no directive
	// for them; OpenSSL's default TLS 1.3 suites are exactly these three,
	// which is why Mozilla's nginx configuration does not set them either.
	Ciphersuites         []string
	Curves               []string
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

// ffdhe2048 is the RFC 7919 ffdhe2048 group, the file Mozilla serves at
// https://ssl-config.mozilla.org/ffdhe2048.txt. A standard group rather
// than a freshly generated one: generating parameters per host buys
// nothing and makes every build differ. TestDHParamIsRFC7919 derives
// the prime from its RFC definition and compares.
//
//go:embed ffdhe2048.pem
var ffdhe2048 string

// onOff renders a boolean the nginx way.
func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// tlsSnippet renders the TLS settings every TLS server includes.
func (g *gen) tlsSnippet() (string, error) {
	p := g.prof
	w := g.newWriter()
	w.comment("TLS for every HTTPS server on this host: Mozilla Server Side TLS 5.8, "+g.s.TLS.Profile+" profile",
		"(https://ssl-config.mozilla.org/). Included by each TLS server block.")
	w.d("ssl_certificate", w.path(g.s.TLS.Certificate))
	w.d("ssl_certificate_key", w.path(g.s.TLS.Key))
	w.blank()
	w.d("ssl_protocols", strings.Join(p.Protocols, " "))
	if len(p.Ciphers) > 0 {
		w.d("ssl_ciphers", strings.Join(p.Ciphers, ":"))
	}
	w.d("ssl_prefer_server_ciphers", onOff(p.ServerPreferredOrder))
	w.d("ssl_ecdh_curve", strings.Join(p.Curves, ":"))
	if p.DHParamSize > 0 {
		w.comment("The RFC 7919 ffdhe2048 group, for the DHE ciphers.")
		w.d("ssl_dhparam", w.path("/"+DHParamPath))
	}
	w.blank()
	w.d("ssl_session_timeout", "1d")
	w.d("ssl_session_cache", "shared:MozSSL:10m")
	w.d("ssl_session_tickets", "off")
	if p.OCSPStaple {
		w.blank()
		w.comment("OCSP stapling; the issuer is taken from the certificate file's chain.")
		w.d("ssl_stapling", "on")
		w.d("ssl_stapling_verify", "on")
	}
	return w.result()
}
