// Package sysctl renders the stack's kernel settings as a sysctl.d drop-in
// on every host.
package sysctl

import (
	"maps"
	"slices"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the sysctl generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "sysctl" }

// Path is the drop-in's path on the host. The 60- prefix sorts it after
// the distribution's defaults (10-…, 50-…) so its values win.
const Path = "etc/sysctl.d/60-hacompile.conf"

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	if len(s.Tuning.Sysctl) == 0 {
		return nil, nil
	}
	var b strings.Builder
	b.WriteString(artifact.Header("#", s))
	b.WriteString("# Kernel settings for the stack's network load; applied with sysctl --system.\n")
	for _, k := range slices.Sorted(maps.Keys(s.Tuning.Sysctl)) {
		b.WriteString(k + " = " + string(s.Tuning.Sysctl[k]) + "\n")
	}
	content := []byte(b.String())
	var files []artifact.File
	for _, h := range s.HostNames() {
		files = append(files, artifact.File{
			Host: h, Path: Path, Content: content, Mode: 0o644, Owner: "root:root",
			Reload: artifact.SysctlSystem(),
		})
	}
	return files, nil
}
