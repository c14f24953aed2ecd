package oci

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenRegistryConfig: a Docker config named and missing means no
// credentials, as it always did; one that is there and is not a config
// is an error naming it, not a publish that goes on without credentials
// until the registry refuses it.
func TestOpenRegistryConfig(t *testing.T) {
	ref := Ref{Registry: "127.0.0.1:5000", Repository: "ops/shop", Tag: "stable"}
	dir := t.TempDir()
	if _, err := Open(ref, RepoOptions{DockerConfig: filepath.Join(dir, "none.json")}); err != nil {
		t.Errorf("a missing config: %v, want no credentials and no error", err)
	}
	good := filepath.Join(dir, "config.json")
	if err := os.WriteFile(good, []byte(`{"auths": {}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ref, RepoOptions{DockerConfig: good}); err != nil {
		t.Errorf("a config without credentials: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("auths: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ref, RepoOptions{DockerConfig: bad})
	if err == nil || !strings.Contains(err.Error(), "registry credentials "+bad+": ") {
		t.Errorf("a config that is not JSON: %v, want an error naming it", err)
	}
}

// TestParseRefCredentials: a reference with a user and password in it
// is refused, and the message shows the password as xxxxx.
func TestParseRefCredentials(t *testing.T) {
	for _, s := range []string{"user:hunter2@reg.example:5000/ops/shop:stable", "oci://user:hunter2@reg.example/ops/shop:stable"} {
		_, err := ParseRef(s)
		if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "user:xxxxx@reg.example") || !strings.Contains(err.Error(), "no user or password in it") {
			t.Errorf("ParseRef(%q): %v; want it refused, the password not shown", s, err)
		}
	}
	if _, err := ParseRef("reg.example/ops/shop:stable"); err != nil {
		t.Errorf("a plain reference: %v", err)
	}
}
