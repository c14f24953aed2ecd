package cloudinit

import (
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

var _ artifact.Sourcer = Gen{}

// Sources implements artifact.Sourcer: a host's document comes from the
// host's entry.
func (Gen) Sources(_ *schema.Stack, f artifact.File) []string {
	return []string{"hosts." + strings.TrimSuffix(strings.TrimPrefix(f.Path, "cloud-init/"), ".yaml")}
}

var _ artifact.Effecter = Gen{}

// Effect implements artifact.Effecter: a document is read on a
// machine's first boot.
func (Gen) Effect() string { return "new instances only" }
