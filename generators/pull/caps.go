package pull

import (
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

var (
	_ artifact.Packager = Gen{}
	_ artifact.Booter   = Gen{}
)

// Packages implements artifact.Packager: apply writes through OpenSSH's
// sftp-server (push's engine, locally); curl downloads the agent.
func (Gen) Packages(s *schema.Stack, _ *schema.Host, files []artifact.File) []string {
	if len(files) == 0 {
		return nil
	}
	pkgs := []string{"openssh-sftp-server"}
	if s.Delivery.Pull.Agent.URL != "" {
		pkgs = append(pkgs, "curl", "ca-certificates")
	}
	return pkgs
}

// PackageDirs implements artifact.Packager.
func (Gen) PackageDirs() []string { return nil }

// FirstBoot implements artifact.Booter: install the agent (downloaded
// and checked against its sha256, or required in the image), then
// start the timer and run a first apply, which records the host's
// state so the timer's next runs see drift; a first apply that fails
// (the registry not reachable yet) is retried by the timer.
func (Gen) FirstBoot(s *schema.Stack, _ *schema.Host, files []artifact.File) []artifact.Step {
	if len(files) == 0 {
		return nil
	}
	a := s.Delivery.Pull.Agent
	q := artifact.ShellQuote
	install := "test -x " + q(a.Path) + " || { echo " + q("hacompile: "+a.Path+" is missing: delivery.pull.agent.url is not set, so the image must have it") + " >&2; false; }"
	if a.URL != "" {
		tmp := a.Path + ".download"
		install = "curl -fsSL --retry 5 -o " + q(tmp) + " " + q(a.URL) +
			" && echo " + q(a.SHA256+"  "+tmp) + " | sha256sum -c --quiet -" +
			" && chmod 0755 " + q(tmp) + " && mv " + q(tmp) + " " + q(a.Path)
	}
	return []artifact.Step{
		{Phase: artifact.PhaseBeforeUnits, Command: install},
		{Phase: artifact.PhaseServices, Command: "systemctl enable --now " + Unit(s) + ".timer"},
		{Phase: artifact.PhaseServices, Command: "systemctl start " + Unit(s) + ".service || echo " + q("hacompile: the first apply failed; "+Unit(s)+".timer retries it") + " >&2"},
	}
}
