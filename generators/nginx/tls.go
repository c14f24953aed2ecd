package nginx

import (
	"strings"

	"github.com/hacompile/hacompile/generators/tlsprofile"
)

// profile is a Mozilla Server Side TLS profile; the data lives in
// generators/tlsprofile, shared with HAProxy.
type profile = tlsprofile.Profile

var (
	profiles  = tlsprofile.All()
	ffdhe2048 = tlsprofile.FFDHE2048
)

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
	if p.OCSPStaple && g.s.TLS.OCSPStapling {
		w.blank()
		w.comment("OCSP stapling; the issuer is taken from the certificate file's chain.")
		w.d("ssl_stapling", "on")
		w.d("ssl_stapling_verify", "on")
	}
	return w.result()
}
