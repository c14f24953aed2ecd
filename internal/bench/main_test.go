//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// measureScale runs the full build at a tenth of the hosts and at all of
// them in turn (n/10, n, n/10, n, …), each into an output directory never
// used before, and leaves no fleet behind. A stand-in for hacompile logs
// where it ran and what it was given.
func TestMeasureScaleInTurn(t *testing.T) {
	tmp := t.TempDir()
	bin, log := standIn(t, tmp, `$(basename "$PWD")`)
	p, err := measureScale(100, bin, tmp, 3)
	if err != nil {
		t.Fatal(err)
	}
	if p.Hosts != 100 || p.Case != caseFull || p.Wall <= 0 || p.CPU < 0 {
		t.Errorf("measureScale = %+v", p)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d runs, want 6:\n%s", len(lines), b)
	}
	outs := map[string]bool{}
	for i, l := range lines {
		f := strings.Fields(l)
		want := []string{"scale-10", "scale-100"}[i%2]
		if len(f) != 4 || f[0] != want || f[1] != "build" || f[2] != "--out" {
			t.Errorf("run %d: %q; want a full build in %s", i, l, want)
			continue
		}
		if outs[f[3]] {
			t.Errorf("run %d builds into %s, used before", i, f[3])
		}
		outs[f[3]] = true
	}
	for _, d := range []string{"scale-10", "scale-100"} {
		if _, err := os.Stat(filepath.Join(tmp, d)); !os.IsNotExist(err) {
			t.Errorf("%s is left behind (%v)", d, err)
		}
	}
}

// measureShares runs, after one untimed build, a full build into a new
// directory, a rebuild after one host's change and a no-op rebuild, in
// turn (full, one host, no-op, full, …), and leaves no fleet behind.
func TestMeasureSharesInTurn(t *testing.T) {
	tmp := t.TempDir()
	bin, log := standIn(t, tmp, `$(cksum < stacks/fleet.cue | cut -d' ' -f1)`)
	ps, err := measureShares(100, bin, tmp, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Case != caseOneHost || ps[1].Case != caseNoop || ps[0].Hosts != 100 || ps[0].Wall <= 0 || ps[1].Wall <= 0 {
		t.Errorf("measureShares = %+v", ps)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1+3*3 {
		t.Fatalf("%d runs, want 10:\n%s", len(lines), b)
	}
	stack := func(l string) string { return strings.Fields(l)[0] }
	outs := map[string]bool{}
	last := stack(lines[0])
	for i, l := range lines {
		f := strings.Fields(l)
		switch {
		case i == 0 || i%3 == 0: // the untimed build, then each no-op
			if len(f) != 2 || f[1] != "build" || f[0] != last {
				t.Errorf("run %d: %q; want a build of out/ with the stack unchanged", i, l)
			}
		case i%3 == 1:
			if len(f) != 4 || f[1] != "build" || f[2] != "--out" || outs[f[3]] {
				t.Errorf("run %d: %q; want a full build into a directory never used", i, l)
			}
			if len(f) == 4 {
				outs[f[3]] = true
			}
		case i%3 == 2:
			if len(f) != 2 || f[1] != "build" || f[0] == last {
				t.Errorf("run %d: %q; want a build of out/ after a change to the stack", i, l)
			}
		}
		last = stack(l)
	}
	if _, err := os.Stat(filepath.Join(tmp, "shares-100")); !os.IsNotExist(err) {
		t.Errorf("the fleet is left behind (%v)", err)
	}
}

// standIn writes into dir a stand-in for hacompile that appends to the
// file log, for each run, first (a shell word saying where it ran) and
// its first three arguments.
func standIn(t *testing.T, dir, first string) (bin, log string) {
	t.Helper()
	log = filepath.Join(dir, "log")
	bin = filepath.Join(dir, "hacompile")
	script := "#!/bin/sh\necho \"" + first + " $1 $2 $3\" >> " + log + "\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, log
}
