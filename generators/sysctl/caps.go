package sysctl

import (
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

var _ artifact.Booter = Gen{}

// FirstBoot implements artifact.Booter: the settings apply before the
// services start, which may size themselves from kernel limits.
func (Gen) FirstBoot(_ *schema.Stack, _ *schema.Host, files []artifact.File) []artifact.Step {
	if len(files) == 0 {
		return nil
	}
	return []artifact.Step{{Phase: artifact.PhaseKernel, Command: "sysctl --system"}}
}

var _ artifact.Sourcer = Gen{}

// Sources implements artifact.Sourcer.
func (Gen) Sources(*schema.Stack, artifact.File) []string {
	return []string{"tuning.sysctl", "tuning"}
}
