package releasetest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/testtool"
)

// TestSwitchRelease renders each example stack for debian-12 and for
// debian-13 and requires the lines that differ to be exactly those in
// testdata/switch-<stack>.txt (HACOMPILE_UPDATE=1 rewrites them): what
// an operator upgrading the fleet reviews, and nothing else moves.
// Lines are compared per host file (the hosts' own files, not the
// cloud-init documents and manifests that carry them again).
func TestSwitchRelease(t *testing.T) {
	render := func(osName string) map[string][]string {
		rs, err := compile.RenderAll(testtool.LoadStacksFor(t, osName), artifact.Options{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for _, r := range rs {
			for _, f := range r.Files {
				if f.Host != "" {
					out[r.Stack.Name+"/"+f.Host+"/"+f.Path] = strings.Split(string(f.Content), "\n")
				}
			}
		}
		return out
	}
	old, cur := render("debian-12"), render("debian-13")
	byStack := map[string]*strings.Builder{}
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		seen := map[string]bool{}
		for _, m := range []map[string][]string{old, cur} {
			for k := range m {
				if !seen[k] {
					seen[k] = true
					if !yield(k) {
						return
					}
				}
			}
		}
	}) {
		removed, added := lineDiff(old[p], cur[p])
		if len(removed)+len(added) == 0 {
			continue
		}
		stack, rest, _ := strings.Cut(p, "/")
		b := byStack[stack]
		if b == nil {
			b = &strings.Builder{}
			byStack[stack] = b
		}
		fmt.Fprintf(b, "%s\n", rest)
		for _, l := range removed {
			fmt.Fprintf(b, "- %s\n", l)
		}
		for _, l := range added {
			fmt.Fprintf(b, "+ %s\n", l)
		}
	}
	for _, s := range testtool.LoadStacks(t) {
		got := ""
		if b := byStack[s.Name]; b != nil {
			got = b.String()
		}
		golden := filepath.Join("testdata", "switch-"+s.Name+".txt")
		if testtool.Update() {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (HACOMPILE_UPDATE=1 writes it)", err)
		}
		if got != string(want) {
			t.Errorf("%s: switching from debian-12 to debian-13 changes other lines than %s:\n--- got\n%s--- want\n%s", s.Name, golden, got, want)
		}
	}
}

// lineDiff returns the lines of a not in b and of b not in a, in order,
// counting repeated lines (a multiset difference: the files change by
// whole lines, and moved lines would show as both).
func lineDiff(a, b []string) (removed, added []string) {
	count := map[string]int{}
	for _, l := range b {
		count[l]++
	}
	for _, l := range a {
		if count[l] > 0 {
			count[l]--
		} else {
			removed = append(removed, l)
		}
	}
	count = map[string]int{}
	for _, l := range a {
		count[l]++
	}
	for _, l := range b {
		if count[l] > 0 {
			count[l]--
		} else {
			added = append(added, l)
		}
	}
	return removed, added
}
