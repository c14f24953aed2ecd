package keepalived

import (
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

var (
	_ artifact.Packager = Gen{}
	_ artifact.Booter   = Gen{}
)

// Packages implements artifact.Packager: curl for the reserved-IP
// notify script, which calls the provider's API (on AWS through the AWS
// CLI), and for the state script, which asks the metadata service who
// holds the address (iproute2 and util-linux's flock are in every
// Debian install).
func (Gen) Packages(s *schema.Stack, _ *schema.Host, files []artifact.File) []string {
	if len(files) == 0 {
		return nil
	}
	// tcpdump: the split-brain alert's first check watches the VRRP
	// advertisements on the interface.
	pkgs := []string{"keepalived", "curl", "tcpdump"}
	if s.Provider == "aws" && s.Balancer.Failover == "reserved-ip" {
		pkgs = append(pkgs, "awscli")
	}
	return pkgs
}

// PackageDirs implements artifact.Packager.
func (Gen) PackageDirs() []string { return []string{"etc/keepalived/"} }

// FirstBoot implements artifact.Booter. keepalived starts after the
// balancer daemon (its row comes after theirs): its check tracks it, and
// the first election needs it running. keepalived -t also checks the
// interface exists: when it fails, say so rather than stop the boot
// script (the balancer serves on its own address meanwhile).
//
// With the state metric, its timer starts after keepalived: keepalived's
// first notify has published the state, and the timer keeps it current.
func (Gen) FirstBoot(_ *schema.Stack, _ *schema.Host, files []artifact.File) []artifact.Step {
	if len(files) == 0 {
		return nil
	}
	steps := []artifact.Step{{Phase: artifact.PhaseServices,
		Command: "if keepalived -t -f /" + ConfigPath + "; then systemctl enable keepalived; systemctl restart keepalived; " +
			"else echo 'hacompile: /" + ConfigPath + " does not check (keepalived -t): keepalived not started; fix the stack, push, then: systemctl enable --now keepalived'; fi"}}
	if !artifact.ValidateOf(files, StateTimerPath).IsZero() {
		steps = append(steps, artifact.Step{Phase: artifact.PhaseServices, Command: "systemctl enable --now " + StateTimer})
	}
	return steps
}
