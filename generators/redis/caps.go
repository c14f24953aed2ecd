package redis

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
	return artifact.IfAny(files, "redis-server")
}

// FirstBoot implements artifact.Booter. Redis refuses to start without
// its ACL file, a secret the operator provisions: start it when the file
// is there, else keep the package's loopback-only instance stopped and
// say what to do.
func (Gen) FirstBoot(s *schema.Stack, _ *schema.Host, files []artifact.File) []artifact.Step {
	if len(files) == 0 || s.Cache == nil {
		return nil
	}
	acl := s.Cache.ACLFile
	return []artifact.Step{
		{Phase: artifact.PhaseServices, Command: "systemctl enable redis-server"},
		{Phase: artifact.PhaseServices, Command: fmt.Sprintf("if [ -e %s ]; then systemctl restart redis-server; else systemctl stop redis-server; echo 'hacompile: provision %s, then run: systemctl restart redis-server'; fi", acl, acl)},
	}
}

// PackageDirs implements artifact.Packager.
func (Gen) PackageDirs() []string { return nil }
