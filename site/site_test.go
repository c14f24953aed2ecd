package site_test

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/site"
)

// today is the date waivers are compared with: fixed, so the tests do
// not change with the calendar.
const today = "2026-01-01"

// sourceFrom reads stack files relative to dir, as the CLI does from
// the working directory.
func sourceFrom(dir string) site.Options {
	return site.Options{Source: func(name string) ([]byte, error) {
		return os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
	}}
}

var examples struct {
	once  sync.Once
	res   *compile.Result
	files map[string][]byte
	err   error
}

// exampleSite renders the site of the example stacks once per test
// binary.
func exampleSite(t testing.TB) map[string][]byte {
	t.Helper()
	examples.once.Do(func() {
		root := testtool.ExampleRoot()
		res, err := compile.Compile([]string{filepath.Join(root, "stacks")}, root, today)
		if err != nil {
			examples.err = err
			return
		}
		examples.res = res
		examples.files, examples.err = site.Render(res, sourceFrom(root))
	})
	if examples.err != nil {
		t.Fatal(examples.err)
	}
	return examples.files
}

// exampleResult is the compile exampleSite rendered.
func exampleResult(t testing.TB) *compile.Result {
	t.Helper()
	exampleSite(t)
	return examples.res
}

// compileStack compiles one stack written into a temp dir.
func compileStack(t *testing.T, src string) (*compile.Result, site.Options) {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "stacks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stacks", "t.cue"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := compile.Compile([]string{filepath.Join(dir, "stacks")}, dir, today)
	if err != nil {
		t.Fatal(err)
	}
	return res, sourceFrom(dir)
}

func TestRenderDeterministic(t *testing.T) {
	a := exampleSite(t)
	root := testtool.ExampleRoot()
	res, err := compile.Compile([]string{filepath.Join(root, "stacks")}, root, today)
	if err != nil {
		t.Fatal(err)
	}
	b, err := site.Render(res, sourceFrom(root))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range slices.Sorted(maps.Keys(a)) {
		if !bytes.Equal(a[p], b[p]) {
			i := 0
			for i < min(len(a[p]), len(b[p])) && a[p][i] == b[p][i] {
				i++
			}
			from := max(i-200, 0)
			t.Errorf("two renders of the same stacks differ in %s at byte %d:\n%q\n%q", p, i, a[p][from:min(i+200, len(a[p]))], b[p][from:min(i+200, len(b[p]))])
		}
	}
	if len(a) != len(b) {
		t.Errorf("two renders of the same stacks have %d and %d pages", len(a), len(b))
	}
	for p, c := range a {
		if strings.Contains(string(c), root) {
			t.Errorf("%s contains the absolute path %s", p, root)
		}
	}
	if os.Getenv("HACOMPILE_SITE_DUMP") != "" {
		dir := os.Getenv("HACOMPILE_SITE_DUMP")
		for _, p := range slices.Sorted(maps.Keys(a)) {
			full := filepath.Join(dir, filepath.FromSlash(p))
			os.MkdirAll(filepath.Dir(full), 0o755)
			os.WriteFile(full, a[p], 0o644)
		}
	}
}

// TestRenderToStops: the first page the sink refuses ends the render
// with that error, and few pages are rendered after it.
func TestRenderToStops(t *testing.T) {
	res, opt := compileStack(t, notesStack)
	rb, err := site.Prepare(res, opt)
	if err != nil {
		t.Fatal(err)
	}
	// put is called from several goroutines at once.
	var mu sync.Mutex
	full := 0
	if err := rb.RenderTo(func(string, []byte) error {
		mu.Lock()
		defer mu.Unlock()
		full++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rb, _ = site.Prepare(res, opt)
	calls := 0
	disk := errors.New("no space left on device")
	err = rb.RenderTo(func(string, []byte) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return disk
	})
	if !errors.Is(err, disk) {
		t.Fatalf("RenderTo = %v, want the sink's error", err)
	}
	if calls >= full {
		t.Errorf("%d pages offered after the first refusal of %d", calls, full)
	}
}

// The procedures' add/remove-host previews render the changed stack
// with the compile's generators, custom ones included: they used to run
// the built-in table only and listed every custom file as removed.
func TestPreviewKeepsCustomGenerators(t *testing.T) {
	t.Parallel()
	fsys := testtool.CustomStack
	res, err := compile.CompileInputs([]compile.Input{{Name: testtool.CustomStackFile, Data: fsys[testtool.CustomStackFile].Data, FS: fsys, Path: testtool.CustomStackFile}}, today)
	if err != nil {
		t.Fatal(err)
	}
	files, err := site.Render(res, site.Options{})
	if err != nil {
		t.Fatal(err)
	}
	page := string(files["stacks/custom/procedures.html"])
	if page == "" {
		t.Fatal("no procedures page")
	}
	// app1 stays in every preview (remove-host takes the last app
	// host): its /etc/motd is never removed.
	for _, row := range strings.Split(page, "\n") {
		if strings.Contains(row, `<a href="hosts/app1.html">app1</a></td><td>`) && strings.Contains(row, `/etc/motd</code> <span class="change removed">`) {
			t.Errorf("a preview says app1's /etc/motd, the custom generator's, is removed:\n%s", row)
		}
	}
}
