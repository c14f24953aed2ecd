package haproxy

import (
	"strings"

	"github.com/hacompile/hacompile/generators/tlsprofile"
)

// profile is a Mozilla Server Side TLS profile; the data lives in
// generators/tlsprofile, shared with nginx.
type profile = tlsprofile.Profile

var profileFor = tlsprofile.For

// bindOptions is ssl-default-bind-options for the profile: the lowest
// protocol version, the profile's cipher-order rule and no session
// tickets (the profile's session-ticket advice: without key rotation,
// tickets undo forward secrecy).
func bindOptions(p profile) string {
	var opts []string
	if !p.ServerPreferredOrder {
		opts = append(opts, "prefer-client-ciphers")
	}
	opts = append(opts, "ssl-min-ver", p.Protocols[0], "no-tls-tickets")
	return strings.Join(opts, " ")
}
