package sysctl_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/sysctl"
	"github.com/hacompile/hacompile/internal/testtool"
)

// TestKeysExist requires every key the example stacks set to exist under
// /proc/sys on this kernel: a misspelt key is silently ignored by
// sysctl --system at boot, so it must be caught here.
func TestKeysExist(t *testing.T) {
	if _, err := os.Stat("/proc/sys/net/core/somaxconn"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("/proc/sys is not readable: %v", err)
		}
		t.Skipf("/proc/sys is not readable: %v", err)
	}
	checked := 0
	for _, s := range testtool.LoadStacks(t) {
		files, err := sysctl.Gen{}.Generate(s, artifact.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != len(s.Hosts) {
			t.Fatalf("%s: %d sysctl files for %d hosts", s.Name, len(files), len(s.Hosts))
		}
		sc := bufio.NewScanner(bytes.NewReader(files[0].Content))
		for sc.Scan() {
			line := sc.Text()
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			key, value, ok := strings.Cut(line, " = ")
			if !ok || value == "" {
				t.Errorf("%s: malformed line %q", s.Name, line)
				continue
			}
			p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s: sysctl key %s does not exist (%s)", s.Name, key, p)
			}
			checked++
		}
		if files[0].Reload.String() != "sysctl --system" {
			t.Errorf("reload action = %q", files[0].Reload.String())
		}
	}
	if checked < 8 {
		t.Fatalf("only %d keys checked", checked)
	}
}
