package generators_test

import (
	"testing"

	"github.com/hacompile/hacompile/generators"
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/fleet"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// TestKindsUnique: the kind names a file in the manifest, so two
// generators must never share one.
func TestKindsUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, g := range generators.All() {
		if g.Kind() == "" || seen[g.Kind()] {
			t.Errorf("generator kind %q is empty or not unique", g.Kind())
		}
		seen[g.Kind()] = true
	}
	for _, a := range generators.Assemblers() {
		if a.Kind() == "" || seen[a.Kind()] {
			t.Errorf("assembler kind %q is empty or not unique", a.Kind())
		}
		seen[a.Kind()] = true
	}
	if len(seen) < 5 {
		t.Fatalf("only %d kinds registered", len(seen))
	}
}

// TestEveryKindDeterministic runs every generator of the table twice over
// every example stack: a new kind is covered without a test of its own.
func TestEveryKindDeterministic(t *testing.T) {
	t.Parallel()
	for _, s := range testtool.LoadStacks(t) {
		for _, g := range generators.All() {
			testtool.GenerateTwice(t, g, s, artifact.Options{})
		}
	}
}

func loadFleet(b *testing.B, n int) *schema.Stack {
	l, err := schema.NewLoader("")
	if err != nil {
		b.Fatal(err)
	}
	s, err := l.Load("stacks/fleet.cue", fleet.Fleet(n, ""))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkGenerators times each generator on a 100-host fleet, so a
// regression in one kind shows in benchstat comparisons.
func BenchmarkGenerators(b *testing.B) {
	s := loadFleet(b, 100)
	var files []artifact.File
	for _, g := range generators.All() {
		fs, err := g.Generate(s, artifact.Options{})
		if err != nil {
			b.Fatal(err)
		}
		files = append(files, fs...)
		b.Run(g.Kind(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := g.Generate(s, artifact.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, a := range generators.Assemblers() {
		b.Run(a.Kind(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Assemble(s, artifact.Options{}, files, generators.All()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
