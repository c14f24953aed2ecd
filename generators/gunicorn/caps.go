package gunicorn

import (
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

var _ artifact.Sourcer = Gen{}

// Sources implements artifact.Sourcer.
func (Gen) Sources(*schema.Stack, artifact.File) []string { return []string{"app"} }
