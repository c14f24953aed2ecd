// Package haproxy renders the HAProxy load balancer of a stack whose
// balancer.kind is "haproxy", on every host with the role "lb": the
// configuration, the systemd drop-in that gives it its environment, and,
// when TLS terminates on the balancer, the pieces that turn certbot's (or
// the operator's) certificate files into the one PEM HAProxy reads.
//
// The target is the HAProxy of the stack's os (generators/osrelease:
// 2.6 on Debian 12, 2.8 on Ubuntu 24.04, 3.0 on Debian 13); everything
// rendered works from 2.6 on. Decisions, and why:
//
//   - Debian's haproxy.service stays the unit. It starts haproxy -Ws
//     (master-worker, systemd notify) and its ExecReload= already runs
//     haproxy -c before kill -USR2, so a reload never replaces a running
//     configuration with a broken one; the drop-in adds only the
//     environment file and the open-files limit.
//   - The stats password is never in a file hacompile writes: the config
//     says "${HAPROXY_STATS_PASSWORD}", which HAProxy expands from its
//     environment, and systemd loads that from balancer.environment_file.
//     HAProxy accepts an empty password there, so the stats listener
//     also refuses every request while the variable is unset or empty.
//   - HAProxy wants the certificate chain and its key in one PEM (or
//     the key at <pem>.key); certbot writes fullchain.pem and privkey.pem.
//     A script joins them into /etc/haproxy/certs/<domain>.pem (a certbot
//     deploy hook in certbot mode, a helper in /usr/local/sbin in files
//     mode) and reloads HAProxy. The bind loads the whole directory with
//     strict-sni, which lets HAProxy start while it is still empty: on a
//     new balancer, port 80 must already answer the ACME challenge that
//     brings the first certificate.
//   - ACME HTTP-01: HAProxy cannot serve files, so certbot runs in
//     standalone mode on port 8888 (ACMEPort) of its balancer's address,
//     and the :80 frontend sends /.well-known/acme-challenge/ to that port
//     on every balancer, ahead of the HTTPS redirect. With two balancers
//     behind a reserved IP (or DNS), the challenge for lb2's certificate
//     arrives at lb1; whichever balancer's certbot is listening answers,
//     a refused connection is retried on the next one at once. Each
//     balancer keeps its own certificate. tls.acme_root (a webroot for
//     nginx) has no use here.
//   - TLS follows the stack's Mozilla 6.0 profile exactly, as Mozilla's
//     generator renders it for HAProxy on the release's OpenSSL: ciphers
//     (ECDHE only, so no DH group file), TLS 1.3 suites, curves
//     (X25519MLKEM768 first from OpenSSL 3.5), prefer-client-ciphers,
//     ssl-min-ver, no tickets. No OCSP stapling: Let's Encrypt
//     certificates no longer name an OCSP responder.
//   - With tls.terminate "app", HAProxy passes port 443 through in TCP
//     mode to port 443 on the app hosts, health-checking them over TLS, and
//     its port 80 backend follows those checks.
//   - Frontends bind every IPv4 address (":80"): a balancer answers on
//     its public or reserved address, not the private one the stack lists.
//
// Absolute paths the files name move with Options.Root; the addresses and
// ports do not, so a test that starts HAProxy rewrites the bind lines.
package haproxy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the HAProxy generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "haproxy" }

// Paths on the balancer host, without the leading slash.
const (
	ConfigPath = "etc/haproxy/haproxy.cfg"
	DropInPath = "etc/systemd/system/haproxy.service.d/hacompile.conf"
	// CertDir holds the combined PEMs the HTTPS bind loads; CertDirNote
	// is a dotfile (HAProxy skips those) that makes push create it.
	CertDir     = "etc/haproxy/certs"
	CertDirNote = CertDir + "/.hacompile"
	// DeployHookPath is run by certbot after every renewal.
	DeployHookPath = "etc/letsencrypt/renewal-hooks/deploy/hacompile-haproxy.sh"
	// CertScriptPath builds the PEM from operator-provisioned files.
	CertScriptPath = "usr/local/sbin/hacompile-haproxy-cert"
)

// Fixed places of Debian's haproxy package.
const (
	chrootDir   = "/var/lib/haproxy"
	adminSocket = "/run/haproxy/admin.sock"
	logSocket   = "/dev/log"
)

// ACMEPort is where certbot's standalone server listens, on its
// balancer's address, while it runs (certbot --standalone
// --http-01-address <address> --http-01-port 8888).
const ACMEPort = 8888

// AppTLSPort is where the app hosts' nginx terminates TLS when
// tls.terminate is "app".
const AppTLSPort = 443

// PasswordVar is the environment variable holding the stats password.
const PasswordVar = "HAPROXY_STATS_PASSWORD"

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	if s.Balancer.Kind != "haproxy" {
		return nil, nil
	}
	lbs := s.HostsWithRole("lb")
	if len(lbs) == 0 {
		return nil, artifact.Errorf("balancer.kind", "is \"haproxy\" but no host has the role \"lb\" to run it")
	}
	if s.RoleCount("app") == 0 {
		return nil, artifact.Errorf("hosts", "no host has the role \"app\": the balancer has no servers")
	}
	var files []artifact.File
	for _, h := range lbs {
		if !opt.Renders(h.Name) {
			continue
		}
		if err := checkPorts(s, h); err != nil {
			return nil, artifact.InHost(h.Name, err)
		}
		hf, err := render(s, h, opt)
		if err != nil {
			return nil, artifact.InHost(h.Name, err)
		}
		slices.SortFunc(hf, func(a, b artifact.File) int { return strings.Compare(a.Path, b.Path) })
		for _, f := range hf {
			f.Host = h.Name
			f.Kind = "haproxy"
			files = append(files, f)
		}
	}
	return files, nil
}

// render returns one balancer host's files. The configuration differs
// between hosts only in the metrics listener's address (every other
// frontend binds all addresses) and the certificate script in its
// comments.
func render(s *schema.Stack, h *schema.Host, opt artifact.Options) ([]artifact.File, error) {
	cfgPath := opt.P("/" + ConfigPath)
	reload := artifact.ReloadUnit("haproxy")
	cfg, err := config(s, h, opt)
	if err != nil {
		return nil, err
	}
	files := []artifact.File{{
		Path: ConfigPath, Content: cfg, Mode: 0o644, Owner: "root:root",
		Validate: artifact.Run("haproxy", "-c", "-f", cfgPath), Reload: reload,
	}, {
		Path: DropInPath, Content: dropIn(s, opt), Mode: 0o644, Owner: "root:root",
		Validate: artifact.Run("systemd-analyze", "verify", "--man=no", "haproxy.service"),
		// The environment and the limit apply when the master starts;
		// see the comments in the file for what waits for a restart.
		Reload: artifact.DaemonReload().Then(artifact.ReloadUnit("haproxy")),
	}}
	if !terminatesTLS(s) {
		return files, nil
	}
	files = append(files, artifact.File{
		Path: CertDirNote, Content: certDirNote(s), Mode: 0o644, Owner: "root:root",
	})
	// One script per certificate: the stack's, and with several apps
	// one for each app's own host names.
	for _, v := range certViews(s) {
		script, err := certScript(v, h, opt)
		if err != nil {
			return nil, err
		}
		// No reload action: the script runs when a certificate changes, not
		// when the script does (on a new host there is no certificate yet).
		files = append(files, artifact.File{
			Path: certScriptPath(v), Content: script, Mode: 0o755, Owner: "root:root",
			Validate: artifact.Run("sh", "-n", opt.P("/"+certScriptPath(v))),
		})
	}
	return files, nil
}

// terminatesTLS reports whether HTTPS is served by HAProxy itself.
func terminatesTLS(s *schema.Stack) bool {
	return s.TLS.Enabled() && s.TLS.Terminate == "balancer"
}

// passesTLS reports whether HAProxy relays TLS to the app hosts.
func passesTLS(s *schema.Stack) bool {
	return s.TLS.Enabled() && s.TLS.Terminate == "app"
}

// certScriptPath is the certbot deploy hook in certbot mode and the
// operator's helper in files mode.
func certScriptPath(s *schema.Stack) string {
	// An app's view with host names of its own (apps.<name>.domains)
	// has a certificate, and so a script, of its own.
	suffix := ""
	if len(s.App.Domains) > 0 {
		suffix = "-" + s.Domain
	}
	if s.TLS.Mode == "certbot" {
		return strings.TrimSuffix(DeployHookPath, ".sh") + suffix + ".sh"
	}
	return CertScriptPath + suffix
}

// PEMPath is the combined certificate and key HAProxy serves, on the
// host.
func PEMPath(s *schema.Stack) string { return "/" + CertDir + "/" + s.Domain + ".pem" }

// checkPorts refuses a balancer host on which two listeners would want
// one port: HAProxy's frontends bind every address, so the stats page,
// certbot while it runs, and an app host's nginx on the same machine must
// each have a port of their own.
func checkPorts(s *schema.Stack, h *schema.Host) error {
	// field is the stack field that sets the port, "" for fixed ports.
	type use struct {
		port        int
		what, field string
	}
	uses := []use{{80, "HAProxy's port 80", ""}}
	if s.TLS.Enabled() {
		uses = append(uses, use{443, "HAProxy's port 443", ""})
	}
	uses = append(uses, use{s.Balancer.Stats.Port, "balancer.stats.port", "balancer.stats.port"})
	if p, what := metricsPort(s); p != 0 {
		uses = append(uses, use{p, what, "monitoring.ports.haproxy"})
	}
	if acme(s) {
		uses = append(uses, use{ACMEPort, fmt.Sprintf("certbot's ACME port (%d)", ACMEPort), ""})
	}
	for _, a := range s.AppsOn(h) {
		uses = append(uses, use{a.HTTPPort, schema.AppPath(a, "app.http_port") + " (this host's nginx)", schema.AppPath(a, "app.http_port")})
	}
	if h.Has("app") {
		if passesTLS(s) {
			uses = append(uses, use{AppTLSPort, "this host's nginx HTTPS port", ""})
		}
	}
	for i, a := range uses {
		for _, b := range uses[:i] {
			if a.port == b.port {
				return artifact.Errorf(s.Written(a.field, b.field, "hosts."+h.Name), "%s %d is also %s on this host: give one of them another port", a.what, a.port, b.what)
			}
		}
	}
	return nil
}

// nofile is the open-files limit for HAProxy: two descriptors per
// connection (client and server side) plus room for listeners, checks,
// logs and the admin socket, and never below the stack's tuning.nofile.
func nofile(s *schema.Stack) int {
	return max(s.Tuning.Nofile, 2*s.Balancer.MaxConn+1024)
}

// Reads implements artifact.Scoper: a balancer lists the app hosts and,
// for ACME challenges, the other balancers.
func (Gen) Reads(s *schema.Stack, h *schema.Host) []string {
	if h.Has("lb") {
		return appAndLB
	}
	return nil
}

var appAndLB = []string{"app", "lb"}

// ReadsSettings implements artifact.SettingsReader: the stack settings its
// files are made from (TestRenderChangedSettingsMatchesRender checks them).
func (Gen) ReadsSettings() []string {
	return []string{"aliases", "app", "apps", "balancer", "domain", "monitoring", "os", "tls", "tuning"}
}
