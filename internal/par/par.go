// Package par runs independent pieces of work on every core. Each piece
// writes its result into its own slot, so callers read results in index
// order and their output does not depend on scheduling.
package par

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
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

// catch, deferred by a worker, records its panic in first unless
// another's is there.
func catch(mu *sync.Mutex, first **Panic) {
	if v := recover(); v != nil {
		mu.Lock()
		if *first == nil {
			*first = &Panic{Value: v, Stack: debug.Stack()}
		}
		mu.Unlock()
	}
}

// Each calls f(i) for every i in [0, n), on GOMAXPROCS goroutines, and
// returns when all calls have. A panic in f is raised again here, as a
// *Panic, once every worker has stopped.
func Each(n int, f func(i int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed *Panic
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				for range next { // after a panic: let the feeder finish
				}
			}()
			defer catch(&mu, &failed)
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
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
