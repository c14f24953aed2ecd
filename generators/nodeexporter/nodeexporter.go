// Package nodeexporter renders node_exporter (Debian's
// prometheus-node-exporter) on every host of a monitored stack: the
// ARGS file Debian's unit reads, which picks the collectors the alerts
// read and binds the host's private address, where the stack's
// monitoring/prometheus.yml scrapes it.
//
// The collectors the rules depend on, and why each is named:
//   - cpu, meminfo, filesystem, filefd, vmstat (oom_kill), time, textfile
//     are defaults; they are listed anyway so a change of defaults in a
//     later Debian release cannot silently empty an alert.
//   - systemd is off by default; FailedSystemdUnit reads
//     node_systemd_unit_state{state="failed"} from it.
//   - textfile reads *.prom files from TextfileDir, where jobs on the
//     host publish facts no collector has (certificate expiry).
package nodeexporter

import (
	"bytes"
	"net"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the node_exporter generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "node-exporter" }

// Package is the Debian package cloud-init installs.
const Package = "prometheus-node-exporter"

// Paths on the host, without the leading slash.
const (
	// ArgsPath is the EnvironmentFile= of Debian's unit ($ARGS).
	ArgsPath = "etc/default/prometheus-node-exporter"
	// TextfileDir is where the textfile collector reads *.prom files
	// (Debian's own default, said explicitly).
	TextfileDir = "var/lib/prometheus/node-exporter"
)

// Collectors are the collectors enabled on top of the defaults, and the
// default ones the alerts need.
var Collectors = []string{"cpu", "filefd", "filesystem", "meminfo", "systemd", "textfile", "time", "vmstat"}

// ListenAddress is where node_exporter listens on host h.
func ListenAddress(s *schema.Stack, h *schema.Host) string {
	return net.JoinHostPort(h.Address, strconv.Itoa(s.Monitoring.Ports.Node))
}

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	if !s.Monitoring.Enabled {
		return nil, nil
	}
	names := s.HostNames()
	files := make([]artifact.File, 0, len(names))
	reload := artifact.Restart(Package)
	var b bytes.Buffer // each host's file, copied out at its length
	for _, n := range names {
		if !opt.Renders(n) {
			continue
		}
		h := s.Hosts[n]
		if err := checkPorts(s, h); err != nil {
			return nil, artifact.InHost(n, err)
		}
		b.Reset()
		args(&b, s, h, opt)
		files = append(files, artifact.File{
			Host: n, Kind: "node-exporter", Path: ArgsPath, Content: bytes.Clone(b.Bytes()), Mode: 0o644, Owner: "root:root",
			Reload: reload,
		})
	}
	for _, h := range CertHosts(s) {
		if !opt.Renders(h.Name) {
			continue
		}
		for _, f := range certFiles(s, opt) {
			f.Host, f.Kind = h.Name, "node-exporter"
			files = append(files, f)
		}
	}
	return files, nil
}

// args writes host h's node_exporter arguments file to b.
func args(b *bytes.Buffer, s *schema.Stack, h *schema.Host, opt artifact.Options) {
	b.WriteString(artifact.Header("#", s))
	b.WriteString("# node_exporter on " + h.Name + ", scraped by Prometheus on the monitoring host\n")
	b.WriteString("# (monitoring/prometheus.yml, job \"node\"). Read by Debian's\n")
	b.WriteString("# prometheus-node-exporter.service as $ARGS; restart it after a change.\n")
	if h.Address == "0.0.0.0" {
		b.WriteString("# The host's address is known only at launch: every interface.\n")
	} else {
		b.WriteString("# Bound to the host's private address only.\n")
	}
	b.WriteString(`ARGS="--web.listen-address=`)
	b.WriteString(ListenAddress(s, h))
	for _, c := range Collectors {
		b.WriteString(" --collector.")
		b.WriteString(c)
	}
	b.WriteString(" --collector.textfile.directory=")
	b.WriteString(opt.P("/" + TextfileDir))
	b.WriteString("\"\n")
}

// Certificate expiry, through the textfile collector: on each host that
// serves HTTPS, a timer reads the certificate's notAfter with openssl
// every two minutes and writes it where node_exporter reads it. certbot's live
// directory is root's alone, so the job runs as root and node_exporter
// only reads the result.
const (
	CertScriptPath  = "usr/local/sbin/hacompile-cert-expiry"
	CertServicePath = "etc/systemd/system/hacompile-cert-expiry.service"
	CertTimerPath   = "etc/systemd/system/hacompile-cert-expiry.timer"
	certPromFile    = "hacompile_certificates.prom"
	// CertMetric is the certificate's notAfter, in Unix seconds.
	CertMetric = "hacompile_tls_certificate_not_after_seconds"
	// CertPresentMetric is 1 when the certificate file could be read.
	CertPresentMetric = "hacompile_tls_certificate_present"
)

// CertHosts are the hosts that serve the stack's certificate themselves.
func CertHosts(s *schema.Stack) []*schema.Host {
	if !s.Monitoring.Enabled || !s.TLS.Enabled() || s.TLS.Certificate == "" {
		return nil
	}
	if s.TLS.Terminate == "app" {
		return s.HostsWithRole("app")
	}
	if s.Balancer.Kind == "cloud" {
		return nil
	}
	return s.HostsWithRole("lb")
}

// AllApps implements artifact.AllApps: the exporters are the host's.
func (Gen) AllApps() bool { return true }

// certScriptMulti is the expiry script of a host serving several
// certificates (several apps with host names of their own).
func certScriptMulti(s *schema.Stack, opt artifact.Options) string {
	var certs []string
	for _, v := range s.CertificateViews() {
		certs = append(certs, artifact.ShellQuote(opt.P(v.TLS.Certificate)))
	}
	return "#!/bin/sh\n" + artifact.Header("#", s) +
		"# Writes the notAfter of each certificate this host serves for node_exporter's\n" +
		"# textfile collector; run every two minutes by hacompile-cert-expiry.timer.\n" +
		"set -u\n" +
		"out=" + artifact.ShellQuote(opt.P("/"+TextfileDir+"/"+certPromFile)) + "\n" +
		"tmp=\"$out.tmp\"\n" +
		"{\n" +
		"    echo '# HELP " + CertPresentMetric + " Whether the certificate file could be read.'\n" +
		"    echo '# TYPE " + CertPresentMetric + " gauge'\n" +
		"    echo '# HELP " + CertMetric + " The certificate'\\''s notAfter, in Unix seconds.'\n" +
		"    echo '# TYPE " + CertMetric + " gauge'\n" +
		"    for cert in " + strings.Join(certs, " ") + "; do\n" +
		"        present=0\n" +
		"        if end=$(openssl x509 -noout -enddate -in \"$cert\" 2>/dev/null); then\n" +
		"            not_after=$(date -d \"${end#notAfter=}\" +%s) && present=1\n" +
		"        fi\n" +
		"        echo \"" + CertPresentMetric + "{path=\\\"$cert\\\"} $present\"\n" +
		"        if [ \"$present\" = 1 ]; then\n" +
		"            echo \"" + CertMetric + "{path=\\\"$cert\\\"} $not_after\"\n" +
		"        fi\n" +
		"    done\n" +
		"} >\"$tmp\" && mv \"$tmp\" \"$out\"\n"
}

func certFiles(s *schema.Stack, opt artifact.Options) []artifact.File {
	script := artifact.Header("#", s)
	script = "#!/bin/sh\n" + script +
		"# Writes the notAfter of the certificate this host serves for node_exporter's\n" +
		"# textfile collector; run every two minutes by hacompile-cert-expiry.timer.\n" +
		"set -u\n" +
		"cert=" + artifact.ShellQuote(opt.P(s.TLS.Certificate)) + "\n" +
		"out=" + artifact.ShellQuote(opt.P("/"+TextfileDir+"/"+certPromFile)) + "\n" +
		"tmp=\"$out.tmp\"\n" +
		"present=0\n" +
		"if end=$(openssl x509 -noout -enddate -in \"$cert\" 2>/dev/null); then\n" +
		"    not_after=$(date -d \"${end#notAfter=}\" +%s) && present=1\n" +
		"fi\n" +
		"{\n" +
		"    echo '# HELP " + CertPresentMetric + " Whether the certificate file could be read.'\n" +
		"    echo '# TYPE " + CertPresentMetric + " gauge'\n" +
		"    echo \"" + CertPresentMetric + "{path=\\\"$cert\\\"} $present\"\n" +
		"    if [ \"$present\" = 1 ]; then\n" +
		"        echo '# HELP " + CertMetric + " The certificate'\\''s notAfter, in Unix seconds.'\n" +
		"        echo '# TYPE " + CertMetric + " gauge'\n" +
		"        echo \"" + CertMetric + "{path=\\\"$cert\\\"} $not_after\"\n" +
		"    fi\n" +
		"} >\"$tmp\" && mv \"$tmp\" \"$out\"\n"
	if s.MultiApp() {
		script = certScriptMulti(s, opt)
	}
	service := artifact.Header("#", s) +
		"[Unit]\n" +
		"Description=Publish the TLS certificate's expiry for node_exporter\n" +
		"After=local-fs.target\n\n" +
		"[Service]\n" +
		"Type=oneshot\n" +
		"ExecStart=" + opt.P("/"+CertScriptPath) + "\n\n" +
		"[Install]\n" +
		"WantedBy=multi-user.target\n"
	timer := artifact.Header("#", s) +
		"[Unit]\n" +
		"Description=Publish the TLS certificate's expiry every two minutes\n\n" +
		"# Often enough that a certificate certbot obtains on first boot shows\n" +
		"# within one for_minutes (CertificateMissing); one openssl call each time.\n" +
		"[Timer]\n" +
		"OnBootSec=1min\n" +
		"OnUnitActiveSec=2min\n\n" +
		"[Install]\n" +
		"WantedBy=timers.target\n"
	return []artifact.File{
		{Path: CertScriptPath, Content: []byte(script), Mode: 0o755, Owner: "root:root", Validate: artifact.Run("sh", "-n", opt.P("/"+CertScriptPath))},
		{Path: CertServicePath, Content: []byte(service), Mode: 0o644, Owner: "root:root",
			Validate: artifact.Run("systemd-analyze", "verify", "--man=no", opt.P("/"+CertServicePath)), Reload: artifact.DaemonReload()},
		{Path: CertTimerPath, Content: []byte(timer), Mode: 0o644, Owner: "root:root",
			Validate: artifact.Run("systemd-analyze", "verify", "--man=no", opt.P("/"+CertTimerPath)), Reload: artifact.DaemonReload().Then(artifact.Restart("hacompile-cert-expiry.timer"))},
	}
}

// checkPorts refuses an exporter port that another listener of the host
// already has: the exporter would fail to start, and Prometheus would
// scrape the wrong program.
func checkPorts(s *schema.Stack, h *schema.Host) error {
	// field is the stack field that sets the port, "" for fixed ports.
	type use struct {
		port        int
		what, field string
	}
	m := s.Monitoring.Ports
	uses := []use{{m.Node, "monitoring.ports.node (node_exporter)", "monitoring.ports.node"}}
	if h.Has("lb") && s.Balancer.Kind == "haproxy" {
		uses = append(uses, use{m.HAProxy, "monitoring.ports.haproxy (HAProxy's metrics listener)", "monitoring.ports.haproxy"})
	}
	if h.Has("lb") && s.Balancer.Kind != "cloud" {
		uses = append(uses, use{80, "the balancer's port 80", ""}, use{443, "the balancer's port 443", ""})
	}
	for _, a := range s.AppsOn(h) {
		uses = append(uses, use{a.HTTPPort, schema.AppPath(a, "app.http_port") + " (nginx)", schema.AppPath(a, "app.http_port")})
		if a.Bind.Port > 0 {
			uses = append(uses, use{a.Bind.Port, schema.AppPath(a, "app.bind.port") + " (the app server)", schema.AppPath(a, "app.bind.port")})
		}
	}
	if h.Has("app") {
		uses = append(uses, use{m.Mtail, "monitoring.ports.mtail (mtail)", "monitoring.ports.mtail"})
	}
	if h.Has("cache") && s.Cache != nil && !s.Cache.Managed {
		uses = append(uses, use{s.Cache.Port, "cache.port (Redis)", "cache.port"}, use{m.Redis, "monitoring.ports.redis (redis_exporter)", "monitoring.ports.redis"})
	}
	for i, a := range uses {
		for _, b := range uses[:i] {
			if a.port == b.port && a.what != b.what {
				return artifact.Errorf(s.Written(b.field, a.field, "hosts."+h.Name), "%s %d is also %s on this host: give one of them another port", b.what, a.port, a.what)
			}
		}
	}
	return nil
}

// Reads implements artifact.Scoper: no other host's record reaches its
// files (a host's exporter settings follow its own roles).
func (Gen) Reads(*schema.Stack, *schema.Host) []string { return nil }

// ReadsSettings implements artifact.SettingsReader: the stack settings its
// files are made from (TestRenderChangedSettingsMatchesRender checks them).
func (Gen) ReadsSettings() []string { return []string{"apps", "balancer", "monitoring", "tls"} }
