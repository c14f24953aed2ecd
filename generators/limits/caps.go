package limits

import (
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

var _ artifact.Sourcer = Gen{}

// Sources implements artifact.Sourcer.
func (Gen) Sources(*schema.Stack, artifact.File) []string {
	return []string{"tuning.nofile", "tuning"}
}

var _ artifact.Effecter = Gen{}

// Effect implements artifact.Effecter: pam_limits reads the file when a
// session starts.
func (Gen) Effect() string { return "new login sessions" }
