// Package fleet writes synthetic stacks of any size for benchmarks.
package fleet

import (
	"fmt"
	"strings"
)

// Fleet returns a synthetic stack of n hosts with every artifact kind on:
// an HAProxy balancer pair (every balancer lists every app host, so more
// balancers would make the output grow with their product, not with the
// fleet), app hosts running gunicorn, from 10 hosts on one Celery worker
// host in ten (RabbitMQ as the broker) and a self-hosted Redis cache host
// (an external one below that), TLS, a database with a replica,
// monitoring. Hosts are named by role and
// index: lb0, lb1, app2, cache3, …, worker9, …
// firstSize, when set, replaces the size of the first app host, app2 (to
// measure a one-host change).
func Fleet(n int, firstSize string) []byte {
	var b strings.Builder
	b.WriteString(`name:        "fleet"
description: "synthetic fleet for benchmarks"
provider:    "digitalocean"
region:      "fra1"
domain:      "fleet.example.com"
tls: {mode: "certbot", email: "ops@example.com"}
balancer: {kind: "haproxy", failover: "reserved-ip", maxconn: 20000, vrrp: {virtual_address: "203.0.113.50", router_id: 50, interface: "eth1"}}
monitoring: address: "10.250.0.2"
app: {
	name:         "fleet"
	runtime:      "python"
	module:       "fleet.wsgi:application"
	worker_class: "gthread"
	threads:      4
	working_dir:  "/srv/fleet"
	virtualenv:   "/srv/fleet/venv"
	static: [{url: "/static/", dir: "/srv/fleet/static"}]
}
tuning: sysctl: {"net.core.somaxconn": 32768, "net.ipv4.tcp_max_syn_backlog": 32768}
database: {host: "db.fleet.internal", name: "fleet", replicas: ["db-ro.fleet.internal"], replica_pool_size: 5}
`)
	mixed := n >= 10
	if mixed {
		b.WriteString(`cache: {engine: "redis", maxmemory_percent: 60, persistence: "none"}
queue: {engine: "rabbitmq", host: "mq.fleet.internal", vhost: "fleet"}
workers: {app: "fleet", queues: ["celery", "emails"]}
`)
	} else {
		b.WriteString("cache: {engine: \"redis\", host: \"10.99.0.2\"}\n")
	}
	b.WriteString("hosts: {\n")
	for i := range n {
		role := "app"
		switch {
		case i < 2:
			role = "lb"
		case mixed && i == 3:
			role = "cache"
		case mixed && i%10 == 9:
			role = "worker"
		}
		size := "s-2vcpu-4gb"
		if i == 2 && firstSize != "" {
			size = firstSize
		}
		fmt.Fprintf(&b, "\t%s%d: {address: \"10.%d.%d.%d\", roles: [%q], size: %q}\n", role, i, 100+i/65536, i/256%256, i%256, role, size)
	}
	b.WriteString("}\n")
	return []byte(b.String())
}
