package rabbitmq

import (
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

var (
	_ artifact.Packager = Gen{}
	_ artifact.Booter   = Gen{}
	_ artifact.Sourcer  = Gen{}
)

// Packages implements artifact.Packager.
func (Gen) Packages(_ *schema.Stack, _ *schema.Host, files []artifact.File) []string {
	// python3 hashes the broker's password for the setup script.
	return artifact.IfAny(files, Package, "python3")
}

// PackageDirs implements artifact.Packager: the configuration is written
// after the package, over the files it ships.
func (Gen) PackageDirs() []string { return []string{"etc/rabbitmq/"} }

// FirstBoot implements artifact.Booter: the node restarts on the
// rendered configuration, then the setup unit creates the vhost and
// user (it says in the journal when the password file is missing).
func (Gen) FirstBoot(_ *schema.Stack, _ *schema.Host, files []artifact.File) []artifact.Step {
	if len(files) == 0 {
		return nil
	}
	return []artifact.Step{
		{Phase: artifact.PhaseServices, Command: "systemctl enable " + Service},
		{Phase: artifact.PhaseServices, Command: "systemctl restart " + Service},
		{Phase: artifact.PhaseServices, Command: "systemctl enable " + SetupUnit},
		{Phase: artifact.PhaseServices, Command: "systemctl restart " + SetupUnit},
	}
}

// Sources implements artifact.Sourcer.
func (Gen) Sources(_ *schema.Stack, _ artifact.File) []string { return []string{"queue"} }
