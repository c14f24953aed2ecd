package evalbudget_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/evalbudget"
)

// TestExceededReportsOnce: evaluations that go over their budget
// together end the process with one Report, not one each (a second
// JSON document would make the output unreadable), and exit status 1.
// The test runs itself as the child process that goes over.
func TestExceededReportsOnce(t *testing.T) {
	if os.Getenv("HACOMPILE_EVALBUDGET_CHILD") != "" {
		evalbudget.Limits.Time = 20 * time.Millisecond
		evalbudget.Report = func(msg string) {
			fmt.Println("report: " + msg)
			// Time for another evaluation's report to come out.
			time.Sleep(200 * time.Millisecond)
		}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = evalbudget.Run(fmt.Sprintf("stacks/s%d.jsonnet", i), "Jsonnet", func() (int, error) {
					time.Sleep(time.Hour)
					return 0, nil
				})
			}()
		}
		wg.Wait()
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestExceededReportsOnce$")
	cmd.Env = append(os.Environ(), "HACOMPILE_EVALBUDGET_CHILD=1")
	out, err := cmd.Output()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("%v, want exit status 1\n%s", err, out)
	}
	if n := strings.Count(string(out), "report: "); n != 1 || !strings.Contains(string(out), "Jsonnet evaluation stopped: it ran longer than 20ms (the limit of one evaluation, --eval-time)") {
		t.Errorf("%d reports, want 1:\n%s", n, out)
	}
}
