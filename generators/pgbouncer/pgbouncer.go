// Package pgbouncer renders PgBouncer (Debian's pgbouncer) as a local
// pooler on each app and worker host when the stack has
// database.pooler: it listens on 127.0.0.1 alone, the app's settings
// (generators/appenv) point at it, and it keeps a few server connections
// to the primary that every process of the host shares.
//
// With several apps a host runs one PgBouncer for all of them, with a
// pool per app it runs on the stack's one database (rules.PoolerPools):
// each app's processes ask for the database of the app's name.
//
// Files per host:
//   - etc/pgbouncer/pgbouncer.ini: the primary (host, port, database,
//     server TLS per database.sslmode), pooling mode and limits; with a
//     read pool (database.replicas and replica_pool_size) a second
//     database, NAME_replica, on the replicas (round robin), which the
//     app's DATABASE_REPLICA_URLS names: its reads are pooled as its
//     writes are;
//   - with several apps, etc/pgbouncer/databases.ini, which the ini
//     includes: a [databases] entry per app with its pool_size and
//     max_db_connections (and APP_replica, as large, on the replicas),
//     so that resizing a pool is a reload;
//   - etc/pgbouncer/pg_hba.conf: the app's user from loopback with
//     SCRAM, to its database (each app's pool) and to the console's
//     statistics;
//   - etc/systemd/system/pgbouncer.service.d/hacompile.conf: the
//     open-files limit max_client_conn needs.
//
// The password is never rendered. PgBouncer reads it from its auth_file,
// UserlistPath, which the operator writes on the host from the app's own
// password file (the ini's comment gives the command); PgBouncer logs in
// to the primary with it and checks the app's SCRAM login against it.
// Debian's package ships the file empty: until it is provisioned
// PgBouncer runs and refuses logins, and a reload reads it.
package pgbouncer

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/systemd"
	"github.com/hacompile/hacompile/internal/rules"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the PgBouncer generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "pgbouncer" }

// Package is the Debian package, and Unit its service.
const (
	Package = "pgbouncer"
	Unit    = "pgbouncer.service"
)

// Paths on the host, without the leading slash, and the files the
// rendered ones name.
const (
	IniPath = "etc/pgbouncer/pgbouncer.ini"
	// DatabasesPath holds the apps' pools with several apps, which
	// pgbouncer.ini includes: a reload rereads it.
	DatabasesPath = "etc/pgbouncer/databases.ini"
	HBAPath       = "etc/pgbouncer/pg_hba.conf"
	DropInPath    = "etc/systemd/system/pgbouncer.service.d/hacompile.conf"
	UserlistPath  = "/etc/pgbouncer/userlist.txt"
	SocketDir     = "/var/run/postgresql"
	// CAFile is the system's CA bundle (Debian's ca-certificates), which
	// verify-ca and verify-full check the primary's certificate against;
	// a provider's private CA is added to it with update-ca-certificates.
	CAFile = "/etc/ssl/certs/ca-certificates.crt"
	// Admin is the user of the admin console (SHOW, RELOAD, PAUSE):
	// PgBouncer lets it in without a password over the Unix socket from
	// the account PgBouncer runs as (postgres on Debian), and no one else.
	Admin = "pgbouncer"
	// RunAs is the account Debian's pgbouncer.service runs as.
	RunAs = "postgres"
)

// ServerLoginRetry is the seconds PgBouncer waits after a server
// connection failed to open before it opens another, with a read pool
// on several replicas: its round robin does not skip a replica that
// does not answer, and the default 15 s held the whole pool to the
// connections it had.
const ServerLoginRetry = 1

// Address is where the app reaches its host's PgBouncer.
const Address = "127.0.0.1"

// Active reports whether the stack runs PgBouncer.
func Active(s *schema.Stack) bool {
	return s.Database != nil && s.Database.Pooler != nil && s.Database.Engine == "postgresql"
}

// Hosts are the hosts PgBouncer runs on: every app and worker host.
func Hosts(s *schema.Stack) []*schema.Host {
	var hs []*schema.Host
	for _, name := range s.HostNames() {
		if h := s.Hosts[name]; h.Has("app") || h.Has("worker") {
			hs = append(hs, h)
		}
	}
	return hs
}

// MaxDBConnections is the most server connections one host's PgBouncer
// opens to the primary: its pool and the reserve.
func MaxDBConnections(p *schema.Pooler) int { return p.DefaultPoolSize + p.ReservePoolSize }

// AllApps implements artifact.AllApps: a host runs one PgBouncer for
// every app on it, a pool per app.
func (Gen) AllApps() bool { return true }

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	if !Active(s) {
		return nil, nil
	}
	var u systemd.Unit
	u.Raw(artifact.Header("#", s))
	u.Comment("PgBouncer holds a descriptor per client and per server connection: the",
		"open-files limit covers max_client_conn. systemd applies it when PgBouncer",
		"starts, so changing it restarts PgBouncer.")
	u.Section("Service")
	u.Set("LimitNOFILE", strconv.Itoa(s.Tuning.Nofile))
	dropIn := u.Bytes()

	var files []artifact.File
	for _, h := range Hosts(s) {
		if !opt.Renders(h.Name) {
			continue
		}
		pools := rules.PoolerPools(s, h)
		if s.MultiApp() {
			// A pool resized (an app's processes on the host changed)
			// needs a reload, which keeps the other apps' connections.
			files = append(files, artifact.File{
				Host: h.Name, Path: DatabasesPath, Content: []byte(renderDatabases(s, pools)), Mode: 0o640, Owner: "postgres:postgres",
				Reload: artifact.ReloadUnit(Unit),
			})
		}
		files = append(files,
			artifact.File{
				Host: h.Name, Path: IniPath, Content: []byte(renderIni(s, h, opt)), Mode: 0o640, Owner: "postgres:postgres",
				// listen and TLS settings are read at start only.
				Reload: artifact.Restart(Unit),
			},
			artifact.File{
				Host: h.Name, Path: HBAPath, Content: []byte(renderHBA(s, pools)), Mode: 0o640, Owner: "postgres:postgres",
				Reload: artifact.ReloadUnit(Unit),
			},
			artifact.File{
				Host: h.Name, Path: DropInPath, Content: dropIn, Mode: 0o644, Owner: "root:root",
				Reload: artifact.DaemonReload().Then(artifact.Restart(Unit)),
			},
		)
	}
	return files, nil
}

// PasswordFile is the database password file on host h that PgBouncer's
// auth file is written from: the stack's, or with several apps the
// first app's on h (every app logs in as the one database.user, so each
// app's file holds the same password).
func PasswordFile(s *schema.Stack, h *schema.Host) string {
	if pools := rules.PoolerPools(s, h); s.MultiApp() && len(pools) > 0 {
		return s.ForApp(pools[0].App).Database.PasswordFile
	}
	return s.Database.PasswordFile
}

// ProvisionCommand is the operator's command that writes PgBouncer's
// auth file on host h from the app's password file there (PgBouncer
// doubles a " inside a quoted field).
func ProvisionCommand(s *schema.Stack, h *schema.Host) string {
	return fmt.Sprintf(`printf '"%%s" "%%s"\n' %s "$(sed 's/"/""/g' %s)" | install -m 0640 -o postgres -g postgres /dev/stdin %s && systemctl reload pgbouncer`,
		s.Database.User, PasswordFile(s, h), UserlistPath)
}

// appNames lists the pools' apps: "api and web".
func appNames(pools []rules.Pool) string {
	var ns []string
	for _, p := range pools {
		ns = append(ns, p.App.Name)
	}
	if len(ns) < 2 {
		return strings.Join(ns, "")
	}
	return strings.Join(ns[:len(ns)-1], ", ") + " and " + ns[len(ns)-1]
}

func renderIni(s *schema.Stack, h *schema.Host, opt artifact.Options) string {
	db, p := s.Database, s.Database.Pooler
	multi := s.MultiApp()
	var b strings.Builder
	b.WriteString(artifact.Header("#", s))
	if multi {
		fmt.Fprintf(&b, "# PgBouncer on this host, between its apps' processes and the primary %s:%d", db.Host, db.Port)
		if db.ReadPool() {
			fmt.Fprintf(&b, "\n# and the replicas (%s)", strings.Join(db.Replicas, ", "))
		}
		b.WriteString(".\n")
		fmt.Fprintf(&b, "# Each app connects to %s:%d (its settings.env) and asks for the database\n", Address, p.Port)
		fmt.Fprintf(&b, "# of its own name: its pool on %s, in /%s.\n", db.Name, DatabasesPath)
	} else {
		fmt.Fprintf(&b, "# PgBouncer on this host, between %s's processes and the primary %s:%d.\n", s.App.Name, db.Host, db.Port)
		fmt.Fprintf(&b, "# The app connects to %s:%d (settings.env); every process of the host\n", Address, p.Port)
		fmt.Fprintf(&b, "# shares at most %d server connections (default_pool_size %d + reserve_pool_size %d)",
			MaxDBConnections(p), p.DefaultPoolSize, p.ReservePoolSize)
		if db.ReadPool() {
			fmt.Fprintf(&b, "\n# to the primary, and as many to the replicas (%s).\n", strings.Join(db.Replicas, ", "))
		} else {
			b.WriteString(".\n")
		}
	}
	b.WriteString("#\n")
	pw := PasswordFile(s, h)
	fmt.Fprintf(&b, "# The password of %s is not here: PgBouncer reads it from %s,\n", db.User, UserlistPath)
	if multi {
		b.WriteString("# logs in to the primary with it and checks each app's login against it.\n")
		fmt.Fprintf(&b, "# Every app logs in as %s: write it from one app's password file on this\n", db.User)
		fmt.Fprintf(&b, "# host (%s), then reload:\n", pw)
	} else {
		b.WriteString("# logs in to the primary with it and checks the app's login against it.\n")
		fmt.Fprintf(&b, "# Write it from the app's password file on this host (%s), then reload:\n", pw)
	}
	b.WriteString("#   " + ProvisionCommand(s, h) + "\n")
	if multi {
		b.WriteString("# Until then PgBouncer runs and refuses the apps' logins.\n")
	} else {
		b.WriteString("# Until then PgBouncer runs and refuses the app's logins.\n")
	}
	b.WriteString("#\n")
	b.WriteString("# Admin console (SHOW POOLS, RELOAD, PAUSE) over the Unix socket, from the\n")
	fmt.Fprintf(&b, "# account PgBouncer runs as; the app's user may read the statistics (SHOW):\n")
	fmt.Fprintf(&b, "#   runuser -u %s -- psql -h %s -p %d -U %s pgbouncer\n", RunAs, SocketDir, p.Port, Admin)
	fmt.Fprintf(&b, "#   psql -h %s -p %d -U %s pgbouncer -c 'SHOW POOLS'\n", Address, p.Port, db.User)

	if !multi {
		b.WriteString("\n[databases]\n")
		fmt.Fprintf(&b, "%s = host=%s port=%d dbname=%s\n", db.Name, db.Host, db.Port, db.Name)
		if db.ReadPool() {
			b.WriteString(replicaComment(s))
			fmt.Fprintf(&b, "%s = %s\n", rules.ReplicaAlias(db.Name), replicaConn(db))
		}
	}

	b.WriteString("\n[pgbouncer]\n")
	set := func(k string, v any) { fmt.Fprintf(&b, "%s = %v\n", k, v) }
	set("listen_addr", Address)
	set("listen_port", p.Port)
	set("unix_socket_dir", opt.P(SocketDir))
	b.WriteString("# Logs go to the journal (stderr under systemd).\n")
	set("syslog", 0)
	if multi {
		b.WriteString("\n# Clients: the apps' user from loopback with SCRAM (pg_hba.conf), checked\n# against the auth file.\n")
	} else {
		b.WriteString("\n# Clients: the app's user from loopback with SCRAM (pg_hba.conf), checked\n# against the auth file.\n")
	}
	set("auth_type", "hba")
	set("auth_hba_file", opt.P("/"+HBAPath))
	set("auth_file", opt.P(UserlistPath))
	set("admin_users", Admin)
	set("stats_users", db.User)
	b.WriteString("# No TLS on loopback.\n")
	set("client_tls_sslmode", "disable")

	b.WriteString("\n# The primary, over TLS as database.sslmode says.\n")
	set("server_tls_sslmode", db.SSLMode)
	if db.SSLMode == "verify-ca" || db.SSLMode == "verify-full" {
		b.WriteString("# The primary's certificate is checked against the system's CAs; add a\n# provider's CA with update-ca-certificates.\n")
		set("server_tls_ca_file", opt.P(CAFile))
	}
	b.WriteString("\n# Pooling.\n")
	if p.PoolMode == "transaction" {
		b.WriteString("# transaction: a server connection serves one transaction at a time; session\n")
		b.WriteString("# state (SET, advisory locks, LISTEN, WITH HOLD cursors) does not outlive it.\n")
	} else {
		b.WriteString("# session: a server connection stays with a client until it disconnects.\n")
	}
	set("pool_mode", p.PoolMode)
	set("default_pool_size", p.DefaultPoolSize)
	set("reserve_pool_size", p.ReservePoolSize)
	set("reserve_pool_timeout", 5)
	if multi {
		b.WriteString("# Each pool's max_db_connections ([databases]) caps its server connections.\n")
	} else {
		if db.ReadPool() {
			fmt.Fprintf(&b, "# At most %d server connections from this host to the primary, and as many\n# to the replicas, whatever the clients ask.\n", MaxDBConnections(p))
		} else {
			fmt.Fprintf(&b, "# At most %d server connections from this host, whatever the clients ask.\n", MaxDBConnections(p))
		}
		set("max_db_connections", MaxDBConnections(p))
	}
	set("max_client_conn", p.MaxClientConn)
	if len(db.Replicas) > 1 && db.ReadPool() {
		b.WriteString("# A server connection that fails to open is tried again after\n")
		b.WriteString("# server_login_retry, on the next replica of the list: 1 s, not the default\n")
		b.WriteString("# 15 s in which no other opens, so that a lost replica's share of the read\n")
		b.WriteString("# pool moves to the others within seconds.\n")
		set("server_login_retry", ServerLoginRetry)
	}
	b.WriteString("# Drivers (psycopg, JDBC) send it at login; PgBouncer does not track it.\n")
	set("ignore_startup_parameters", "extra_float_digits")
	if multi {
		b.WriteString("\n# The apps' pools ([databases]), in a file of their own: a reload rereads it,\n")
		b.WriteString("# so resizing one app's pool does not restart PgBouncer under the others.\n")
		fmt.Fprintf(&b, "%%include %s\n", opt.P("/"+DatabasesPath))
	}
	return b.String()
}

// renderDatabases is the [databases] section of a host's PgBouncer
// with several apps: a pool per app on the stack's database.
func renderDatabases(s *schema.Stack, pools []rules.Pool) string {
	db, p := s.Database, s.Database.Pooler
	var b strings.Builder
	b.WriteString(artifact.Header("#", s))
	fmt.Fprintf(&b, "# The pools of this host's PgBouncer (/%s includes this file;\n", IniPath)
	b.WriteString("# a reload rereads it), for the processes of " + appNames(pools) + ": together at most\n")
	fmt.Fprintf(&b, "# %d server connections to the primary.\n", rules.PoolerServerConns(pools))
	fmt.Fprintf(&b, "# A pool per app on %s: default_pool_size %d server connections, or fewer\n", db.Name, p.DefaultPoolSize)
	b.WriteString("# when the app's processes on this host cannot use as many (processes ×\n")
	fmt.Fprintf(&b, "# (pool_size %d + max_overflow %d)); max_db_connections adds the reserve.\n", db.PoolSize, db.MaxOverflow)
	if db.ReadPool() {
		b.WriteString("# Each app's read pool, APP_replica, is sized so on the replicas, from its\n")
		fmt.Fprintf(&b, "# processes × (replica_pool_size %d + replica_max_overflow %d).\n", db.ReplicaPoolSize, db.ReplicaMaxOverflow)
	}
	b.WriteString("[databases]\n")
	for _, pl := range pools {
		fmt.Fprintf(&b, "# %s: %s × %d = %d client connections.\n", pl.Alias, pl.What, db.PoolSize+db.MaxOverflow, pl.Clients)
		fmt.Fprintf(&b, "%s = host=%s port=%d dbname=%s pool_size=%d max_db_connections=%d\n", pl.Alias, db.Host, db.Port, db.Name, pl.Size, pl.Max)
		if pl.ReplicaAlias != "" {
			fmt.Fprintf(&b, "# %s: %s × %d = %d client connections.\n", pl.ReplicaAlias, pl.What, db.ReplicaPoolSize+db.ReplicaMaxOverflow, pl.ReplicaClients)
			fmt.Fprintf(&b, "%s = %s pool_size=%d max_db_connections=%d\n", pl.ReplicaAlias, replicaConn(db), pl.ReplicaSize, pl.ReplicaMax)
		}
	}
	return b.String()
}

// replicaComment says what the replicas' entry of [databases] is.
func replicaComment(s *schema.Stack) string {
	db := s.Database
	c := fmt.Sprintf("# The replicas, for reads: the app's DATABASE_REPLICA_URLS asks for %s.\n", rules.ReplicaAlias(db.Name))
	if len(db.Replicas) > 1 {
		c += "# PgBouncer opens each server connection to the next host of the list in\n" +
			"# turn (server_login_retry below says what a lost one costs).\n"
	}
	return c
}

// replicaConn is the connection string of the pool on the replicas.
func replicaConn(db *schema.Database) string {
	return fmt.Sprintf("host=%s port=%d dbname=%s", strings.Join(db.Replicas, ","), db.Port, db.Name)
}

func renderHBA(s *schema.Stack, pools []rules.Pool) string {
	db := s.Database
	var b strings.Builder
	b.WriteString(artifact.Header("#", s))
	b.WriteString("# Who may log in to this host's PgBouncer (auth_type hba in pgbouncer.ini).\n")
	b.WriteString("# The admin console's own login over the Unix socket needs no line here.\n")
	b.WriteString("# TYPE  DATABASE  USER  ADDRESS  METHOD\n")
	if s.MultiApp() {
		b.WriteString("# Each app's pool, by the database name its processes ask for.\n")
	}
	for _, pl := range pools {
		fmt.Fprintf(&b, "host    %s  %s  %s/32  scram-sha-256\n", pl.Alias, db.User, Address)
		if pl.ReplicaAlias != "" {
			fmt.Fprintf(&b, "host    %s  %s  %s/32  scram-sha-256\n", pl.ReplicaAlias, db.User, Address)
		}
	}
	b.WriteString("# The console's statistics (stats_users), read-only.\n")
	fmt.Fprintf(&b, "host    pgbouncer  %s  %s/32  scram-sha-256\n", db.User, Address)
	return b.String()
}

// Reads implements artifact.Scoper: no other host's record reaches its
// files (a host's pooler is made from the host alone).
func (Gen) Reads(*schema.Stack, *schema.Host) []string { return nil }

// ReadsSettings implements artifact.SettingsReader: the stack settings its
// files are made from (TestRenderChangedSettingsMatchesRender checks them).
func (Gen) ReadsSettings() []string { return []string{"app", "apps", "database", "tuning"} }
