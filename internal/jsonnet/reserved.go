package jsonnet

import (
	"path"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/secret"
)

// Paths push keeps for itself on every host (internal/push: StateDir,
// TempPrefix); a test keeps them equal.
const (
	ReservedDir    = "var/lib/hacompile"
	ReservedPrefix = ".hacompile-tmp-"
)

// checkFiles refuses what a custom generator may not write: push's own
// records, backups and temporary files (writing them would corrupt
// rollback or a push in progress), and secrets, which the secret-inline
// rule keeps out of stacks and so out of out/, git and the runbook.
func checkFiles(files []artifact.File) error {
	for _, f := range files {
		if f.Path == ReservedDir || strings.HasPrefix(f.Path, ReservedDir+"/") {
			return outputErrorf("/"+f.Path, "", "file %q: /%s is push's own record of what it wrote (state, lock, backup generations); a generator may not write there", "/"+f.Path, ReservedDir)
		}
		if strings.HasPrefix(path.Base(f.Path), ReservedPrefix) {
			return outputErrorf("/"+f.Path, "", "file %q: names starting %s are push's temporary files; a generator may not write one", "/"+f.Path, ReservedPrefix)
		}
		for i, text := range []string{string(f.Content), f.Validate.String(), f.Reload.String()} {
			if what := secret.In(text); what != "" {
				return outputErrorf("/"+f.Path, []string{"content", "validate", "reload"}[i], "file %q: looks like %s: secrets stay in files on the host that the rendered config references, never in out/", "/"+f.Path, what)
			}
		}
	}
	return nil
}
