package par

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestEach(t *testing.T) {
	for _, n := range []int{0, 1, 7, 1000} {
		out := make([]int, n)
		var calls atomic.Int64
		Each(n, func(i int) {
			calls.Add(1)
			out[i] = i * i
		})
		if calls.Load() != int64(n) {
			t.Fatalf("n=%d: %d calls", n, calls.Load())
		}
		for i, v := range out {
			if v != i*i {
				t.Fatalf("n=%d: slot %d = %d", n, i, v)
			}
		}
	}
}

// InOrder hands results back in index order even when later work ends
// first, and never runs more than workers at once.
func TestInOrder(t *testing.T) {
	for _, workers := range []int{1, 2, 5} {
		const n = 20
		var running, peak atomic.Int64
		out := make([]int, n)
		var got []int
		InOrder(n, workers, func(i int) {
			r := running.Add(1)
			for {
				p := peak.Load()
				if r <= p || peak.CompareAndSwap(p, r) {
					break
				}
			}
			// Later indexes finish sooner, so completion order is not
			// index order when workers > 1.
			time.Sleep(time.Duration(n-i) * 200 * time.Microsecond)
			out[i] = i * i
			running.Add(-1)
		}, func(i int) {
			if out[i] != i*i {
				t.Errorf("workers=%d: then(%d) ran before run(%d) finished", workers, i, i)
			}
			got = append(got, i)
		})
		for i, v := range got {
			if v != i {
				t.Fatalf("workers=%d: then called in order %v", workers, got)
			}
		}
		if len(got) != n {
			t.Fatalf("workers=%d: then called %d times, want %d", workers, len(got), n)
		}
		if p := peak.Load(); p > int64(workers) {
			t.Fatalf("workers=%d: %d ran at once", workers, p)
		}
	}
}

// A panic in a piece of work is raised again on the caller's goroutine,
// where a recover can see it; on a worker's goroutine it would end the
// process (exit code 2) whatever the caller does.
func TestPanicReachesCaller(t *testing.T) {
	caught := func(f func()) (p *Panic) {
		defer func() {
			v := recover()
			p, _ = v.(*Panic)
			if v != nil && p == nil {
				t.Errorf("recovered %T %v, want a *Panic", v, v)
			}
		}()
		f()
		return nil
	}
	for _, n := range []int{1, 7, 1000} {
		p := caught(func() {
			Each(n, func(i int) {
				if i == n/2 {
					panic("boom")
				}
			})
		})
		if p == nil || p.Value != "boom" || !strings.Contains(string(p.Stack), "par_test.go") {
			t.Errorf("Each(%d): %+v", n, p)
		}
	}
	var then []int
	p := caught(func() {
		InOrder(5, 2, func(i int) {
			if i == 3 {
				panic("boom")
			}
		}, func(i int) { then = append(then, i) })
	})
	if p == nil || p.Value != "boom" || len(then) != 3 {
		t.Errorf("InOrder: %+v, then ran for %v", p, then)
	}
}

// SortStableFunc must order as the serial stable sort does: equal keys
// keep their first order, whatever the number of runs.
func TestSortStableFunc(t *testing.T) {
	type kv struct{ k, v int }
	for _, n := range []int{0, 1, 100, 2*minSortRun - 1, 2 * minSortRun, 3*minSortRun + 7, 50000} {
		for _, procs := range []int{1, 2, 3, 5, 8} {
			old := runtime.GOMAXPROCS(procs)
			s := make([]kv, n)
			r := rand.New(rand.NewPCG(uint64(n), uint64(procs)))
			for i := range s {
				s[i] = kv{r.IntN(n/10 + 1), i}
			}
			want := slices.Clone(s)
			cmp := func(a, b kv) int { return a.k - b.k }
			slices.SortStableFunc(want, cmp)
			SortStableFunc(s, cmp)
			runtime.GOMAXPROCS(old)
			if !slices.Equal(s, want) {
				t.Fatalf("n=%d, GOMAXPROCS=%d: not the stable order", n, procs)
			}
		}
	}
}

// Sort must order distinct elements as slices.Sort does.
func TestSort(t *testing.T) {
	for _, n := range []int{0, 3, 2 * minSortRun, 5*minSortRun + 3} {
		for _, procs := range []int{1, 2, 3, 8} {
			old := runtime.GOMAXPROCS(procs)
			r := rand.New(rand.NewPCG(uint64(n), 7))
			s := make([]string, n)
			for i, k := range r.Perm(n) {
				s[i] = strconv.Itoa(k)
			}
			want := slices.Clone(s)
			slices.Sort(want)
			Sort(s)
			runtime.GOMAXPROCS(old)
			if !slices.Equal(s, want) {
				t.Fatalf("n=%d, GOMAXPROCS=%d: not sorted as slices.Sort sorts", n, procs)
			}
		}
	}
}
