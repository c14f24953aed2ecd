package rules_test

import (
	"fmt"
	"github.com/hacompile/hacompile/internal/testtool"
	"slices"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/rules"
	"github.com/hacompile/hacompile/schema"
)

// base is a stack that trips no rule: two app hosts behind a cloud
// balancer, modest pools.
const base = `
name:   "t"
domain: "example.com"
hosts: {
	app1: {address: "10.0.0.11", roles: ["app"], cores: 2, memory_mb: 2048}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 2, memory_mb: 2048}
}
balancer: kind: *"cloud" | "nginx" | "haproxy" // a default, so cases can pick another
app: *{runtime: "python", module: "wsgi:app", working_dir: "/srv/app"} | {runtime: "perl", psgi: "/srv/app/app.psgi", working_dir: "/srv/app"}, monitoring: address: "10.0.0.2"
`

// Each rule gets a stack that trips it, with the exact message, and one
// close to it that does not.
var cases = []struct {
	rule      string
	trip, not string // CUE added to base
	want      string // the finding, as printed
}{
	{"ha-app-count",
		dropApp2, ``,
		`stacks/t.cue:4:8: hosts: warning: 1 app host (app1): losing it takes the site down; add a second host with the app role [ha-app-count]`},
	{"ha-single-lb",
		`balancer: kind: "nginx"
hosts: lb1: {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}`,
		`balancer: {kind: "nginx", failover: "reserved-ip"}
hosts: lb1: {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}`,
		`stacks/t.cue:10:11: balancer.failover: warning: one load balancer host (lb1) and no failover: use a cloud balancer (balancer.kind: "cloud"), or add a second lb host with keepalived or a reserved IP and set balancer.failover [ha-single-lb]`},
	{"ha-single-lb",
		`balancer: {kind: "haproxy", failover: "keepalived"}
hosts: lb1: {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}`,
		`balancer: {kind: "haproxy", failover: "keepalived"}
hosts: lb1: {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
hosts: lb2: {address: "10.0.0.6", roles: ["lb"], cores: 1, memory_mb: 1024}`,
		`stacks/t.cue:10:39: balancer.failover: warning: failover is keepalived but only one host (lb1) has the lb role: keepalived moves the address between two or more [ha-single-lb]`},
	{"lb-hosts",
		`balancer: kind: "nginx"`, ``,
		`stacks/t.cue:10:17: balancer.kind: balancer.kind is "nginx" but no host has the lb role [lb-hosts]`},
	{"lb-hosts",
		`hosts: lb1: {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}`, ``,
		`stacks/t.cue:8:17: balancer.kind: balancer.kind is "cloud" but lb1 have the lb role: nothing would be rendered for them [lb-hosts]`},
	{"host-address",
		`hosts: app3: {address: "10.0.0.11", roles: ["worker"], cores: 1, memory_mb: 1024}`,
		`hosts: app3: {address: "10.0.0.13", roles: ["worker"], cores: 1, memory_mb: 1024}`,
		`stacks/t.cue:10:24: hosts.app3.address: address 10.0.0.11 is also host app1's [host-address]`},
	{"apps",
		`workers: {app: "tasks", runs: "other"}`,
		`workers: {app: "tasks", runs: "app"}`,
		`stacks/t.cue:10:31: workers.runs: "other" is no app of the stack (apps: "app") [apps]`},
	{"capacity",
		`capacity: target_concurrency: 50000
app: {worker_class: "gevent", worker_connections: 1000}`,
		`capacity: target_concurrency: 10000
app: {worker_class: "gevent", worker_connections: 1000}`,
		`stacks/t.cue:10:31: capacity.target_concurrency: capacity is 10000 concurrent requests (2 app hosts, 10 workers in all, × 1000 connections) for a target of 50000: short by 40000; 10 such hosts would meet it [capacity]`},
	{"capacity",
		`capacity: target_concurrency: 100`,
		`capacity: target_concurrency: 10`,
		`stacks/t.cue:10:31: capacity.target_concurrency: capacity is 10 concurrent requests (2 app hosts, 10 workers in all, × 1 (sync)) for a target of 100: short by 90; 20 such hosts would meet it [capacity]`},
	{"fd-limit",
		`tuning: {nofile: 4096, nginx_worker_connections: 4096}`,
		`tuning: {nofile: 8192, nginx_worker_connections: 4096}`,
		`stacks/t.cue:10:18: tuning.nofile: nginx needs 2 descriptors per connection (client and upstream): 2 × 4096 worker_connections = 8192, above nofile 4096 [fd-limit]`},
	{"fd-limit",
		`tuning: {nofile: 2048, nginx_worker_connections: 512}
app: {worker_class: "gevent", worker_connections: 2000}`,
		`tuning: {nofile: 4096, nginx_worker_connections: 512}
app: {worker_class: "gevent", worker_connections: 2000}`,
		`stacks/t.cue:10:18: tuning.nofile: a gevent worker holds 2000 connections + 0 database connections + 64 spare = 2064 descriptors, above nofile 2048 [fd-limit]`},
	{"fd-host",
		`tuning: sysctl: "fs.file-max": 16000`,
		`tuning: sysctl: "fs.file-max": 17000`,
		`stacks/t.cue:10:32: tuning.sysctl."fs.file-max": on each of app1, app2: app 5 workers × (1 connection + 64 spare) = 325 + nginx 2 workers × 2 × 4096 worker_connections = 16384 = 16709 descriptors, above fs.file-max 16000 (the kernel's limit for the whole host); raise tuning.sysctl."fs.file-max" or lower the workers or connections [fd-host]`},
	{"somaxconn",
		`tuning: sysctl: "net.core.somaxconn": 1024`,
		`tuning: sysctl: "net.core.somaxconn": 2048`,
		`stacks/t.cue:9:6: app.backlog: warning: gunicorn --backlog backlog is 2048 but net.core.somaxconn is 1024: the kernel truncates it to 1024; raise net.core.somaxconn to at least 2048 [somaxconn]`},
	{"db-pool",
		`database: {host: "db.internal", name: "app", max_connections: 100}`,
		`database: {host: "db.internal", name: "app", max_connections: 300}`,
		`stacks/t.cue:10:63: database.max_connections: 10 app processes × (pool_size 10 + max_overflow 20) = 300 connections to the primary, above max_connections 100; lower the pools, add a pooler (database.pooler, PgBouncer on each app and worker host) or raise max_connections [db-pool]`},
	{"db-pool",
		`database: {host: "db.internal", name: "app", max_connections: 100, pooler: max_client_conn: 100}`,
		`database: {host: "db.internal", name: "app", max_connections: 100, pooler: max_client_conn: 150}`,
		`stacks/t.cue:10:93: database.pooler.max_client_conn: on each of app1, app2: 5 app processes × (pool_size 10 + max_overflow 20) = 150 client connections to the host's PgBouncer, above max_client_conn 100; raise max_client_conn or lower the pools [db-pool]`},
	{"db-pool",
		`database: {host: "db.internal", name: "app", max_connections: 30, pooler: {}}`,
		`database: {host: "db.internal", name: "app", max_connections: 40, pooler: {}}`,
		`stacks/t.cue:10:63: database.max_connections: 2 hosts run PgBouncer (app1, app2) × (default_pool_size 20 + reserve_pool_size 0) = 40 server connections to the primary, above max_connections 30; lower database.pooler.default_pool_size or reserve_pool_size, or raise max_connections [db-pool]`},
	{"db-pool",
		`database: {host: "db.internal", name: "app", pooler: pool_mode: "session"}`,
		`database: {host: "db.internal", name: "app", pooler: {pool_mode: "session", default_pool_size: 100, reserve_pool_size: 50}}`,
		`stacks/t.cue:10:65: database.pooler.pool_mode: on each of app1, app2: 5 app processes × (pool_size 10 + max_overflow 20) = 150 client connections, and in session mode each holds a server connection while it is open, but the host's PgBouncer opens at most default_pool_size 20 + reserve_pool_size 0 = 20: clients would wait; use pool_mode "transaction" or raise default_pool_size [db-pool]`},
	{"db-pool",
		`database: {host: "db.internal", name: "app", engine: "mysql", pooler: {}}`,
		`database: {host: "db.internal", name: "app", engine: "postgresql", pooler: {}}`,
		`stacks/t.cue:10:71: database.pooler: the pooler is PgBouncer, which speaks PostgreSQL's protocol only, and database.engine is "mysql": drop database.pooler [db-pool]`},
	{"db-pool",
		asg + awsScaling(2) + `
database: {host: "db.internal", name: "app", max_connections: 60, pooler: {}}`,
		asg + awsScaling(2) + `
database: {host: "db.internal", name: "app", max_connections: 80, pooler: {}}`,
		`stacks/t.cue:19:63: database.max_connections: 4 hosts run PgBouncer (scaling.max 4 instances) × (default_pool_size 20 + reserve_pool_size 0) = 80 server connections to the primary, above max_connections 60; lower database.pooler.default_pool_size or reserve_pool_size, or raise max_connections [db-pool]`},
	{"db-pool",
		`database: {host: "db.internal", name: "app", pooler: max_client_conn: 70000}`,
		`database: {host: "db.internal", name: "app", pooler: max_client_conn: 60000}`,
		`stacks/t.cue:10:71: database.pooler.max_client_conn: PgBouncer needs a descriptor per connection: max_client_conn 70000 + 20 server connections = 70020, above tuning.nofile 65536 (its LimitNOFILE); lower max_client_conn or raise tuning.nofile [db-pool]`},
	{"db-managed",
		`database: {host: "db.internal", name: "app", managed: false}`,
		`database: {host: "db.internal", name: "app", managed: true}`,
		`stacks/t.cue:10:55: database.managed: a self-hosted database (managed: false) is not rendered: hacompile configures no PostgreSQL server (postgresql.conf, pg_hba.conf, replication) on the stack's hosts; supported is a managed or external PostgreSQL or MySQL server that the app reaches at database.host (db.internal): drop managed: false [db-managed]`},
	{"db-managed",
		`database: {host: "db.internal", name: "app", engine: "mysql", managed: false}`,
		`database: {host: "db.internal", name: "app", engine: "mysql"}`,
		`stacks/t.cue:10:72: database.managed: a self-hosted database (managed: false) is not rendered: hacompile configures no MySQL server (my.cnf, replication) on the stack's hosts; supported is a managed or external PostgreSQL or MySQL server that the app reaches at database.host (db.internal): drop managed: false [db-managed]`},
	{"db-replica-pool",
		`database: {host: "db.internal", name: "app", replicas: ["db-ro.internal"]}`,
		`database: {host: "db.internal", name: "app", replicas: ["db-ro.internal"], replica_pool_size: 10}`,
		`stacks/t.cue:10:56: database.replicas: warning: 1 replica(s) declared but no database.replica_pool_size: reads all go to the primary [db-replica-pool]`},
	{"secret-inline",
		`description: "the database: postgresql://app:hunter2@db.internal:5432"`,
		`description: "the database: postgresql://app@db.internal:5432"`,
		`stacks/t.cue:10:14: description: looks like a URL with a password written into the stack; secrets belong in a file on the host (app.environment_file, mode 0600) that the rendered config references [secret-inline]`},
	{"secret-inline",
		`monitoring: alertmanager: {receiver: "ops", kind: "webhook", url: "https://hooks.slack.com/services/T0A1B2C3D/B0A1B2C3D/abcdEFGH1234"}`,
		`monitoring: alertmanager: {receiver: "ops", kind: "webhook", url: "https://alerts.example.com/hook"}`,
		`stacks/t.cue:10:67: monitoring.alertmanager.url: looks like a Slack webhook URL (its path is the token) written into the stack; secrets belong in a file on the monitoring host that monitoring.alertmanager.url_file names (Debian 13) [secret-inline]`},
	{"secret-inline",
		`notes: "stats password = s3cret!"`,
		`notes: "the stats password lives in /etc/haproxy/hacompile.env"`,
		`stacks/t.cue:10:8: notes: looks like a password or token assignment written into the stack; secrets belong in a file on the host (app.environment_file, mode 0600) that the rendered config references [secret-inline]`},
	{"secret-inline",
		`description: "key AKIAIOSFODNN7EXAMPLE"`,
		`description: "key in the instance profile"`,
		`stacks/t.cue:10:14: description: looks like an AWS access key id written into the stack; secrets belong in a file on the host (app.environment_file, mode 0600) that the rendered config references [secret-inline]`},
	{"tls-hsts",
		`tls: {mode: "none", hsts: true}`,
		`tls: {mode: "none"}`,
		`stacks/t.cue:10:27: tls.hsts: HSTS is on but tls.mode is "none": browsers would be told to use HTTPS that is not served; set tls.hsts: false or enable TLS [tls-hsts]`},
	{"trusted-proxies",
		`tls: {mode: "cloud"}`,
		`tls: {mode: "cloud"}
balancer: trusted_proxies: ["10.0.0.0/16"]`,
		`stacks/t.cue:8:11: balancer.trusted_proxies: warning: the cloud balancer terminates TLS but balancer.trusted_proxies is empty: the app hosts will log the balancer's address for every client and see http for every request (apps that force HTTPS loop on redirects); list the balancer's source range (the VPC CIDR) [trusted-proxies]`},
	{"app-timeout",
		`app: timeout: 60`,
		`app: timeout: 59`,
		`stacks/t.cue:10:15: app.timeout: warning: gunicorn timeout 60s is not below the proxy read timeout 60s (balancer.timeouts.read): the proxy answers 504 while the request still runs; set app.timeout below 60 [app-timeout]`},
	{"ha-app-count",
		asg + awsScaling(1), asg + awsScaling(2),
		`stacks/t.cue:11:7: scaling.min: warning: the Auto Scaling group keeps 1 instance(s) (scaling.min): losing one takes the site down; set scaling.min to at least 2 [ha-app-count]`},
	{"db-pool",
		`database: {host: "db.internal", name: "app", max_connections: 310}
hosts: jobs1: {address: "10.0.0.21", roles: ["worker"], cores: 4, memory_mb: 4096}
queue: {engine: "rabbitmq", host: "mq.internal"}
workers: app: "app"`,
		`database: {host: "db.internal", name: "app", max_connections: 420}
hosts: jobs1: {address: "10.0.0.21", roles: ["worker"], cores: 4, memory_mb: 4096}
queue: {engine: "rabbitmq", host: "mq.internal"}
workers: app: "app"`,
		`stacks/t.cue:10:63: database.max_connections: 10 app processes + 4 Celery worker processes × (pool_size 10 + max_overflow 20) = 420 connections to the primary, above max_connections 310; lower the pools, add a pooler (database.pooler, PgBouncer on each app and worker host) or raise max_connections [db-pool]`},
	{"workers-queue",
		`hosts: jobs1: {address: "10.0.0.21", roles: ["worker"], cores: 2, memory_mb: 2048}`,
		`hosts: jobs1: {address: "10.0.0.21", roles: ["worker"], cores: 2, memory_mb: 2048}
queue: {engine: "rabbitmq", host: "mq.internal"}
workers: app: "app"`,
		`stacks/t.cue:10:8: hosts: jobs1 have the worker role but the stack has no workers section: nothing would run on them; add workers (the Celery app) or drop the role [workers-queue]`},
	{"workers-queue",
		`queue: {engine: "redis", host: "10.0.0.40"}`, ``,
		`stacks/t.cue:10:8: queue: a queue but no workers section: tasks would be queued and never run; add workers and hosts with the worker role [workers-queue]`},
	{"beat-host",
		`hosts: jobs1: {address: "10.0.0.21", roles: ["worker"], cores: 2, memory_mb: 2048}
queue: {engine: "rabbitmq", host: "mq.internal"}
workers: {app: "app", beat: {enabled: true, host: "app1"}}`,
		`hosts: jobs1: {address: "10.0.0.21", roles: ["worker"], cores: 2, memory_mb: 2048}
queue: {engine: "rabbitmq", host: "mq.internal"}
workers: {app: "app", beat: {enabled: true, host: "jobs1"}}`,
		`stacks/t.cue:12:51: workers.beat.host: beat runs on "app1", which is not a host with the worker role (worker hosts: jobs1) [beat-host]`},
	{"cache-host",
		`cache: engine: "redis"`,
		`cache: engine: "redis"
hosts: cache1: {address: "10.0.0.31", roles: ["cache"], cores: 2, memory_mb: 2048}`,
		`stacks/t.cue:10:8: cache: a self-hosted cache (cache.managed false) needs a host with the cache role to run on [cache-host]`},
	{"cache-host",
		`cache: {engine: "redis", host: "10.0.0.31"}
hosts: cache1: {address: "10.0.0.31", roles: ["cache"], cores: 2, memory_mb: 2048}`,
		`cache: {engine: "redis", host: "10.0.0.31", managed: false}
hosts: cache1: {address: "10.0.0.31", roles: ["cache"], cores: 2, memory_mb: 2048}`,
		`stacks/t.cue:10:8: cache.managed: the cache is managed (at 10.0.0.31) but cache1 have the cache role: nothing would be rendered for them [cache-host]`},
	{"queue-host",
		`hosts: jobs1: {address: "10.0.0.21", roles: ["worker"], cores: 2, memory_mb: 2048}
queue: {engine: "rabbitmq", vhost: "app"}
workers: app: "app"`,
		`hosts: jobs1: {address: "10.0.0.21", roles: ["worker"], cores: 2, memory_mb: 2048}
hosts: mq1: {address: "10.0.0.41", roles: ["queue"], cores: 2, memory_mb: 2048}
queue: {engine: "rabbitmq", vhost: "app"}
workers: app: "app"`,
		`stacks/t.cue:11:8: queue: a self-hosted RabbitMQ (queue.managed false) needs a host with the queue role to run on [queue-host]`},
	{"queue-host",
		`hosts: jobs1: {address: "10.0.0.21", roles: ["worker"], cores: 2, memory_mb: 2048}
hosts: mq1: {address: "10.0.0.41", roles: ["queue"], cores: 2, memory_mb: 2048}
queue: {engine: "rabbitmq", host: "mq.internal"}
workers: app: "app"`,
		`hosts: jobs1: {address: "10.0.0.21", roles: ["worker"], cores: 2, memory_mb: 2048}
queue: {engine: "rabbitmq", host: "mq.internal"}
workers: app: "app"`,
		`stacks/t.cue:11:8: hosts: mq1 have the queue role but the stack runs no broker of its own (a self-hosted RabbitMQ: a queue section with engine rabbitmq and no host): nothing would run on them [queue-host]`},
	{"broker-eviction",
		`cache: engine: "redis"
hosts: cache1: {address: "10.0.0.31", roles: ["cache"], cores: 2, memory_mb: 2048}
queue: {engine: "redis", host: "10.0.0.31"}`,
		`cache: {engine: "redis", maxmemory_policy: "noeviction"}
hosts: cache1: {address: "10.0.0.31", roles: ["cache"], cores: 2, memory_mb: 2048}
queue: {engine: "redis", host: "10.0.0.31"}`,
		`stacks/t.cue:10:8: cache.maxmemory_policy: the Redis broker (queue.host 10.0.0.31) is the cache, whose maxmemory_policy allkeys-lru evicts keys: queued tasks would vanish when memory runs out; set maxmemory_policy to noeviction or use a separate broker [broker-eviction]`},
	{"failover", twoLB + `balancer: {kind: "nginx", failover: "dns"}`, twoLB + keepalivedOK,
		`stacks/t.cue:12:37: balancer.failover: failover "dns" is not rendered: hacompile manages no DNS records or health-checked DNS; use "keepalived" (a virtual address in the balancers' subnet), "reserved-ip" (DigitalOcean), or a cloud balancer (balancer.kind: "cloud") [failover]`},
	{"failover", twoLB + `balancer: {kind: "nginx", failover: "keepalived"}`, twoLB + keepalivedOK,
		`stacks/t.cue:12:37: balancer.failover: failover "keepalived" needs balancer.vrrp: {virtual_address: ..., router_id: ...} to render keepalived [failover]`},
	{"failover", twoLB + `balancer: {kind: "nginx", failover: "keepalived", vrrp: {virtual_address: "10.0.1.4", router_id: 7}}`, twoLB + keepalivedOK,
		`stacks/t.cue:12:75: balancer.vrrp.virtual_address: virtual address 10.0.1.4 is outside lb host lb1's subnet (10.0.0.5 is not in 10.0.1.0/24, balancer.vrrp.prefix 24): the master can only take over an address on the balancers' own network [failover]`},
	{"failover", twoLB + `balancer: {kind: "nginx", failover: "keepalived", vrrp: {virtual_address: "10.0.0.12", router_id: 7}}`, twoLB + keepalivedOK,
		`stacks/t.cue:12:75: balancer.vrrp.virtual_address: virtual address 10.0.0.12 is host app2's own address: it must be an address no host has, which keepalived moves to the master [failover]`},
	{"failover", twoLB + `balancer: {kind: "haproxy", failover: "reserved-ip", vrrp: {virtual_address: "203.0.113.9", router_id: 7}}`,
		twoLB + `provider: "digitalocean", balancer: {kind: "haproxy", failover: "reserved-ip", vrrp: {virtual_address: "203.0.113.9", router_id: 7}}`,
		`stacks/t.cue:12:39: balancer.failover: failover "reserved-ip" is rendered for providers "digitalocean" (the reserved IP) and "aws" (a secondary private address and its Elastic IP), moved through their APIs, and provider is "generic"; on a network that carries gratuitous ARP use "keepalived" [failover]`},
	{"failover", twoLB + `provider: "digitalocean", balancer: {kind: "nginx", failover: "keepalived", vrrp: {virtual_address: "10.0.0.4", router_id: 7}}`, twoLB + keepalivedOK,
		`stacks/t.cue:12:63: balancer.failover: failover "keepalived" moves an address by gratuitous ARP, which digitalocean's network ignores: use "reserved-ip" on DigitalOcean, or a cloud balancer [failover]`},
	{"failover", twoLB + `balancer: {kind: "nginx", failover: "keepalived", vrrp: {virtual_address: "10.0.0.4", router_id: 7, priority: {app1: 200}}}`,
		twoLB + `balancer: {kind: "nginx", failover: "keepalived", vrrp: {virtual_address: "10.0.0.4", router_id: 7, priority: {lb2: 200}}}`,
		`stacks/t.cue:12:118: balancer.vrrp.priority.app1: priority for app1, which is not an lb host (lb hosts: lb1, lb2) [failover]`},
	{"failover", twoLB + `balancer: {kind: "nginx", vrrp: {virtual_address: "10.0.0.4", router_id: 7}}`, twoLB + keepalivedOK,
		`stacks/t.cue:12:33: balancer.vrrp: balancer.vrrp is used only with failover "keepalived" or "reserved-ip", and failover is "none" [failover]`},
	{"stats-address", twoLB + `balancer: {kind: "haproxy", stats: address: "10.0.0.5"}`, twoLB + `balancer: kind: "haproxy"`,
		`stacks/t.cue:12:45: balancer.stats.address: the stats page binds 10.0.0.5 on every balancer (lb1, lb2), and one address is on one host only: HAProxy would not start on the others; keep it on loopback (the default, reached with ssh -L) [stats-address]`},
	{"drain", twoLB + `balancer: kind: "haproxy"
hosts: app1: drain: true
hosts: app2: drain: true`, twoLB + `balancer: kind: "haproxy"
hosts: app1: drain: true`,
		`stacks/t.cue:14:21: hosts.app2.drain: every app host (app1, app2) is draining: the balancers would have nowhere to send a request; leave at least one in rotation [drain]`},
	{"balancer-option", `balancer: {keepalive: 8, algorithm: "leastconn"}`, `provider: "digitalocean"
balancer: keepalive: 0`,
		`stacks/t.cue:10:23: balancer.keepalive: balancer.keepalive is for idle upstream connections kept open (nginx's keepalive, the DigitalOcean balancer's backend keep-alive; HAProxy reuses idle connections with no such limit), which the cloud balancer of provider "generic" does not have: remove it [balancer-option]`},
	{"db-option", `database: {host: "db.internal", name: "app", replica_pool_size: 2}`, `database: {host: "db.internal", name: "app", replicas: ["db2.internal"], replica_pool_size: 2}`,
		`stacks/t.cue:10:65: database.replica_pool_size: the database has no replicas (database.replicas), so there is no read pool: remove it [db-option]`},
	{"tls-option", `tls: {mode: "none", acme_root: "/srv/acme"}`, `tls: {mode: "certbot", acme_root: "/srv/acme"}`,
		`stacks/t.cue:10:32: tls.acme_root: the ACME webroot is certbot's, and tls.mode is "none": remove it [tls-option]`},
	{"monitoring-off", `monitoring: {enabled: false, cpu_percent: 70}`, `monitoring: {enabled: true, cpu_percent: 70}`,
		`stacks/t.cue:10:43: monitoring.cpu_percent: monitoring.enabled is false, so monitoring.cpu_percent renders nothing: remove it or enable monitoring [monitoring-off]`},
	{"app-option", `app: {runtime: "perl", timeout: 45, keepalive: 2}`, `app: {runtime: "python", timeout: 45, keepalive: 2}`,
		`stacks/t.cue:10:33: app.timeout: app.timeout is for gunicorn's worker timeout (Starman has none: nginx's proxy_read_timeout bounds a request), which app server "starman" does not have: remove it [app-option]`},
	{"app-port", `app: bind: port: 80`, `app: bind: port: 8000`,
		`stacks/t.cue:10:18: app.bind.port: gunicorn runs as app with no capabilities and cannot bind port 80 (below 1024); nginx on the same host listens on app.http_port and proxies to the app, so give the app a port of 1024 or above, or a socket [app-port]`},
	{"cloud-lb-capacity", `provider: "digitalocean"
capacity: target_concurrency: 20000`, `provider: "digitalocean"
capacity: target_concurrency: 20000
balancer: digitalocean: size_unit: 2`,
		`stacks/t.cue:8:11: balancer.digitalocean.size_unit: the DigitalOcean load balancer has 1 node(s) of 10000 concurrent connections (10000) for capacity.target_concurrency 20000: set balancer.digitalocean.size_unit to at least 2 [cloud-lb-capacity]`},
	{"rate-limit-hosts", `rate_limit: rate: "5r/m"
balancer: kind: "haproxy"
hosts: lb1: {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}`, `rate_limit: rate: "5r/m"
balancer: {kind: "haproxy", algorithm: "source"}
hosts: lb1: {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}`,
		`stacks/t.cue:10:19: rate_limit.rate: warning: behind the haproxy balancer the limit applies on each of the 2 app hosts, which share a client's requests: a client gets up to 2 × 5r/m (per-location rates too); use an nginx balancer (the limit then applies once), balancer.algorithm "source" (a client stays on one host), or divide the rates by 2 [rate-limit-hosts]`},
	{"balancer-option", `balancer: max_fails: 5`, twoLB + `balancer: {kind: "nginx", max_fails: 5}`,
		`stacks/t.cue:10:22: balancer.max_fails: balancer.max_fails is for nginx's passive health checks, which a balancer of kind "cloud" does not have: remove it [balancer-option]`},
	{"balancer-option", twoLB + `balancer: {kind: "nginx", retries: 2, health: fall: 4}`, twoLB + `balancer: {kind: "haproxy", retries: 2, health: fall: 4}`,
		`stacks/t.cue:12:36: balancer.retries: balancer.retries is for HAProxy's retries (nginx tries each app host once), which a balancer of kind "nginx" does not have: remove it [balancer-option]`},
	{"scaling",
		asg + strings.Replace(awsScaling(2), `provider: "aws"`, ``, 1), asg + awsScaling(2),
		`stacks/t.cue:10:10: scaling: a scaling section (an AWS Auto Scaling group) needs provider "aws", not "generic" [scaling]`},
	{"scaling",
		dropApp2 + awsScaling(2), asg + awsScaling(2),
		`stacks/t.cue:5:18: hosts.app1.address: the launch template's host app1 has address 10.0.0.11, but an instance's address is known only at launch: set it to 0.0.0.0 so its services listen on every address [scaling]`},
	{"pull",
		`delivery: pull: {registry: "r.example.com", repository: "ops/t", canary_hosts: ["app3"]}`,
		`delivery: pull: {registry: "r.example.com", repository: "ops/t", canary_hosts: ["app2"]}`,
		`stacks/t.cue:10:81: delivery.pull.canary_hosts[0]: no host "app3" in the stack (have app1, app2) [pull]`},
	{"pull",
		`delivery: pull: {registry: "r.example.com", repository: "ops/t", agent: url: "https://dl.example.com/hacompile"}`,
		`delivery: pull: {registry: "r.example.com", repository: "ops/t", agent: {url: "https://dl.example.com/hacompile", sha256: "` + strings.Repeat("a", 64) + `"}}`,
		`stacks/t.cue:10:78: delivery.pull.agent.url: the agent is downloaded on first boot and must be checked: give delivery.pull.agent.sha256 (sha256sum of the binary) [pull]`},
	{"pull",
		`delivery: pull: {registry: "r.example.com", repository: "ops/t", public_key: "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"}`,
		`delivery: pull: {registry: "r.example.com", repository: "ops/t", public_key: "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE604/7VwXDZej5XrqbbMJWBq+KCK1\ny/aCnjOGeoP+/Ut97VQdUhfUjniI1qwE1agWMs6+mLyZcFawPxZ/X4IFfA==\n-----END PUBLIC KEY-----\n"}`,
		`stacks/t.cue:10:78: delivery.pull.public_key: want an ECDSA P-256 key (hacompile keygen writes one; cosign's keys are the same kind) [pull]`},
}

// awsScaling is an Auto Scaling group of min instances launched as
// app1 (with asg, at 0.0.0.0).
func awsScaling(min int) string {
	return fmt.Sprintf(`provider: "aws"
scaling: {
	min: %d, max: 4
	instance_types: ["t3.medium"]
	image: "ami-0abcdef1234567890"
	vpc: "vpc-0123456789abcdef0"
	subnets: ["subnet-0123456789abcdef0"]
	security_groups: ["sg-0123456789abcdef0"]
	app_source: kind: "image"
}`, min)
}

// twoLB adds a pair of balancer hosts; keepalivedOK is a failover
// between them that trips nothing.
const (
	twoLB = `hosts: lb1: {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
hosts: lb2: {address: "10.0.0.6", roles: ["lb"], cores: 1, memory_mb: 1024}
`
	keepalivedOK = `balancer: {kind: "nginx", failover: "keepalived", vrrp: {virtual_address: "10.0.0.4", router_id: 7}}`
)

// dropApp2 as a trip removes the second app host from base; asg also
// moves app1 to 0.0.0.0, as a launch template's host.
const (
	dropApp2 = "-app2"
	asg      = "-asg"
)

func stackFor(add string) string {
	if rest, ok := strings.CutPrefix(add, asg); ok {
		return strings.Replace(stackFor(dropApp2+rest), `"10.0.0.11"`, `"0.0.0.0"`, 1)
	}
	if rest, ok := strings.CutPrefix(add, dropApp2); ok {
		return strings.Replace(base, "\tapp2: {address: \"10.0.0.12\", roles: [\"app\"], cores: 2, memory_mb: 2048}\n", "", 1) + rest
	}
	return base + add
}

func findings(s *schema.Stack, rule string) []string {
	var out []string
	for _, d := range rules.Check(s, "2026-11-22") {
		if d.Rule == rule {
			out = append(out, d.String())
		}
	}
	return out
}

// TestAppTimeoutSyncOnly: gunicorn's timeout is a heartbeat limit for
// workers other than sync; a slow request there is not killed by it, so
// the rule has nothing to say.
func TestAppTimeoutSyncOnly(t *testing.T) {
	for _, wc := range []string{"gthread", "gevent"} {
		if got := findings(testtool.Load(t, "stacks/t.cue", stackFor(`app: {timeout: 60, worker_class: "`+wc+`"}`)), "app-timeout"); len(got) != 0 {
			t.Errorf("%s: %v", wc, got)
		}
	}
}

func TestRules(t *testing.T) {
	if got := rules.Check(testtool.Load(t, "stacks/t.cue", base), "2026-11-22"); len(got) != 0 {
		t.Fatalf("the base stack trips rules: %v", got)
	}
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.rule] = true
		got := findings(testtool.Load(t, "stacks/t.cue", stackFor(c.trip)), c.rule)
		if !slices.Contains(got, c.want) {
			t.Errorf("%s: trip stack gives\n%s\nwant\n%s", c.rule, strings.Join(got, "\n"), c.want)
		}
		if got := findings(testtool.Load(t, "stacks/t.cue", stackFor(c.not)), c.rule); len(got) != 0 {
			t.Errorf("%s: stack that should pass gives %v", c.rule, got)
		}
	}
	for _, r := range rules.Table {
		if !covered[r.ID] {
			t.Errorf("rule %s has no test case", r.ID)
		}
	}
}

func TestIDsUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range rules.Table {
		if seen[r.ID] || (r.Severity != "error" && r.Severity != "warning") || r.Doc == "" {
			t.Errorf("rule %q: duplicate id, bad severity %q or no doc", r.ID, r.Severity)
		}
		seen[r.ID] = true
	}
}

func TestWaivers(t *testing.T) {
	trip := base + `app: timeout: 60` + "\n"
	check := func(waive string) []string {
		var out []string
		for _, d := range rules.Check(testtool.Load(t, "stacks/t.cue", trip+waive), "2026-11-22") {
			out = append(out, d.Severity+" "+d.String())
		}
		return out
	}
	got := check(`waive: [{rule: "app-timeout", reason: "long exports until the queue lands", until: "2026-12-31"}]`)
	want := []string{`waived stacks/t.cue:10:15: app.timeout: waived: gunicorn timeout 60s is not below the proxy read timeout 60s (balancer.timeouts.read): the proxy answers 504 while the request still runs; set app.timeout below 60 (waived until 2026-12-31: long exports until the queue lands) [app-timeout]`}
	if !slices.Equal(got, want) {
		t.Errorf("valid waiver:\n%q\nwant\n%q", got, want)
	}
	got = check(`waive: [{rule: "app-timeout", reason: "long exports until the queue lands", until: "2026-11-21"}]`)
	if len(got) != 2 || !strings.HasPrefix(got[1], `error stacks/t.cue:11:9: waive[0]: waiver for app-timeout expired on 2026-11-21 (reason: long exports until the queue lands); fix the finding or renew the waiver`) ||
		!strings.HasPrefix(got[0], "warning ") {
		t.Errorf("expired waiver: %q", got)
	}
	got = check(`waive: [{rule: "tls-hsts", reason: "we know what we are doing", until: "2030-01-01"}]`)
	if !slices.Contains(got, `error stacks/t.cue:11:9: waive[0]: rule tls-hsts is an error and cannot be waived`) {
		t.Errorf("waiving an error: %q", got)
	}
	got = check(`waive: [{rule: "no-such-rule", reason: "we know what we are doing", until: "2030-01-01"}]`)
	if len(got) < 1 || !strings.Contains(strings.Join(got, "\n"), `waiver names unknown rule "no-such-rule" (known: ha-app-count, `) {
		t.Errorf("unknown rule: %q", got)
	}
}
