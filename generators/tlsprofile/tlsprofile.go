// Package tlsprofile holds Mozilla's Server Side TLS 6.0 profiles, the
// one source of TLS settings for every generator that terminates TLS
// (nginx, HAProxy), and adapts them to the OpenSSL of the release a
// stack targets the way Mozilla's own generator does.
package tlsprofile

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hacompile/hacompile/generators/osrelease"
)

// Guidelines names the version of Mozilla's guidelines the profiles
// are, for rendered comments.
const Guidelines = "Mozilla Server Side TLS 6.0"

// HybridGroup is the post-quantum hybrid key exchange Mozilla 6.0 puts
// first; OpenSSL knows it from 3.5 on.
const HybridGroup = "X25519MLKEM768"

// Profile is one Mozilla Server Side TLS 6.0 configuration, as Go data
// so that rendering needs no file at run time. TestProfilesMatchMozilla
// compares it field by field with the published JSON (the one copy in
// the repository is testdata/mozilla-server-side-tls-6.0.json).
type Profile struct {
	Protocols []string
	// Ciphers are the OpenSSL names for TLS 1.2; empty for modern,
	// which allows TLS 1.3 only. 6.0's intermediate has only ECDHE
	// ciphers, so no DH group is rendered anywhere.
	Ciphers []string
	// Ciphersuites are the TLS 1.3 suites. OpenSSL's default TLS 1.3
	// suites are exactly these three, which is why Mozilla's nginx
	// configuration does not set them; HAProxy sets them with
	// ssl-default-bind-ciphersuites.
	Ciphersuites []string
	// Curves are the key exchange groups in order, as published
	// (X25519MLKEM768 first); For drops the ones the target's OpenSSL
	// lacks.
	Curves []string
	// ServerPreferredOrder false means the client's cipher order wins
	// (nginx ssl_prefer_server_ciphers off, HAProxy prefer-client-ciphers).
	ServerPreferredOrder bool
	HSTSMinAge           int
	// DHParamSize is what the guidelines list for DHE; it matters only
	// when a cipher is DHE (NeedsDHParams), which none of 6.0's are.
	DHParamSize int
	OCSPStaple  bool
}

var profiles = map[string]Profile{
	"modern": {
		Protocols:    []string{"TLSv1.3"},
		Ciphersuites: []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"},
		Curves:       []string{HybridGroup, "X25519", "prime256v1", "secp384r1"},
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
		},
		Ciphersuites: []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"},
		Curves:       []string{HybridGroup, "X25519", "prime256v1", "secp384r1"},
		HSTSMinAge:   63072000,
		DHParamSize:  2048,
		OCSPStaple:   true,
	},
}

// NeedsDHParams reports whether a cipher uses finite-field DH, which
// would need a DH group file (ssl_dhparam, ssl-dh-param-file).
func (p Profile) NeedsDHParams() bool {
	return slices.ContainsFunc(p.Ciphers, func(c string) bool { return strings.HasPrefix(c, "DHE-") })
}

// Lookup returns the named profile as published.
func Lookup(name string) (Profile, error) {
	p, ok := profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("%q: no such Mozilla profile (want %s)", name, strings.Join(Names(), " or "))
	}
	return clone(p), nil
}

// For returns the named profile as Mozilla's generator renders it for
// a server on release rel: the hybrid group X25519MLKEM768 stays first
// where the release's OpenSSL is 3.5 or newer and is left out below
// that, where OpenSSL would reject the whole curve list.
func For(name string, rel osrelease.Release) (Profile, error) {
	p, err := Lookup(name)
	if err != nil {
		return Profile{}, err
	}
	if !rel.HybridPQGroups() {
		p.Curves = slices.DeleteFunc(p.Curves, func(c string) bool { return c == HybridGroup })
	}
	return p, nil
}

// Names lists the profiles, sorted.
func Names() []string { return slices.Sorted(maps.Keys(profiles)) }

// All returns a copy of the profile table, as published.
func All() map[string]Profile {
	m := map[string]Profile{}
	for k, p := range profiles {
		m[k] = clone(p)
	}
	return m
}

func clone(p Profile) Profile {
	p.Protocols = slices.Clone(p.Protocols)
	p.Ciphers = slices.Clone(p.Ciphers)
	p.Ciphersuites = slices.Clone(p.Ciphersuites)
	p.Curves = slices.Clone(p.Curves)
	return p
}

// Comment names the guidelines and the profile, for rendered comments.
func Comment(name string) string { return Guidelines + ", " + name + " profile" }

// CurveNote says why the curve list differs from the published one on
// rel, for a rendered comment; "" when it does not.
func CurveNote(rel osrelease.Release) string {
	if rel.HybridPQGroups() {
		return ""
	}
	return HybridGroup + " is left out of the curves, as Mozilla's generator does below OpenSSL 3.5: " +
		rel.Pretty + " has OpenSSL " + rel.OpenSSLVersionMM() + "."
}
