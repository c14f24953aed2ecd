// Package evalbudget bounds one evaluation of a stack language: a CUE
// stack file, a Jsonnet stack file, or a custom generator's run. Neither
// CUE's nor go-jsonnet's evaluator can be interrupted, and an input of a
// few lines can ask either for gigabytes (a string doubled thirty times,
// std.makeArray(1e9, …)) or for hours, so an evaluation over its budget
// ends the process with a message naming the file and the limit, and
// exit status 1, rather than exhausting the machine's memory or running
// on. No real stack comes near the defaults.
package evalbudget

import (
	"fmt"
	"os"
	"runtime/metrics"
	"sync"
	"time"
)

// Limits is the budget of one evaluation: how long it may run, and how
// much the heap may grow meanwhile (bytes). The command line sets it
// (--eval-time, --eval-memory-mib).
var Limits = struct {
	Time   time.Duration
	Memory uint64
}{Time: 2 * time.Minute, Memory: 4 << 30}

// Report says that an evaluation went over its budget, just before the
// process exits: by default the message on stderr. A command whose
// output is a document (--output json) replaces it to say so there.
var Report = func(msg string) {
	fmt.Fprintln(os.Stderr, "hacompile: "+msg)
}

// exceeded is held by the evaluation over budget that ends the process.
var exceeded sync.Mutex

// Exceeded is what happens to an evaluation over budget: Report, once
// however many evaluations go over at the same time, and exit status 1.
// Tests replace it.
var Exceeded = func(msg string) {
	exceeded.Lock() // never unlocked: the process ends
	Report(msg)
	os.Exit(1)
}

// Run runs eval, the evaluation of file in language lang ("CUE",
// "Jsonnet"), within Limits, and returns what it returns.
func Run[T any](file, lang string, eval func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	start, _ := usage()
	go func() {
		v, err := eval()
		done <- result{v, err}
	}()
	deadline := time.NewTimer(Limits.Time)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var zero T
	for {
		select {
		case r := <-done:
			return r.v, r.err
		case <-deadline.C:
			msg := fmt.Sprintf("%s: %s evaluation stopped: it ran longer than %s (the limit of one evaluation, --eval-time)", file, lang, Limits.Time)
			Exceeded(msg)
			return zero, fmt.Errorf("%s", msg)
		case <-tick.C:
			h, stack := usage()
			if stack > MaxStack {
				// Go cannot recover from a stack that outgrows its
				// limit: the process would die with a stack trace.
				msg := fmt.Sprintf("%s: %s evaluation stopped: it recursed too deeply (over %d MiB of stack; a function that calls itself without end?)", file, lang, MaxStack>>20)
				Exceeded(msg)
				return zero, fmt.Errorf("%s", msg)
			}
			if h > start && h-start > Limits.Memory {
				msg := fmt.Sprintf("%s: %s evaluation stopped: it used more than %d MiB of memory (the limit of one evaluation, --eval-memory-mib)", file, lang, Limits.Memory>>20)
				Exceeded(msg)
				return zero, fmt.Errorf("%s", msg)
			}
		}
	}
}

// MaxStack bounds the goroutine stacks of the process while an
// evaluation runs. Both evaluators recurse in Go as the input recurses
// (go-jsonnet even for tailstrict calls), and a Go stack over its limit
// (1 GB, so 512 MiB in practice) kills the process beyond recovery. A
// stack doubles as it grows, so polling finds it past this bound well
// before it reaches the runtime's.
const MaxStack = 256 << 20

var usageSample = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/stacks:bytes"},
}
var usageMu sync.Mutex

// usage is the memory of the heap's live and not yet swept objects and
// of goroutine stacks (mem, which counts both), and of the stacks alone.
func usage() (mem, stack uint64) {
	usageMu.Lock()
	defer usageMu.Unlock()
	metrics.Read(usageSample)
	stack = usageSample[1].Value.Uint64()
	return usageSample[0].Value.Uint64() + stack, stack
}
