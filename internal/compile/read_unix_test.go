//go:build unix

package compile_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/compile"
)

// TestReadInputsNotRegular: a named pipe or a device given as a stack
// file is refused at once rather than blocking or reading forever.
func TestReadInputsNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe.cue")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	big := filepath.Join(dir, "big.cue")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(17 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cases := map[string]string{fifo: "not a regular file (a named pipe)", big: "larger than the limit of 16 MiB"}
	if _, err := os.Stat("/dev/zero"); err == nil {
		cases["/dev/zero"] = "dev/zero" // refused for its name, before reading
	}
	for arg, want := range cases {
		done := make(chan error, 1)
		go func() {
			_, err := compile.ReadInputs([]string{arg}, dir)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("ReadInputs(%s) = %v, want %q", arg, err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("ReadInputs(%s) hangs", arg)
		}
	}
}
