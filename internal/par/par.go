// Package par runs independent pieces of work on every core. Each piece
// writes its result into its own slot, so callers read results in index
// order and their output does not depend on scheduling.
package par

import (
	"cmp"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
)

// Panic is a panic of a piece of work, re-raised on the caller's
// goroutine (where the command line's recover turns it into an internal
// error's exit code; a panic left on a worker's goroutine would end the
// process with Go's exit code 2). Stack is the worker's.
type Panic struct {
	Value any
	Stack []byte
}

func (p *Panic) Error() string { return fmt.Sprintf("%v\n%s", p.Value, p.Stack) }

// Each calls f(i) for every i in [0, n), on GOMAXPROCS goroutines (the
// caller's among them), and returns when all calls have. A panic in f is
// raised again here, as a *Panic, once every worker has stopped; the
// pieces not started by then are not.
//
// The workers take the next index from a counter: a fleet's 160,000
// files each take a microsecond or two to hash, about what handing an
// index over a channel cost, which made the feeder the bottleneck.
func Each(n int, f func(i int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed *Panic
	work := func() {
		defer func() {
			if v := recover(); v != nil {
				next.Store(int64(n)) // the others stop after their piece
				mu.Lock()
				if failed == nil {
					failed = &Panic{Value: v, Stack: debug.Stack()}
				}
				mu.Unlock()
			}
		}()
		for {
			i := next.Add(1) - 1
			if i >= int64(n) {
				return
			}
			f(int(i))
		}
	}
	for range workers - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	if workers > 0 {
		work()
	}
	wg.Wait()
	if failed != nil {
		panic(failed)
	}
}

// InOrder calls run(i) for every i in [0, n), starting them in index
// order with at most workers running at once, and calls then(i) on the
// caller's goroutine in index order, as soon as run(i) and every run
// before it have returned: output written by then is in index order
// whatever the scheduling, and the first results show before the last
// work ends.
func InOrder(n, workers int, run func(i int), then func(i int)) {
	done := make([]chan struct{}, n)
	for i := range done {
		done[i] = make(chan struct{})
	}
	slots := make(chan struct{}, max(workers, 1))
	panics := make([]*Panic, n)
	go func() {
		for i := range n {
			slots <- struct{}{}
			go func() {
				defer close(done[i])
				defer func() { <-slots }()
				defer func() {
					if v := recover(); v != nil {
						panics[i] = &Panic{Value: v, Stack: debug.Stack()}
					}
				}()
				run(i)
			}()
		}
	}()
	for i := range n {
		<-done[i]
		if panics[i] != nil {
			// Raised on the caller's goroutine; the runs still going
			// end on their own.
			panic(panics[i])
		}
		then(i)
	}
}

// SortStableFunc sorts s as slices.SortStableFunc does, on every core:
// runs of it are sorted at once, then merged, the earlier run first
// among equal elements, so the order is the same as the serial sort's
// whatever the scheduling. A large fleet's search index sorts a quarter
// of a million entries once a build.
func SortStableFunc[E any](s []E, cmp func(a, b E) int) {
	sortRuns(s, cmp, slices.SortStableFunc[[]E, E])
}

// Sort sorts s as slices.Sort does, on every core: runs sorted at once,
// unstably (faster, and equal elements of an ordered type are the same
// value), then merged. The writer sorts its 170,000 paths with it.
func Sort[E cmp.Ordered](s []E) {
	sortRuns(s, cmp.Compare[E], slices.SortFunc[[]E, E])
}

// sortRuns sorts runs of s, one a core, with sort, then merges them.
func sortRuns[E any](s []E, cmp func(a, b E) int, sort func([]E, func(a, b E) int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers < 2 || len(s) < 2*minSortRun {
		sort(s, cmp)
		return
	}
	// Runs of equal length, each sorted on its own.
	runs := min(workers, len(s)/minSortRun)
	bounds := make([]int, runs+1)
	for i := range bounds {
		bounds[i] = i * len(s) / runs
	}
	Each(runs, func(i int) { sort(s[bounds[i]:bounds[i+1]], cmp) })
	// Merged in pairs, each round's merges at once, into buf and back.
	buf := make([]E, len(s))
	src, dst := s, buf
	for len(bounds) > 2 {
		merged := make([]int, 0, len(bounds)/2+1)
		for i := 0; i < len(bounds)-1; i += 2 {
			merged = append(merged, bounds[i])
		}
		merged = append(merged, bounds[len(bounds)-1])
		Each(len(bounds)/2, func(k int) {
			lo := bounds[2*k]
			if 2*k+2 >= len(bounds) {
				// The odd run out: copied as it is.
				copy(dst[lo:], src[lo:bounds[2*k+1]])
				return
			}
			mergeRuns(dst[lo:bounds[2*k+2]], src[lo:bounds[2*k+1]], src[bounds[2*k+1]:bounds[2*k+2]], cmp)
		})
		bounds = merged
		src, dst = dst, src
	}
	if &src[0] != &s[0] {
		copy(s, src)
	}
}

// minSortRun is the least run sortRuns sorts on a core of its own.
const minSortRun = 4096

// mergeRuns merges the sorted runs a and b into dst (len(a)+len(b)
// long), a's element first among equal ones.
func mergeRuns[E any](dst, a, b []E, cmp func(a, b E) int) {
	i, j, k := 0, 0, 0
	for i < len(a) && j < len(b) {
		if cmp(b[j], a[i]) < 0 {
			dst[k] = b[j]
			j++
		} else {
			dst[k] = a[i]
			i++
		}
		k++
	}
	k += copy(dst[k:], a[i:])
	copy(dst[k:], b[j:])
}
