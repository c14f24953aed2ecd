package monitoring_test

import (
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/testtool"
)

// rabbitStack runs its own RabbitMQ on mq1 as the Celery broker.
const rabbitStack = `
tls: mode: "none"
hosts: {
	lb1: {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	worker1: {address: "10.0.0.21", roles: ["worker"], cores: 1, memory_mb: 1024}
	mq1: {address: "10.0.0.41", roles: ["queue"], cores: 1, memory_mb: 1024}
}
balancer: kind: "nginx"
queue: {engine: "rabbitmq", vhost: "shop"}
workers: {app: "shop", queues: ["celery", "emails"]}
monitoring: {for_minutes: 5, queue_depth: 100}
`

// TestRabbitMQ: a self-hosted RabbitMQ is scraped on the queue host's
// plugin port, its service is watched by ServiceDown, and its queue
// depth and alarms alert after for: and not before (promtool,
// testdata/rabbitmq_test.yml).
func TestRabbitMQ(t *testing.T) {
	testtool.Require(t, "promtool", "prometheus")
	alerts, config := generate(t, load(t, "rabbit", rabbitStack))
	if !strings.Contains(string(config), `job_name: "rabbitmq"`) || !strings.Contains(string(config), "10.0.0.41:15692") {
		t.Errorf("prometheus.yml does not scrape the queue host:\n%s", config)
	}
	if !strings.Contains(string(alerts), "rabbitmq-server\\\\.service") {
		t.Errorf("ServiceDown does not watch rabbitmq-server on the queue role:\n%s", alerts)
	}
	dir := writeOut(t, bare(t, alerts), config)
	promtoolTest(t, dir, "rabbitmq_test.yml")
}
