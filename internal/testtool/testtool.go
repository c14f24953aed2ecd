// Package testtool gives tests the real system tools and the example
// stacks. A missing tool skips the test with the command that installs
// it, except under CI=true, where it fails: CI must never pass by
// skipping the checks that matter.
package testtool

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
	"github.com/rogpeppe/go-internal/txtar"
)

// Require returns the path of the named command, or stops the test.
// pkg is the Debian package providing it.
func Require(t testing.TB, cmd, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(cmd)
	if err == nil {
		return p
	}
	Missing(t, cmd+" not found; install it with: apt-get install -y "+pkg+" (or run make test, which installs the test tools)")
	return ""
}

// Missing stops a test whose environment lacks something it needs:
// skipped locally, failed under CI=true.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// RepoRoot is the module root, found from this source file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// ExampleRoot is the directory holding the tests' copy of the example
// stacks, in stacks/ as in the repository. Tests read this copy, never
// the repository's stacks/: a stack being edited there, half written,
// must not fail the tests of a generator; out/ follows stacks/ through
// build --check instead.
func ExampleRoot() string {
	return filepath.Join(RepoRoot(), "internal", "testtool", "testdata")
}

// ExampleStacks returns the example CUE stack files, sorted.
func ExampleStacks(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(ExampleRoot(), "stacks", "*.cue"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no example stacks under %s/stacks: %v", ExampleRoot(), err)
	}
	return files
}

// LoadStacks loads every example CUE stack with Source paths
// ("stacks/x.cue") as the build gives them.
func LoadStacks(t testing.TB) []*schema.Stack {
	t.Helper()
	l, err := schema.NewLoader(ExampleRoot())
	if err != nil {
		t.Fatal(err)
	}
	var out []*schema.Stack
	for _, f := range ExampleStacks(t) {
		s, err := l.LoadFile(f)
		if err != nil {
			t.Fatalf("%v", err)
		}
		out = append(out, s)
	}
	return out
}

// Load validates an in-test CUE stack source, named name (the file
// name diagnostics and generated headers show).
func Load(t testing.TB, name, src string) *schema.Stack {
	t.Helper()
	l, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Load(name, []byte(src))
	if err != nil {
		t.Fatalf("loading in-test stack %s: %v\n%s", name, err, src)
	}
	return s
}

// Update reports whether golden files should be rewritten
// (HACOMPILE_UPDATE=1), read through a function so no test caches it.
func Update() bool { return os.Getenv("HACOMPILE_UPDATE") == "1" }

// FreePort returns a TCP port free on ip at the time of the call.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// SyncBuffer collects a process's output while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// BadStack writes the files of a bad-input archive (internal/compile/
// testdata/bad/*.txtar) but its want section into a new temporary
// directory, and returns that directory and the stack file's section:
// its slash path in the directory ("" when the archive has no
// stack.cue or stack.jsonnet) and its bytes.
func BadStack(t testing.TB, archive string) (dir, stack string, data []byte) {
	t.Helper()
	ar, err := txtar.ParseFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	for _, af := range ar.Files {
		if af.Name == "want" {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(af.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, af.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		if b := path.Base(af.Name); b == "stack.cue" || b == "stack.jsonnet" {
			stack, data = af.Name, af.Data
		}
	}
	return dir, stack, data
}

// CustomStack is a Jsonnet stack with two app hosts behind a cloud
// balancer and one custom generator, whose file (/etc/motd) goes to
// every host: the smallest stack on which a command that renders with
// the built-in generators only is caught dropping a file. Name and FS
// make a build.Input of it (testtool cannot import build).
var CustomStack = fstest.MapFS{
	"stacks/custom.jsonnet": {Data: []byte(`{
  name: 'custom',
  domain: 'custom.example.com',
  tls: { mode: 'none' },
  hosts: {
    app1: { address: '10.9.0.11', roles: ['app'], cores: 1, memory_mb: 1024 },
    app2: { address: '10.9.0.12', roles: ['app'], cores: 1, memory_mb: 1024 },
  },
  balancer: { kind: 'cloud' },
  app: { name: 'custom', runtime: 'python', module: 'wsgi:app', working_dir: '/srv/custom' },
  generators: [{ file: 'gen/motd.jsonnet', per_host: false }],
}
`)},
	"stacks/gen/motd.jsonnet": {Data: []byte(`function(stack) { '/etc/motd': stack.domain + '\n' }
`)},
}

// CustomStackFile is CustomStack's stack file, its path in the FS.
const CustomStackFile = "stacks/custom.jsonnet"

// GenerateTwice runs g over s twice and requires the same files both
// times, whole: host, path, bytes, mode, owner and actions, in the same
// order. Generators are pure functions of the stack; a map iterated
// unsorted shows up here. It returns the files.
func GenerateTwice(t testing.TB, g artifact.Generator, s *schema.Stack, opt artifact.Options) []artifact.File {
	t.Helper()
	a, err := g.Generate(s, opt)
	if err != nil {
		t.Fatalf("%s/%s: %v", s.Name, g.Kind(), err)
	}
	b, err := g.Generate(s, opt)
	if err != nil {
		t.Fatalf("%s/%s: second run: %v", s.Name, g.Kind(), err)
	}
	if len(a) != len(b) {
		t.Fatalf("%s/%s: %d files, then %d", s.Name, g.Kind(), len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Host != y.Host || x.Path != y.Path || !bytes.Equal(x.Content, y.Content) || x.Mode != y.Mode ||
			x.Owner != y.Owner || !x.Validate.Equal(y.Validate) || !x.Reload.Equal(y.Reload) {
			t.Errorf("%s/%s: file %d (%s %s) differs between two runs", s.Name, g.Kind(), i, x.Host, x.Path)
		}
	}
	return a
}

// WriteTree writes files under root at their paths, with their modes:
// a sandbox tree, for a real tool to read a rendered host as it would
// find it on the machine (render with artifact.Options{Root: root} so
// the paths inside the files point into the tree too).
func WriteTree(t testing.TB, root string, files ...artifact.File) {
	t.Helper()
	for _, f := range files {
		dst := filepath.Join(root, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, f.Content, modeOr644(f.Mode)); err != nil {
			t.Fatal(err)
		}
	}
}

// modeOr644 is a file's mode, 0644 when the generator left it zero (the
// build's default).
func modeOr644(m os.FileMode) os.FileMode {
	if m == 0 {
		return 0o644
	}
	return m
}
