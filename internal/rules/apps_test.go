package rules_test

import (
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/rules"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// multiBase is a stack of three apps that trips no rule: web and api
// share app1 and app2 (api under /api/), legacy (Starman) has app3 and
// app4 to itself under a host name of its own.
const multiBase = `
name:   "m"
domain: "example.com"
hosts: {
	lb1:  {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	lb2:  {address: "10.0.0.6", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.0.0.11", roles: ["app"], cores: 2, memory_mb: 2048}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 2, memory_mb: 2048}
	app3: {address: "10.0.0.13", roles: ["app"], cores: 2, memory_mb: 2048}
	app4: {address: "10.0.0.14", roles: ["app"], cores: 2, memory_mb: 2048}
}
balancer: {kind: "haproxy", failover: "keepalived", vrrp: {virtual_address: "10.0.0.4", router_id: 9}}
monitoring: address: "10.0.0.2"
apps: {
	web: {runtime: "python", module: "web.wsgi:app", working_dir: "/srv/web", hosts: ["app1", "app2"]}
	api: {runtime: "python", module: "api.wsgi:app", working_dir: "/srv/api", hosts: ["app1", "app2"], paths: ["/api/"], http_port: 8081}
	legacy: {runtime: "perl", psgi: "/srv/legacy/app.psgi", working_dir: "/srv/legacy", hosts: ["app3", "app4"], domains: ["legacy.example.com"]}
}
`

func TestMultiAppRules(t *testing.T) {
	if got := rulesOf(t, multiBase); len(got) != 0 {
		t.Fatalf("the multi-app base trips rules:\n%s", strings.Join(got, "\n"))
	}
	// add is CUE added to multiBase, or ~old~new: an edit of it.
	for _, c := range []struct{ name, add, want string }{
		{"port clash", `~http_port: 8081~http_port: 80`,
			`stacks/m.cue:16:130: apps.api.http_port: apps "api" and "web" both use port 80 on app1, app2: each app on a host needs its own (set apps.api.http_port) [apps]`},
		{"socket clash", `~paths: ["/api/"],~paths: ["/api/"], bind: socket: "/run/web/gunicorn.sock",`,
			`stacks/m.cue:16:133: apps.api.bind.socket: apps "api" and "web" both use socket /run/web/gunicorn.sock on app1, app2: each app on a host needs its own (set apps.api.bind.socket) [apps]`},
		{"user clash", `~paths: ["/api/"],~paths: ["/api/"], user: "web",`,
			`stacks/m.cue:16:125: apps.api.user: apps "api" and "web" both use user web on app1, app2: each app on a host needs its own (set apps.api.user) [apps]`},
		{"app port against nginx port", `apps: web: bind: port: 8081`,
			`stacks/m.cue:19:24: apps.web.bind.port: apps "api" and "web" both use port 8081 on app1, app2: each app on a host needs its own (set apps.web.bind.port) [apps]`},
		{"route clash", `~domains: ["legacy.example.com"]~domains: ["example.com"]`,
			`stacks/m.cue:17:120: apps.legacy.domains: apps "legacy" and "web" both answer example.com/: give one of them domains or paths of its own [apps]`},
		{"host without the app role", `~"/srv/web", hosts: ["app1", "app2"]~"/srv/web", hosts: ["app1", "lb1"]`,
			`stacks/m.cue:15:92: apps.web.hosts[1]: app "web" runs on lb1, which has no role "app" [apps]`},
		{"unknown host", `~"/srv/web", hosts: ["app1", "app2"]~"/srv/web", hosts: ["app1", "app9"]`,
			`stacks/m.cue:15:92: apps.web.hosts[1]: app "web" runs on "app9", which is no host of the stack [apps]`},
		{"host running nothing", `hosts: app5: {address: "10.0.0.15", roles: ["app"], cores: 2, memory_mb: 2048}`,
			`stacks/m.cue:19:44: hosts.app5.roles: app5 has role "app" and runs no app (every app lists its hosts) [apps]`},
		{"workers without runs", `workers: app: "tasks"`,
			`stacks/m.cue:19:10: workers: with several apps, workers.runs names the app whose code, user and settings the Celery workers run (one of "api", "legacy", "web") [apps]`},
		{"workers running perl", `workers: {app: "tasks", runs: "legacy"}`,
			`stacks/m.cue:19:31: workers.runs: Celery workers run Python code and app "legacy" runs perl [apps]`},
		{"app and apps", `app: {runtime: "python", module: "x:app", working_dir: "/srv/x"}`,
			`stacks/m.cue:19:6: app: a stack has app (one application) or apps (several), not both: move app into apps [apps]`},
		{"capacity per app", `apps: legacy: target_concurrency: 20`,
			`stacks/m.cue:19:35: apps.legacy.target_concurrency: app "legacy": capacity is 10 concurrent requests (2 app hosts, 10 workers in all, × 1 (Starman prefork)) for a target of 20: short by 10; 4 such hosts would meet it [capacity]`},
		{"stack capacity over apps", `capacity: target_concurrency: 100`,
			`stacks/m.cue:19:31: capacity.target_concurrency: capacity is 30 concurrent requests over 3 apps (api 10, legacy 10, web 10) for a target of 100: short by 70 [capacity]`},
		{"db pools summed", `database: {host: "db.example.com", name: "m", pool_size: 2, max_overflow: 2, max_connections: 100}`,
			`stacks/m.cue:19:95: database.max_connections: 30 app processes (api 10, legacy 10, web 10) × (pool_size 2 + max_overflow 2) = 120 connections to the primary, above max_connections 100; lower the pools, add a pooler (database.pooler, PgBouncer on each app and worker host) or raise max_connections [db-pool]`},
		{"timeout per app", `~paths: ["/api/"],~paths: ["/api/"], timeout: 90,`,
			`stacks/m.cue:16:128: apps.api.timeout: warning: app "api": gunicorn timeout 90s is not below the proxy read timeout 60s (balancer.timeouts.read): the proxy answers 504 while the request still runs; set apps.api.timeout below 60 [app-timeout]`},
		{"option per app", `apps: legacy: keepalive: 3`,
			`stacks/m.cue:19:26: apps.legacy.keepalive: app "legacy": apps.legacy.keepalive is for gunicorn's keep-alive (Starman runs with --disable-keepalive: a pre-forked worker held by an idle connection serves nobody else), which app server "starman" does not have: remove it [app-option]`},
		{"cloud balancer", `~kind: "haproxy", failover: "keepalived", vrrp: {virtual_address: "10.0.0.4", router_id: 9}~kind: "cloud"`,
			`stacks/m.cue:12:18: balancer.kind: several apps are routed by host name and path on an nginx or HAProxy balancer; a cloud balancer (kind "cloud") is rendered with one pool of app hosts (a DigitalOcean load balancer cannot route by host name or path, and a target group per app behind AWS listener rules is not rendered), so every app would get every request: use kind "haproxy" or "nginx", or one stack per app [apps]`},
	} {
		src := multiBase + c.add
		if f := strings.Split(c.add, "~"); len(f) == 3 {
			src = strings.Replace(multiBase, f[1], f[2], 1)
		}
		got := rulesOf(t, src)
		if c.want == "" {
			if len(got) == 0 {
				t.Errorf("%s: no finding", c.name)
			}
			continue
		}
		found := false
		for _, g := range got {
			found = found || g == c.want
		}
		if !found {
			t.Errorf("%s: got\n%s\nwant\n%s", c.name, strings.Join(got, "\n"), c.want)
		}
	}
}

func rulesOf(t *testing.T, src string) []string {
	t.Helper()
	return rulesCheck(testtool.Load(t, "stacks/m.cue", src))
}

func rulesCheck(s *schema.Stack) []string {
	var out []string
	for _, d := range rules.Check(s, "2026-11-22") {
		out = append(out, d.String())
	}
	return out
}

// TestFDHostSum: the open files of the apps sharing a host are summed
// against the host's fs.file-max. web and api, each alone on its hosts,
// fit; api joining web on app2 does not, and the finding names the host
// and each app's share, at fs.file-max where the stack sets it, else at
// the hosts of the app with the largest share (the later by name of
// equal ones).
func TestFDHostSum(t *testing.T) {
	const base = `
name:   "m"
domain: "example.com"
hosts: {
	lb1:  {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	lb2:  {address: "10.0.0.6", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.0.0.11", roles: ["app"], cores: 2, memory_mb: 2048}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 2, memory_mb: 2048}
	app3: {address: "10.0.0.13", roles: ["app"], cores: 2, memory_mb: 2048}
}
balancer: {kind: "haproxy", failover: "keepalived", vrrp: {virtual_address: "10.0.0.4", router_id: 9}}
monitoring: address: "10.0.0.2"
tuning: nginx_worker_connections: 1024
apps: {
	web: {runtime: "python", module: "web:app", working_dir: "/srv/web", worker_class: "gevent", worker_connections: 4000, workers: 4,
		hosts: ["app1", "app2"]}
	api: {runtime: "python", module: "api:app", working_dir: "/srv/api", worker_class: "gevent", worker_connections: 4000, workers: 4,
		hosts: ["app3"], domains: ["api.example.com"], http_port: 8081}
}
`
	const limit = "\ntuning: sysctl: \"fs.file-max\": 30000\n"
	shared := strings.Replace(base, `hosts: ["app3"]`, `hosts: ["app2", "app3"]`, 1)
	big := func(src string) string {
		return strings.ReplaceAll(strings.ReplaceAll(src, "worker_connections: 4000, workers: 4", "worker_connections: 100000, workers: 12"), "tuning: nginx_worker_connections: 1024\n", "tuning: nofile: 200000\n")
	}
	for _, c := range []struct{ name, src, want string }{
		// web alone: 4 × (4000 + 64) + 2 × 2 × 1024 = 20352, under 30000.
		{"one app a host", base + limit, ""},
		{"two apps on app2", shared + limit,
			`stacks/m.cue:21:32: tuning.sysctl."fs.file-max": on app2: api 4 workers × (4000 connections + 64 spare) = 16256 + web 4 workers × (4000 connections + 64 spare) = 16256 + nginx 2 workers × 2 × 1024 worker_connections = 4096 = 36608 descriptors, above fs.file-max 30000 (the kernel's limit for the whole host); raise tuning.sysctl."fs.file-max", lower the workers or connections, or move an app to hosts of its own [fd-host]`},
		// The default fs.file-max (2097152): 12 × 100064 + 2 × 2 × 4096 =
		// 1217152 each alone.
		{"one app a host, default limit", big(base), ""},
		{"two apps on app2, default limit", big(shared),
			`stacks/m.cue:16:10: apps.web.hosts: on app2: api 12 workers × (100000 connections + 64 spare) = 1200768 + web 12 workers × (100000 connections + 64 spare) = 1200768 + nginx 2 workers × 2 × 4096 worker_connections = 16384 = 2417920 descriptors, above fs.file-max 2097152 (the kernel's limit for the whole host); raise tuning.sysctl."fs.file-max", lower the workers or connections, or move an app to hosts of its own [fd-host]`},
	} {
		var got []string
		for _, g := range rulesOf(t, c.src) {
			if strings.HasSuffix(g, "[fd-host]") || c.want == "" {
				got = append(got, g)
			}
		}
		want := []string{}
		if c.want != "" {
			want = []string{c.want}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: got\n%s\nwant\n%s", c.name, strings.Join(got, "\n"), c.want)
		}
	}
}

// TestPoolerApps: with several apps, db-pool and fd-host count
// PgBouncer's pools per app on each host (PoolerPools): a pool is
// default_pool_size or the app's client connections on the host if
// fewer, and the primary sees every pool of every host.
func TestPoolerApps(t *testing.T) {
	// Each app has 5 processes a host (10 on 2 hosts) × (1 + 1): 10
	// client connections a host, so a pool of 10 (below default_pool_size
	// 20); 6 pools (api and web on app1 and app2, legacy on app3 and
	// app4) = 60 server connections.
	db := func(s string) string {
		return `database: {host: "db.example.com", name: "m", pool_size: 1, max_overflow: 1, ` + s + `}`
	}
	for _, c := range []struct{ name, add, want string }{
		{"pools capped at the clients fit", db(`max_connections: 60, pooler: {}`), ""},
		{"pools summed over apps and hosts", db(`max_connections: 59, pooler: {}`),
			`stacks/m.cue:19:95: database.max_connections: PgBouncer's pools, an app's on each of its hosts, each pool_size (default_pool_size 20, or the app's client connections on the host if fewer) + reserve_pool_size 0: api 20 (app1 10, app2 10) + legacy 20 (app3 10, app4 10) + web 20 (app1 10, app2 10) = 60 server connections to the primary, above max_connections 59; lower database.pooler.default_pool_size or reserve_pool_size, or raise max_connections [db-pool]`},
		{"reserve per pool", db(`max_connections: 29, pooler: {default_pool_size: 4, reserve_pool_size: 1}`),
			`stacks/m.cue:19:95: database.max_connections: PgBouncer's pools, an app's on each of its hosts, each pool_size (default_pool_size 4, or the app's client connections on the host if fewer) + reserve_pool_size 1: api 10 (app1 5, app2 5) + legacy 10 (app3 5, app4 5) + web 10 (app1 5, app2 5) = 30 server connections to the primary, above max_connections 29; lower database.pooler.default_pool_size or reserve_pool_size, or raise max_connections [db-pool]`},
		{"session mode per app", db(`pooler: {pool_mode: "session", default_pool_size: 4}`),
			`stacks/m.cue:19:98: database.pooler.pool_mode: on each of app1, app2: app "api"'s pool: 5 api processes × (pool_size 1 + max_overflow 1) = 10 client connections, and in session mode each holds a server connection while it is open, but the pool opens at most default_pool_size 4 + reserve_pool_size 0 = 4: clients would wait; use pool_mode "transaction" or raise default_pool_size [db-pool]`},
		{"descriptors of a shared host", db(`pooler: max_client_conn: 65520`),
			`stacks/m.cue:19:103: database.pooler.max_client_conn: PgBouncer on app1 needs a descriptor per connection: max_client_conn 65520 + 20 server connections (api 10 + web 10) = 65540, above tuning.nofile 65536 (its LimitNOFILE); lower max_client_conn or raise tuning.nofile [db-pool]`},
		{"console name", `~legacy: {runtime~pgbouncer: {runtime` + "\n" + db(`pooler: {}`),
			`stacks/m.cue:17:13: apps.pgbouncer: PgBouncer's console is the database "pgbouncer", and with several apps each app's pool on the host's PgBouncer is the database of the app's name: rename app "pgbouncer" [db-pool]`},
		{"fd-host counts each pool", db(`pooler: {}`) + "\ntuning: sysctl: \"fs.file-max\": 5000\n",
			`PgBouncer 1000 max_client_conn + 20 server connections (api 10 + web 10) = 1020`},
		// Each app's read pool on a host is sized as its pool on the
		// primary, from its own clients, and each replica must take
		// them all.
		{"read pools fit a replica", db(`replicas: ["ro.example.com"], replica_pool_size: 2, max_connections: 60, pooler: {}`), ""},
		{"read pools summed on a replica", db(`replicas: ["ro.example.com"], replica_pool_size: 2, replica_max_connections: 59, pooler: {}`),
			`stacks/m.cue:19:155: database.replica_max_connections: PgBouncer's read pools, an app's on each of its hosts, each pool_size (default_pool_size 20, or the app's client connections to it on the host if fewer) + reserve_pool_size 0: api 20 (app1 10, app2 10) + legacy 20 (app3 10, app4 10) + web 20 (app1 10, app2 10) = 60 server connections to a replica (each replica must take them all when the others are lost), above replica_max_connections 59; lower database.pooler.default_pool_size or reserve_pool_size, or raise replica_max_connections [db-pool]`},
		{"session mode per read pool", db(`replicas: ["ro.example.com"], replica_pool_size: 4, pooler: {pool_mode: "session", default_pool_size: 12}`),
			`stacks/m.cue:19:150: database.pooler.pool_mode: on each of app1, app2: app "api"'s read pool: 5 api processes × (replica_pool_size 4 + replica_max_overflow 0) = 20 client connections, and in session mode each holds a server connection while it is open, but the pool opens at most default_pool_size 12 + reserve_pool_size 0 = 12: clients would wait; use pool_mode "transaction" or raise default_pool_size [db-pool]`},
		{"fd-host counts the read pools", db(`replicas: ["ro.example.com"], replica_pool_size: 1, pooler: {}`) + "\ntuning: sysctl: \"fs.file-max\": 5000\n",
			`PgBouncer 1000 max_client_conn + 30 server connections (api 10 + web 10; read pools api 5 + web 5) = 1030`},
	} {
		src := multiBase + c.add
		if f := strings.SplitN(c.add, "~", 3); len(f) == 3 {
			src = strings.Replace(multiBase, f[1], f[2][:strings.Index(f[2], "\n")], 1) + f[2][strings.Index(f[2], "\n"):]
		}
		checkFindings(t, c.name, src, c.want, "db-pool", "fd-host")
	}
}

// checkFindings checks the findings of the named rules on the stack
// src: none when want is empty, else one that holds want.
func checkFindings(t *testing.T, name, src, want string, ids ...string) {
	t.Helper()
	var got []string
	for _, g := range rulesOf(t, src) {
		for _, id := range ids {
			if strings.HasSuffix(g, "["+id+"]") {
				got = append(got, g)
			}
		}
	}
	switch {
	case want == "" && len(got) != 0:
		t.Errorf("%s: %q, want none", name, got)
	case want != "" && !strings.Contains(strings.Join(got, "\n"), want):
		t.Errorf("%s:\n got %q\nwant %s", name, got, want)
	}
}
