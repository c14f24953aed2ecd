package haproxy

import (
	"bytes"
	"fmt"
	"regexp"
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
// socat is the runtime API's client (AdminSocket): the runbook's drain
// and balancer checks pipe commands through it, and the haproxy
// package does not depend on it.
func (Gen) Packages(_ *schema.Stack, _ *schema.Host, files []artifact.File) []string {
	return artifact.IfAny(files, "haproxy", "socat")
}

// FirstBoot implements artifact.Booter: check the configuration with the
// file's own validate command, start HAProxy, then obtain the
// certificate. HAProxy starts without one (strict-sni) and sends ACME
// challenges to certbot on port 8888 of every balancer; the deploy hook
// builds the PEM HAProxy reads and reloads it.
func (Gen) FirstBoot(s *schema.Stack, h *schema.Host, files []artifact.File) []artifact.Step {
	if len(files) == 0 {
		return nil
	}
	steps := artifact.StartService(files, ConfigPath, "haproxy")
	if s.MultiApp() {
		// A certificate per set of host names, each with its own hook.
		for _, v := range certViews(s) {
			if artifact.UsesCertbot(v, h) && slices.ContainsFunc(files, func(f artifact.File) bool { return f.Path == certScriptPath(v) }) {
				steps = append(steps, artifact.Step{Phase: artifact.PhaseServices,
					Command: artifact.CertbotCommand(v, fmt.Sprintf("--http-01-address %s --http-01-port 8888", h.Address), "--deploy-hook /"+certScriptPath(v))})
			}
		}
		return steps
	}
	if hook := deployHook(files); artifact.UsesCertbot(s, h) && hook != "" {
		steps = append(steps, artifact.Step{Phase: artifact.PhaseServices,
			Command: artifact.CertbotCommand(s, fmt.Sprintf("--http-01-address %s --http-01-port 8888", h.Address), "--deploy-hook /"+hook)})
	}
	return steps
}

// deployHook is the certbot deploy hook among the files, if any.
func deployHook(files []artifact.File) string {
	for _, f := range files {
		if strings.HasPrefix(f.Path, "etc/letsencrypt/renewal-hooks/deploy/") {
			return f.Path
		}
	}
	return ""
}

var _ artifact.Sourcer = Gen{}

// Sources implements artifact.Sourcer: the configuration lists the app
// hosts as servers.
func (Gen) Sources(s *schema.Stack, f artifact.File) []string {
	if strings.Contains(f.Path, "letsencrypt") {
		return []string{"tls"}
	}
	if f.Path == ConfigPath {
		return append([]string{"balancer"}, artifact.AppHostEntries(s)...)
	}
	return []string{"balancer"}
}

var _ artifact.Facter = Gen{}

// AdminSocket is the runtime API's socket the runbook's drain and
// status commands talk to.
const AdminSocket = adminSocket

// Facts implements artifact.Facter: ACME challenges go to the acme
// backend of certbot listeners on every balancer.
func (Gen) Facts(_ *schema.Stack, files []artifact.File) artifact.Facts {
	return artifact.Facts{RelaysACME: slices.ContainsFunc(files, func(f artifact.File) bool {
		return bytes.Contains(f.Content, []byte("backend acme"))
	})}
}

// PackageDirs implements artifact.Packager.
func (Gen) PackageDirs() []string { return []string{"etc/haproxy/"} }

var (
	backendRE = regexp.MustCompile(`(?m)^backend\s+(\S+)`)
	serverRE  = regexp.MustCompile(`^server\s+(\S+)\s+(\S+)`)
)

// Servers maps the server addresses of a haproxy.cfg this package
// rendered to their "backend/server" names, the names the runtime API
// (AdminSocket) takes: the runbook's drain procedure quotes them. The
// acme backend (certbot's listeners) is left out.
func Servers(cfg []byte) map[string]string {
	out := map[string]string{}
	backend := ""
	for _, l := range strings.Split(string(cfg), "\n") {
		t := strings.TrimSpace(l)
		if m := backendRE.FindStringSubmatch(l); m != nil {
			backend = m[1]
			continue
		}
		if m := serverRE.FindStringSubmatch(t); m != nil && backend != "" && backend != "acme" {
			out[m[2]] = backend + "/" + m[1]
		}
	}
	return out
}
