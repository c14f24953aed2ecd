package nginx

import (
	"strings"

	"github.com/hacompile/hacompile/generators/tlsprofile"
)

// profile is a Mozilla Server Side TLS profile; the data lives in
// generators/tlsprofile, shared with HAProxy.
type profile = tlsprofile.Profile

// onOff renders a boolean the nginx way.
func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// tlsSnippet renders the TLS settings every TLS server includes.
func (g *gen) tlsSnippet() ([]byte, error) {
	p := g.prof
	w := g.newWriter()
	w.comment("TLS for every HTTPS server on this host, nginx "+g.rel.NginxVersionMM()+" with OpenSSL "+g.rel.OpenSSLVersionMM()+" on "+g.rel.Pretty+":",
		tlsprofile.Comment(g.s.TLS.Profile)+" (https://ssl-config.mozilla.org/).",
		"Included by each TLS server block.")
	if n := tlsprofile.CurveNote(g.rel); n != "" {
		w.comment(n)
	}
	if !g.certInSite() {
		w.d("ssl_certificate", w.path(g.s.TLS.Certificate))
		w.d("ssl_certificate_key", w.path(g.s.TLS.Key))
	}
	w.blank()
	w.d("ssl_protocols", strings.Join(p.Protocols, " "))
	if len(p.Ciphers) > 0 {
		w.d("ssl_ciphers", strings.Join(p.Ciphers, ":"))
	}
	w.d("ssl_prefer_server_ciphers", onOff(p.ServerPreferredOrder))
	w.d("ssl_ecdh_curve", strings.Join(p.Curves, ":"))
	// No ssl_dhparam: the profile has no DHE cipher left to use it.
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

// certInSite reports whether each server block names its certificate
// itself: with several apps (an entry of apps), each answers its own
// host names with its own certificate, and the snippet they share holds
// the protocols alone.
func (g *gen) certInSite() bool { return strings.HasPrefix(g.s.App.Field, "apps.") }

// siteCert writes the server's certificate when the snippet does not.
func (g *gen) siteCert(w *writer) {
	if g.certInSite() {
		w.d("ssl_certificate", w.path(g.s.TLS.Certificate))
		w.d("ssl_certificate_key", w.path(g.s.TLS.Key))
	}
}
