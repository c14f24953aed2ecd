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
