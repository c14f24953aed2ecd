package instance

import (
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

var (
	_ artifact.Packager = Gen{}
	_ artifact.Sourcer  = Gen{}
)

// Packages implements artifact.Packager: the setup script calls the AWS
// CLI.
func (Gen) Packages(s *schema.Stack, h *schema.Host, files []artifact.File) []string {
	for _, f := range files {
		if f.Path == ScriptPath(&s.App) {
			return []string{Package}
		}
	}
	return nil
}

// PackageDirs implements artifact.Packager.
func (Gen) PackageDirs() []string { return nil }

// Sources implements artifact.Sourcer.
func (Gen) Sources(s *schema.Stack, f artifact.File) []string {
	if f.Path == DropInPath(&s.App) && s.Scaling.AppSource.Kind == "image" {
		return []string{"scaling.app_source", "scaling.image"}
	}
	return []string{"scaling.secrets", "scaling.app_source"}
}
