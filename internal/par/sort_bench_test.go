package par

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func sortInput() []string {
	r := rand.New(rand.NewPCG(1, 2))
	s := make([]string, 250000)
	for i := range s {
		s[i] = fmt.Sprintf("stacks/fleet/hosts/app%d.html#f-%d", r.IntN(10000), r.IntN(20))
	}
	return s
}

func BenchmarkSortSerial(b *testing.B) {
	in := sortInput()
	for b.Loop() {
		s := slices.Clone(in)
		slices.SortStableFunc(s, strings.Compare)
	}
}

func BenchmarkSortPar(b *testing.B) {
	in := sortInput()
	for b.Loop() {
		s := slices.Clone(in)
		SortStableFunc(s, strings.Compare)
	}
}

func BenchmarkSortOrderedSerial(b *testing.B) {
	in := sortInput()
	for b.Loop() {
		s := slices.Clone(in)
		slices.Sort(s)
	}
}

func BenchmarkSortOrderedPar(b *testing.B) {
	in := sortInput()
	for b.Loop() {
		s := slices.Clone(in)
		Sort(s)
	}
}
