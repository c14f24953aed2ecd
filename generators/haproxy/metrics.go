package haproxy

import (
	"net"
	"strconv"

	"github.com/hacompile/hacompile/schema"
)

// MetricsAddress is where HAProxy's Prometheus exporter listens on
// balancer h: its private address and monitoring.ports.haproxy.
func MetricsAddress(s *schema.Stack, h *schema.Host) string {
	return net.JoinHostPort(h.Address, strconv.Itoa(s.Monitoring.Ports.HAProxy))
}

// metricsListen writes the Prometheus metrics listener: HAProxy's
// built-in exporter on the balancer's private address, apart from the
// password-protected stats page, answering the monitoring host alone.
// Nothing else is served there: any other path, or any other client,
// gets a 403.
func metricsListen(w *writer, s *schema.Stack, h *schema.Host) {
	if !s.Monitoring.Enabled {
		return
	}
	m := s.Monitoring
	w.section("frontend", "metrics")
	w.note("HAProxy's Prometheus exporter for the monitoring host ("+m.Address+"), which scrapes",
		"it as job \"haproxy\" (monitoring/prometheus.yml). No password: the address",
		"decides. The stats page stays on its own listener.")
	w.kw("bind", w.v(MetricsAddress(s, h)))
	w.kw("mode", "http")
	w.kw("acl", "monitoring", "src", w.v(m.Address))
	w.kw("acl", "metrics", "path", "/metrics")
	w.kw("http-request", "deny", "deny_status", "403", "unless", "monitoring", "metrics")
	w.note("A scrape every 15 seconds is not worth a log line; refusals are logged.")
	w.kw("http-request", "set-log-level", "silent")
	w.kw("http-request", "use-service", "prometheus-exporter")
}

// metricsPort is the metrics listener's port, for checkPorts; 0 when
// the stack is not monitored.
func metricsPort(s *schema.Stack) (int, string) {
	if !s.Monitoring.Enabled {
		return 0, ""
	}
	return s.Monitoring.Ports.HAProxy, "monitoring.ports.haproxy (HAProxy's metrics listener)"
}
