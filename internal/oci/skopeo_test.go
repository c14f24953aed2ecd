//go:build linux

package oci

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/debroot"
	"github.com/hacompile/hacompile/internal/testtool"
)

// skopeoRelease is the Debian release whose skopeo verifies: Debian 12's
// (1.9.3) is built with sigstore signatures disabled ("Debian-local
// change: sigstore disabled"); Debian 13's (1.18, containers/image
// 5.34) has them.
const skopeoRelease = "debian-13"

// A standard verifier accepts the signature: Debian 13's skopeo, with a
// containers-policy.json(5) requiring sigstoreSigned with our public key
// and containers-registries.d(5) use-sigstore-attachments, copies a
// host's artifact and the stack's index (with every host artifact it
// lists); with another key it refuses, and an artifact whose signature
// is gone is refused too.
func TestSkopeoVerifies(t *testing.T) {
	if os.Geteuid() != 0 {
		testtool.Missing(t, "skopeo runs in Debian 13's root under chroot in a private mount namespace: run the tests as root")
	}
	for _, tool := range [][2]string{{"unshare", "util-linux"}, {"chroot", "coreutils"}, {"debootstrap", "debootstrap"}} {
		testtool.Require(t, tool[0], tool[1])
	}
	var log bytes.Buffer
	root, err := debroot.Ensure(skopeoRelease, debroot.VerifierPackages, &log)
	if err != nil {
		testtool.Missing(t, fmt.Sprintf("no %s root with skopeo: %v\n%s", skopeoRelease, err, log.String()))
	}
	f := newFixture(t)
	packs := packAll(t, hostsOf(t, 3), "abc")
	f.publish(packs)
	_, _, otherPub := keys(t)

	skopeoCopy := func(pub, tag string, want []byte, flags ...string) (string, error) {
		dir := t.TempDir()
		b, err := os.ReadFile(pub)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "key.pub"), b, 0o644)
		policy := `{"default": [{"type": "reject"}], "transports": {
  "docker": {"` + f.ref.Name() + `": [{"type": "sigstoreSigned", "keyPath": "/mnt/key.pub", "signedIdentity": {"type": "matchRepository"}}]},
  "dir": {"": [{"type": "insecureAcceptAnything"}]}}}`
		os.WriteFile(filepath.Join(dir, "policy.json"), []byte(policy), 0o644)
		os.MkdirAll(filepath.Join(dir, "registries.d"), 0o755)
		os.WriteFile(filepath.Join(dir, "registries.d", "default.yaml"), []byte("docker:\n  "+f.reg.Addr+":\n    use-sigstore-attachments: true\n"), 0o644)
		script := `set -e; mount --bind "$1" "$2/mnt"; r=$2; shift 2; exec chroot "$r" "$@"`
		args := append([]string{"--mount", "--fork", "sh", "-c", script, "sh", dir, root,
			"skopeo", "--policy", "/mnt/policy.json", "--registries.d", "/mnt/registries.d", "copy", "--src-tls-verify=false"}, flags...)
		cmd := exec.Command("unshare", append(args, "docker://"+f.ref.Name()+":"+tag, "dir:/mnt/copy")...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			m, rerr := os.ReadFile(filepath.Join(dir, "copy", "manifest.json"))
			if rerr != nil {
				t.Fatalf("skopeo succeeded but copied no manifest: %v\n%s", rerr, out)
			}
			if !bytes.Equal(m, want) {
				t.Errorf("skopeo copied a manifest other than the one published:\n%s", m)
			}
		}
		return string(out), err
	}
	skopeo := func(pub, tag string) (string, error) { return skopeoCopy(pub, tag, packs[0].Manifest) }

	tag, _ := HostTag("stable", "fleet", "app1")
	if out, err := skopeo(f.pf, tag); err != nil {
		t.Fatalf("skopeo refused a good signature: %v\n%s", err, out)
	}
	// The stack's index, copied with every host artifact it lists.
	idx, err := PackIndex("fleet", packs)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := skopeoCopy(f.pf, "stable-fleet", idx.Manifest, "--all"); err != nil {
		t.Fatalf("skopeo refused the stack index's signature: %v\n%s", err, out)
	}
	if out, err := skopeoCopy(otherPub, "stable-fleet", idx.Manifest, "--all"); err == nil || !strings.Contains(out, "Source image rejected") {
		t.Fatalf("skopeo accepted the index's signature with another key (%v):\n%s", err, out)
	}
	out, err := skopeo(otherPub, tag)
	if err == nil {
		t.Fatalf("skopeo accepted the signature with another key:\n%s", out)
	}
	if !strings.Contains(out, "Source image rejected") {
		t.Errorf("skopeo failed, but not for the signature:\n%s", out)
	}
	// Unsigned: the signature deleted.
	repo, _ := Open(f.ref, f.repoOpts())
	sd, err := repo.Resolve(t.Context(), SignatureTag(packs[0].Digest))
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Delete(t.Context(), sd); err != nil {
		t.Fatal(err)
	}
	out, err = skopeo(f.pf, tag)
	if err == nil || !strings.Contains(out, "Source image rejected") {
		t.Fatalf("skopeo accepted an unsigned artifact (%v):\n%s", err, out)
	}
}
