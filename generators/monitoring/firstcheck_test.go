package monitoring_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/schema"
)

// TestFirstChecks: the commands the alerts' descriptions give as the
// first check are ones that work on the stack as rendered, and each
// rule's runbook_url is its own.
func TestFirstChecks(t *testing.T) {
	for _, s := range allStacks(t) {
		alerts, _ := generate(t, s)
		seen := map[string]string{}
		for _, g := range parseRules(t, alerts).Groups {
			for _, r := range g.Rules {
				desc := r.Annotations["description"]
				who := s.Name + ": " + r.Alert + " (group " + g.Name + ")"
				if strings.Count(desc, "`")%2 != 0 || strings.Contains(desc, "``") {
					t.Errorf("%s: unbalanced code spans: %s", who, desc)
				}
				if url := r.Annotations["runbook_url"]; strings.Contains(url, "/alerts.html#") {
					if other, dup := seen[url]; dup {
						t.Errorf("%s: runbook_url %s is %s's too", who, url, other)
					}
					seen[url] = who
				}
				switch r.Alert {
				case "BackendDown":
					// nginx on the app hosts listens on their private
					// addresses only.
					hosts := s.HostsWithRole("app")
					if a := s.AppByName(r.Labels["app"]); a != nil && s.MultiApp() {
						hosts = s.AppHosts(a)
					}
					if strings.Contains(desc, "127.0.0.1:") || len(hosts) == 0 || !strings.Contains(desc, hosts[0].Address) {
						t.Errorf("%s: no health check on the app hosts' private addresses (%v): %s", who, schema.HostNamesOf(hosts), desc)
					}
				case "RedisDown", "RedisMemoryHigh", "RedisEvictingKeys":
					// No app host installs redis-tools, and a self-hosted
					// Redis refuses clients that do not log in.
					if strings.Contains(desc, "redis-cli -h") || strings.Contains(desc, "from an app host") {
						t.Errorf("%s: redis-cli on an app host: %s", who, desc)
					}
					selfHosted := s.Cache != nil && s.Cache.Engine == "redis" && !s.Cache.Managed && len(s.CacheHosts()) > 0
					if selfHosted && !strings.Contains(desc, " --askpass") || !selfHosted && strings.Contains(desc, "`redis-cli") {
						t.Errorf("%s: redis-cli, self-hosted %v: %s", who, selfHosted, desc)
					}
					if r.Alert == "RedisMemoryHigh" && !selfHosted && strings.Contains(desc, "raise cache.maxmemory_percent") {
						t.Errorf("%s: cache.maxmemory_percent is a self-hosted Redis's alone: %s", who, desc)
					}
				case "CeleryQueueBacklog", "CeleryWorkersMissing":
					// celery is in the app's virtualenv, run as the worker
					// unit runs it.
					if !strings.Contains(desc, "systemd-run ") || !strings.Contains(desc, "/bin/celery -A "+s.Workers.App+" inspect active") ||
						!strings.Contains(desc, "--uid="+s.App.User+" ") || !strings.Contains(desc, "EnvironmentFile="+s.App.EnvironmentFile+" ") {
						t.Errorf("%s: celery not run as the worker unit runs it: %s", who, desc)
					}
				case "RabbitMQAlarm":
					if !strings.Contains(desc, "rabbitmqctl list_queues -p "+s.Queue.VHost+" ") {
						t.Errorf("%s: list_queues outside vhost %s: %s", who, s.Queue.VHost, desc)
					}
				case "KeepalivedAddressCheckFailing":
					if metadata := s.Balancer.Failover == "reserved-ip"; metadata != strings.Contains(desc, "metadata") {
						t.Errorf("%s (failover %s): the metadata service named %v: %s", who, s.Balancer.Failover, !metadata, desc)
					}
				}
			}
		}
	}
}

// TestBackendDownManyHosts: with many app hosts, BackendDown's check
// names the first hosts' commands and the rest by name.
func TestBackendDownManyHosts(t *testing.T) {
	s := load(t, "haproxy-many", `
tls: mode: "none"
hosts: {
	lb1: {address: "10.7.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.7.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "10.7.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
	app3: {address: "10.7.0.13", roles: ["app"], cores: 1, memory_mb: 1024}
	app4: {address: "10.7.0.14", roles: ["app"], cores: 1, memory_mb: 1024}
	app5: {address: "10.7.0.15", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "haproxy"
monitoring: address: "10.0.0.2"
`)
	alerts, _ := generate(t, s)
	for _, g := range parseRules(t, alerts).Groups {
		for _, r := range g.Rules {
			if r.Alert != "BackendDown" {
				continue
			}
			want := "`curl -i -H 'Host: shop.example.com' http://10.7.0.11:" + strconv.Itoa(s.App.HTTPPort) + "/healthz` (app1), " +
				"`curl -i -H 'Host: shop.example.com' http://10.7.0.12:" + strconv.Itoa(s.App.HTTPPort) + "/healthz` (app2), " +
				"the same with the address of app3…app5."
			if d := r.Annotations["description"]; !strings.HasSuffix(d, want) {
				t.Errorf("BackendDown: %s\nwant it to end with %s", d, want)
			}
			return
		}
	}
	t.Error("no BackendDown")
}
