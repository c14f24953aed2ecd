package cli

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/hacompile/hacompile/internal/par"
)

// TestExitCodesDistinct: every exit code means one thing, so a CI script
// can tell "the rendered files changed" from a usage error or a failure.
func TestExitCodesDistinct(t *testing.T) {
	codes := map[string]int{
		"ok": exitOK, "failure": exitFailure, "usage": exitUsage, "changed": exitChanged,
		"host key unknown": exitHostKeyUnknown, "host key changed": exitHostKeyChanged, "drift": exitDrift, "not converged": exitNotConverged,
		"internal error": exitInternal,
		// Go's own exit code for a fatal runtime error.
		"Go runtime fatal error": 2,
	}
	seen := map[int]string{}
	for name, c := range codes {
		if other, ok := seen[c]; ok {
			t.Errorf("exit code %d means both %q and %q", c, other, name)
		}
		seen[c] = name
	}
}

// TestHelpExitCodes: where a command's help lists its exit codes, the
// code it gives a usage error is the one hacompile exits with.
func TestHelpExitCodes(t *testing.T) {
	re := regexp.MustCompile(`(\d+) usage`)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, m := range re.FindAllStringSubmatch(strings.Join(strings.Fields(c.Long), " "), -1) {
			if m[1] != strconv.Itoa(exitUsage) {
				t.Errorf("hacompile %s --help says %q; a usage error exits %d", c.Name(), m[0], exitUsage)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(New(io.Discard, io.Discard))
}

// TestPanicExitCode: a panic, on the command's goroutine or in a piece
// of parallel work, ends the process with the internal error's code and
// a message saying so, not with Go's 2. The
// test runs itself as the child process that panics.
func TestPanicExitCode(t *testing.T) {
	if where := os.Getenv("HACOMPILE_TEST_PANIC"); where != "" {
		os.Exit(guard(os.Stderr, func() int {
			if where == "worker" {
				par.Each(8, func(i int) {
					if i == 5 {
						panic("boom in the worker")
					}
				})
			}
			panic("boom in the command")
		}))
	}
	for _, where := range []string{"command", "worker"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPanicExitCode$")
		cmd.Env = append(os.Environ(), "HACOMPILE_TEST_PANIC="+where)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitInternal {
			t.Errorf("panic in the %s: %v, want exit code %d\n%s", where, err, exitInternal, out)
		}
		if !strings.Contains(string(out), "hacompile: internal error") || !strings.Contains(string(out), "boom in the "+where) {
			t.Errorf("panic in the %s: message %q", where, out)
		}
	}
}
