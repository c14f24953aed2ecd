package jsonnet_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/evalbudget"
	"github.com/hacompile/hacompile/internal/jsonnet"
)

// TestEvalBudget: an evaluation that would exhaust memory
// (std.makeArray(1e9, ...)), run on or recurse past Go's stack limit
// ends the process with a message
// naming the file and the limit, and exit status 1, instead of being
// killed by the kernel or the Go runtime. Each runs in a child process
// with a small budget.
func TestEvalBudget(t *testing.T) {
	if prog := os.Getenv("HACOMPILE_BUDGET_CHILD"); prog != "" {
		evalbudget.Limits.Time, evalbudget.Limits.Memory = 3*time.Second, 64<<20
		if os.Getenv("HACOMPILE_BUDGET_TIME_ONLY") != "" {
			// The loop makes garbage as it runs: with the small memory
			// budget, which limit stops it first depends on the machine.
			evalbudget.Limits.Memory = 2 << 30
		}
		_, _, err := jsonnet.EvalStack(jsonnet.Source{Name: "stacks/big.jsonnet", Data: []byte(prog)}, jsonnet.Options{})
		t.Fatalf("evaluation returned: %v", err)
	}
	for _, tc := range []struct {
		prog, want string
		timeOnly   bool
	}{
		{`{a: std.length(std.makeArray(3e7, function(i) i))}`, "stacks/big.jsonnet: Jsonnet evaluation stopped: it used more than 64 MiB of memory", false},
		{`{a: std.length(std.makeArray(1e9, function(i) [i]))}`, "stacks/big.jsonnet: Jsonnet evaluation stopped: it", false},
		// A loop that makes neither memory nor stack: a billion steps.
		{`{a: std.foldl(function(a, i) std.foldl(function(b, j) (b + j) % 7, std.range(1, 1e4), a), std.range(1, 1e5), 0)}`, "stacks/big.jsonnet: Jsonnet evaluation stopped: it ran longer than 3s", true},
		// go-jsonnet recurses in Go even for tailstrict calls: the stack
		// would outgrow Go's limit, which no program survives.
		{`local f(n, acc) = if n == 0 then acc else f(n - 1, (acc + 1) % 7) tailstrict; {a: f(1e9, 0)}`, "stacks/big.jsonnet: Jsonnet evaluation stopped: it recursed too deeply (over 256 MiB of stack", true},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEvalBudget$")
		cmd.Env = append(os.Environ(), "HACOMPILE_BUDGET_CHILD="+tc.prog)
		if tc.timeOnly {
			cmd.Env = append(cmd.Env, "HACOMPILE_BUDGET_TIME_ONLY=1")
		}
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "hacompile: "+tc.want) {
			t.Errorf("%s: %v\n%.2000s", tc.prog, err, out)
		}
	}
}
