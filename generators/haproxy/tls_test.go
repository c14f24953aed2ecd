package haproxy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/testtool"
)

// TestDHParamIsFFDHE2048 asks OpenSSL to name the embedded group: it
// recognises the RFC 7919 groups by their prime.
func TestDHParamIsFFDHE2048(t *testing.T) {
	openssl := testtool.Require(t, "openssl", "openssl")
	s := testtool.Load(t, "t.cue", stackSrc(cases[0].extra))
	f := generate(t, s, artifactOptions())[DHParamPath]
	p := filepath.Join(t.TempDir(), "dh.pem")
	if err := os.WriteFile(p, f.Content, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "pkeyparam", "-in", p, "-text", "-noout").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkeyparam: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "DH Parameters: (2048 bit)") || !strings.Contains(string(out), "GROUP: ffdhe2048") {
		t.Errorf("not the ffdhe2048 group:\n%s", out)
	}
}
