package nodeexporter_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/nodeexporter"
	"github.com/hacompile/hacompile/internal/testtool"
)

// TestUnitsVerify runs each certificate unit's own Validate command
// (systemd-analyze verify) on the units rendered into a sandbox, with
// the sandbox's unit directory first on systemd's search path: no
// warnings, and the timer finds its service.
func TestUnitsVerify(t *testing.T) {
	testtool.Require(t, "systemd-analyze", "systemd")
	root := t.TempDir()
	os.Chmod(root, 0o755)
	s := stack(t, 9100)
	m := files(t, s, artifact.Options{Root: root})
	for _, f := range m {
		if f.Host != "lb1" || !strings.HasPrefix(f.Path, "usr/") && !strings.HasPrefix(f.Path, "etc/systemd/") {
			continue
		}
		p := filepath.Join(root, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Content, f.Mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{nodeexporter.CertServicePath, nodeexporter.CertTimerPath} {
		f := m["lb1/"+p]
		cmd := exec.Command("/bin/sh", "-c", f.Validate.String())
		cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+filepath.Join(root, "etc/systemd/system")+":")
		out, err := cmd.CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("%s: %v\n%s", f.Validate.String(), err, out)
		}
	}
}
