package compile_test

import (
	"testing"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/fleet"
)

// BenchmarkCompile1000 compiles a 1,000-host fleet in memory: load,
// rules and every generator (no writing).
func BenchmarkCompile1000(b *testing.B) {
	in := []compile.Input{{Name: "stacks/fleet.cue", Data: fleet.Fleet(1000, "")}}
	b.ReportAllocs()
	for b.Loop() {
		res, err := compile.CompileInputs(in, "2026-11-22")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := compile.TreeOf(res.Rendered); err != nil {
			b.Fatal(err)
		}
	}
}
