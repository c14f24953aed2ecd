//go:build unix

package testtool

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PostgresAccount is Debian's postgres account, which the postgresql
// packages create: PostgreSQL and PgBouncer refuse to run as root. These
// helpers run the servers as that account, so they are unix only.
func PostgresAccount(t testing.TB) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		Missing(t, "no postgres account; install it with: apt-get install -y postgresql")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// AsPostgres makes cmd run as the postgres account.
func AsPostgres(t testing.TB, cmd *exec.Cmd) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: PostgresAccount(t)}
	return cmd
}

// PostgresDir is a new directory the postgres account owns, removed
// when the test ends.
func PostgresDir(t testing.TB) string {
	t.Helper()
	cred := PostgresAccount(t)
	dir, err := os.MkdirTemp("", "hacompile-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ChownPostgres gives the postgres account everything under dir.
func ChownPostgres(t testing.TB, dir string) {
	t.Helper()
	cred := PostgresAccount(t)
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(cred.Uid), int(cred.Gid))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// StartPostgres runs Debian's PostgreSQL (initdb in a temporary
// directory, as the postgres account) on 127.0.0.1:port with TLS (a
// self-signed certificate for 127.0.0.1) and SCRAM logins, and creates
// role user with password owning database db. The test's cleanup stops
// this server only.
func StartPostgres(t testing.TB, user, password, db string) *Postgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(bins) == 0 {
		Missing(t, "PostgreSQL not found; install it with: apt-get install -y postgresql (or run make test, which installs the test tools)")
	}
	slices.Sort(bins)
	binDir := filepath.Dir(bins[len(bins)-1])
	Require(t, "psql", "postgresql-client")
	openssl := Require(t, "openssl", "openssl")
	dir := PostgresDir(t)
	pg := &Postgres{Port: FreePort(t, "127.0.0.1"), Dir: dir, User: user, Password: password, Bin: binDir}
	run := func(name string, args ...string) {
		t.Helper()
		cmd := AsPostgres(t, exec.Command(name, args...))
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	pw := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ChownPostgres(t, dir)
	data := filepath.Join(dir, "data")
	run(filepath.Join(binDir, "initdb"), "-D", data, "-U", user, "--auth=scram-sha-256", "--pwfile="+pw, "-E", "UTF8", "--no-instructions", "--no-sync")
	run(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
		"-keyout", filepath.Join(dir, "server.key"), "-out", filepath.Join(dir, "server.crt"))
	conf := fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nssl = on\nssl_cert_file = '%s'\nssl_key_file = '%s'\nmax_connections = 50\nfsync = off\n",
		pg.Port, dir, filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(conf)
	f.Close()
	var log SyncBuffer
	cmd := AsPostgres(t, exec.Command(filepath.Join(binDir, "postgres"), "-D", data))
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if _, err := pg.Query(t, "postgres", "SELECT 1"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PostgreSQL on 127.0.0.1:%d did not start:\n%s", pg.Port, log.String())
		}
	}
	if db != "postgres" {
		if out, err := pg.Query(t, "postgres", "CREATE DATABASE "+db); err != nil {
			t.Fatalf("CREATE DATABASE %s: %v\n%s", db, err, out)
		}
	}
	return pg
}

// StartReplica starts a streaming replica of pg (pg_basebackup -R) on
// addr, another loopback address, at pg's port: a stack names its
// replicas by host, with the primary's port. The test's cleanup stops it.
func (pg *Postgres) StartReplica(t testing.TB, addr string) *Postgres {
	t.Helper()
	dir := PostgresDir(t)
	data := filepath.Join(dir, "data")
	cmd := AsPostgres(t, exec.Command(filepath.Join(pg.Bin, "pg_basebackup"), "-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port),
		"-U", pg.User, "-D", data, "-R", "-X", "stream", "-c", "fast", "--no-sync"))
	cmd.Env = append(os.Environ(), "PGPASSWORD="+pg.Password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "listen_addresses = '%s'\nunix_socket_directories = '%s'\n", addr, dir)
	f.Close()
	var log SyncBuffer
	srv := AsPostgres(t, exec.Command(filepath.Join(pg.Bin, "postgres"), "-D", data))
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			srv.Process.Kill()
			<-done
		}
	})
	r := &Postgres{Port: pg.Port, Dir: dir, User: pg.User, Password: pg.Password, Bin: pg.Bin}
	conn := fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=require connect_timeout=5", addr, pg.Port, pg.User)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if out, err := Psql(t, conn, pg.Password, "SELECT pg_is_in_recovery()"); err == nil && out == "t" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica on %s:%d did not start:\n%s", addr, pg.Port, log.String())
		}
	}
	return r
}
