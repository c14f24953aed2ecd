// Package par runs independent pieces of work on every core. Each piece
// writes its result into its own slot, so callers read results in index
// order and their output does not depend on scheduling.
package par

import (
	"runtime"
	"sync"
)

// Each calls f(i) for every i in [0, n), on GOMAXPROCS goroutines, and
// returns when all calls have.
func Each(n int, f func(i int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
	go func() {
		for i := range n {
			slots <- struct{}{}
			go func() {
				defer close(done[i])
				defer func() { <-slots }()
				run(i)
			}()
		}
	}()
	for i := range n {
		<-done[i]
		then(i)
	}
}
