//go:build unix

package jsonnet

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestImporterNotRegular: an import (import or importstr) of a named
// pipe, a device reached through a link, or a file over MaxFileSize in
// the stack's own directory is refused at once, before it is opened or
// read, instead of blocking the build or filling memory.
func TestImporterNotRegular(t *testing.T) {
	dir := t.TempDir()
	stacks := filepath.Join(dir, "stacks")
	if err := os.MkdirAll(stacks, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stacks, "shop.jsonnet"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(stacks, "pipe.libsonnet"), 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	big, err := os.Create(filepath.Join(stacks, "big.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Truncate(MaxFileSize + 1); err != nil {
		t.Fatal(err)
	}
	big.Close()
	if err := os.Symlink("/dev/zero", filepath.Join(stacks, "zero.txt")); err != nil {
		t.Fatal(err)
	}
	fsPath := strings.TrimPrefix(filepath.ToSlash(dir), "/")
	imp := newImporter(Source{Name: "stacks/shop.jsonnet", FS: os.DirFS("/"), Path: fsPath + "/stacks/shop.jsonnet"}, nil)
	for path, want := range map[string]string{
		"pipe.libsonnet": "not a regular file (a named pipe)",
		"big.txt":        "larger than the limit of 16 MiB",
		"zero.txt":       "links to a file outside",
	} {
		done := make(chan error, 1)
		go func() {
			_, _, err := imp.Import("stacks/shop.jsonnet", path)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("import %q: %v, want %q", path, err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("import %q blocks", path)
		}
	}
	// Through the evaluator, as a stack writes it.
	src := Source{Name: "stacks/shop.jsonnet", Data: []byte(`{name: "shop", x: importstr "pipe.libsonnet"}`), FS: os.DirFS("/"), Path: fsPath + "/stacks/shop.jsonnet"}
	done := make(chan error, 1)
	go func() {
		_, _, err := EvalStack(src, Options{})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("importstr of a named pipe: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("importstr of a named pipe blocks")
	}
}
