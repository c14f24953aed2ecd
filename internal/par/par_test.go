package par

import (
	"sync/atomic"
	"testing"
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
