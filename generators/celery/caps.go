package celery

import (
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

var _ artifact.Packager = Gen{}

// Packages implements artifact.Packager: Celery runs the app's code,
// from the virtualenv or with Debian's Celery and the libraries its pool
// and broker need.
func (Gen) Packages(s *schema.Stack, h *schema.Host, _ []artifact.File) []string {
	if !h.Has("worker") || s.Workers == nil {
		return nil
	}
	if s.App.Virtualenv != "" {
		return []string{"python3", "python3-venv"}
	}
	pkgs := []string{"celery"}
	if s.Workers.Pool == "gevent" {
		pkgs = append(pkgs, "python3-gevent")
	}
	if s.Queue != nil && s.Queue.Engine == "redis" {
		pkgs = append(pkgs, "python3-redis")
	}
	return pkgs
}

// PackageDirs implements artifact.Packager.
func (Gen) PackageDirs() []string { return nil }
