package mtail

import (
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

var (
	_ artifact.Packager = Gen{}
	_ artifact.Booter   = Gen{}
)

// Packages implements artifact.Packager.
func (Gen) Packages(_ *schema.Stack, _ *schema.Host, files []artifact.File) []string {
	return artifact.IfAny(files, "mtail")
}

// PackageDirs implements artifact.Packager.
func (Gen) PackageDirs() []string { return []string{"etc/default/mtail", "etc/mtail/"} }

// FirstBoot implements artifact.Booter: mtail reads its program and
// flags when it starts.
func (Gen) FirstBoot(_ *schema.Stack, _ *schema.Host, files []artifact.File) []artifact.Step {
	if len(files) == 0 {
		return nil
	}
	return []artifact.Step{
		{Phase: artifact.PhaseServices, Command: "systemctl enable mtail"},
		{Phase: artifact.PhaseServices, Command: "systemctl restart mtail"},
	}
}
