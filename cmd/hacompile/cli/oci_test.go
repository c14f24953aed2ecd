package cli_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/cmd/hacompile/cli"
	"github.com/hacompile/hacompile/internal/oci/ocitest"
	"github.com/hacompile/hacompile/internal/testtool"
)

const ociStack = `name: "fleet"
domain: "fleet.example.com"
tls: mode: "none"
hosts: {
	app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app", bind: port: 8000}
`

// run is the whole command line, as Main runs it: errors printed,
// exit codes as a shell sees them.
func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cli.Run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// The command line end to end: keygen, publish --oci to a real
// registry, apply into host roots (every file of out/<stack>/hosts/<h>/
// byte for byte), a republish that uploads nothing, an apply with the
// wrong key that changes nothing, and the usage errors.
func TestOCICommand(t *testing.T) {
	git := testtool.Require(t, "git", "git")
	reg := ocitest.Start(t)
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, ".cache"))
	t.Setenv("DOCKER_CONFIG", filepath.Join(dir, ".docker"))
	os.MkdirAll("stacks", 0o755)
	os.WriteFile("stacks/fleet.cue", []byte(ociStack), 0o644)
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "stacks"}, {"-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m", "fleet"}} {
		if out, err := exec.Command(git, args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	if code, _, stderr := run("build"); code != 0 {
		t.Fatalf("build: %s", stderr)
	}
	if code, out, stderr := run("keygen", "--out", "k"); code != 0 || !strings.Contains(out, "wrote k.key") {
		t.Fatalf("keygen: %d %s %s", code, out, stderr)
	}
	if code, _, _ := run("keygen", "--out", "k"); code != 1 {
		t.Fatalf("keygen overwrote its key (exit %d)", code)
	}
	// No prefix names no file: .key and .pub would be hidden files.
	for _, prefix := range []string{"", "keys/"} {
		if code, _, stderr := run("keygen", "--out", prefix); code != 64 || !strings.Contains(stderr, "--out: want a file name prefix") {
			t.Errorf("keygen --out %q: exit %d %s", prefix, code, stderr)
		}
	}
	if _, err := os.Stat(".key"); !os.IsNotExist(err) {
		t.Errorf(".key: %v", err)
	}
	if fi, _ := os.Stat("k.key"); fi.Mode().Perm() != 0o600 {
		t.Errorf("k.key mode %v", fi.Mode().Perm())
	}
	ref := reg.Addr + "/ops/fleet:stable"
	code, out, stderr := run("publish", "--oci", ref, "--plain-http", "--sign-key", "k.key")
	if code != 0 {
		t.Fatalf("publish --oci: %d\n%s%s", code, out, stderr)
	}
	if !strings.Contains(out, "published 2 hosts of 1 stack to "+ref) || !strings.Contains(out, "2 manifests pushed, 0 unchanged; 1 stack index pushed (tags stable-<stack>); 3 signed") {
		t.Errorf("publish said: %s", out)
	}
	code, out, stderr = run("publish", "--oci", ref, "--plain-http", "--sign-key", "k.key")
	if code != 0 || !strings.Contains(out, ": 0 blobs uploaded (0 bytes)") || !strings.Contains(out, "0 manifests pushed, 2 unchanged; 0 stack indexes pushed (tags stable-<stack>); 0 signed") {
		t.Errorf("republish: %d %s %s", code, out, stderr)
	}

	applyWith := func(host, key string, more ...string) (int, string, string) {
		return run(append([]string{"apply", "--from", "oci://" + ref, "--plain-http", "--stack", "fleet", "--host", host,
			"--verify-key", key, "--root", filepath.Join(dir, "roots", host),
			"--metrics-file", "/var/lib/prometheus/node-exporter/hacompile-fleet.prom"}, more...)...)
	}
	apply := func(host, key string) (int, string, string) { return applyWith(host, key, "--no-health-check") }
	for _, h := range []string{"app1", "app2"} {
		var code int
		var out, stderr string
		if h == "app1" {
			code, out, stderr = apply(h, "k.pub")
		} else {
			// Under --root the default health check (the host's own
			// address from the stack, which nothing here answers) is
			// left out, as the reloads are: it would check the
			// machine's services, and its failure reverted the tree.
			code, out, stderr = applyWith(h, "k.pub")
			if !strings.Contains(stderr+out, "the health check of http://") {
				t.Errorf("apply %s under --root did not say it left the health check out:\n%s%s", h, out, stderr)
			}
		}
		if code != 0 {
			t.Fatalf("apply %s: %d\n%s%s", h, code, out, stderr)
		}
		if !strings.Contains(stderr, "signature verified") {
			t.Errorf("apply %s said: %s", h, stderr)
		}
		want := filepath.Join("out/fleet/hosts", h)
		n := 0
		filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(want, p)
			a, _ := os.ReadFile(p)
			b, err := os.ReadFile(filepath.Join(dir, "roots", h, rel))
			if err != nil || !bytes.Equal(a, b) {
				t.Errorf("%s: %s differs from out/ (%v)", h, rel, err)
			}
			n++
			return nil
		})
		if n == 0 {
			t.Fatalf("no files under %s", want)
		}
	}
	// Another key: refused, nothing changed.
	run("keygen", "--out", "other")
	os.WriteFile("stacks/fleet.cue", []byte(strings.Replace(ociStack, "port: 8000", "port: 8001", 1)), 0o644)
	run("build")
	if code, out, stderr := run("publish", "--oci", ref, "--plain-http", "--sign-key", "k.key", "--allow-dirty"); code != 0 {
		t.Fatalf("publish v2: %s %s", out, stderr)
	}
	before := readTree(t, filepath.Join(dir, "roots/app1/etc"))
	code, _, stderr = apply("app1", "other.pub")
	if code != 1 || !strings.Contains(stderr, "not made with the verification key") {
		t.Fatalf("apply with another key: exit %d\n%s", code, stderr)
	}
	if after := readTree(t, filepath.Join(dir, "roots/app1/etc")); len(after) != len(before) || len(before) == 0 {
		t.Error("a refused apply changed the files")
	} else {
		for p, v := range before {
			if after[p] != v {
				t.Errorf("a refused apply changed %s", p)
			}
		}
	}
	if code, _, stderr = apply("app1", "k.pub"); code != 0 {
		t.Fatalf("apply v2: %s", stderr)
	}

	// Usage errors.
	for _, args := range [][]string{
		{"publish", "--oci", ref, "--branch", "x", "--sign-key", "k.key"},
		{"publish", "--oci", ref},
		{"publish", "--sign-key", "k.key"},
		{"publish", "--oci", "no-tag", "--sign-key", "k.key"},
		{"apply", "--from", "oci://" + ref, "--stack", "fleet"},
		{"apply", "--from", "oci://x/y", "--stack", "fleet", "--verify-key", "k.pub"},
	} {
		if code, _, stderr := run(args...); code != 64 {
			t.Errorf("%v: exit %d, want %d: %s", args, code, 64, stderr)
		}
	}
	// push's --root is a template; apply's is the one host's directory.
	code, _, stderr = run("apply", "--from", "oci://"+ref, "--stack", "fleet", "--host", "app1", "--verify-key", "k.pub", "--root", filepath.Join(dir, "roots", "{host}"))
	if want := "its --root has no placeholders: write the directory itself, such as /srv/staging/app1"; code != 64 || !strings.Contains(stderr, want) {
		t.Errorf("apply --root .../{host}: exit %d, want 64 saying %q: %s", code, want, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "roots", "{host}")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("apply --root .../{host} made the directory {host}: %v", err)
	}
	// A --registry-config that is not there (a typo), or not a config,
	// is said before the registry is reached, not left to its refusal.
	os.WriteFile("bad-config.json", []byte("auths: {}\n"), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"publish", "--oci", ref, "--plain-http", "--sign-key", "k.key", "--allow-dirty", "--registry-config", "no-such.json"}, "--registry-config: stat no-such.json: no such file or directory"},
		{[]string{"publish", "--oci", ref, "--plain-http", "--sign-key", "k.key", "--allow-dirty", "--registry-config", "bad-config.json"}, "registry credentials bad-config.json: "},
		{[]string{"apply", "--from", "oci://" + ref, "--plain-http", "--stack", "fleet", "--host", "app1", "--verify-key", "k.pub", "--root", filepath.Join(dir, "roots", "app1"), "--registry-config", "no-such.json"}, "--registry-config: stat no-such.json: no such file or directory"},
	} {
		if code, _, stderr := run(c.args...); code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s --registry-config: exit %d, want 1 saying %q: %s", c.args[0], code, c.want, stderr)
		}
	}
}
