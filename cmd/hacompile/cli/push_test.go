package cli_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/cmd/hacompile/cli"
	"github.com/hacompile/hacompile/internal/push"
	"github.com/hacompile/hacompile/internal/push/pushtest"
)

// hc runs the command line in-process and returns the exit code its
// error carries (Run maps errors to codes the same way), stdout and
// stderr.
func hc(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := cli.New(&out, &errb)
	cmd.SetArgs(args)
	err := cmd.Execute()
	code := 0
	if err != nil {
		code = 1
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			code = ec.ExitCode()
		}
	}
	return code, out.String(), errb.String()
}

// pushFleet starts two sshd hosts (app1, app2, from address first) and
// a health server, and builds the stack of them in a new working
// directory; writeStack writes version v of it, for a build to follow.
func pushFleet(t *testing.T, first int) (f *pushtest.Fleet, health *pushtest.Health, writeStack func(v int)) {
	t.Helper()
	f = pushtest.Start(t, first, "app1", "app2")
	health = pushtest.StartHealth(t)
	for _, n := range f.Names {
		f.Hosts[n].Stub(t, "/srv/app/venv/bin/gunicorn")
	}
	t.Chdir(t.TempDir())
	writeStack = func(v int) {
		os.MkdirAll("stacks", 0o755)
		if err := os.WriteFile("stacks/fleet.cue", []byte(f.StackCUE("fleet", v)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeStack(30)
	if code, _, stderr := hc(t, "build"); code != 0 {
		t.Fatalf("build: %s", stderr)
	}
	return f, health, writeStack
}

// The whole command line against two real sshd hosts: dry run, push
// with a JSON summary, an idempotent re-push with the text table, the
// distinct exit codes of an unknown key, a changed key and drift, and
// rollback.
func TestPushCommand(t *testing.T) {
	f, health, writeStack := pushFleet(t, 121)
	known := f.KnownHosts(true)
	common := []string{"--known-hosts", known, "-i", f.ClientKey, "--confirm-timeout", "15s", "--root", f.Dir + "/{host}/root", "--health-url", health.URL}

	code, stdout, stderr := hc(t, append([]string{"push", "fleet", "--dry-run"}, common...)...)
	if code != 0 || !strings.Contains(stdout, "app1 (") || !strings.Contains(stdout, "  + /etc/app/gunicorn.conf.py (0644 root:root)\n") {
		t.Fatalf("dry run: %d\n%s\n%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(f.Hosts["app1"].Root, "etc")); !os.IsNotExist(err) {
		t.Fatal("dry run wrote files")
	}

	// A password in --health-url is sent, and shown as xxxxx.
	withPassword := slices.Clone(common)
	withPassword[len(withPassword)-1] = strings.Replace(health.URL, "http://", "http://mon:hunter2@", 1)
	code, stdout, stderr = hc(t, append([]string{"push", "--output", "json", "--batch", "1"}, withPassword...)...)
	if code != 0 {
		t.Fatalf("push: %d\n%s", code, stderr)
	}
	if strings.Contains(stdout+stderr, "hunter2") || !strings.Contains(stdout, `"detail":"http://mon:xxxxx@`) || !strings.Contains(stdout, `"health":"http://mon:xxxxx@`) {
		t.Errorf("push showed the health URL's password, or no health URL:\n%s%s", stdout, stderr)
	}
	// JSON lines: each host event as it happened, then the summary.
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	var sum push.Summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("json: %v\n%s", err, stdout)
	}
	var phases []string
	for _, l := range lines[:len(lines)-1] {
		var ev push.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Event != "phase" || ev.Time == "" {
			t.Fatalf("event line %q: %v", l, err)
		}
		if ev.Host == "app2" {
			phases = append(phases, string(ev.Phase))
		}
	}
	// app2 goes in batch 2: planned with app1, then its own steps.
	if want := "connecting planned uploading validating checking healthy"; strings.Join(phases, " ") != want {
		t.Errorf("app2 events: %q, want %q", phases, want)
	}
	if !sum.OK || sum.Action != "push" || len(sum.Hosts) != 2 || sum.Hosts[0].Status != "done" || sum.Hosts[1].Batch != 2 || sum.Hosts[0].Created != 15 {
		t.Errorf("summary: %+v", sum)
	}

	code, stdout, _ = hc(t, append([]string{"push", "fleet"}, common...)...)
	if code != 0 || !regexp.MustCompile(`(?m)^app1 +1 +unchanged +0 +0 +0 +15 +-$`).MatchString(stdout) {
		t.Errorf("re-push: %d\n%s", code, stdout)
	}

	// Exit codes: 3 unknown host key, 4 changed key, 5 drift.
	empty := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(empty, nil, 0o600)
	code, _, stderr = hc(t, "push", "--known-hosts", empty, "-i", f.ClientKey, "--root", f.Dir+"/{host}/root", "--no-health-check")
	if code != 3 || !strings.Contains(stderr, "hacompile: app1: host key for "+f.Hosts["app1"].Endpoint()+" is unknown") ||
		!strings.Contains(stderr, "hacompile: hint: compare the fingerprint") {
		t.Errorf("unknown key: exit %d\n%s", code, stderr)
	}
	_, other := pushtest.NewKey(t, t.TempDir(), "other", "")
	changed := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(changed, []byte(pushtest.KnownHostsLine(f.Hosts["app2"].Endpoint(), other, true)+"\n"+
		pushtest.KnownHostsLine(f.Hosts["app1"].Endpoint(), f.Hosts["app1"].HostKey, true)+"\n"), 0o600)
	code, _, stderr = hc(t, "push", "--known-hosts", changed, "-i", f.ClientKey, "--root", f.Dir+"/{host}/root")
	if code != 4 || !strings.Contains(stderr, "hacompile: app2: HOST KEY CHANGED") {
		t.Errorf("changed key: exit %d\n%s", code, stderr)
	}
	// Tolerating half the hosts, app1 goes ahead; the exit code still
	// says why app2 was left out.
	code, stdout, stderr = hc(t, "push", "--known-hosts", changed, "-i", f.ClientKey, "--root", f.Dir+"/{host}/root", "--no-health-check", "--max-fail", "50%")
	if code != 4 || !regexp.MustCompile(`(?m)^app1 +1 +unchanged +`).MatchString(stdout) || !regexp.MustCompile(`(?m)^app2 +- +failed +`).MatchString(stdout) ||
		!strings.Contains(stdout, "app2: note: not written: it failed its preflight, and the other hosts went ahead") {
		t.Errorf("changed key, --max-fail 50%%: exit %d\n%s\n%s", code, stdout, stderr)
	}

	writeStack(45)
	if code, _, stderr := hc(t, "build"); code != 0 {
		t.Fatalf("build v2: %s", stderr)
	}
	conf := filepath.Join(f.Hosts["app2"].Root, "etc/app/gunicorn.conf.py")
	os.WriteFile(conf, []byte("# edited by hand\n"), 0o644)
	code, _, stderr = hc(t, append([]string{"push"}, common...)...)
	if code != 5 || !strings.Contains(stderr, "app2: /etc/app/gunicorn.conf.py was changed on the host since the last push") ||
		!strings.Contains(stderr, "push with --force") {
		t.Errorf("drift: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr = hc(t, append([]string{"push", "--force"}, common...)...)
	if code != 0 || !regexp.MustCompile(`(?m)^app2 +2 +done +0 +1 +0 +14 +2$`).MatchString(stdout) {
		t.Errorf("forced push: %d\n%s\n%s", code, stdout, stderr)
	}

	code, stdout, stderr = hc(t, append([]string{"rollback", "fleet", "--hosts", "app2"}, common...)...)
	if code != 0 || !regexp.MustCompile(`(?m)^app2 +1 +done +0 +1 +0 +0 +3$`).MatchString(stdout) {
		t.Errorf("rollback: %d\n%s\n%s", code, stdout, stderr)
	}
	if b, _ := os.ReadFile(conf); string(b) != "# edited by hand\n" {
		t.Errorf("rollback did not restore the file the forced push replaced: %q", b)
	}
}
