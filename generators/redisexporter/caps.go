package redisexporter

import (
	"fmt"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

var (
	_ artifact.Packager = Gen{}
	_ artifact.Booter   = Gen{}
)

// Packages implements artifact.Packager.
func (Gen) Packages(_ *schema.Stack, _ *schema.Host, files []artifact.File) []string {
	return artifact.IfAny(files, "prometheus-redis-exporter")
}

// PackageDirs implements artifact.Packager.
func (Gen) PackageDirs() []string { return []string{"etc/default/prometheus-redis-exporter"} }

// FirstBoot implements artifact.Booter. Like Redis, the exporter needs
// its password file, a secret the operator provisions: without it, it
// would exit at once.
func (Gen) FirstBoot(_ *schema.Stack, _ *schema.Host, files []artifact.File) []artifact.Step {
	if len(files) == 0 {
		return nil
	}
	pw := PasswordFile
	return []artifact.Step{
		{Phase: artifact.PhaseServices, Command: "systemctl enable prometheus-redis-exporter"},
		{Phase: artifact.PhaseServices, Command: fmt.Sprintf("if [ -e %s ]; then systemctl restart prometheus-redis-exporter; else systemctl stop prometheus-redis-exporter; echo 'hacompile: provision %s, then run: systemctl restart prometheus-redis-exporter'; fi", pw, pw)},
	}
}
