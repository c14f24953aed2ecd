package cli

import "testing"

// TestExitCodesDistinct: every exit code means one thing, so a CI script
// can tell "the rendered files changed" from a usage error or a failure.
func TestExitCodesDistinct(t *testing.T) {
	codes := map[string]int{
		"ok": exitOK, "failure": exitFailure, "usage": exitUsage, "changed": exitChanged,
		"host key unknown": exitHostKeyUnknown, "host key changed": exitHostKeyChanged, "drift": exitDrift, "not converged": exitNotConverged,
	}
	seen := map[int]string{}
	for name, c := range codes {
		if other, ok := seen[c]; ok {
			t.Errorf("exit code %d means both %q and %q", c, other, name)
		}
		seen[c] = name
	}
}
