package schema_test

import (
	"os"
	"testing"

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
