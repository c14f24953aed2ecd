package pgbouncer_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/appenv"
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/pgbouncer"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// appsStack has two apps sharing app1 (web with 3 workers, api with 2),
// web alone on app2 and Celery workers running web's code on w1, all
// through PgBouncer on their host in front of the primary at
// dbHost:dbPort. Each process pools 1 + 1 connections, so on app1 api's
// 2 processes open at most 4 client connections (a pool of 4, below
// default_pool_size 5) and web's 3 open 6 (a pool of 5).
func appsStack(t *testing.T, dbHost string, dbPort int, poolerPort int) *schema.Stack {
	return appsStackWith(t, dbHost, dbPort, poolerPort, 2)
}

// appsStackWith is appsStack with api's workers.
func appsStackWith(t *testing.T, dbHost string, dbPort int, poolerPort, apiWorkers int) *schema.Stack {
	return testtool.Load(t, "stacks/t.cue", fmt.Sprintf(`
name:   "t"
domain: "shop.example.com"
hosts: {
	lb1:    {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1:   {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2:   {address: "10.0.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
	w1:     {address: "10.0.0.21", roles: ["worker"], cores: 2, memory_mb: 1024}
	cache1: {address: "10.0.0.31", roles: ["cache"], cores: 1, memory_mb: 1024}
}
balancer: kind: "haproxy"
apps: {
	web: {runtime: "python", module: "wsgi:app", working_dir: "/srv/web", workers: 3}
	api: {runtime: "python", module: "api:app", working_dir: "/srv/api", workers: %d, hosts: ["app1"], paths: ["/api/"], http_port: 8081}
}
cache: {engine: "redis"}
queue: {engine: "redis", host: "10.0.0.31"}
workers: {app: "shop", runs: "web"}
monitoring: address: "10.0.0.2"
database: {
	host: %q, port: %d, name: "shop", user: "shop", sslmode: "require"
	pool_size: 1, max_overflow: 1, max_connections: 100
	pooler: {port: %d, default_pool_size: 5, reserve_pool_size: 1, max_client_conn: 200}
}
`, apiWorkers, dbHost, dbPort, poolerPort))
}

// TestAppsContent: a host running two apps has one pgbouncer.ini with a
// pool per app on the one database (its own pool_size from its
// processes there), one hba line per pool for the one user, and each
// app's settings name its own pool; a host with one app, and a worker
// host, have that app's pool alone.
func TestAppsContent(t *testing.T) {
	s := appsStack(t, "db.internal", 25060, 6432)
	fs := testtool.GenerateTwice(t, pgbouncer.Gen{}, s, artifact.Options{})
	byHost := map[string]map[string]string{}
	for _, f := range fs {
		if byHost[f.Host] == nil {
			byHost[f.Host] = map[string]string{}
		}
		byHost[f.Host][f.Path] = string(f.Content)
	}
	if hs := slices.Sorted(maps.Keys(byHost)); !slices.Equal(hs, []string{"app1", "app2", "w1"}) {
		t.Fatalf("hosts %q, want app1, app2, w1", hs)
	}
	const (
		api = "\napi = host=db.internal port=25060 dbname=shop pool_size=4 max_db_connections=5\n"
		web = "\nweb = host=db.internal port=25060 dbname=shop pool_size=5 max_db_connections=6\n"
	)
	ini, dbs := byHost["app1"][pgbouncer.IniPath], byHost["app1"][pgbouncer.DatabasesPath]
	for _, w := range []string{
		"\nlisten_port = 6432\n", "\nstats_users = shop\n", "\nmax_client_conn = 200\n",
		"/etc/api/secrets/database-password",
		"\n%include /etc/pgbouncer/databases.ini\n",
	} {
		if !strings.Contains(ini, w) {
			t.Errorf("app1's pgbouncer.ini lacks %q:\n%s", w, ini)
		}
	}
	// One listener: listen_port once; the pools are in the included
	// file, and no global cap that would read as the host's.
	if strings.Count(ini, "listen_port") != 1 || strings.Contains(ini, "\n[databases]") || strings.Contains(ini, "\nmax_db_connections") {
		t.Errorf("app1's pgbouncer.ini:\n%s", ini)
	}
	for _, w := range []string{
		"\n[databases]\n", api, web,
		"# api: 2 api processes × 2 = 4 client connections.\n",
		"# web: 3 web processes × 2 = 6 client connections.\n",
		"together at most\n# 11 server connections",
	} {
		if !strings.Contains(dbs, w) {
			t.Errorf("app1's databases.ini lacks %q:\n%s", w, dbs)
		}
	}
	// The one database's own name is no pool: each app asks for its own.
	if strings.Contains(dbs, "\nshop = ") {
		t.Errorf("app1's databases.ini pools shop:\n%s", dbs)
	}
	// A pool resized is a reload; the ini, read at start, a restart.
	for _, f := range fs {
		want := map[string]artifact.Action{pgbouncer.DatabasesPath: artifact.ReloadUnit(pgbouncer.Unit), pgbouncer.IniPath: artifact.Restart(pgbouncer.Unit)}[f.Path]
		if f.Host == "app1" && !want.IsZero() && !f.Reload.Equal(want) {
			t.Errorf("%s: %s, want %s", f.Path, f.Reload, want)
		}
	}
	hba := byHost["app1"][pgbouncer.HBAPath]
	for _, w := range []string{"\nhost    api  shop  127.0.0.1/32  scram-sha-256\n", "\nhost    web  shop  127.0.0.1/32  scram-sha-256\n", "\nhost    pgbouncer  shop  127.0.0.1/32  scram-sha-256\n"} {
		if !strings.Contains(hba, w) {
			t.Errorf("app1's pg_hba.conf lacks %q:\n%s", w, hba)
		}
	}
	for _, h := range []string{"app2", "w1"} {
		ini := byHost[h][pgbouncer.DatabasesPath]
		if strings.Contains(ini, "\napi = ") || !strings.Contains(ini, "\nweb = host=db.internal port=25060 dbname=shop pool_size=") {
			t.Errorf("%s's databases.ini should pool web alone:\n%s", h, ini)
		}
		if strings.Contains(byHost[h][pgbouncer.HBAPath], " api ") {
			t.Errorf("%s's pg_hba.conf lets api in:\n%s", h, byHost[h][pgbouncer.HBAPath])
		}
	}
	// Celery's 2 prefork processes (a core each) on w1: 4 clients.
	if w := "\nweb = host=db.internal port=25060 dbname=shop pool_size=4 max_db_connections=5\n"; !strings.Contains(byHost["w1"][pgbouncer.DatabasesPath], w) {
		t.Errorf("w1's databases.ini lacks %q:\n%s", w, byHost["w1"][pgbouncer.DatabasesPath])
	}

	for _, a := range s.Apps {
		vars := map[string]string{}
		for _, v := range must(appenv.Vars(s.ForApp(a))) {
			vars[v.Name] = v.Value
		}
		want := map[string]string{
			"DATABASE_NAME":        a.Name,
			"DATABASE_URL":         "postgresql://shop@127.0.0.1:6432/" + a.Name + "?sslmode=disable",
			"DATABASE_SERVER_NAME": "shop",
			"DATABASE_PORT":        "6432",
		}
		for k, v := range want {
			if vars[k] != v {
				t.Errorf("%s's settings: %s=%q, want %q", a.Name, k, vars[k], v)
			}
		}
	}
}
