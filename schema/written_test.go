package schema

import (
	"maps"
	"path/filepath"
	"testing"
)

// TestWroteIndexed proves that Wrote answers from its index exactly as
// from the positions themselves, for every path of every example stack
// and every prefix of one (a quoted sysctl key holds dots of its own),
// and that a stack whose positions were replaced is answered from them.
func TestWroteIndexed(t *testing.T) {
	l, err := NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	same := func(name string, s *Stack) {
		t.Helper()
		scan := *s
		scan.written = nil
		queries := map[string]bool{"": true, "nope": true, "hosts.nope": true}
		for p := range s.Positions {
			for i := range len(p) + 1 {
				queries[p[:i]] = true
				queries[p[:i]+"x"] = true
			}
		}
		for q := range queries {
			if got, want := s.Wrote(q), scan.Wrote(q); got != want {
				t.Errorf("%s: Wrote(%q) = %v, want %v", name, q, got, want)
			}
		}
	}
	// Paths whose parents were not recorded (a data stack's positions
	// are what its language tells).
	s := &Stack{Positions: map[string]Position{"waive[0].rule": {}, `tuning.sysctl."net.core.somaxconn"`: {}, `x."a[b".c`: {}, "[0]": {}, ".y": {}}}
	s.indexWritten()
	same("positions alone", s)

	files, _ := filepath.Glob("../stacks/*.cue")
	if len(files) < 5 {
		t.Fatalf("example stacks: %v", files)
	}
	for _, f := range files {
		s, err := l.LoadFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if s.written == nil {
			t.Fatalf("%s: no index", f)
		}
		same(f, s)
		// Positions replaced: the index no longer answers.
		c := s.Clone()
		c.Positions = maps.Clone(c.Positions)
		delete(c.Positions, "balancer.kind")
		delete(c.Positions, "balancer")
		if c.Wrote("balancer.kind") {
			t.Errorf("%s: Wrote answers from the replaced positions' index", f)
		}
	}
}
