package memcached

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
	return artifact.IfAny(files, Package)
}

// PackageDirs implements artifact.Packager: memcached.conf replaces the
// one the package ships, so it is written after the package.
func (Gen) PackageDirs() []string { return []string{ConfPath} }

// FirstBoot implements artifact.Booter: Memcached restarts on the
// rendered file.
func (Gen) FirstBoot(_ *schema.Stack, _ *schema.Host, files []artifact.File) []artifact.Step {
	if len(files) == 0 {
		return nil
	}
	return []artifact.Step{
		{Phase: artifact.PhaseServices, Command: "systemctl enable " + Service},
		{Phase: artifact.PhaseServices, Command: "systemctl restart " + Service},
	}
}

// Sources implements artifact.Sourcer.
func (Gen) Sources(_ *schema.Stack, _ artifact.File) []string { return []string{"cache"} }
