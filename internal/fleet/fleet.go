// Package fleet writes synthetic stacks of any size for benchmarks.
package fleet

import (
	"fmt"
	"strings"
)

// Fleet returns a synthetic stack of n hosts with every artifact kind on:
// an HAProxy balancer pair (every balancer lists every app host, so more
// balancers would make the output grow with their product, not with the
// fleet), the rest app hosts running gunicorn, TLS, a database with a
// replica, a cache, monitoring.
// firstSize, when set, replaces the size of the first app host (to
// measure a one-host change).
func Fleet(n int, firstSize string) []byte {
	var b strings.Builder
	b.WriteString(`name:        "fleet"
description: "synthetic fleet for benchmarks"
provider:    "digitalocean"
region:      "fra1"
domain:      "fleet.example.com"
tls: {mode: "certbot", email: "ops@example.com"}
balancer: {kind: "haproxy", failover: "reserved-ip", maxconn: 20000}
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
cache: {engine: "redis", host: "10.99.0.2"}
hosts: {
`)
	lbs := 2
	for i := range n {
		role, name := "app", fmt.Sprintf("app%d", i)
		if i < lbs {
			role, name = "lb", fmt.Sprintf("lb%d", i)
		}
		size := "s-2vcpu-4gb"
		if i == lbs && firstSize != "" {
			size = firstSize
		}
		fmt.Fprintf(&b, "\t%s: {address: \"10.%d.%d.%d\", roles: [%q], size: %q}\n", name, 100+i/65536, i/256%256, i%256, role, size)
	}
	b.WriteString("}\n")
	return []byte(b.String())
}
