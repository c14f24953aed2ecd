package haproxy

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/testtool"
)

// TestProfilesMatchMozilla compares the Go copy of the profiles with the
// published JSON, field by field; testdata's copy must also be the one
// in shared/reference when that is beside the repository.
func TestProfilesMatchMozilla(t *testing.T) {
	moz := mozilla(t)
	if len(moz) != len(profiles) {
		t.Errorf("%d profiles in the JSON, %d in Go", len(moz), len(profiles))
	}
	for name, m := range moz {
		p, ok := profiles[name]
		if !ok {
			t.Errorf("profile %q missing", name)
			continue
		}
		dh := 0
		if m.DHParamSize != nil {
			dh = *m.DHParamSize
		}
		want := profile{
			Protocols: m.TLSVersions, Ciphers: m.OpenSSLCiphers, Ciphersuites: m.Ciphersuites, Curves: m.TLSCurves,
			ServerPreferredOrder: m.ServerPreferredOrder, HSTSMinAge: m.HSTSMinAge, DHParamSize: dh, OCSPStaple: m.OCSPStaple,
		}
		if len(want.Ciphers) == 0 {
			want.Ciphers = nil
		}
		if !reflect.DeepEqual(p, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, p, want)
		}
	}
	shared := filepath.Join(testtool.RepoRoot(), "..", "shared", "reference", "mozilla-server-side-tls-5.8.json")
	if ref, err := os.ReadFile(shared); err == nil {
		local, _ := os.ReadFile("testdata/mozilla-server-side-tls-5.8.json")
		if string(ref) != string(local) {
			t.Errorf("testdata's Mozilla JSON differs from %s", shared)
		}
	}
}

// TestDHParamIsFFDHE2048 asks OpenSSL to name the embedded group: it
// recognises the RFC 7919 groups by their prime.
func TestDHParamIsFFDHE2048(t *testing.T) {
	openssl := testtool.Require(t, "openssl", "openssl")
	s := load(t, stackSrc(cases[0].extra))
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
