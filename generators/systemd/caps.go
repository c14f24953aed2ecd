package systemd

import (
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

var _ artifact.Packager = Gen{}

// Packages implements artifact.Packager: what runs the app unit on an
// app host — Starman, the virtualenv's Python, or Debian's gunicorn
// with the worker class's library.
func (Gen) Packages(s *schema.Stack, h *schema.Host, _ []artifact.File) []string {
	if !h.Has("app") {
		return nil
	}
	switch {
	case s.App.Runtime == "perl":
		return []string{"starman"}
	case s.App.Virtualenv != "":
		return []string{"python3", "python3-venv"}
	}
	pkgs := []string{"gunicorn"}
	switch s.App.WorkerClass {
	case "gevent":
		pkgs = append(pkgs, "python3-gevent")
	case "uvicorn":
		pkgs = append(pkgs, "python3-uvicorn")
	}
	return pkgs
}

var _ artifact.Sourcer = Gen{}

// Sources implements artifact.Sourcer: a drop-in carries the limits
// and the balancer's environment, a unit the app.
func (Gen) Sources(_ *schema.Stack, f artifact.File) []string {
	if strings.Contains(f.Path, ".service.d/") {
		return []string{"tuning.nofile", "tuning", "balancer"}
	}
	return []string{"app"}
}

// PackageDirs implements artifact.Packager.
func (Gen) PackageDirs() []string { return nil }
