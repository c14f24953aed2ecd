package testtool

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Postgres is a PostgreSQL server a test started on loopback.
type Postgres struct {
	Port     int
	Dir      string // owned by the postgres account: data, socket, certificate
	User     string // a superuser, logging in with Password
	Password string
	Bin      string // the server's bin directory (psql is on PATH)
}

// Query runs one statement as the superuser over TCP with TLS and
// returns psql's unaligned output.
func (pg *Postgres) Query(t testing.TB, db, sql string) (string, error) {
	return Psql(t, fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=require connect_timeout=5", pg.Port, pg.User, db), pg.Password, sql)
}

// Psql runs psql with connection string conn and password, one
// statement, tuples only, unaligned; it returns the output.
func Psql(t testing.TB, conn, password, sql string) (string, error) {
	t.Helper()
	psql := Require(t, "psql", "postgresql-client")
	cmd := exec.Command(psql, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", conn, "-c", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=5")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
