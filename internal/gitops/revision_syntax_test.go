package gitops_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/gitops"
)

// TestCheckRevision: the forms Resolve does not read are refused before
// any repository is read, as a *RevisionSyntaxError (a usage error to
// the command line) naming the part not supported and the forms that
// are.
func TestCheckRevision(t *testing.T) {
	for _, rev := range []string{
		"HEAD", "@", "main", "origin/main", "refs/heads/main", "v1.2", "1a2b", "1A2B3C4D", "HEAD~2", "main^2~1",
		"HEAD^", "HEAD~", "HEAD^0", "HEAD^^2~", "v1^{}", "v1^{commit}~1", "release/2026-01",
	} {
		if err := gitops.CheckRevision(rev); err != nil {
			t.Errorf("CheckRevision(%q): %v", rev, err)
		}
	}
	for rev, part := range map[string]string{
		"HEAD@{1}":                  "reflog",
		"main@{upstream}":           "@{upstream}",
		"@{-1}":                     "@{-N}",
		"HEAD~1:no/such/path":       "REV:PATH",
		"HEAD~1^{tree}":             "^{tree} is not supported",
		"HEAD^{/fix}":               "^{/TEXT}",
		":/fix":                     ":/TEXT",
		"HEAD..main":                "A..B",
		"^HEAD":                     "^REV",
		"HEAD^!":                    "REV^!",
		"HEAD~x":                    `"x" after "HEAD~"`,
		"HEAD^2x":                   `"x" after "HEAD^2"`,
		"v1^{}x":                    `"x" after "v1^{}"`,
		"~1":                        "need a ref or commit hash before them",
		"a b":                       `"a b" is not a valid ref name`,
		"-x":                        `"-x" is not a valid ref name`,
		"":                          "empty",
		"HEAD~18446744073709551616": "the number is too large",
	} {
		err := gitops.CheckRevision(rev)
		var se *gitops.RevisionSyntaxError
		if !errors.As(err, &se) {
			t.Errorf("CheckRevision(%q): %v, want a *RevisionSyntaxError", rev, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, part) || !strings.Contains(msg, gitops.RevisionForms) {
			t.Errorf("CheckRevision(%q): %s\nwant it to name %q and the forms supported", rev, msg, part)
		}
	}
	// A form git resolves to a commit: resolve it with git first.
	for rev, want := range map[string]string{
		"HEAD@{1}":    `"$(git rev-parse --verify 'HEAD@{1}^{commit}')"`,
		"HEAD^{/fix}": `"$(git rev-parse --verify 'HEAD^{/fix}^{commit}')"`,
		":/fix":       `"$(git rev-parse --verify ':/fix')"`,
	} {
		if err := gitops.CheckRevision(rev); err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("CheckRevision(%s): %v\nwant it to end with %s", rev, err, want)
		}
	}
}
