package pull_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/monitoring"
	"github.com/hacompile/hacompile/generators/pull"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

const src = `
name:   "t"
domain: "shop.example.com"
tls: mode: "none"
hosts: {
	app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app"}
delivery: pull: {registry: "registry.example.com", repository: "ops/t", interval_minutes: 10, randomized_delay_minutes: 2}
`

func stack(t *testing.T) *schema.Stack { return testtool.Load(t, "t.cue", src) }

// Nothing is rendered for a stack that does not pull.
func TestOffRendersNothing(t *testing.T) {
	s := testtool.Load(t, "t.cue", strings.Replace(src, "delivery: pull:", "_x:", 1))
	fs, err := pull.Gen{}.Generate(s, artifact.Options{})
	if err != nil || len(fs) != 0 {
		t.Fatalf("%d files, %v", len(fs), err)
	}
}

// The service and timer pass their own Validate (systemd-analyze
// verify) as rendered into a sandbox with the agent there: no warning,
// and the timer finds its service.
func TestUnitsVerify(t *testing.T) {
	testtool.Require(t, "systemd-analyze", "systemd")
	root := t.TempDir()
	os.Chmod(root, 0o755)
	s := stack(t)
	fs, err := pull.Gen{}.Generate(s, artifact.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	agent := filepath.Join(root, "usr/local/bin/hacompile")
	os.MkdirAll(filepath.Dir(agent), 0o755)
	os.WriteFile(agent, []byte("#!/bin/sh\nexit 0\n"), 0o755)
	var checks []artifact.File
	for _, f := range fs {
		if f.Host != "app1" {
			continue
		}
		p := filepath.Join(root, f.Path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, f.Content, f.Mode); err != nil {
			t.Fatal(err)
		}
		if !f.Validate.IsZero() {
			checks = append(checks, f)
		}
	}
	if len(checks) != 2 {
		t.Fatalf("%d files with a validate command, want the service and the timer", len(checks))
	}
	for _, f := range checks {
		cmd := exec.Command("/bin/sh", "-c", f.Validate.String())
		cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+filepath.Join(root, pull.UnitDir)+":")
		out, err := cmd.CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("%s: %v\n%s", f.Validate.String(), err, out)
		}
	}
}

// The delivery alerts, as rendered, with promtool's rule tests: a host
// behind for less than two periods (2 × 12 minutes) is quiet, then
// HostStuckOnOldDigest fires; a host whose last success is three
// periods old fires PullNotApplying after for_minutes.
func TestAlertsFire(t *testing.T) {
	promtool := testtool.Require(t, "promtool", "prometheus")
	s := stack(t)
	fs, err := monitoring.Gen{}.Generate(s, artifact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range fs {
		if strings.HasSuffix(f.Path, "alerts.yaml") {
			os.WriteFile(filepath.Join(dir, "alerts.yaml"), f.Content, 0o644)
		}
	}
	spec := `rule_files: [alerts.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'hacompile_apply_behind{job="node",host="app1",instance="10.0.0.11:9100"}'
        values: '1x60'
      - series: 'hacompile_apply_behind{job="node",host="app2",instance="10.0.0.12:9100"}'
        values: '0x60'
      - series: 'hacompile_apply_last_success_timestamp_seconds{job="node",host="app2",instance="10.0.0.12:9100"}'
        values: '0x60'
    alert_rule_test:
      - eval_time: 23m
        alertname: HostStuckOnOldDigest
        exp_alerts: []
      - eval_time: 25m
        alertname: HostStuckOnOldDigest
        exp_alerts:
          - exp_labels: {severity: warning, job: node, host: app1, instance: "10.0.0.11:9100"}
            exp_annotations:
              summary: "app1 has not applied the artifact its tag points at"
              description: "app1 (10.0.0.11:9100) follows a tag of registry.example.com/ops/t that points at an artifact it has not applied for two of its periods (12 minutes each): its applies fail. First check: ` + "`journalctl -u hacompile-pull-t.service -n 50`" + ` on the host (a signature refused, drift, a failed validate or health check) and /var/lib/hacompile/t.pull.json's last_error."
              runbook_url: "/stacks/t/alerts.html#alert-hoststuckonolddigest"
      - eval_time: 40m
        alertname: PullNotApplying
        exp_alerts: []
      - eval_time: 42m
        alertname: PullNotApplying
        exp_alerts:
          - exp_labels: {severity: warning, job: node, host: app2, instance: "10.0.0.12:9100"}
            exp_annotations:
              summary: "app2 has not applied its files successfully in 36 minutes"
              description: "app2 (10.0.0.12:9100) has had no successful apply for three of its periods (12 minutes each). First check: ` + "`systemctl status hacompile-pull-t.timer hacompile-pull-t.service`" + ` on the host, then whether it reaches registry.example.com."
              runbook_url: "/stacks/t/alerts.html#alert-pullnotapplying"
`
	os.WriteFile(filepath.Join(dir, "test.yml"), []byte(spec), 0o644)
	cmd := exec.Command(promtool, "test", "rules", "test.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}
