// Package gunicorn renders /etc/<app>/gunicorn.conf.py on every app host
// of a Python stack. The file is plain Python that gunicorn executes at
// start and again on SIGHUP, so "systemctl reload" applies a change to it
// without dropping the listening socket.
//
// What the seeds got wrong and this package does not: the file never
// binds 0.0.0.0 (the app server is reached only by the nginx on its own
// host, over a unix socket or loopback), logs go to stdout/stderr and from
// there to the journal, and nothing secret is written here: secrets reach
// the app through systemd's EnvironmentFile= (see generators/systemd).
// The WSGI module is not in the file either; it is on the ExecStart line,
// so the unit shows what runs.
package gunicorn

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the gunicorn generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "gunicorn" }

// ConfigPath is the configuration file's path on the host, without the
// leading slash (as in artifact.File.Path).
func ConfigPath(app *schema.App) string { return "etc/" + app.Name + "/gunicorn.conf.py" }

// Binary is the absolute path of the gunicorn executable on the host: the
// virtualenv's when the app has one, else Debian's /usr/bin/gunicorn. The
// virtualenv is part of the stack and moves with the sandbox root; the
// distribution's binary does not, since the sandbox exists to run the
// real tools.
func Binary(app *schema.App, opt artifact.Options) string {
	if app.Virtualenv != "" {
		return opt.P(strings.TrimRight(app.Virtualenv, "/") + "/bin/gunicorn")
	}
	return "/usr/bin/gunicorn"
}

// SocketUmask is the umask gunicorn applies while creating its unix
// socket: the socket comes out srwxrwx---, owned by the app user and the
// app group (www-data), so the host's nginx can connect and no other
// local user can.
const SocketUmask = 0o007

// WorkerClass maps the stack's worker_class to gunicorn's setting.
func WorkerClass(wc string) string {
	if wc == "uvicorn" {
		return "uvicorn.workers.UvicornWorker"
	}
	return wc
}

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	if s.App.Runtime != "python" {
		return nil, nil
	}
	app := &s.App
	hosts := s.HostsWithRole("app")
	files := make([]artifact.File, 0, len(hosts))
	// What every host's file shares is made once; each host's is
	// rendered into one buffer and copied out at its length.
	path, validate, reload := ConfigPath(app), Validate(app, opt), artifact.ReloadUnit(app.Name+".service")
	var b bytes.Buffer
	for _, h := range hosts {
		if !opt.Renders(h.Name) {
			continue
		}
		b.Reset()
		if err := render(&b, s, h, opt); err != nil {
			return nil, artifact.InHost(h.Name, err)
		}
		files = append(files, artifact.File{
			Host:    h.Name,
			Path:    path,
			Content: bytes.Clone(b.Bytes()),
			Mode:    0o644,
			Owner:   "root:root",
			// --check-config executes the file and imports the app
			// (after chdir), as a start would, without binding: as the
			// app's user, since the code is the app's (root would run
			// what that user can write), writing no bytecode beside it.
			Validate: validate,
			Reload:   reload,
		})
	}
	return files, nil
}

// Validate is the command that checks gunicorn.conf.py and imports the
// app, as the app's user.
func Validate(app *schema.App, opt artifact.Options) artifact.Action {
	return artifact.Run("runuser", "-u", app.User, "--", "env", "PYTHONDONTWRITEBYTECODE=1",
		Binary(app, opt), "--check-config", "--config", opt.P("/"+ConfigPath(app)), app.Module)
}

// render writes host h's gunicorn.conf.py to b.
func render(b *bytes.Buffer, s *schema.Stack, h *schema.Host, opt artifact.Options) error {
	app := &s.App
	b.WriteString(artifact.Header("#", s))
	b.WriteString("# gunicorn settings for " + app.Name + " on " + h.Name + ". gunicorn reads this file at start and\n")
	b.WriteString("# again on SIGHUP (systemctl reload), replacing its workers gracefully.\n")
	b.WriteString("# preload_app stays off, so a reload also picks up new application code.\n\n")

	set := func(name, value string) {
		b.WriteString(name)
		b.WriteString(" = ")
		b.WriteString(value)
		b.WriteByte('\n')
	}
	num := func(name string, n int) { set(name, strconv.Itoa(n)) }
	str := func(name, v string) { set(name, pyString(v)) }

	switch {
	case app.Bind.Socket != "":
		b.WriteString("# Only the nginx on this host talks to gunicorn.\n")
		set("bind", "["+pyString("unix:"+opt.P(app.Bind.Socket))+"]")
		fmt.Fprintf(b, "# Applied while creating the socket: srwxrwx--- %s:%s, so the group\n", app.User, app.Group)
		b.WriteString("# (nginx's www-data) can connect and other local users cannot.\n")
		set("umask", fmt.Sprintf("0o%03o", SocketUmask))
	case app.Bind.Port != 0:
		b.WriteString("# Loopback only: the nginx on this host is the one client.\n")
		set("bind", "["+pyString(fmt.Sprintf("127.0.0.1:%d", app.Bind.Port))+"]")
	default:
		return artifact.Errorf("app.bind", "has neither a socket nor a port")
	}
	b.WriteString("\n")

	workers := app.Workers.For(h)
	if app.Workers == 0 {
		fmt.Fprintf(b, "# workers \"auto\": 2 x %d cores + 1.\n", h.Cores)
	}
	num("workers", workers)
	str("worker_class", WorkerClass(app.WorkerClass))
	switch app.WorkerClass {
	case "gthread":
		num("threads", app.Threads)
	case "gevent", "uvicorn":
		b.WriteString("# Simultaneous clients per worker.\n")
		num("worker_connections", app.WorkerConnections)
	}
	b.WriteString("\n")

	num("timeout", app.Timeout)
	num("graceful_timeout", app.GracefulTimeout)
	if app.WorkerClass == "sync" {
		b.WriteString("# sync workers close every connection after one request; keepalive\n")
		b.WriteString("# applies if worker_class changes.\n")
	}
	num("keepalive", app.Keepalive)
	if app.MaxRequests == 0 {
		b.WriteString("# max_requests 0: workers are never recycled.\n")
	} else {
		b.WriteString("# Recycle workers to bound slow memory leaks; the jitter keeps them from\n")
		b.WriteString("# restarting all at once.\n")
	}
	num("max_requests", app.MaxRequests)
	num("max_requests_jitter", app.MaxRequestsJitter)
	b.WriteString("# Pending connections; the kernel caps it at net.core.somaxconn.\n")
	num("backlog", app.Backlog)
	b.WriteString("\n")

	str("chdir", opt.P(app.WorkingDir))
	str("proc_name", app.Name)
	b.WriteString("# The heartbeat file is fchmod()ed constantly; on a disk-backed /tmp that\n")
	b.WriteString("# can stall workers into timeouts, so keep it in memory.\n")
	str("worker_tmp_dir", "/dev/shm")
	b.WriteString("\n")

	b.WriteString("# stdout/stderr go to the journal under systemd.\n")
	str("accesslog", "-")
	str("errorlog", "-")
	str("loglevel", "info")
	b.WriteString("\n")

	b.WriteString("# Peers trusted to set X-Forwarded-Proto and friends (the nginx on this host).\n")
	if app.Bind.Socket != "" {
		b.WriteString("# gunicorn trusts unix-socket peers regardless; this applies if bind changes.\n")
	}
	str("forwarded_allow_ips", strings.Join(app.ForwardedAllowIPs, ","))
	b.WriteString("# proxy_allow_ips is left unset: it only matters with proxy_protocol,\n")
	b.WriteString("# which is off (nginx speaks plain HTTP to gunicorn).\n")
	return nil
}

// Reads implements artifact.Scoper: no other host's record reaches its
// files (a host's gunicorn.conf.py is made from the host alone).
func (Gen) Reads(*schema.Stack, *schema.Host) []string { return nil }

// ReadsSettings implements artifact.SettingsReader: the stack settings its
// files are made from (TestRenderChangedSettingsMatchesRender checks them).
func (Gen) ReadsSettings() []string { return []string{"app"} }
