// Package limits renders the open-files limit for login sessions and
// cron jobs as a limits.d drop-in on every host. Services get theirs
// from systemd's LimitNOFILE=, which pam_limits does not affect.
package limits

import (
	"fmt"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the limits generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "limits" }

// Path is the drop-in's path on the host.
const Path = "etc/security/limits.d/60-hacompile.conf"

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	var b strings.Builder
	b.WriteString(artifact.Header("#", s))
	b.WriteString("# Applies to new login sessions. The wildcard does not match root, so root is listed too.\n")
	for _, who := range []string{"*", "root"} {
		for _, kind := range []string{"soft", "hard"} {
			fmt.Fprintf(&b, "%-5s %-4s nofile %d\n", who, kind, s.Tuning.Nofile)
		}
	}
	content := []byte(b.String())
	names := s.HostNames()
	files := make([]artifact.File, 0, len(names))
	for _, h := range names {
		if !opt.Renders(h) {
			continue
		}
		files = append(files, artifact.File{Host: h, Path: Path, Content: content, Mode: 0o644, Owner: "root:root"})
	}
	return files, nil
}

// Reads implements artifact.Scoper: no other host's record reaches its
// files (every host's limits are the stack's).
func (Gen) Reads(*schema.Stack, *schema.Host) []string { return nil }

// ReadsSettings implements artifact.SettingsReader: the stack settings its
// files are made from (TestRenderChangedSettingsMatchesRender checks them).
func (Gen) ReadsSettings() []string { return []string{"tuning"} }
