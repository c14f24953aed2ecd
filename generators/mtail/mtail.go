// Package mtail renders mtail (Debian's mtail) on the app hosts of a
// monitored stack whose balancer does not count HTTP status codes itself
// (an nginx or cloud balancer, or HAProxy relaying TLS): mtail follows
// the app host's nginx access log and exports the responses by status,
// which the High5xxRate alert reads (monitoring/prometheus.yml, job
// "nginxlog"). nginx's stub_status counts connections only, so it
// cannot tell a 5xx from a 200; every request the balancer forwards is
// logged here.
package mtail

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the mtail generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "mtail" }

// Package is the Debian package cloud-init installs.
const Package = "mtail"

// Paths on the host, without the leading slash.
const (
	// DefaultsPath is the EnvironmentFile= of Debian's mtail.service.
	DefaultsPath = "etc/default/mtail"
	// ProgramPath is the program counting nginx's responses.
	ProgramPath = "etc/mtail/nginx.mtail"
	// AccessLog is the log nginx writes with log_format hacompile.
	AccessLog = "/var/log/nginx/access.log"
)

// Metric is the counter the program exports, by status code.
const Metric = "nginx_http_responses_total"

// Enabled reports whether the stack counts responses from nginx's log:
// monitored, with app hosts, and no HAProxy that sees the status codes.
func Enabled(s *schema.Stack) bool {
	if !s.Monitoring.Enabled || s.RoleCount("app") == 0 {
		return false
	}
	haproxyHTTP := s.Balancer.Kind == "haproxy" && !(s.TLS.Enabled() && s.TLS.Terminate == "app")
	return !haproxyHTTP
}

// ListenAddress is where mtail serves /metrics on app host h.
func ListenAddress(s *schema.Stack, h *schema.Host) string {
	return net.JoinHostPort(h.Address, strconv.Itoa(s.Monitoring.Ports.Mtail))
}

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	if !Enabled(s) {
		return nil, nil
	}
	prog := Program(s)
	var files []artifact.File
	for _, h := range s.HostsWithRole("app") {
		if !opt.Renders(h.Name) {
			continue
		}
		var b strings.Builder
		b.WriteString(artifact.Header("#", s))
		fmt.Fprintf(&b, "# mtail on %s: follows nginx's access log and serves the response counts on\n", h.Name)
		b.WriteString("# the host's private address for Prometheus on the monitoring host (job\n")
		b.WriteString("# \"nginxlog\"). Read by Debian's mtail.service; the mtail user is in group adm,\n")
		b.WriteString("# which reads /var/log/nginx.\n")
		fmt.Fprintf(&b, "LOGS=%s\n", opt.P(AccessLog))
		fmt.Fprintf(&b, "HOST=%s\n", h.Address)
		fmt.Fprintf(&b, "PORT=%d\n", s.Monitoring.Ports.Mtail)
		files = append(files,
			artifact.File{
				Host: h.Name, Kind: "mtail", Path: DefaultsPath, Content: []byte(b.String()), Mode: 0o644, Owner: "root:root",
				Reload: artifact.Restart("mtail"),
			},
			artifact.File{
				Host: h.Name, Kind: "mtail", Path: ProgramPath, Content: prog, Mode: 0o644, Owner: "root:root",
				// --compile_only still opens mtail's HTTP port (3903 by
				// default), which the running mtail holds on a host: port 0
				// lets the check run beside it.
				Validate: artifact.Run("mtail", "--compile_only", "--port", "0", "--progs", opt.P("/"+ProgramPath)),
				Reload:   artifact.ReloadUnit("mtail"),
			})
	}
	return files, nil
}

// Program is the mtail program. The line shape is nginx's log_format
// hacompile: address, user, [time], "request", status, bytes, ...
func Program(s *schema.Stack) []byte {
	var b strings.Builder
	b.WriteString(artifact.Header("#", s))
	b.WriteString("# Responses of this host's nginx by status code, from " + AccessLog + "\n")
	b.WriteString("# (log_format hacompile). High5xxRate divides the 5xx rate by the total.\n")
	b.WriteString("counter " + Metric + " by status\n\n")
	b.WriteString("/^\\S+ - \\S+ \\[[^\\]]+\\] \"[^\"]*\" (?P<status>\\d{3}) / {\n")
	b.WriteString("  " + Metric + "[$status]++\n")
	b.WriteString("}\n")
	return []byte(b.String())
}

// Reads implements artifact.Scoper: no other host's record reaches its
// files (an app host's mtail files are made from the host alone).
func (Gen) Reads(*schema.Stack, *schema.Host) []string { return nil }

// ReadsSettings implements artifact.SettingsReader: the stack settings its
// files are made from (TestRenderChangedSettingsMatchesRender checks them).
func (Gen) ReadsSettings() []string { return []string{"balancer", "monitoring", "tls"} }
