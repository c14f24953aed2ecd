package monitoring_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/testtool"
)

// unitStack is the stack testdata/rules_test.yml is written for: its
// series and expected alerts assume these thresholds, host names,
// addresses and database servers.
const unitStack = `
hosts: {
	lb1: {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.0.0.11", roles: ["app"], cores: 2, memory_mb: 2048}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 1, memory_mb: 2048}
	app3: {address: "10.0.0.13", roles: ["app"], cores: 1, memory_mb: 2048}
}
balancer: kind: "haproxy"
monitoring: address: "10.0.0.2"
monitoring: {for_minutes: 5, cpu_percent: 85, error_rate_percent: 5, replication_lag_seconds: 30}
database: {host: "db.internal", name: "shop", replicas: ["db-r1.internal", "db-r2.internal", "db-r3.internal"]}
`

// TestRulesFire runs promtool's rule unit tests against the rules
// rendered for unitStack: series just above a threshold fire after
// for_minutes and not a minute before, series below it never fire, and
// the annotations name the host or server with the alert's value.
func TestRulesFire(t *testing.T) {
	testtool.Require(t, "promtool", "prometheus")
	alerts, config := generate(t, load(t, "unit", unitStack))
	dir := writeOut(t, alerts, config)
	promtoolTest(t, dir, "rules_test.yml")
}

// promtoolTest copies the promtool unit-test spec testdata/<spec> beside
// the rendered files in dir and runs it.
func promtoolTest(t *testing.T, dir, spec string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", spec))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, spec), b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := promtool(t, dir, "test", "rules", spec)
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules %s:\n%s", spec, out)
	}
}
