package jsonnet

import (
	"bytes"
	"fmt"
	"os"
	"runtime/metrics"
	"sync"
	"time"
)

// MaxNesting bounds how deeply a Jsonnet file's brackets ((, [, {) may
// nest. go-jsonnet's parser recurses once a level, and a file nested a
// hundred thousand levels deep overflowed the Go stack, which kills the
// process; real stacks nest a few dozen levels.
const MaxNesting = 1000

// NestingError is a file nested deeper than MaxNesting, at Line:Column.
type NestingError struct{ Line, Column int }

func (e *NestingError) Error() string {
	return fmt.Sprintf("line %d column %d: brackets nest deeper than %d levels (the limit of a Jsonnet file)", e.Line, e.Column, MaxNesting)
}

// checkNesting returns a *NestingError where src nests deeper than
// MaxNesting, skipping strings and comments.
func checkNesting(src []byte) error {
	depth := 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		skip := 0 // bytes of a string or comment starting at i
		switch {
		case c == '#' || c == '/' && i+1 < len(src) && src[i+1] == '/':
			skip = bytes.IndexByte(src[i:], '\n')
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			if skip = bytes.Index(src[i+2:], []byte("*/")); skip >= 0 {
				skip += 4
			}
		case c == '|' && bytes.HasPrefix(src[i:], []byte("|||")):
			if skip = bytes.Index(src[i+3:], []byte("|||")); skip >= 0 {
				skip += 6
			}
		case c == '"' || c == '\'':
			verbatim := i > 0 && src[i-1] == '@'
			skip = -1
			for j := i + 1; j < len(src); j++ {
				if src[j] == '\\' && !verbatim {
					j++
				} else if src[j] == c {
					if verbatim && j+1 < len(src) && src[j+1] == c {
						j++
						continue
					}
					skip = j + 1 - i
					break
				}
			}
		case c == '(' || c == '[' || c == '{':
			if depth++; depth > MaxNesting {
				nl := bytes.LastIndexByte(src[:i], '\n')
				return &NestingError{Line: bytes.Count(src[:i], []byte("\n")) + 1, Column: i - nl}
			}
		case c == ')' || c == ']' || c == '}':
			depth = max(depth-1, 0)
		}
		if skip < 0 { // runs to the end of the file
			return nil
		}
		if skip > 0 {
			i += skip - 1
		}
	}
	return nil
}

// Budget bounds one Jsonnet evaluation (a stack file, or a custom
// generator's run for a stack or host): its time, and how much the heap
// may grow meanwhile. go-jsonnet cannot be interrupted, so an evaluation
// over budget ends the process with the error (exit status 1) rather
// than letting it exhaust memory or run on; no real stack comes near
// the defaults.
var Budget = struct {
	Time   time.Duration
	Memory uint64 // bytes
}{Time: 2 * time.Minute, Memory: 8 << 30}

// overBudget is what happens to an evaluation over budget: the
// message, and exit status 1.
var overBudget = func(msg string) {
	fmt.Fprintln(os.Stderr, "hacompile: "+msg)
	os.Exit(1)
}

// evaluate runs eval for the file named file within Budget.
func evaluate(file string, eval func() (string, error)) (string, error) {
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	start := heapBytes()
	go func() {
		out, err := eval()
		done <- result{out, err}
	}()
	deadline := time.NewTimer(Budget.Time)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case r := <-done:
			return r.out, r.err
		case <-deadline.C:
			overBudget(fmt.Sprintf("%s: Jsonnet evaluation stopped: it ran longer than %s (the limit of one evaluation)", file, Budget.Time))
			return "", fmt.Errorf("%s: Jsonnet evaluation ran longer than %s", file, Budget.Time)
		case <-tick.C:
			if h := heapBytes(); h > start && h-start > Budget.Memory {
				overBudget(fmt.Sprintf("%s: Jsonnet evaluation stopped: it used more than %d MiB of memory (the limit of one evaluation)", file, Budget.Memory>>20))
				return "", fmt.Errorf("%s: Jsonnet evaluation used more than %d MiB", file, Budget.Memory>>20)
			}
		}
	}
}

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
var heapMu sync.Mutex

// heapBytes is the memory of the heap's live and not yet swept objects.
func heapBytes() uint64 {
	heapMu.Lock()
	defer heapMu.Unlock()
	metrics.Read(heapSample)
	return heapSample[0].Value.Uint64()
}
