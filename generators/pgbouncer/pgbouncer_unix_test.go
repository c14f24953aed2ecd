//go:build unix

package pgbouncer_test

import (
	"fmt"
	"net"
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
	"github.com/hacompile/hacompile/schema"
)

// bouncer renders the stack into a sandbox root owned by the postgres
// account, with the auth file holding password, starts Debian's
// pgbouncer on app1's files and returns the app's connection string.
func bouncer(t *testing.T, s *schema.Stack, password string) (conn, root string, log *testtool.SyncBuffer) {
	t.Helper()
	root, log = startBouncer(t, s, "app1", password)
	for _, v := range must(appenv.Vars(s)) {
		if v.Name == "DATABASE_URL" {
			return v.Value, root, log
		}
	}
	t.Fatal("no DATABASE_URL in the settings")
	return "", "", nil
}

// startBouncer starts Debian's pgbouncer on host's rendered files in a
// sandbox root owned by the postgres account, with the auth file
// holding the database user's password, once it listens.
func startBouncer(t *testing.T, s *schema.Stack, host, password string) (root string, log *testtool.SyncBuffer) {
	t.Helper()
	bin := testtool.Require(t, "pgbouncer", "pgbouncer")
	root = testtool.PostgresDir(t)
	fs, err := pgbouncer.Gen{}.Generate(s, artifact.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	var files []artifact.File
	for _, f := range fs {
		if f.Host == host {
			files = append(files, f)
		}
	}
	testtool.WriteTree(t, root, files...)
	userlist := filepath.Join(root, pgbouncer.UserlistPath)
	if err := os.WriteFile(userlist, []byte(`"`+s.Database.User+`" "`+password+`"`+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, pgbouncer.SocketDir), 0o755); err != nil {
		t.Fatal(err)
	}
	// verify-ca and verify-full read the system's CA bundle.
	if ca, err := os.ReadFile(pgbouncer.CAFile); err == nil {
		os.MkdirAll(filepath.Dir(filepath.Join(root, pgbouncer.CAFile)), 0o755)
		os.WriteFile(filepath.Join(root, pgbouncer.CAFile), ca, 0o644)
	}
	testtool.ChownPostgres(t, root)
	log = &testtool.SyncBuffer{}
	cmd := testtool.AsPostgres(t, exec.Command(bin, filepath.Join(root, pgbouncer.IniPath)))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Wait for the listener.
	addr := net.JoinHostPort(pgbouncer.Address, strconv.Itoa(s.Database.Pooler.Port))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgbouncer did not listen on %s:\n%s", addr, log.String())
		}
	}
	return root, log
}

// TestLive puts Debian's pgbouncer, with the rendered files, in front of
// a real PostgreSQL with TLS on loopback: the app's DATABASE_URL and
// password reach the database through it over TLS, the server pool
// holds no more than max_db_connections, and the admin console answers
// the postgres account over the socket. It fails when the primary's
// certificate cannot be verified (verify-full against the system's
// CAs) and when the auth file's password is wrong.
func TestLive(t *testing.T) {
	const password = "test-only-password"
	pg := testtool.StartPostgres(t, "shop", password, "shop")

	t.Run("require", func(t *testing.T) {
		s := stack(t, "127.0.0.1", pg.Port, "require", testtool.FreePort(t, "127.0.0.1"))
		url, root, log := bouncer(t, s, password)
		out, err := testtool.Psql(t, url, password, "SELECT current_user, current_database(), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
		if err != nil || out != "shop|shop|t" {
			t.Fatalf("query through PgBouncer: %q %v\n%s", out, err, log.String())
		}
		// Ten clients at once share at most max_db_connections (5)
		// server connections.
		errs := make(chan error, 10)
		for range 10 {
			go func() {
				_, err := testtool.Psql(t, url, password, "SELECT pg_sleep(0.3)")
				errs <- err
			}()
		}
		for range 10 {
			if err := <-errs; err != nil {
				t.Errorf("concurrent client: %v", err)
			}
		}
		n, err := pg.Query(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE usename = 'shop' AND datname = 'shop' AND client_addr IS NOT NULL")
		if c, _ := strconv.Atoi(n); err != nil || c < 1 || c > 5 {
			t.Errorf("server connections from PgBouncer: %q %v (want 1 to 5)", n, err)
		}
		// The admin console, as the ini's comment says: over the Unix
		// socket from the account PgBouncer runs as.
		port := strconv.Itoa(s.Database.Pooler.Port)
		cmd := testtool.AsPostgres(t, exec.Command(testtool.Require(t, "psql", "postgresql-client"), "-X", "-At",
			"-h", filepath.Join(root, pgbouncer.SocketDir), "-p", port, "-U", pgbouncer.Admin, "-c", "SHOW POOLS", "pgbouncer"))
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "shop|shop|") {
			t.Errorf("SHOW POOLS as %s: %v\n%s", pgbouncer.Admin, err, out)
		}
		// The app's user reads the statistics and may not administer.
		stats := "host=127.0.0.1 port=" + port + " user=shop dbname=pgbouncer sslmode=disable"
		if out, err := testtool.Psql(t, stats, password, "SHOW POOLS"); err != nil || !strings.Contains(out, "shop|shop|") {
			t.Errorf("SHOW POOLS as the app's user: %v\n%s", err, out)
		}
		if out, err := testtool.Psql(t, stats, password, "RELOAD"); err == nil {
			t.Errorf("the app's user ran RELOAD: %s", out)
		}
	})

	t.Run("verify-full-self-signed", func(t *testing.T) {
		s := stack(t, "127.0.0.1", pg.Port, "verify-full", testtool.FreePort(t, "127.0.0.1"))
		url, _, log := bouncer(t, s, password)
		out, err := testtool.Psql(t, url, password, "SELECT 1")
		if err == nil {
			t.Fatalf("verify-full against a self-signed certificate connected: %q\n%s", out, log.String())
		}
		if !strings.Contains(log.String(), "certificate verify failed") {
			t.Errorf("PgBouncer did not refuse the primary's certificate:\npsql: %s\n%s", out, log.String())
		}
	})

	t.Run("wrong-auth-file", func(t *testing.T) {
		s := stack(t, "127.0.0.1", pg.Port, "require", testtool.FreePort(t, "127.0.0.1"))
		url, _, log := bouncer(t, s, "not-the-password")
		out, err := testtool.Psql(t, url, password, "SELECT 1")
		if err == nil || !strings.Contains(out, "SASL authentication failed") {
			t.Fatalf("with an auth file holding another password: %q %v\n%s", out, err, log.String())
		}
	})
}

// TestLiveReadPool puts Debian's pgbouncer, with the rendered files, in
// front of a real primary and two streaming replicas of it on other
// loopback addresses: the app's DATABASE_URL reaches the primary, its
// DATABASE_REPLICA_URLS a replica (in recovery) through the host's
// PgBouncer, and the read pool's server connections go to both
// replicas in turn.
func TestLiveReadPool(t *testing.T) {
	const password = "test-only-password"
	pg := testtool.StartPostgres(t, "shop", password, "shop")
	r1 := pg.StartReplica(t, "127.0.0.2")
	r2 := pg.StartReplica(t, "127.0.0.3")
	s := stack(t, "127.0.0.1", pg.Port, "require", testtool.FreePort(t, "127.0.0.1"))
	s.Database.Replicas = []string{"127.0.0.2", "127.0.0.3"}
	s.Database.ReplicaPoolSize = 2
	_, _, log := bouncer(t, s, password)
	vars := map[string]string{}
	for _, v := range must(appenv.Vars(s)) {
		vars[v.Name] = v.Value
	}
	url, reads := vars["DATABASE_URL"], vars["DATABASE_REPLICA_URLS"]
	if reads == "" || strings.Contains(reads, ",") {
		t.Fatalf("DATABASE_REPLICA_URLS = %q, want PgBouncer's one read pool", reads)
	}
	if out, err := testtool.Psql(t, url, password, "SELECT pg_is_in_recovery()"); err != nil || out != "f" {
		t.Fatalf("DATABASE_URL: in recovery %q %v, want the primary\n%s", out, err, log.String())
	}
	if out, err := testtool.Psql(t, reads, password, "SELECT pg_is_in_recovery(), current_database()"); err != nil || out != "t|shop" {
		t.Fatalf("DATABASE_REPLICA_URLS: %q %v, want a replica's shop\n%s", out, err, log.String())
	}
	// Four readers at once: PgBouncer opens server connections for them,
	// each to the next replica.
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := testtool.Psql(t, reads, password, "SELECT pg_sleep(1)")
			errs <- err
		}()
	}
	time.Sleep(500 * time.Millisecond)
	for i, r := range []*testtool.Postgres{r1, r2} {
		addr := []string{"127.0.0.2", "127.0.0.3"}[i]
		n, err := testtool.Psql(t, fmt.Sprintf("host=%s port=%d user=shop dbname=postgres sslmode=require connect_timeout=5", addr, r.Port), password,
			"SELECT count(*) FROM pg_stat_activity WHERE usename = 'shop' AND datname = 'shop' AND client_addr IS NOT NULL")
		if c, _ := strconv.Atoi(n); err != nil || c < 1 {
			t.Errorf("replica %s: %q server connections from PgBouncer (%v), want at least one", addr, n, err)
		}
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("reader: %v", err)
		}
	}
	// The console lists the read pool with both replicas, as the
	// system test asks of a booted host.
	stats := "host=127.0.0.1 port=" + strconv.Itoa(s.Database.Pooler.Port) + " user=shop dbname=pgbouncer sslmode=disable"
	out, err := testtool.Psql(t, stats, password, "SHOW DATABASES")
	if want := fmt.Sprintf("\nshop_replica|127.0.0.2,127.0.0.3|%d|shop|", pg.Port); err != nil || !strings.Contains("\n"+out, want) {
		t.Errorf("SHOW DATABASES: %v, want a line %q:\n%s", err, want[1:], out)
	}
}

// TestLiveReadPoolReplicaLost: with one of two replicas lost (nothing
// answers at 127.0.0.3), the read pool moves to the other within
// seconds: six readers of a second each, at once, are all served in
// about 3 s, not one after another (6 s) as PgBouncer's default
// server_login_retry (15 s, in which it opens no other server
// connection) made them.
func TestLiveReadPoolReplicaLost(t *testing.T) {
	const password = "test-only-password"
	pg := testtool.StartPostgres(t, "shop", password, "shop")
	pg.StartReplica(t, "127.0.0.2")
	s := stack(t, "127.0.0.1", pg.Port, "require", testtool.FreePort(t, "127.0.0.1"))
	s.Database.Replicas = []string{"127.0.0.2", "127.0.0.3"}
	s.Database.ReplicaPoolSize = 6
	_, _, log := bouncer(t, s, password)
	var reads string
	for _, v := range must(appenv.Vars(s)) {
		if v.Name == "DATABASE_REPLICA_URLS" {
			reads = v.Value
		}
	}
	const n = 6
	start := time.Now()
	errs := make(chan error, n)
	for range n {
		go func() {
			out, err := testtool.Psql(t, reads, password, "SELECT pg_is_in_recovery(), pg_sleep(1)")
			if err == nil && !strings.HasPrefix(out, "t|") {
				err = fmt.Errorf("not a replica: %q", out)
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("reader: %v", err)
		}
	}
	took := time.Since(start)
	t.Logf("%d readers of 1 s with one replica lost: %.1f s", n, took.Seconds())
	if took > 5*time.Second {
		t.Errorf("%d readers of 1 s took %.1f s with one replica lost, want under 5 s\n%s", n, took.Seconds(), log.String())
	}
}
