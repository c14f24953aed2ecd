package monitoring_test

import (
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/hacompile/hacompile/internal/testtool"
)

// timingStack has every component the newer alerts watch: nginx
// balancing (5xx from mtail), certbot on the balancer, a self-hosted
// Redis on a cache host that is also the Celery broker, and workers.
const timingStack = `
tls: {mode: "certbot"}
hosts: {
	lb1: {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
	worker1: {address: "10.0.0.21", roles: ["worker"], cores: 1, memory_mb: 1024}
	cache1: {address: "10.0.0.31", roles: ["cache"], cores: 1, memory_mb: 1024}
}
balancer: kind: "nginx"
cache: {engine: "redis", maxmemory_policy: "noeviction"}
queue: {engine: "redis", host: "10.0.0.31", db: 1}
workers: {app: "shop", queues: ["celery", "emails"]}
monitoring: {for_minutes: 5, queue_depth: 100, cert_expiry_days: 14, redis_memory_percent: 90, error_rate_percent: 5}
`

// TestAlertTiming runs promtool's rule unit tests (testdata/timing_test.yml)
// against the expressions, labels and for: of the rules rendered for
// timingStack: each alert is quiet before its for: has passed, fires
// after, and stays quiet for healthy series. Annotations are taken off
// here (TestRulesFire and TestContent check them), so the spec states
// labels only.
func TestAlertTiming(t *testing.T) {
	testtool.Require(t, "promtool", "prometheus")
	alerts, config := generate(t, load(t, "timing", timingStack))
	dir := writeOut(t, bare(t, alerts), config)
	promtoolTest(t, dir, "timing_test.yml")
}

// bare is alerts.yaml without its annotations.
func bare(t *testing.T, alerts []byte) []byte {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(alerts, &doc); err != nil {
		t.Fatal(err)
	}
	for _, g := range doc["groups"].([]any) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			delete(r.(map[string]any), "annotations")
		}
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
