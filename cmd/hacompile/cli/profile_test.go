package cli

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestProfileFlags: --cpuprofile and --memprofile write pprof files
// (gzipped protocol buffers) when the command ends, and a file that
// cannot be created fails the command with the flag named.
func TestProfileFlags(t *testing.T) {
	dir := t.TempDir()
	stack := filepath.Join(dir, "s.cue")
	if err := os.WriteFile(stack, []byte("name: \"s\"\ndomain: \"example.com\"\ntls: mode: \"none\"\nhosts: app1: {address: \"10.0.0.1\", roles: [\"app\"], cores: 2, memory_mb: 2048}\nbalancer: kind: \"cloud\"\napp: {runtime: \"python\", module: \"wsgi:app\", working_dir: \"/srv/app\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cpu, mem := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "mem.pprof")
	var stdout, stderr bytes.Buffer
	if code := Run([]string{"vet", "--cpuprofile", cpu, "--memprofile", mem, stack}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, p := range []string{cpu, mem} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: not a pprof file: %v", p, err)
		}
		b, err := io.ReadAll(zr)
		f.Close()
		if err != nil || len(b) == 0 {
			t.Fatalf("%s: %d bytes, %v", p, len(b), err)
		}
	}
	stderr.Reset()
	if code := Run([]string{"vet", "--cpuprofile", filepath.Join(dir, "no", "such", "dir", "cpu.pprof"), stack}, &stdout, &stderr); code != 1 {
		t.Fatalf("unwritable profile: exit %d, want 1", code)
	}
	if want := "hacompile: --cpuprofile: open "; !bytes.HasPrefix(stderr.Bytes(), []byte(want)) {
		t.Errorf("stderr = %q, want prefix %q", stderr.String(), want)
	}
}
