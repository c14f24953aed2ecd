package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/oci"
	"github.com/hacompile/hacompile/internal/oci/ocitest"
	"github.com/hacompile/hacompile/internal/testtool"
)

func promoteStack(reg string, node, port int) string {
	return fmt.Sprintf(`name: "fleet"
domain: "fleet.example.com"
tls: mode: "none"
hosts: {
	app1: {address: "127.0.0.21", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "127.0.0.22", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app", bind: port: %d}
monitoring: ports: node: %d
delivery: pull: {registry: %q, repository: "ops/fleet", plain_http: true, canary_hosts: ["app1"]}
`, port, node, reg)
}

// promote end to end: the stack's canary (app1) reports through a real
// node_exporter on its own address and the stack's node port, as the
// stack renders it; promote refuses (exit 7) while app1 runs the old
// artifact, then moves both stable tags once it applied the new one.
func TestPromoteCommand(t *testing.T) {
	git := testtool.Require(t, "git", "git")
	nodeBin := testtool.Require(t, "prometheus-node-exporter", "prometheus-node-exporter")
	reg := ocitest.Start(t)
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, ".cache"))
	t.Setenv("DOCKER_CONFIG", filepath.Join(dir, ".docker"))
	node := testtool.FreePort(t, "127.0.0.21")
	os.MkdirAll("stacks", 0o755)
	os.WriteFile("stacks/fleet.cue", []byte(promoteStack(reg.Addr, node, 8000)), 0o644)
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "stacks"}, {"-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m", "fleet"}} {
		if out, err := exec.Command(git, args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	if code, _, stderr := run("build"); code != 0 {
		t.Fatalf("build: %s", stderr)
	}
	run("keygen", "--out", "k")
	name := reg.Addr + "/ops/fleet"
	publish := func(channel string) {
		t.Helper()
		if code, out, stderr := run("publish", "--oci", name+":"+channel, "--plain-http", "--sign-key", "k.key", "--allow-dirty"); code != 0 {
			t.Fatalf("publish %s: %s%s", channel, out, stderr)
		}
	}
	publish("canary")
	publish("stable")
	root := filepath.Join(dir, "roots", "app1")
	textfiles := filepath.Join(root, "var/lib/prometheus/node-exporter")
	os.MkdirAll(textfiles, 0o755)
	var log bytes.Buffer
	ne := exec.Command(nodeBin, fmt.Sprintf("--web.listen-address=127.0.0.21:%d", node), "--collector.disable-defaults", "--collector.textfile", "--collector.textfile.directory="+textfiles)
	ne.Stdout, ne.Stderr = &log, &log
	if err := ne.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ne.Process.Kill()
		ne.Wait()
		if t.Failed() {
			t.Logf("node_exporter:\n%s", log.String())
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.21:%d/metrics", node)); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node_exporter did not start")
		}
	}
	apply := func() {
		t.Helper()
		if code, out, stderr := run("apply", "--from", "oci://"+name+":canary", "--plain-http", "--stack", "fleet", "--host", "app1",
			"--verify-key", "k.pub", "--root", root, "--no-health-check", "--metrics-file", "/var/lib/prometheus/node-exporter/hacompile_pull_fleet.prom"); code != 0 {
			t.Fatalf("apply: %s%s", out, stderr)
		}
	}
	apply()
	os.WriteFile("stacks/fleet.cue", []byte(promoteStack(reg.Addr, node, 8001)), 0o644)
	if code, _, stderr := run("build"); code != 0 {
		t.Fatalf("build: %s", stderr)
	}
	publish("canary")

	repo, _ := oci.Open(oci.Ref{Registry: reg.Addr, Repository: "ops/fleet"}, oci.RepoOptions{PlainHTTP: true, DockerConfig: filepath.Join(dir, "none.json")})
	digestOf := func(tag string) string {
		t.Helper()
		d, err := repo.Resolve(context.Background(), tag)
		if err != nil {
			t.Fatal(err)
		}
		return d.Digest.String()
	}
	oldStable := digestOf("stable-fleet-app2")
	code, out, stderr := run("promote", "fleet")
	if code != 7 || !strings.Contains(stderr, "refusing to promote fleet from canary to stable: 1 of 1 canary host not converged (read from the hosts' metrics endpoints):\n  app1: not converged: applied sha256:") {
		t.Fatalf("promote before the canary applied: exit %d\n%s%s", code, out, stderr)
	}
	if digestOf("stable-fleet-app2") != oldStable {
		t.Fatal("a refused promotion moved a tag")
	}
	apply()
	code, out, stderr = run("promote", "fleet", "--dry-run", "--verify-key", "k.pub")
	if code != 0 || !strings.Contains(out, "would promote fleet from canary to stable at "+name+": 2 tags to move, 0 already there (1 canary host converged)") || digestOf("stable-fleet-app2") != oldStable {
		t.Fatalf("promote --dry-run: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = run("promote", "fleet", "--verify-key", "k.pub")
	if code != 0 || !strings.Contains(out, "app1: applied sha256:") || !strings.Contains(out, "index stable-fleet: sha256:") || !strings.Contains(out, "(moved)") || !strings.Contains(out, "promoted fleet from canary to stable at "+name+": 2 tags moved, 0 already there") {
		t.Fatalf("promote: exit %d\n%s%s", code, out, stderr)
	}
	for _, h := range []string{"app1", "app2"} {
		if s, c := digestOf("stable-fleet-"+h), digestOf("canary-fleet-"+h); s != c {
			t.Errorf("stable-fleet-%s at %s, canary at %s", h, s, c)
		}
	}
	if digestOf("stable-fleet-app2") == oldStable {
		t.Error("app2's stable tag did not move")
	}

	for _, args := range [][]string{
		{"promote", "fleet", "--prometheus", "http://127.0.0.1:9090", "--metrics", "app1=http://127.0.0.1:1/metrics"},
		{"promote", "fleet", "--metrics", "app2=http://127.0.0.1:1/metrics"},
		{"promote", "fleet", "--from", "stable", "--to", "stable"},
		{"promote", "fleet", "--prometheus", "localhost:9090"},
	} {
		if code, _, stderr := run(args...); code != 64 {
			t.Errorf("%v: exit %d, want 64: %s", args, code, stderr)
		}
	}
}
