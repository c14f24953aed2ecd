// Package systemd renders the units that keep the app server running on
// every app host (gunicorn for Python, Starman for Perl), and an nginx
// drop-in raising its open-files limit wherever nginx runs.
//
// Decisions, and why:
//
//   - One service per app, no socket unit. systemd socket activation would
//     keep the socket open across restarts, but only gunicorn understands
//     LISTEN_FDS; Starman (Net::Server) does not. One mechanism for both
//     runtimes keeps the runbook and the nginx side identical, and keeps
//     gunicorn.conf.py's bind and backlog the truth gunicorn --check-config
//     and --print-config see. Config changes never need a restart anyway:
//     both servers reload on SIGHUP without closing their listener.
//   - The socket's directory is RuntimeDirectory=: systemd creates
//     /run/<dir> before start, owned by User:Group (the app user and
//     www-data) with mode 0750, and removes it on stop, so a stale socket
//     never survives. The socket itself is created 0770 (gunicorn's umask
//     setting, Starman's UMask=0007), so nginx, running as www-data, can
//     connect and nobody else can. That needs app.group to be www-data;
//     any other group is an error rather than a unit nginx cannot use.
//   - gunicorn runs as Type=notify: since 20.0 its arbiter sends READY=1
//     to $NOTIFY_SOCKET once the listeners are bound (Debian 12's
//     20.1.0: gunicorn/arbiter.py, systemd.sd_notify), so "started" means
//     nginx can connect. Starman has no readiness protocol: Type=exec at
//     least makes a failed exec fail the start.
//   - Graceful stop: gunicorn drains on SIGTERM within graceful_timeout;
//     Starman drains on SIGQUIT (its SIGTERM kills workers mid-request),
//     so its KillSignal is SIGQUIT. KillMode=mixed signals only the master
//     and leaves the workers to it; TimeoutStopSec is graceful_timeout + 5 s,
//     after which systemd kills whatever is left.
//   - EnvironmentFile= has no "-": the file holds the secrets (database
//     URL, keys) provisioned on the host; an app host without it must fail
//     to start, loudly, rather than serve with defaults.
//   - Sandboxing follows what a Django/Flask/PSGI app does: it reads its
//     code and virtualenv, writes uploads (static dirs served at /media/,
//     made writable with ReadWritePaths=) and temporary files (PrivateTmp),
//     logs to the journal, and talks TCP to its database and cache.
//     Everything else is read-only (ProtectSystem=strict) or hidden, and
//     no capabilities are kept. MemoryDenyWriteExecute= and ProcSubset=
//     are left out: they break cffi/ctypes callbacks and psutil.
//
// Paths the stack chooses move with Options.Root; the distribution's own
// binaries (/usr/bin/starman, /bin/kill, /usr/bin/gunicorn) do not, since
// the sandbox exists to run the real tools against the rendered files.
package systemd

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/gunicorn"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the systemd generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "systemd" }

// NginxDropIn is the path of the nginx drop-in on the host.
const NginxDropIn = "etc/systemd/system/nginx.service.d/hacompile.conf"

// NginxGroup is the group Debian's nginx runs as; it must be able to
// reach the app's socket.
const NginxGroup = "www-data"

// StarmanBinary is Debian's starman.
const StarmanBinary = "/usr/bin/starman"

// UnitName is the app's service unit.
func UnitName(app *schema.App) string { return app.Name + ".service" }

// UnitPath is the app unit's path on the host, without the leading slash.
func UnitPath(app *schema.App) string { return "etc/systemd/system/" + UnitName(app) }

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	names := s.HostNames()
	files := make([]artifact.File, 0, 2*len(names))
	unit, unitPath := UnitName(&s.App), UnitPath(&s.App)
	validate := artifact.Run("systemd-analyze", "verify", "--man=no", opt.P("/"+UnitPath(&s.App)))
	// A changed unit applies only on restart; enable makes the app
	// come back after a reboot.
	reload := artifact.DaemonReload().Then(artifact.Enable(unit), artifact.Restart(unit))
	// Only Starman's unit depends on the host (its worker count): any
	// other server's is rendered for the first app host and its bytes
	// shared by the others (capped: nothing appends into them).
	var same []byte
	for _, h := range s.HostsWithRole("app") {
		if !opt.Renders(h.Name) {
			continue
		}
		content := same
		if content == nil {
			c, err := appUnit(s, h, opt)
			if err != nil {
				return nil, artifact.InHost(h.Name, err)
			}
			content = c[:len(c):len(c)]
			if s.App.Server != "starman" {
				same = content
			}
		}
		files = append(files, artifact.File{
			Host: h.Name, Path: unitPath, Content: content, Mode: 0o644, Owner: "root:root",
			Validate: validate, Reload: reload,
		})
	}
	dropIn := nginxDropIn(s)
	validate = artifact.Run("systemd-analyze", "verify", "--man=no", "nginx.service")
	// LimitNOFILE= is applied when nginx starts; a reload keeps the old
	// master and its limit.
	reload = artifact.DaemonReload().Then(artifact.Restart("nginx.service"))
	for _, name := range names {
		if !opt.Renders(name) {
			continue
		}
		h := s.Hosts[name]
		if !h.Has("app") && !(h.Has("lb") && s.Balancer.Kind == "nginx") {
			continue
		}
		files = append(files, artifact.File{
			Host: name, Path: NginxDropIn, Content: dropIn, Mode: 0o644, Owner: "root:root",
			Validate: validate, Reload: reload,
		})
	}
	return files, nil
}

func nginxDropIn(s *schema.Stack) []byte {
	var u unit
	u.b.Grow(2048)
	u.raw(artifact.Header("#", s))
	u.comment("The open-files limit of nginx's master process; its workers raise theirs",
		"with worker_rlimit_nofile in nginx.conf. systemd applies it when nginx",
		"starts: a reload keeps the old limit, so changing it restarts nginx.")
	u.section("Service")
	u.set("LimitNOFILE", fmt.Sprint(s.Tuning.Nofile))
	b := u.bytes()
	return b[:len(b):len(b)] // every nginx host's
}

// plainPath accepts the paths the schema allows (#Path): written bare in
// a unit, they need no quoting or escaping. The sandbox root could break
// that, so it is checked rather than assumed.
var plainPath = regexp.MustCompile(`^(/[A-Za-z0-9._@+-]+)+/?$`)

func checkPath(field, p string) (string, error) {
	if !plainPath.MatchString(p) {
		return "", artifact.Errorf(field, "%q: want an absolute path of letters, digits and ._@+-", p)
	}
	return p, nil
}

// runtimeDir is the RuntimeDirectory= (relative to /run) holding the
// socket, or an error when systemd cannot create it for the app.
func runtimeDir(socket string) (string, error) {
	rel, ok := strings.CutPrefix(socket, "/run/")
	if !ok {
		rel, ok = strings.CutPrefix(socket, "/var/run/")
	}
	i := strings.LastIndexByte(rel, '/')
	if !ok || i <= 0 {
		return "", artifact.Errorf("app.bind.socket", "%q: want a path in a directory of its own under /run (like /run/<app>/<server>.sock), "+
			"which systemd creates for the app and nginx can reach (/tmp is private to the service)", socket)
	}
	return rel[:i], nil
}

// underHome reports whether p is under a directory ProtectHome=yes hides.
func underHome(p string) bool {
	for _, d := range []string{"/home", "/root", "/run/user"} {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

func appUnit(s *schema.Stack, h *schema.Host, opt artifact.Options) ([]byte, error) {
	app := &s.App
	var argv []string
	var what string
	switch app.Server {
	case "gunicorn":
		argv = []string{gunicorn.Binary(app, opt), "--config", opt.P("/" + gunicorn.ConfigPath(app)), app.Module}
		what = "gunicorn " + app.Module
	case "starman":
		var err error
		if argv, err = starmanArgv(app, h, opt); err != nil {
			return nil, err
		}
		what = "Starman " + app.PSGI
	default:
		return nil, artifact.Errorf("app.server", "%q: no unit for this server", app.Server)
	}
	execStart, err := ExecLine(argv...)
	if err != nil {
		return nil, err
	}
	workDir, err := checkPath("app.working_dir", opt.P(app.WorkingDir))
	if err != nil {
		return nil, err
	}
	envFile, err := checkPath("app.environment_file", opt.P(app.EnvironmentFile))
	if err != nil {
		return nil, err
	}
	var writable []string
	for i, st := range app.Static {
		if st.URL == "/media/" {
			p, err := checkPath(schema.IndexPath("app.static", i)+".dir", opt.P(st.Dir))
			if err != nil {
				return nil, err
			}
			writable = append(writable, p)
		}
	}
	slices.Sort(writable)
	writable = slices.Compact(writable)

	home := false
	for _, p := range append([]string{app.WorkingDir, app.Virtualenv, app.PSGI, app.EnvironmentFile}, app.Lib...) {
		home = home || underHome(p)
	}
	for _, st := range app.Static {
		home = home || underHome(st.Dir)
	}

	var u unit
	u.b.Grow(2048)
	u.raw(artifact.Header("#", s))
	u.section("Unit")
	u.set("Description", specEscape(app.Name+" ("+what+")"))
	u.comment("The app connects to its database and cache as it starts.")
	u.set("Wants", "network-online.target")
	u.set("After", "network-online.target")

	u.section("Service")
	if app.Server == "gunicorn" {
		u.comment("gunicorn's arbiter sends READY=1 once its listeners are bound.")
		u.set("Type", "notify")
	} else {
		u.comment("Starman cannot report readiness; exec at least fails the start if it cannot run.")
		u.set("Type", "exec")
	}
	u.set("User", app.User)
	u.set("Group", app.Group)
	u.set("WorkingDirectory", workDir)
	u.comment("Secrets and settings, provisioned on the host and never in the stack. No",
		"\"-\": a host without them must fail to start, not serve with defaults.",
		"systemd reads it as root, so it can be mode 0600 root:root.")
	u.set("EnvironmentFile", envFile)
	if app.Server == "starman" {
		u.comment("No --daemonize or --pid: systemd supervises the master. Starman has no",
			"worker timeout (nginx's proxy_read_timeout bounds a request) and no",
			"max_requests_jitter. Keep-alive is off: a pre-forked worker waiting on an",
			"idle pooled connection serves nobody else.")
		if app.MaxRequests == 0 {
			u.comment("max_requests 0: Starman cannot disable recycling, so the limit is unreachable.")
		}
	}
	u.set("ExecStart", execStart)
	if app.Server == "gunicorn" {
		u.comment("HUP: gunicorn re-reads gunicorn.conf.py, starts new workers and stops the",
			"old ones gracefully; the listening socket stays open.")
	} else {
		u.comment("HUP: each Starman worker exits after its current request and is replaced,",
			"loading the app afresh; the listening socket stays open.")
	}
	u.set("ExecReload", "/bin/kill -s HUP $MAINPID")
	if app.Server == "starman" {
		u.comment("QUIT is Starman's graceful shutdown; TERM would cut requests off.")
		u.set("KillSignal", "SIGQUIT")
	}
	u.comment("Stop signals the master only; it drains its workers within",
		fmt.Sprintf("graceful_timeout (%d s), then systemd kills what is left.", app.GracefulTimeout))
	u.set("KillMode", "mixed")
	u.set("TimeoutStopSec", fmt.Sprintf("%ds", app.GracefulTimeout+5))
	u.set("Restart", "always")
	u.set("RestartSec", "5s")
	u.set("LimitNOFILE", fmt.Sprint(s.Tuning.Nofile))

	umask := "0027"
	if app.Bind.Socket != "" {
		if app.Group != NginxGroup {
			return nil, artifact.Errorf("app.group", "is %q, but nginx runs as %s and must reach the socket %s: set app.group to %q or bind to a port",
				app.Group, NginxGroup, app.Bind.Socket, NginxGroup)
		}
		dir, err := runtimeDir(app.Bind.Socket)
		if err != nil {
			return nil, err
		}
		u.comment(fmt.Sprintf("/run/%s holds the socket: created before start as %s:%s 0750, so", dir, app.User, app.Group),
			"nginx (www-data) can reach it, and removed on stop.")
		u.set("RuntimeDirectory", dir)
		u.set("RuntimeDirectoryMode", "0750")
		if app.Server == "starman" {
			u.comment("Starman creates its socket with the process umask: srwxrwx---.")
			umask = "0007"
		}
	}
	u.set("UMask", umask)

	u.comment("Sandbox: the app reads its code, writes only uploads and private /tmp.")
	sandbox(&u, writable, home, app.User, app.Group)
	if app.Bind.Port != 0 && app.Bind.Port < 1024 {
		u.comment(fmt.Sprintf("Port %d is privileged: keep only the right to bind it.", app.Bind.Port))
		u.set("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE")
		u.set("AmbientCapabilities", "CAP_NET_BIND_SERVICE")
	} else {
		u.set("CapabilityBoundingSet", "")
	}

	u.section("Install")
	u.set("WantedBy", "multi-user.target")
	return u.bytes(), nil
}

// sandbox writes the confinement every app-code unit shares (the app,
// Celery workers and beat): no new privileges, private /tmp and devices,
// a read-only system except the writable paths, hidden or read-only
// homes, kernel and control-group protections, the @system-service
// system calls and the address families a web app uses. Capabilities
// are the caller's: they differ by unit.
func sandbox(u *unit, writable []string, home bool, user, group string) {
	u.set("NoNewPrivileges", "yes")
	u.set("PrivateTmp", "yes")
	u.set("PrivateDevices", "yes")
	u.set("PrivateMounts", "yes")
	u.set("ProtectSystem", "strict")
	if len(writable) > 0 {
		u.comment("Uploaded media, created before start (\"+\": outside the sandbox) so a new host",
			"starts; \"-\" lets that first command's sandbox be set up while it is still missing.")
		u.set("ExecStartPre", "+/usr/bin/install -d -o "+user+" -g "+group+" -m 0750 "+strings.Join(writable, " "))
		u.set("ReadWritePaths", "-"+strings.Join(writable, " -"))
	}
	if home {
		u.comment("The app lives under a home directory: keep homes visible, read-only.")
		u.set("ProtectHome", "read-only")
	} else {
		u.set("ProtectHome", "yes")
	}
	for _, k := range []string{
		"ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
		"ProtectControlGroups", "ProtectClock", "ProtectHostname",
		"RestrictSUIDSGID", "RestrictRealtime", "RestrictNamespaces", "LockPersonality",
	} {
		u.set(k, "yes")
	}
	u.set("ProtectProc", "invisible")
	u.set("SystemCallArchitectures", "native")
	u.set("SystemCallFilter", "@system-service")
	u.set("SystemCallErrorNumber", "EPERM")
	u.comment("AF_NETLINK: glibc's getaddrinfo() asks the kernel for the host's addresses.")
	u.set("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK")
}

// starmanMaxRequests stands for "never recycle": Starman reads 0 as its
// default of 1000.
const starmanMaxRequests = 1 << 31

func starmanArgv(app *schema.App, h *schema.Host, opt artifact.Options) ([]string, error) {
	var listen string
	switch {
	case app.Bind.Socket != "":
		listen = opt.P(app.Bind.Socket)
	case app.Bind.Port != 0:
		listen = fmt.Sprintf("127.0.0.1:%d", app.Bind.Port)
	default:
		return nil, artifact.Errorf("app.bind", "has neither a socket nor a port")
	}
	maxRequests := app.MaxRequests
	if maxRequests == 0 {
		maxRequests = starmanMaxRequests
	}
	argv := []string{
		StarmanBinary,
		"--listen", listen,
		"--workers", fmt.Sprint(app.Workers.For(h)),
		"--backlog", fmt.Sprint(app.Backlog),
		"--max-requests", fmt.Sprint(maxRequests),
		"--disable-keepalive",
	}
	for _, l := range app.Lib {
		argv = append(argv, "-I"+opt.P(l))
	}
	return append(argv, opt.P(app.PSGI)), nil
}

// Reads implements artifact.Scoper: no other host's record reaches its
// files (a host's units are made from the host alone).
func (Gen) Reads(*schema.Stack, *schema.Host) []string { return nil }

// ReadsSettings implements artifact.SettingsReader: the stack settings its
// files are made from (TestRenderChangedSettingsMatchesRender checks them).
func (Gen) ReadsSettings() []string { return []string{"app", "balancer", "tuning"} }
