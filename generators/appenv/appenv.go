// Package appenv renders the settings the app and its Celery workers read
// from their environment: where the database, its replicas, the cache and
// the broker are, pool sizes, TLS modes — everything but secrets. Each app
// and worker host gets etc/<app>/settings.env; app hosts also get a
// drop-in that adds it to the app's unit (the Celery units name it
// themselves).
//
// Why a second environment file next to app.environment_file: that one
// holds secrets and is provisioned on the host, never rendered; these
// settings come from the stack and belong in out/, where a pull request
// shows them. The drop-in is read after the unit, so for a name set in
// both files the stack's value wins: the stack is the truth for what it
// describes.
//
// Secrets stay out: every password is a *_PASSWORD_FILE naming a file on
// the host, which the app reads. URLs carry the user but never a
// password. The broker's is QUEUE_URL, not BROKER_URL: Celery reads a
// BROKER_URL from the environment by itself and would connect with it
// (no password) in place of the app's own broker_url. The file's own comments say how to provision
// the password files.
package appenv

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/pgbouncer"
	"github.com/hacompile/hacompile/generators/systemd"
	"github.com/hacompile/hacompile/internal/rules"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the app settings generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "appenv" }

// Path is the settings file on the host, without the leading slash.
func Path(app *schema.App) string { return "etc/" + app.Name + "/settings.env" }

// DropInPath is the app unit's drop-in that reads Path.
func DropInPath(app *schema.App) string {
	return "etc/systemd/system/" + systemd.UnitName(app) + ".d/hacompile-settings.conf"
}

// Needed reports whether the stack has settings to render: a database,
// cache or broker.
func Needed(s *schema.Stack) bool { return s.Database != nil || s.Cache != nil || s.Queue != nil }

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	if !Needed(s) {
		return nil, nil
	}
	vars, err := Vars(s)
	if err != nil {
		return nil, err
	}
	content, err := render(s, vars)
	if err != nil {
		return nil, err
	}
	envPath, err := systemd.PlainPath("app.name", opt.P("/"+Path(&s.App)))
	if err != nil {
		return nil, err
	}
	var u systemd.Unit
	u.Raw(artifact.Header("#", s))
	u.Comment("The stack's non-secret settings (database, cache, broker) for the app.",
		"Read after the unit's own EnvironmentFile=, so the stack's values win.")
	u.Section("Service")
	u.Set("EnvironmentFile", envPath)
	dropIn := u.Bytes()

	names := s.HostNames()
	files := make([]artifact.File, 0, 2*len(names))
	// The actions are alike on many hosts: made once each.
	validate := artifact.Run("systemd-analyze", "verify", "--man=no", opt.P("/"+systemd.UnitPath(&s.App)))
	reloadApp := artifact.DaemonReload().Then(artifact.Restart(systemd.UnitName(&s.App)))
	dropInPath, envFile := DropInPath(&s.App), Path(&s.App)
	restarts := map[string]artifact.Action{}
	for _, name := range names {
		if !opt.Renders(name) {
			continue
		}
		h := s.Hosts[name]
		// A worker host needs the settings of the app its Celery
		// workers run (with several apps, only that app's view has
		// workers).
		if !h.Has("app") && !(h.Has("worker") && s.Workers != nil) {
			continue
		}
		var restart []string
		if h.Has("app") {
			restart = append(restart, systemd.UnitName(&s.App))
			files = append(files, artifact.File{
				Host: name, Path: dropInPath, Content: dropIn, Mode: 0o644, Owner: "root:root",
				Validate: validate,
				Reload:   reloadApp,
			})
		}
		if h.Has("worker") && s.Workers != nil {
			restart = append(restart, s.App.Name+"-celery-worker.service")
			if s.BeatHost() == name {
				restart = append(restart, s.App.Name+"-celery-beat.service")
			}
		}
		// A process reads its environment once, at start: a HUP
		// (gunicorn's reload) keeps the old one.
		key := strings.Join(restart, " ")
		reload, ok := restarts[key]
		if !ok {
			reload = artifact.Restart(restart...)
			restarts[key] = reload
		}
		files = append(files, artifact.File{
			Host: name, Path: envFile, Content: content, Mode: 0o644, Owner: "root:root",
			Reload: reload,
		})
	}
	return files, nil
}

// Var is one setting.
type Var struct{ Name, Value string }

// safeValue is what a value may hold so that systemd's EnvironmentFile=
// parser and a POSIX shell (set -a; . settings.env) both read it as
// written, without quotes (a shell expands no pattern in an assignment,
// so ? is safe).
var safeValue = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./?-]*$`)

// Vars returns the settings, in the order they are written.
func Vars(s *schema.Stack) ([]Var, error) {
	var vs []Var
	add := func(name string, v any) { vs = append(vs, Var{name, fmt.Sprint(v)}) }
	if db := s.Database; db != nil {
		// With a pooler the app reaches the primary through its host's
		// PgBouncer on loopback, without TLS (PgBouncer speaks TLS to
		// the primary); the password is the same.
		host, port, sslmode := db.Host, db.Port, db.SSLMode
		if pgbouncer.Active(s) {
			host, port, sslmode = pgbouncer.Address, db.Pooler.Port, "disable"
		}
		add("DATABASE_ENGINE", db.Engine)
		add("DATABASE_HOST", host)
		add("DATABASE_PORT", port)
		// With several apps each asks PgBouncer for a pool of its own
		// by its alias (ClientName); the server's database is
		// DATABASE_SERVER_NAME.
		name := db.Name
		if pgbouncer.Active(s) {
			name = db.ClientName()
		}
		add("DATABASE_NAME", name)
		add("DATABASE_USER", db.User)
		add("DATABASE_PASSWORD_FILE", db.PasswordFile)
		add("DATABASE_SSLMODE", sslmode)
		add("DATABASE_URL", DatabaseURL(db.Engine, db.User, host, port, name, sslmode))
		if pgbouncer.Active(s) {
			add("DATABASE_POOLER", db.Pooler.Engine)
			add("DATABASE_POOL_MODE", db.Pooler.PoolMode)
			add("DATABASE_SERVER_HOST", db.Host)
			add("DATABASE_SERVER_PORT", db.Port)
			if name != db.Name {
				add("DATABASE_SERVER_NAME", db.Name)
			}
		}
		add("DATABASE_POOL_SIZE", db.PoolSize)
		add("DATABASE_MAX_OVERFLOW", db.MaxOverflow)
		if len(db.Replicas) > 0 {
			add("DATABASE_REPLICA_HOSTS", strings.Join(db.Replicas, ","))
		}
		switch {
		case db.ReadPool() && pgbouncer.Active(s):
			// The read pool goes through the host's PgBouncer too, to
			// its pool on the replicas (DATABASE_REPLICA_HOSTS are its
			// servers).
			rname := rules.ReplicaAlias(name)
			add("DATABASE_REPLICA_NAME", rname)
			add("DATABASE_REPLICA_URLS", DatabaseURL(db.Engine, db.User, host, port, rname, sslmode))
		case db.ReadPool():
			var urls []string
			for _, r := range db.Replicas {
				urls = append(urls, DatabaseURL(db.Engine, db.User, r, port, name, sslmode))
			}
			add("DATABASE_REPLICA_URLS", strings.Join(urls, ","))
		}
		if db.ReadPool() {
			add("DATABASE_REPLICA_POOL_SIZE", db.ReplicaPoolSize)
			add("DATABASE_REPLICA_MAX_OVERFLOW", db.ReplicaMaxOverflow)
		}
	}
	if c := s.Cache; c != nil {
		host := s.CacheEndpoint()
		if host == "" {
			return nil, artifact.Errorf("cache", "no cache.host and no host with the cache role to run it")
		}
		add("CACHE_ENGINE", c.Engine)
		add("CACHE_HOST", host)
		add("CACHE_PORT", c.Port)
		add("CACHE_URL", CacheURL(s))
		if c.PasswordFile != "" {
			add("CACHE_PASSWORD_FILE", c.PasswordFile)
		}
	}
	if q := s.Queue; q != nil {
		add("QUEUE_URL", BrokerURL(s))
		if q.TLS && q.TLSCAFile != "" {
			// The CA the self-hosted broker's certificate is checked
			// against, provisioned at this path on the app and worker
			// hosts too.
			add("QUEUE_CA_FILE", q.TLSCAFile)
		}
		if q.PasswordFile != "" {
			add("QUEUE_PASSWORD_FILE", q.PasswordFile)
		}
	}
	for _, v := range vs {
		if !safeValue.MatchString(v.Value) {
			// The settings' names say the stack section they come from.
			section, _, _ := strings.Cut(strings.ToLower(v.Name), "_")
			return nil, artifact.Errorf(section, "setting %s=%q: want only letters, digits and _@%%+=:,./?-", v.Name, v.Value)
		}
	}
	return vs, nil
}

// DatabaseURL is the database's URL without the password:
// postgresql://user@host:port/name?sslmode=MODE, or mysql://user@host:port/name.
func DatabaseURL(engine, user, host string, port int, name, sslmode string) string {
	if engine == "mysql" {
		return "mysql://" + url.PathEscape(user) + "@" + hostPort(host, port) + "/" + url.PathEscape(name)
	}
	return "postgresql://" + url.PathEscape(user) + "@" + hostPort(host, port) + "/" + url.PathEscape(name) + "?sslmode=" + sslmode
}

// CacheURL is the cache's URL without credentials: redis:// (rediss://
// with TLS) with the database number, or memcached://host:port.
func CacheURL(s *schema.Stack) string {
	c := s.Cache
	hp := hostPort(s.CacheEndpoint(), c.Port)
	if c.Engine == "memcached" {
		return "memcached://" + hp
	}
	scheme := "redis"
	if c.TLS {
		scheme = "rediss"
	}
	return fmt.Sprintf("%s://%s/%d", scheme, hp, c.DB)
}

// BrokerURL is the broker's URL in kombu's form, with the user and never
// the password: amqp://user@host:port/vhost (amqps with TLS), or
// redis://host:port/db (rediss).
func BrokerURL(s *schema.Stack) string {
	q := s.Queue
	hp := hostPort(s.QueueEndpoint(), q.Port)
	if q.Engine == "redis" {
		scheme := "redis"
		if q.TLS {
			scheme = "rediss"
		}
		return fmt.Sprintf("%s://%s/%d", scheme, hp, q.DB)
	}
	scheme := "amqp"
	if q.TLS {
		scheme = "amqps"
	}
	// The vhost is one path segment: "/" is written %2F.
	return scheme + "://" + url.PathEscape(q.User) + "@" + hp + "/" + url.PathEscape(q.VHost)
}

func hostPort(host string, port int) string { return host + ":" + strconv.Itoa(port) }

func render(s *schema.Stack, vars []Var) ([]byte, error) {
	var b strings.Builder
	b.WriteString(artifact.Header("#", s))
	app := &s.App
	fmt.Fprintf(&b, "# Settings the %s app and its Celery workers read from their environment.\n", app.Name)
	b.WriteString("# Nothing here is secret. Secrets live in " + app.EnvironmentFile + " and in the\n")
	b.WriteString("# *_PASSWORD_FILE files, which the app reads the passwords from. URLs carry\n")
	b.WriteString("# no password: the app adds the one from its file.\n")
	var pwFiles []string
	for _, v := range vars {
		if strings.HasSuffix(v.Name, "_PASSWORD_FILE") {
			pwFiles = append(pwFiles, v.Value)
		}
	}
	slices.Sort(pwFiles)
	pwFiles = slices.Compact(pwFiles)
	if len(pwFiles) > 0 {
		b.WriteString("#\n# Provision each password file on this host before starting the app, readable\n")
		fmt.Fprintf(&b, "# by the app's user (%s) alone; paste the password, then press Ctrl-D:\n", app.User)
		for _, p := range pwFiles {
			fmt.Fprintf(&b, "#   install -D -m 0600 -o %s -g root /dev/stdin %s\n", app.User, p)
		}
	}
	b.WriteString("\n")
	for _, v := range vars {
		b.WriteString(v.Name + "=" + v.Value + "\n")
	}
	return []byte(b.String()), nil
}

// Reads implements artifact.Scoper: the settings of app and worker hosts
// name the first cache and queue host when the stack names none, and a
// worker's reloads follow which worker runs beat (the first, unless the
// stack names one).
func (Gen) Reads(s *schema.Stack, h *schema.Host) []string {
	if h.Has("app") || h.Has("worker") {
		return cacheQueueWorker
	}
	return nil
}

var cacheQueueWorker = []string{"cache", "queue", "worker"}

// ReadsSettings implements artifact.SettingsReader: the stack settings its
// files are made from (TestRenderChangedSettingsMatchesRender checks them).
func (Gen) ReadsSettings() []string { return []string{"app", "cache", "database", "queue", "workers"} }
