package monitoring

import (
	"net/url"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// postgres_exporter on the monitoring host (Debian 13's
// prometheus-postgres-exporter 0.17.1). Prometheus's job "postgres"
// probes each server through it (/probe?target=DSN); the DSN names the
// user and never a password, which the exporter's PostgreSQL driver
// (lib/pq) reads from PGPASSFILE, a file the operator provisions on the
// monitoring host. An auth module of postgres_exporter.yml would need
// the password written in that file.
//
// The series the database alerts read, as 0.17.1 serves them on /probe
// (its live test scrapes a real primary and replica): pg_up, and the
// replication collector's pg_replication_is_replica and
// pg_replication_lag_seconds.
const (
	// PostgresExporterPath is /etc/default/prometheus-postgres-exporter
	// of the monitoring host, the unit's EnvironmentFile=.
	PostgresExporterPath    = "monitoring/prometheus-postgres-exporter"
	PostgresExporterPackage = "prometheus-postgres-exporter"
	// PostgresPassFile is the exporter's password file (libpq's .pgpass
	// format) on the monitoring host.
	PostgresPassFile = "/etc/prometheus/postgres-exporter.pgpass"
)

// PostgresTarget is the DSN the exporter is given for the server at
// addr (host:port): the app's user and database, the stack's sslmode,
// no password.
func PostgresTarget(db *schema.Database, addr string) string {
	return "postgresql://" + url.PathEscape(db.User) + "@" + addr + "/" + url.PathEscape(db.Name) + "?sslmode=" + db.SSLMode
}

// PostgresExporterArgs are the exporter's command-line arguments.
func PostgresExporterArgs() []string {
	return []string{"--web.listen-address=" + postgresAddr}
}

func renderPostgresExporter(s *schema.Stack, opt artifact.Options) []byte {
	db := s.Database
	var b strings.Builder
	b.WriteString(artifact.Header("#", s))
	b.WriteString("# postgres_exporter on the monitoring host (Debian 13: prometheus-postgres-exporter\n")
	b.WriteString("# 0.17), installed as /etc/default/prometheus-postgres-exporter, which its unit reads.\n")
	b.WriteString("# It listens on " + postgresAddr + " for Prometheus (job \"postgres\"), which hands it each\n")
	b.WriteString("# server as a DSN without a password, " + PostgresTarget(db, "HOST:PORT") + ".\n")
	b.WriteString("# The password of " + db.User + " is read from PGPASSFILE. Provision it on the monitoring\n")
	b.WriteString("# host, one line *:*:*:" + db.User + ":<password> (a : or \\ in the password written \\: or \\\\),\n")
	b.WriteString("# readable by the exporter alone (paste the line, then press Ctrl-D), and restart it:\n")
	b.WriteString("#   install -D -m 0600 -o prometheus -g prometheus /dev/stdin " + PostgresPassFile + "\n")
	b.WriteString("# Until then every probe fails: pg_up is 0 and DatabaseDown fires.\n")
	b.WriteString("# No default server: every scrape names its target.\n")
	b.WriteString("DATA_SOURCE_NAME=''\n")
	b.WriteString("PGPASSFILE=" + opt.P(PostgresPassFile) + "\n")
	b.WriteString("ARGS=\"" + strings.Join(PostgresExporterArgs(), " ") + "\"\n")
	return []byte(b.String())
}
