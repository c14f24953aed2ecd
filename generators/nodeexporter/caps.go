package nodeexporter

import (
	"path"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

var (
	_ artifact.Packager = Gen{}
	_ artifact.Booter   = Gen{}
)

// Packages implements artifact.Packager.
func (Gen) Packages(_ *schema.Stack, _ *schema.Host, files []artifact.File) []string {
	return artifact.IfAny(files, "prometheus-node-exporter")
}

// PackageDirs implements artifact.Packager: the package reads its ARGS
// file from /etc/default.
func (Gen) PackageDirs() []string { return []string{"etc/default/prometheus-node-exporter"} }

// FirstBoot implements artifact.Booter. The package started the exporter
// on every interface before its ARGS file was written: restart it on the
// host's private address, and start the certificate-expiry timer.
func (Gen) FirstBoot(_ *schema.Stack, _ *schema.Host, files []artifact.File) []artifact.Step {
	if len(files) == 0 {
		return nil
	}
	steps := []artifact.Step{
		{Phase: artifact.PhaseServices, Command: "systemctl enable prometheus-node-exporter"},
		{Phase: artifact.PhaseServices, Command: "systemctl restart prometheus-node-exporter"},
	}
	for _, f := range files {
		if strings.HasSuffix(f.Path, ".timer") {
			// Its service also runs now: the certificate was obtained by
			// the steps before this one, and the metric must say so
			// before the timer's next run.
			steps = append(steps,
				artifact.Step{Phase: artifact.PhaseServices, Command: "systemctl enable --now " + path.Base(f.Path)},
				artifact.Step{Phase: artifact.PhaseServices, Command: "systemctl start " + strings.TrimSuffix(path.Base(f.Path), ".timer") + ".service"})
		}
	}
	return steps
}
