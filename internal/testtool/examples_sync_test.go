package testtool

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// The tests read a copy of the example stacks (ExampleRoot), so that a
// stack half written in stacks/ fails no generator's tests. This test
// alone compares the two, so the copy cannot drift from the examples
// unnoticed: it names each file to copy.
func TestExampleCopyMatchesStacks(t *testing.T) {
	src := filepath.Join(RepoRoot(), "stacks")
	dst := filepath.Join(ExampleRoot(), "stacks")
	seen := map[string]bool{}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		seen[rel] = true
		a, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(dst, rel))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs from the tests' copy: cp %s %s", rel, filepath.Join("stacks", rel), filepath.Join("internal/testtool/testdata/stacks", rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dst, p)
		if !seen[rel] {
			t.Errorf("the tests' copy has %s, which stacks/ no longer has: remove it", rel)
		}
		return nil
	})
}
