package pgbouncer_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/appenv"
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/pgbouncer"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// stack has PgBouncer on its app and worker hosts in front of the
// primary at dbHost:dbPort.
func stack(t *testing.T, dbHost string, dbPort int, sslmode string, poolerPort int) *schema.Stack {
	return testtool.Load(t, "stacks/t.cue", fmt.Sprintf(`
name:   "t"
domain: "shop.example.com"
hosts: {
	app1:   {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	w1:     {address: "10.0.0.21", roles: ["worker"], cores: 1, memory_mb: 1024}
	cache1: {address: "10.0.0.31", roles: ["cache"], cores: 1, memory_mb: 1024}
}
balancer: kind: "cloud"
app: {name: "shop", runtime: "python", module: "wsgi:app", working_dir: "/srv/app"}
cache: {engine: "redis"}
queue: {engine: "redis", host: "10.0.0.31"}
workers: app: "shop"
database: {
	host: %q, port: %d, name: "shop", sslmode: %q, max_connections: 100
	pooler: {port: %d, default_pool_size: 4, reserve_pool_size: 1, max_client_conn: 200}
}
`, dbHost, dbPort, sslmode, poolerPort))
}

func TestContent(t *testing.T) {
	s := stack(t, "db.internal", 25060, "verify-full", 6432)
	fs := testtool.GenerateTwice(t, pgbouncer.Gen{}, s, artifact.Options{})
	var got []string
	for _, f := range fs {
		got = append(got, f.Host+":"+f.Path)
	}
	want := []string{"app1:" + pgbouncer.IniPath, "app1:" + pgbouncer.HBAPath, "app1:" + pgbouncer.DropInPath,
		"w1:" + pgbouncer.IniPath, "w1:" + pgbouncer.HBAPath, "w1:" + pgbouncer.DropInPath}
	if !slices.Equal(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}
	ini := string(fs[0].Content)
	for _, w := range []string{
		artifact.Header("#", s),
		"\nshop = host=db.internal port=25060 dbname=shop\n",
		"\nlisten_addr = 127.0.0.1\n", "\nlisten_port = 6432\n",
		"\nauth_type = hba\n", "\nauth_file = /etc/pgbouncer/userlist.txt\n", "\nauth_hba_file = /etc/pgbouncer/pg_hba.conf\n",
		"\nadmin_users = pgbouncer\n", "\nstats_users = shop\n",
		"\nserver_tls_sslmode = verify-full\n", "\nserver_tls_ca_file = /etc/ssl/certs/ca-certificates.crt\n",
		"\nclient_tls_sslmode = disable\n",
		"\npool_mode = transaction\n", "\ndefault_pool_size = 4\n", "\nreserve_pool_size = 1\n",
		"\nmax_db_connections = 5\n", "\nmax_client_conn = 200\n",
		"install -m 0640 -o postgres -g postgres /dev/stdin /etc/pgbouncer/userlist.txt",
	} {
		if !strings.Contains(ini, w) {
			t.Errorf("pgbouncer.ini lacks %q:\n%s", w, ini)
		}
	}
	if fs[0].Mode != 0o640 || fs[0].Owner != "postgres:postgres" {
		t.Errorf("pgbouncer.ini mode %o owner %s", fs[0].Mode, fs[0].Owner)
	}
	if !strings.Contains(string(fs[1].Content), "\nhost    shop  shop  127.0.0.1/32  scram-sha-256\n") {
		t.Errorf("pg_hba.conf:\n%s", fs[1].Content)
	}
	if !strings.Contains(string(fs[2].Content), "LimitNOFILE=65536\n") {
		t.Errorf("drop-in:\n%s", fs[2].Content)
	}

	// The app's settings point at the local PgBouncer, without TLS.
	env, err := appenv.Vars(s)
	if err != nil {
		t.Fatal(err)
	}
	var vars []string
	for _, v := range env {
		if strings.HasPrefix(v.Name, "DATABASE_") {
			vars = append(vars, v.Name+"="+v.Value)
		}
	}
	for _, w := range []string{"DATABASE_HOST=127.0.0.1", "DATABASE_PORT=6432", "DATABASE_SSLMODE=disable",
		"DATABASE_URL=postgresql://shop@127.0.0.1:6432/shop?sslmode=disable", "DATABASE_POOLER=pgbouncer",
		"DATABASE_POOL_MODE=transaction", "DATABASE_SERVER_HOST=db.internal", "DATABASE_SERVER_PORT=25060"} {
		if !slices.Contains(vars, w) {
			t.Errorf("settings lack %s: %q", w, vars)
		}
	}

	// Without a pooler: nothing.
	s.Database.Pooler = nil
	if fs, err := (pgbouncer.Gen{}).Generate(s, artifact.Options{}); err != nil || len(fs) != 0 {
		t.Errorf("no pooler: %v %v", fs, err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
