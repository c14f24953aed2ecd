package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestBuildsOnOtherSystems builds the command for the other systems
// operators write stacks on (macOS on either architecture, FreeBSD,
// Windows): build, vet, diff and push use nothing Linux alone has, and
// only the system test (hacompile test) says there that it runs on
// Linux only. Linux-only calls (Pdeathsig, overlay mounts, namespaces)
// live in files built for Linux, unix-only ones (flock, process groups)
// in files built for unix, and this test fails when one leaks out.
func TestBuildsOnOtherSystems(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds the command (-short)")
	}
	for _, target := range []string{"darwin/arm64", "darwin/amd64", "freebsd/amd64", "windows/amd64"} {
		goos, goarch, _ := strings.Cut(target, "/")
		cmd := exec.Command("go", "build", "-o", os.DevNull, ".")
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s GOARCH=%s go build: %v\n%s", goos, goarch, err, out)
		}
	}
}
