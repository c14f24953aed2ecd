package site_test

import (
	"testing"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/fleet"
	"github.com/hacompile/hacompile/site"
)

// BenchmarkRender100 renders the runbook of a 100-host fleet.
func BenchmarkRender100(b *testing.B) {
	res, err := compile.CompileInputs([]compile.Input{{Name: "stacks/fleet.cue", Data: fleet.Fleet(100, "")}}, "2026-11-22")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := site.Render(res, site.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOutTree1000 compiles a 1,000-host fleet and lays out all of
// out/, runbook included: the in-memory part of a build.
func BenchmarkOutTree1000(b *testing.B) {
	in := []compile.Input{{Name: "stacks/fleet.cue", Data: fleet.Fleet(1000, "")}}
	b.ReportAllocs()
	for b.Loop() {
		res, err := compile.CompileInputs(in, "2026-11-22")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := site.OutTree(res); err != nil {
			b.Fatal(err)
		}
	}
}
