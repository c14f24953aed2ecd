//go:build unix

package pgbouncer_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/generators/appenv"
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/pgbouncer"
	"github.com/hacompile/hacompile/internal/testtool"
)

// console runs one statement on PgBouncer's console at port as the
// stats user and returns its rows by column name.
func console(t *testing.T, port int, password, sql string) []map[string]string {
	t.Helper()
	cmd := exec.Command(testtool.Require(t, "psql", "postgresql-client"), "-X", "-A", "-P", "footer=off",
		"-d", fmt.Sprintf("host=127.0.0.1 port=%d user=shop dbname=pgbouncer sslmode=disable connect_timeout=5", port), "-c", sql)
	cmd.Env = append(cmd.Environ(), "PGPASSWORD="+password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", sql, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	cols := strings.Split(lines[0], "|")
	var rows []map[string]string
	for _, l := range lines[1:] {
		row := map[string]string{}
		for i, v := range strings.Split(l, "|") {
			if i < len(cols) {
				row[cols[i]] = v
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// rowOf is the row whose column col is v.
func rowOf(rows []map[string]string, col, v string) map[string]string {
	for _, r := range rows {
		if r[col] == v {
			return r
		}
	}
	return nil
}

// TestAppsLive runs Debian's pgbouncer with app1's rendered files (two
// apps) in front of a real PostgreSQL on loopback: each app's
// DATABASE_URL reaches the one database through a pool of its own;
// PgBouncer's SHOW DATABASES holds each pool's size and cap; with api's
// pool full and its clients waiting, api holds no more server
// connections than its pool and web's queries are still answered at
// once.
func TestAppsLive(t *testing.T) {
	const password = "test-only-password"
	pg := testtool.StartPostgres(t, "shop", password, "shop")
	port := testtool.FreePort(t, "127.0.0.1")
	s := appsStack(t, "127.0.0.1", pg.Port, port)
	root, log := startBouncer(t, s, "app1", password)

	url := map[string]string{}
	for _, a := range s.Apps {
		for _, v := range must(appenv.Vars(s.ForApp(a))) {
			if v.Name == "DATABASE_URL" {
				url[a.Name] = v.Value
			}
		}
		out, err := testtool.Psql(t, url[a.Name], password, "SELECT current_user, current_database(), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
		if err != nil || out != "shop|shop|t" {
			t.Fatalf("%s through PgBouncer (%s): %q %v\n%s", a.Name, url[a.Name], out, err, log.String())
		}
	}

	dbs := console(t, port, password, "SHOW DATABASES")
	for _, w := range []struct{ name, size, max string }{{"api", "4", "5"}, {"web", "5", "6"}} {
		r := rowOf(dbs, "name", w.name)
		if r == nil || r["database"] != "shop" || r["pool_size"] != w.size || r["max_connections"] != w.max {
			t.Errorf("SHOW DATABASES, %s: %v (want database shop, pool_size %s, max_connections %s)", w.name, r, w.size, w.max)
		}
	}
	if r := rowOf(dbs, "name", "shop"); r != nil {
		t.Errorf("SHOW DATABASES has a pool on shop itself: %v", r)
	}

	// Eight api clients at once, each for 4 s: api's pool of 4 serves
	// four, the rest wait (the reserve opens only after they waited
	// 5 s).
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := testtool.Psql(t, url["api"], password, "SELECT pg_sleep(4)")
			errs <- err
		}()
	}
	var pools []map[string]string
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		pools = console(t, port, password, "SHOW POOLS")
		if r := rowOf(pools, "database", "api"); r != nil && r["cl_waiting"] == strconv.Itoa(n-4) && r["sv_active"] == "4" {
			break
		}
	}
	r := rowOf(pools, "database", "api")
	active, _ := strconv.Atoi(r["sv_active"])
	waiting, _ := strconv.Atoi(r["cl_waiting"])
	if active != 4 || waiting != n-4 {
		t.Errorf("SHOW POOLS, api under %d clients: %v (want sv_active 4, cl_waiting %d)\n%s", n, r, n-4, log.String())
	}
	// web's pool is its own: it answers while api's clients wait.
	start := time.Now()
	if out, err := testtool.Psql(t, url["web"], password, "SELECT current_database()"); err != nil || out != "shop" {
		t.Errorf("web while api's pool is full: %q %v", out, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("web waited %v behind api's pool", d)
	}
	// The primary sees api's pool, web's one connection, and this query.
	if out, err := pg.Query(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE usename = 'shop' AND datname = 'shop' AND client_addr IS NOT NULL"); err != nil {
		t.Errorf("pg_stat_activity: %v", err)
	} else if c, _ := strconv.Atoi(out); c < 4 || c > 4+6 {
		t.Errorf("server connections on the primary: %d, want api's 4 and at most web's 6", c)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("api client: %v", err)
		}
	}

	// api down to 1 worker: its pool shrinks to 2 (+ 1) with the
	// rewritten databases.ini and a reload (the console's RELOAD, as
	// systemctl reload does), while web's session stays open.
	web := exec.Command(testtool.Require(t, "psql", "postgresql-client"), "-X", "-At", "-d", url["web"], "-c", "SELECT pg_sleep(3)", "-c", "SELECT current_database()")
	web.Env = append(web.Environ(), "PGPASSWORD="+password)
	var webOut strings.Builder
	web.Stdout, web.Stderr = &webOut, &webOut
	if err := web.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	smaller := appsStackWith(t, "127.0.0.1", pg.Port, port, 1)
	for _, f := range must(pgbouncer.Gen{}.Generate(smaller, artifact.Options{Root: root})) {
		if f.Host == "app1" && f.Path == pgbouncer.DatabasesPath {
			if err := os.WriteFile(filepath.Join(root, f.Path), f.Content, 0o640); err != nil {
				t.Fatal(err)
			}
		}
	}
	reload := testtool.AsPostgres(t, exec.Command(testtool.Require(t, "psql", "postgresql-client"), "-X", "-At",
		"-h", filepath.Join(root, pgbouncer.SocketDir), "-p", strconv.Itoa(port), "-U", pgbouncer.Admin, "-c", "RELOAD", "pgbouncer"))
	if out, err := reload.CombinedOutput(); err != nil {
		t.Fatalf("RELOAD: %v\n%s", err, out)
	}
	if r := rowOf(console(t, port, password, "SHOW DATABASES"), "name", "api"); r == nil || r["pool_size"] != "2" || r["max_connections"] != "3" {
		t.Errorf("SHOW DATABASES after the reload, api: %v (want pool_size 2, max_connections 3)", r)
	}
	if err := web.Wait(); err != nil || !strings.HasSuffix(strings.TrimSpace(webOut.String()), "shop") {
		t.Errorf("web's session across the reload: %v\n%s", err, webOut.String())
	}
}
