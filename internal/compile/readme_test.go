package compile_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/testtool"
)

// TestREADMEStack: the README's stack format example is a stack that
// vets cleanly as written (no error, no warning), and it shows the
// sections whose field names a reader cannot guess (cache.engine,
// workers.beat as a struct, the queue and rate_limit fields).
func TestREADMEStack(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testtool.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## The stack format\n")
	if !ok {
		t.Fatal("README has no stack format section")
	}
	m := regexp.MustCompile("(?s)```cue\n(.*?)```").FindStringSubmatch(sec)
	if m == nil {
		t.Fatal("the stack format section has no cue block")
	}
	for _, section := range []string{"\ncache: {", "\nqueue: {", "\nworkers: {", "\nrate_limit: {", "\tbeat: {"} {
		if !strings.Contains(m[1], section) {
			t.Errorf("the example lacks %q", strings.TrimSpace(section))
		}
	}
	dir := t.TempDir()
	stack := filepath.Join(dir, "shop.cue")
	if err := os.WriteFile(stack, []byte(m[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := compile.Compile([]string{stack}, dir, "2026-11-22")
	if err != nil {
		t.Fatalf("the README's example does not compile:\n%v", err)
	}
	for _, f := range res.Findings {
		t.Errorf("the README's example: %s", f)
	}
}
