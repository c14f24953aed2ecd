package systemd

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/gunicorn"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// Note on User=/Group=: systemd-analyze verify (252) does not resolve
// them, so the stacks' users (shop, api, myapp) need not exist on the
// test machine, and verify's stderr is required to be empty as it is.

// stackSrc is a one-app-host stack with a balancer host; app holds the
// app fields beyond the common ones, balancer the balancer kind.
func stackSrc(balancer, app string) string {
	return `
name:   "t"
domain: "t.example.com"
tls: mode: "none"
hosts: {
	lb1:  {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.0.0.11", roles: ["app"], cores: 3, memory_mb: 2048}
}
balancer: {kind: "` + balancer + `", trusted_proxies: ["10.0.0.0/24"]}
tuning: nofile: 200000
monitoring: address: "10.0.0.2"
app: {
` + app + `
}
`
}

func generate(t *testing.T, s *schema.Stack, opt artifact.Options) []artifact.File {
	t.Helper()
	files, err := Gen{}.Generate(s, opt)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	again, err := Gen{}.Generate(s, opt)
	if err != nil {
		t.Fatalf("Generate again: %v", err)
	}
	if len(files) != len(again) {
		t.Fatalf("Generate returned %d files, then %d", len(files), len(again))
	}
	for i := range files {
		a, b := files[i], again[i]
		if a.Host != b.Host || a.Path != b.Path || !bytes.Equal(a.Content, b.Content) || a.Validate.String() != b.Validate.String() || a.Reload.String() != b.Reload.String() {
			t.Fatalf("Generate is not deterministic for %s:%s", a.Host, a.Path)
		}
	}
	return files
}

// hostFiles returns a host's files by path.
func hostFiles(files []artifact.File, host string) map[string]artifact.File {
	m := map[string]artifact.File{}
	for _, f := range files {
		if f.Host == host {
			m[f.Path] = f
		}
	}
	return m
}

// writeFiles lays the host's files out under root, as push would on /,
// plus what the app unit needs to verify: a virtualenv's gunicorn.
func writeFiles(t *testing.T, root string, s *schema.Stack, files map[string]artifact.File) {
	t.Helper()
	for p, f := range files {
		mustWrite(t, filepath.Join(root, p), f.Content)
	}
	if s.App.Virtualenv != "" {
		bin := gunicorn.Binary(&s.App, artifact.Options{Root: root})
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(testtool.Require(t, "gunicorn", "gunicorn"), bin); err != nil {
			t.Fatal(err)
		}
	}
}

func mustWrite(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// unitWant is what systemd must read from an app unit; ROOT stands for
// the sandbox root.
type unitWant struct {
	typ, killSignal, umask   string
	execStart                []string
	runtimeDir               string // "" for none
	readWrite                string // "" for none
	protectHome, capBounding string
}

func (w unitWant) root(root string) unitWant {
	r := func(s string) string { return strings.ReplaceAll(s, "ROOT", root) }
	w.readWrite = r(w.readWrite)
	w.execStart = slices.Clone(w.execStart)
	for i := range w.execStart {
		w.execStart[i] = r(w.execStart[i])
	}
	return w
}

// checkAppUnit puts one rendered app unit in front of systemd: verify
// (the file's own Validate command) must be silent, systemd's loaded
// view of the unit must say what the stack asks for, and
// systemd-analyze security must find the sandbox in place.
func checkAppUnit(t *testing.T, s *schema.Stack, root string, f artifact.File, want unitWant) unitDump {
	t.Helper()
	app := &s.App
	opt := artifact.Options{Root: root}
	verify(t, nil, f.Validate.String())
	d := dump(t, filepath.Join(root, "etc/systemd/system"), UnitName(app))
	eq := func(key, want string) {
		t.Helper()
		if got := d.value(t, key); got != want {
			t.Errorf("systemd reads %s: %q, want %q", key, got, want)
		}
	}
	eq("Fragment Path", filepath.Join(root, f.Path))
	eq("Type", want.typ)
	eq("User", app.User)
	eq("Group", app.Group)
	eq("WorkingDirectory", opt.P(app.WorkingDir))
	eq("EnvironmentFile", opt.P(app.EnvironmentFile))
	eq("LimitNOFILE", strconv.Itoa(s.Tuning.Nofile))
	eq("LimitNOFILESoft", strconv.Itoa(s.Tuning.Nofile))
	eq("KillMode", "mixed")
	eq("KillSignal", want.killSignal)
	eq("TimeoutStopSec", fmt.Sprintf("%ds", app.GracefulTimeout+5))
	eq("Restart", "always")
	eq("RestartSec", "5s")
	eq("UMask", want.umask)
	eq("PrivateTmp", "yes")
	eq("PrivateDevices", "yes")
	eq("ProtectSystem", "strict")
	eq("ProtectHome", want.protectHome)
	eq("ProtectKernelTunables", "yes")
	eq("ProtectControlGroups", "yes")
	eq("RestrictSUIDSGID", "yes")
	eq("LockPersonality", "yes")
	eq("SystemCallArchitectures", "native")
	eq("CapabilityBoundingSet", want.capBounding)
	if want.runtimeDir != "" {
		eq("RuntimeDirectory", want.runtimeDir)
		eq("RuntimeDirectoryMode", "0750")
	} else if got := d.values("RuntimeDirectory"); len(got) != 0 {
		t.Errorf("RuntimeDirectory %q without a socket", got)
	}
	if got := d.values("ReadWritePaths"); want.readWrite == "" && len(got) != 0 || want.readWrite != "" && !slices.Equal(got, []string{want.readWrite}) {
		t.Errorf("systemd reads ReadWritePaths %q, want %q", got, want.readWrite)
	}
	if got := d.commands(t, "ExecStart"); len(got) != 1 || !slices.Equal(got[0], want.execStart) {
		t.Errorf("systemd reads ExecStart as %q, want %q", got, want.execStart)
	}
	// Stored before expansion: systemd substitutes the master's PID.
	if got := d.commands(t, "ExecReload"); len(got) != 1 || !slices.Equal(got[0], []string{"/bin/kill", "-s", "HUP", "$MAINPID"}) {
		t.Errorf("systemd reads ExecReload as %q", got)
	}

	checks := []string{
		"NoNewPrivileges=", "PrivateTmp=", "PrivateDevices=", "PrivateMounts=", "ProtectSystem=",
		"ProtectKernelTunables=", "ProtectKernelModules=", "ProtectKernelLogs=", "ProtectControlGroups=",
		"ProtectClock=", "ProtectHostname=", "ProtectProc=", "RestrictSUIDSGID=", "RestrictRealtime=",
		"RestrictNamespaces=~user", "RestrictNamespaces=~mnt", "RestrictNamespaces=~net", "LockPersonality=",
		"SystemCallArchitectures=", "SystemCallFilter=~@mount", "SystemCallFilter=~@module",
		"SystemCallFilter=~@raw-io", "SystemCallFilter=~@reboot", "SystemCallFilter=~@swap",
		"RestrictAddressFamilies=~AF_PACKET", "RestrictAddressFamilies=~…", "User=/DynamicUser=",
		"CapabilityBoundingSet=~CAP_SYS_ADMIN", "CapabilityBoundingSet=~CAP_SET(UID|GID|PCAP)",
		"CapabilityBoundingSet=~CAP_(DAC_*|FOWNER|IPC_OWNER)", "CapabilityBoundingSet=~CAP_NET_ADMIN",
	}
	if want.protectHome == "yes" {
		checks = append(checks, "ProtectHome=")
	}
	if want.capBounding == "" {
		checks = append(checks, "AmbientCapabilities=", "CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW)")
	}
	// 20 on systemd's 0-100 scale is the top of its "OK" band.
	security(t, filepath.Join(root, f.Path), 20, checks)

	// [Install]: enabling (part of the Reload action) must hook the unit
	// into multi-user.target, so the app comes back after a reboot.
	systemctl := testtool.Require(t, "systemctl", "systemd")
	if out, err := exec.Command(systemctl, "--root="+root, "enable", UnitName(app)).CombinedOutput(); err != nil {
		t.Errorf("systemctl --root enable: %v\n%s", err, out)
	}
	link := filepath.Join(root, "etc/systemd/system/multi-user.target.wants", UnitName(app))
	if dest, err := os.Readlink(link); err != nil || dest != "/"+f.Path {
		t.Errorf("enable made %s -> %q (%v), want -> /%s", link, dest, err, f.Path)
	}
	return d
}

// nginxUnitInstalled stops the test unless Debian's nginx.service is
// there for the drop-in to apply to.
func nginxUnitInstalled(t *testing.T) {
	t.Helper()
	for _, p := range []string{"/lib/systemd/system/nginx.service", "/usr/lib/systemd/system/nginx.service"} {
		if _, err := os.Stat(p); err == nil {
			return
		}
	}
	msg := "nginx.service is not installed; install it with: apt-get install -y nginx"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// checkDropIn applies the rendered drop-in to the installed nginx.service:
// verify (the file's Validate command, with the sandbox searched first)
// must be silent and systemd must load the raised limit from it.
func checkDropIn(t *testing.T, s *schema.Stack, root string, f artifact.File) {
	t.Helper()
	nginxUnitInstalled(t)
	unitDir := filepath.Join(root, "etc/systemd/system")
	verify(t, []string{"SYSTEMD_UNIT_PATH=" + unitDir + ":"}, f.Validate.String())
	d := dump(t, unitDir, "nginx.service")
	if got := d.values("DropIn Path"); !slices.Contains(got, filepath.Join(root, f.Path)) {
		t.Errorf("systemd did not load the drop-in: DropIn Path %q", got)
	}
	for _, k := range []string{"LimitNOFILE", "LimitNOFILESoft"} {
		if got := d.value(t, k); got != strconv.Itoa(s.Tuning.Nofile) {
			t.Errorf("nginx.service %s = %s, want %d", k, got, s.Tuning.Nofile)
		}
	}
}

// TestDropInIsRead is the control for checkDropIn: with
// SYSTEMD_UNIT_PATH pointing at a sandbox, systemd-analyze verify reads
// a drop-in there and complains about a bad value in it. Without this,
// a silent verify could mean the drop-in was never looked at.
func TestDropInIsRead(t *testing.T) {
	t.Parallel()
	nginxUnitInstalled(t)
	sa := testtool.Require(t, "systemd-analyze", "systemd")
	dir := readableTempDir(t)
	bad := filepath.Join(dir, "nginx.service.d", "hacompile.conf")
	mustWrite(t, bad, []byte("[Service]\nLimitNOFILE=lots\n"))
	cmd := exec.Command(sa, "verify", "nginx.service")
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), bad) || !strings.Contains(string(out), "lots") {
		t.Fatalf("systemd-analyze verify did not report the bad drop-in %s:\n%s", bad, out)
	}
}

func TestExampleStacks(t *testing.T) {
	t.Parallel()
	// Written out by hand from the stack files (seeds 000 to 004).
	wants := map[string]unitWant{
		"do-python-ha": {
			typ: "notify", killSignal: "SIGTERM", umask: "0027", runtimeDir: "shop", protectHome: "yes",
			execStart: []string{"ROOT/srv/shop/venv/bin/gunicorn", "--config", "ROOT/etc/shop/gunicorn.conf.py", "wsgi:app"},
		},
		"do-python-50k": {
			typ: "notify", killSignal: "SIGTERM", umask: "0027", runtimeDir: "api", protectHome: "yes",
			readWrite: "-ROOT/srv/api/media",
			execStart: []string{"ROOT/srv/api/venv/bin/gunicorn", "--config", "ROOT/etc/api/gunicorn.conf.py", "myapp.wsgi:application"},
		},
		"aws-spot-asg": {
			typ: "notify", killSignal: "SIGTERM", umask: "0027", protectHome: "yes",
			execStart: []string{"ROOT/srv/pyapp/venv/bin/gunicorn", "--config", "ROOT/etc/pyapp/gunicorn.conf.py", "pyapp.wsgi:application"},
		},
		"python-celery-cache": {
			typ: "notify", killSignal: "SIGTERM", umask: "0027", runtimeDir: "myapp", protectHome: "yes",
			execStart: []string{"ROOT/srv/myapp/venv/bin/gunicorn", "--config", "ROOT/etc/myapp/gunicorn.conf.py", "myapp.wsgi:application"},
		},
		"do-perl-ha": {
			typ: "exec", killSignal: "SIGQUIT", umask: "0007", runtimeDir: "myapp", protectHome: "yes",
			execStart: []string{"/usr/bin/starman", "--listen", "ROOT/run/myapp/starman.sock", "--workers", "4",
				"--backlog", "2048", "--max-requests", "1000", "--disable-keepalive", "-IROOT/srv/myapp/lib", "ROOT/srv/myapp/app.psgi"},
		},
		// Several apps: each app's view of the stack, as the build
		// renders it.
		"multi-app/web": {
			typ: "notify", killSignal: "SIGTERM", umask: "0027", runtimeDir: "web", protectHome: "yes",
			execStart: []string{"ROOT/srv/web/venv/bin/gunicorn", "--config", "ROOT/etc/web/gunicorn.conf.py", "shop.wsgi:application"},
		},
		"multi-app/api": {
			typ: "notify", killSignal: "SIGTERM", umask: "0027", runtimeDir: "api", protectHome: "yes",
			execStart: []string{"/usr/bin/gunicorn", "--config", "ROOT/etc/api/gunicorn.conf.py", "api.app:application"},
		},
		"multi-app/legacy": {
			typ: "exec", killSignal: "SIGQUIT", umask: "0007", runtimeDir: "legacy", protectHome: "yes",
			execStart: []string{"/usr/bin/starman", "--listen", "ROOT/run/legacy/starman.sock", "--workers", "4",
				"--backlog", "2048", "--max-requests", "1000", "--disable-keepalive", "-IROOT/srv/legacy/lib", "ROOT/srv/legacy/app.psgi"},
		},
	}
	views := map[string]*schema.Stack{}
	for _, s := range testtool.LoadStacks(t) {
		for _, a := range s.Apps {
			name := s.Name
			if s.MultiApp() {
				name += "/" + a.Name
			}
			views[name] = s.ForApp(a)
		}
	}
	if len(views) != len(wants) {
		t.Errorf("%d example stacks (apps), expectations for %d: add the new stack here", len(views), len(wants))
	}
	for name, s := range views {
		t.Run(name, func(t *testing.T) {
			files := generate(t, s, artifact.Options{})
			var gotNginx []string
			for _, f := range files {
				if f.Mode != 0o644 || f.Owner != "root:root" {
					t.Errorf("%s:%s mode %v owner %s", f.Host, f.Path, f.Mode, f.Owner)
				}
				if !strings.HasPrefix(string(f.Content), artifact.Header("#", s)) {
					t.Errorf("%s:%s lacks the generated-file header", f.Host, f.Path)
				}
				switch f.Path {
				case NginxDropIn:
					gotNginx = append(gotNginx, f.Host)
					if f.Validate.String() != "systemd-analyze verify --man=no nginx.service" || f.Reload.String() != "systemctl daemon-reload && systemctl restart nginx.service" {
						t.Errorf("drop-in Validate %q Reload %q", f.Validate.String(), f.Reload.String())
					}
				case "etc/systemd/system/" + s.App.Name + ".service":
					if !s.Hosts[f.Host].Has("app") {
						t.Errorf("app unit on %s, which has no app role", f.Host)
					}
					if want := "systemd-analyze verify --man=no /etc/systemd/system/" + s.App.Name + ".service"; f.Validate.String() != want {
						t.Errorf("Validate %q, want %q", f.Validate.String(), want)
					}
					u := s.App.Name + ".service"
					if want := "systemctl daemon-reload && systemctl enable " + u + " && systemctl restart " + u; f.Reload.String() != want {
						t.Errorf("Reload %q, want %q", f.Reload.String(), want)
					}
				default:
					t.Errorf("unexpected file %s:%s", f.Host, f.Path)
				}
			}
			// nginx runs on every app host, and on the balancer hosts
			// when the balancer is nginx (not HAProxy or a cloud one).
			var wantNginx []string
			for _, name := range s.HostNames() {
				roles := s.Hosts[name].Roles
				if slices.Contains(roles, "app") || slices.Contains(roles, "lb") && s.Balancer.Kind == "nginx" {
					wantNginx = append(wantNginx, name)
				}
			}
			if !slices.Equal(gotNginx, wantNginx) {
				t.Errorf("nginx drop-in on %q, want %q", gotNginx, wantNginx)
			}
			if s.Name == "do-python-ha" && !slices.Contains(gotNginx, "lb1") || s.Name == "do-perl-ha" && slices.Contains(gotNginx, "lb1") {
				t.Errorf("%s: nginx drop-in on %q: the nginx balancer (seed 000) needs it, HAProxy (seed 004) does not", s.Name, gotNginx)
			}
			if n := len(files) - len(gotNginx); n != len(s.HostsWithRole("app")) {
				t.Errorf("%d app units for %d app hosts", n, len(s.HostsWithRole("app")))
			}
			for _, h := range s.HostNames() {
				t.Run(h, func(t *testing.T) {
					root := readableTempDir(t)
					hf := hostFiles(generate(t, s, artifact.Options{Root: root}), h)
					writeFiles(t, root, s, hf)
					if f, ok := hf[UnitPath(&s.App)]; ok {
						checkAppUnit(t, s, root, f, wants[name].root(root))
					}
					if f, ok := hf[NginxDropIn]; ok {
						checkDropIn(t, s, root, f)
					}
				})
			}
		})
	}
}

const pythonApp = `
	runtime:     "python"
	module:      "wsgi:app"
	working_dir: "/srv/t"
`

const perlApp = `
	runtime:     "perl"
	psgi:        "/srv/t/app.psgi"
	lib: ["/srv/t/lib", "/srv/t/local/lib/perl5"]
	working_dir: "/srv/t"
`

// TestInTestStacks covers the choices the example stacks do not reach.
func TestInTestStacks(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, balancer, app string
		want                unitWant
		nginxHosts          []string
	}{
		{
			name: "gunicorn-no-venv-socket", balancer: "nginx", app: pythonApp,
			want: unitWant{typ: "notify", killSignal: "SIGTERM", umask: "0027", runtimeDir: "app", protectHome: "yes",
				execStart: []string{"/usr/bin/gunicorn", "--config", "ROOT/etc/app/gunicorn.conf.py", "wsgi:app"}},
			nginxHosts: []string{"app1", "lb1"},
		},
		{
			name: "gunicorn-port-under-home", balancer: "haproxy",
			app: `
	name:        "web"
	runtime:     "python"
	module:      "site.wsgi:application"
	working_dir: "/home/web/site"
	virtualenv:  "/home/web/venv"
	group:       "web"
	bind: port:  8001
	graceful_timeout: 50
	environment_file: "/etc/web/secrets.env"
	static: [
		{url: "/static/", dir: "/home/web/static"},
		{url: "/media/", dir: "/home/web/media"},
	]`,
			want: unitWant{typ: "notify", killSignal: "SIGTERM", umask: "0027", protectHome: "read-only",
				readWrite: "-ROOT/home/web/media",
				execStart: []string{"ROOT/home/web/venv/bin/gunicorn", "--config", "ROOT/etc/web/gunicorn.conf.py", "site.wsgi:application"}},
			nginxHosts: []string{"app1"},
		},
		{
			name: "gunicorn-privileged-port", balancer: "cloud", app: pythonApp + `bind: port: 81`,
			want: unitWant{typ: "notify", killSignal: "SIGTERM", umask: "0027", protectHome: "yes", capBounding: "cap_net_bind_service",
				execStart: []string{"/usr/bin/gunicorn", "--config", "ROOT/etc/app/gunicorn.conf.py", "wsgi:app"}},
			nginxHosts: []string{"app1"},
		},
		{
			name: "gunicorn-var-run-nested-socket", balancer: "nginx", app: pythonApp + `bind: socket: "/var/run/t-web/deep/app.sock"`,
			want: unitWant{typ: "notify", killSignal: "SIGTERM", umask: "0027", runtimeDir: "t-web/deep", protectHome: "yes",
				execStart: []string{"/usr/bin/gunicorn", "--config", "ROOT/etc/app/gunicorn.conf.py", "wsgi:app"}},
			nginxHosts: []string{"app1", "lb1"},
		},
		{
			name: "starman-port-auto-workers-no-recycling", balancer: "haproxy",
			app: perlApp + `bind: port: 5000
	max_requests: 0`,
			want: unitWant{typ: "exec", killSignal: "SIGQUIT", umask: "0027", protectHome: "yes",
				execStart: []string{"/usr/bin/starman", "--listen", "127.0.0.1:5000", "--workers", "7", "--backlog", "2048",
					"--max-requests", "2147483648", "--disable-keepalive", "-IROOT/srv/t/lib", "-IROOT/srv/t/local/lib/perl5", "ROOT/srv/t/app.psgi"}},
			nginxHosts: []string{"app1"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := testtool.Load(t, "t.cue", stackSrc(c.balancer, c.app))
			files := generate(t, s, artifact.Options{})
			var gotNginx []string
			for _, f := range files {
				if f.Path == NginxDropIn {
					gotNginx = append(gotNginx, f.Host)
				}
			}
			slices.Sort(gotNginx)
			if !slices.Equal(gotNginx, c.nginxHosts) {
				t.Errorf("nginx drop-in on %q, want %q", gotNginx, c.nginxHosts)
			}
			root := readableTempDir(t)
			hf := hostFiles(generate(t, s, artifact.Options{Root: root}), "app1")
			writeFiles(t, root, s, hf)
			checkAppUnit(t, s, root, hf[UnitPath(&s.App)], c.want.root(root))
			checkDropIn(t, s, root, hf[NginxDropIn])
		})
	}
}

// TestRejects covers stacks whose socket nginx could not reach: the
// generator says why instead of writing a unit that cannot work.
func TestRejects(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, app, want string }{
		{"group-not-www-data", pythonApp + `group: "t"`, `app.group: is "t", but nginx runs as www-data`},
		{"socket-in-tmp", pythonApp + `bind: socket: "/tmp/app.sock"`, `app.bind.socket: "/tmp/app.sock": want a path in a directory of its own under /run`},
		{"socket-directly-in-run", perlApp + `bind: socket: "/run/app.sock"`, `app.bind.socket: "/run/app.sock": want a path in a directory of its own under /run`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Gen{}.Generate(testtool.Load(t, "t.cue", stackSrc("nginx", c.app)), artifact.Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "hosts.app1: ") {
				t.Fatalf("error %v, want one naming host app1 and saying %q", err, c.want)
			}
		})
	}
	// A port needs no shared group.
	if _, err := (Gen{}).Generate(testtool.Load(t, "t.cue", stackSrc("nginx", pythonApp+`group: "t", bind: port: 8000`)), artifact.Options{}); err != nil {
		t.Errorf("port bind with a private group: %v", err)
	}
	// A sandbox root systemd would need quoting for is refused, not
	// written half-escaped.
	if _, err := (Gen{}).Generate(testtool.Load(t, "t.cue", stackSrc("nginx", pythonApp)), artifact.Options{Root: "/tmp/with space"}); err == nil {
		t.Error("a root with a space was accepted")
	}
}

// TestAppUnitPerHost: Starman's unit carries each host's worker count
// (2 × cores + 1 by default), so each app host has its own; gunicorn's
// reads them from its config file, so every app host shares the first
// one's bytes (capped, so appending to one never writes into another).
func TestAppUnitPerHost(t *testing.T) {
	t.Parallel()
	twoHosts := func(app string) *schema.Stack {
		src := strings.Replace(stackSrc("haproxy", app), "\n}\nbalancer:", "\n\tapp2: {address: \"10.0.0.12\", roles: [\"app\"], cores: 1, memory_mb: 2048}\n}\nbalancer:", 1)
		return testtool.Load(t, "stacks/t.cue", src)
	}
	units := func(s *schema.Stack) map[string][]byte {
		m := map[string][]byte{}
		for _, f := range generate(t, s, artifact.Options{}) {
			if f.Path == UnitPath(&s.App) {
				m[f.Host] = f.Content
			}
		}
		if len(m) != 2 {
			t.Fatalf("app units on %d hosts, want app1 and app2", len(m))
		}
		return m
	}
	g := units(twoHosts(pythonApp))
	if &g["app1"][0] != &g["app2"][0] || cap(g["app1"]) != len(g["app1"]) {
		t.Errorf("gunicorn: app2's unit is a copy of its own, or the shared bytes have room to append (%d of %d)", len(g["app1"]), cap(g["app1"]))
	}
	p := units(twoHosts(perlApp + "bind: port: 5000"))
	for host, workers := range map[string]string{"app1": "--workers 7 ", "app2": "--workers 3 "} {
		if !bytes.Contains(p[host], []byte(workers)) {
			t.Errorf("starman: %s's unit has no %q:\n%s", host, workers, p[host])
		}
	}
}
