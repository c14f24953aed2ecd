package haproxy

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
	return artifact.IfAny(files, "haproxy")
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

// Sources implements artifact.Sourcer.
func (Gen) Sources(_ *schema.Stack, f artifact.File) []string {
	if strings.Contains(f.Path, "letsencrypt") {
		return []string{"tls"}
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
