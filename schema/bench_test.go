package schema_test

import (
	"os"
	"testing"

	"github.com/hacompile/hacompile/internal/fleet"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// BenchmarkLoad measures validating one example stack with a compiled
// schema: the per-file cost of every build.
func BenchmarkLoad(b *testing.B) {
	files := testtool.ExampleStacks(b)
	src, err := os.ReadFile(files[0])
	if err != nil {
		b.Fatal(err)
	}
	l, err := schema.NewLoader("")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Load("stacks/bench.cue", src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadFleet measures loading synthetic fleets: 1,000 hosts
// (evaluated in parts, one CUE context per core) and the same fleet
// evaluated whole.
func BenchmarkLoadFleet(b *testing.B) {
	src := fleet.Fleet(1000, "")
	l, err := schema.NewLoader("")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		splitMin int
	}{{"parts", 256}, {"whole", 1 << 30}} {
		b.Run(c.name, func(b *testing.B) {
			defer schema.SetSplitMin(c.splitMin)()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := l.Load("stacks/fleet.cue", src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFirstLoad measures a new loader's first load of a 1,000-host
// fleet: the schema compiled in every context it needs, then the fleet
// evaluated in parts, as in one build.
func BenchmarkFirstLoad(b *testing.B) {
	src := fleet.Fleet(1000, "")
	b.ReportAllocs()
	for b.Loop() {
		l, err := schema.NewLoader("")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Load("stacks/fleet.cue", src); err != nil {
			b.Fatal(err)
		}
	}
}
