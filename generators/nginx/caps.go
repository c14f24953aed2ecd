package nginx

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

var (
	_ artifact.Packager = Gen{}
	_ artifact.Booter   = Gen{}
)

// Packages implements artifact.Packager.
func (Gen) Packages(_ *schema.Stack, _ *schema.Host, files []artifact.File) []string {
	return artifact.IfAny(files, "nginx")
}

// FirstBoot implements artifact.Booter: the certificate first (nginx
// cannot start with a TLS server whose certificate does not exist yet),
// then check the configuration with the file's own validate command and
// start nginx.
func (Gen) FirstBoot(s *schema.Stack, h *schema.Host, files []artifact.File) []artifact.Step {
	if len(files) == 0 {
		return nil
	}
	var steps []artifact.Step
	switch {
	case artifact.UsesCertbot(s, h) && slices.ContainsFunc(files, func(f artifact.File) bool { return f.Path == ACMEConfPath }):
		steps = append(steps, artifact.Step{Phase: artifact.PhaseBeforeUnits, Command: firstCertCommand(s)})
	case artifact.UsesCertbot(s, h):
		// certbot's own listener on port 80; the hooks are stored in the
		// renewal configuration, so renewals free port 80 the same way.
		steps = append(steps, artifact.Step{Phase: artifact.PhaseBeforeUnits,
			Command: artifact.CertbotCommand(s, "--pre-hook 'systemctl stop nginx' --post-hook 'systemctl start nginx'")})
	}
	return append(steps, artifact.StartService(files, ConfPath, "nginx")...)
}

// firstCertCommand obtains an app host's first certificate unless it
// exists: nginx.service stopped (the package's postinst starts it, on
// Debian's default site or on nginx.conf, which fails without the
// certificate), the first-certificate nginx (ACMEConfPath) serves the webroot
// on the host's port 80, as nginx.service will, and relays the
// challenges it lacks to its siblings, while certbot --webroot runs;
// it stops, and is waited for, however certbot ends (a subshell's
// trap: runcmd's own shell goes on). certbot stores the webroot for
// renewals, which nginx.service serves; its deploy hook reloads nginx
// once it runs (at first boot it does not yet: try-reload-or-restart
// leaves it alone).
func firstCertCommand(s *schema.Stack) string {
	conf := "/" + ACMEConfPath
	stop := fmt.Sprintf("nginx -c %s -s quit; i=0; while [ -e %s ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done", conf, ACMEPIDPath)
	certbot := artifact.CertbotCertonly(s, "--webroot -w "+artifact.ShellQuote(s.TLS.ACMERoot), "--deploy-hook 'systemctl try-reload-or-restart nginx'")
	return fmt.Sprintf("test -e %s || (systemctl stop nginx && nginx -c %s && trap %s EXIT && %s)", artifact.ShellQuote(s.TLS.Certificate), conf, artifact.ShellQuote(stop), certbot)
}

var _ artifact.Sourcer = Gen{}

// Sources implements artifact.Sourcer.
func (Gen) Sources(s *schema.Stack, f artifact.File) []string {
	switch {
	case strings.Contains(f.Path, "snippets/hacompile-tls"):
		return []string{"tls.profile", "tls"}
	case f.Host != "" && s.Hosts[f.Host].Has("lb"):
		// The balancer's upstreams are the app hosts.
		return append([]string{"balancer"}, artifact.AppHostEntries(s)...)
	case strings.HasSuffix(f.Path, "nginx.conf"):
		return []string{"tuning.nginx_worker_connections", "tuning", "app"}
	}
	return []string{"app.static", "app"}
}

var _ artifact.Facter = Gen{}

// Facts implements artifact.Facter: the relay is the upstream named
// <app>_acme_relay or <app>_lb_acme_relay (see acmeRelay).
func (Gen) Facts(_ *schema.Stack, files []artifact.File) artifact.Facts {
	return artifact.Facts{RelaysACME: slices.ContainsFunc(files, func(f artifact.File) bool {
		return bytes.Contains(f.Content, []byte("acme_relay"))
	})}
}

// PackageDirs implements artifact.Packager.
func (Gen) PackageDirs() []string { return []string{"etc/nginx/"} }
