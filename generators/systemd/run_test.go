//go:build unix

package systemd

// These tests run the app servers the way the rendered units say: the
// command line, working directory and umask are taken from systemd's own
// reading of the unit (its --test dump), not from the Go code that wrote
// it. What systemd itself would add (the user switch, the sandbox) needs
// a running manager and is checked by verify and security instead.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/gunicorn"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// service is an app server started from a unit's ExecStart=.
type service struct {
	d    unitDump
	cmd  *exec.Cmd
	done chan error
	logs *testtool.SyncBuffer
}

// start runs ExecStart= in WorkingDirectory= under UMask=, with env.
func start(t *testing.T, d unitDump, env []string) *service {
	t.Helper()
	cmds := d.commands(t, "ExecStart")
	if len(cmds) != 1 {
		t.Fatalf("%s has %d ExecStart commands", d.name, len(cmds))
	}
	argv := cmds[0]
	for _, a := range argv {
		if strings.Contains(a, "$") {
			t.Fatalf("ExecStart argument %q would need environment expansion", a)
		}
	}
	// exec keeps the shell's PID: it is $MAINPID.
	cmd := exec.Command("/bin/sh", append([]string{"-c", `umask "$0" && exec "$@"`, d.value(t, "UMask")}, argv...)...)
	cmd.Dir = d.value(t, "WorkingDirectory")
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}, env...)
	s := &service{d: d, cmd: cmd, done: make(chan error, 1), logs: &testtool.SyncBuffer{}}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	// Its own process group, so that cleanup can kill the workers with
	// the master (as systemd kills the unit's cgroup); and Wait returns
	// even when a worker that outlived the master keeps the log pipe.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if cmd.ProcessState == nil {
			<-s.done
		}
	})
	return s
}

// reload runs ExecReload= with $MAINPID, as systemctl reload does.
func (s *service) reload(t *testing.T) {
	t.Helper()
	cmds := s.d.commands(t, "ExecReload")
	if len(cmds) != 1 {
		t.Fatalf("%s has %d ExecReload commands", s.d.name, len(cmds))
	}
	argv := slices.Clone(cmds[0])
	for i, a := range argv {
		argv[i] = strings.ReplaceAll(a, "$MAINPID", strconv.Itoa(s.cmd.Process.Pid))
	}
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("ExecReload %q: %v\n%s", argv, err, out)
	}
}

// stop sends KillSignal= to the main process only (KillMode=mixed) and
// wants a clean exit within TimeoutStopSec=.
func (s *service) stop(t *testing.T) {
	t.Helper()
	sig := map[string]syscall.Signal{"SIGTERM": syscall.SIGTERM, "SIGQUIT": syscall.SIGQUIT}[s.d.value(t, "KillSignal")]
	if sig == 0 {
		t.Fatalf("unexpected KillSignal %s", s.d.value(t, "KillSignal"))
	}
	timeout, err := time.ParseDuration(s.d.value(t, "TimeoutStopSec"))
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("%v after %v: %v\n%s", s.d.value(t, "KillSignal"), time.Since(began), err, s.logs)
		}
	case <-time.After(timeout):
		t.Fatalf("still running %v after %s\n%s", timeout, s.d.value(t, "KillSignal"), s.logs)
	}
}

// client reaches the app the way the host's nginx does.
func client(o artifact.Options, app *schema.App, keepAlive bool) (*http.Client, string) {
	tr := &http.Transport{DisableKeepAlives: !keepAlive}
	url := fmt.Sprintf("http://127.0.0.1:%d", app.Bind.Port)
	if p := app.Bind.Socket; p != "" {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", o.P(p))
		}
		url = "http://app"
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, url
}

// get retries until the server answers (15 s) and returns the response
// body; anything but 200 fails.
func (s *service) get(t *testing.T, c *http.Client, url string) (string, *http.Response) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s: %s %q\n%s", url, resp.Status, b, s.logs)
			}
			return string(b), resp
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v\n%s", url, err, s.logs)
		}
		select {
		case err := <-s.done:
			t.Fatalf("server exited: %v\n%s", err, s.logs)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// runtimeDirectory creates what RuntimeDirectory= makes before start,
// inside the sandbox, with RuntimeDirectoryMode=.
func runtimeDirectory(t *testing.T, d unitDump, root string) {
	t.Helper()
	for _, dir := range d.values("RuntimeDirectory") {
		mode, err := strconv.ParseUint(d.value(t, "RuntimeDirectoryMode"), 8, 32)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, "run", dir)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, os.FileMode(mode)); err != nil {
			t.Fatal(err)
		}
	}
}

func socketMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != want {
		t.Errorf("socket %s has mode %v, want %v", path, fi.Mode(), os.ModeSocket|want)
	}
}

// TestGunicornUnitRuns starts gunicorn from the rendered unit and
// gunicorn.conf.py, with $NOTIFY_SOCKET pointing at the test: Type=notify
// is right only if gunicorn 20.1 really sends READY=1 once it listens.
func TestGunicornUnitRuns(t *testing.T) {
	testtool.Require(t, "gunicorn", "gunicorn")
	// A short graceful_timeout bounds the stop: a worker still booting
	// when SIGTERM arrives (as after the reload here) has not yet
	// installed its handler and is only killed after graceful_timeout.
	cases := []struct{ name, app string }{
		{"sync-socket", pythonApp + `workers: 2, graceful_timeout: 5`},
		{"gthread-port-venv", pythonApp + `worker_class: "gthread", workers: 2, graceful_timeout: 5, virtualenv: "/srv/t/venv", bind: port: PORT`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := testtool.Load(t, "t.cue", stackSrc("nginx", strings.ReplaceAll(c.app, "PORT", strconv.Itoa(testtool.FreePort(t, "127.0.0.1")))))
			root := readableTempDir(t)
			opt := artifact.Options{Root: root}
			conf, err := gunicorn.Gen{}.Generate(s, opt)
			if err != nil {
				t.Fatal(err)
			}
			hf := hostFiles(append(generate(t, s, opt), conf...), "app1")
			writeFiles(t, root, s, hf)
			mustWrite(t, filepath.Join(opt.P(s.App.WorkingDir), "wsgi.py"), []byte(`import os
def app(environ, start_response):
    body = ("ok %d\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`))
			d := dump(t, filepath.Join(root, "etc/systemd/system"), UnitName(&s.App))
			runtimeDirectory(t, d, root)

			notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(root, "notify.sock"), Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer notify.Close()
			svc := start(t, d, []string{"NOTIFY_SOCKET=" + filepath.Join(root, "notify.sock")})
			_ = notify.SetReadDeadline(time.Now().Add(20 * time.Second))
			buf := make([]byte, 4096)
			n, err := notify.Read(buf)
			if err != nil {
				t.Fatalf("no sd_notify message from gunicorn: %v\n%s", err, svc.logs)
			}
			if !slices.Contains(strings.Split(string(buf[:n]), "\n"), "READY=1") {
				t.Fatalf("gunicorn notified %q, want READY=1", buf[:n])
			}
			// READY=1 promises a bound listener: connect at once, no retry.
			if p := s.App.Bind.Socket; p != "" {
				conn, err := net.Dial("unix", opt.P(p))
				if err != nil {
					t.Fatalf("READY=1 sent before the socket accepts: %v", err)
				}
				conn.Close()
				socketMode(t, opt.P(p), 0o770)
			} else {
				conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.App.Bind.Port))
				if err != nil {
					t.Fatalf("READY=1 sent before the port accepts: %v", err)
				}
				conn.Close()
			}
			c, url := client(opt, &s.App, false)
			if body, _ := svc.get(t, c, url+"/"); !strings.HasPrefix(body, "ok ") {
				t.Fatalf("body %q", body)
			}
			svc.reload(t)
			time.Sleep(time.Second)
			if body, _ := svc.get(t, c, url+"/"); !strings.HasPrefix(body, "ok ") {
				t.Fatalf("after reload: body %q", body)
			}
			if !strings.Contains(svc.logs.String(), "Handling signal: hup") {
				t.Errorf("gunicorn did not log the HUP from ExecReload:\n%s", svc.logs)
			}
			svc.stop(t)
		})
	}
}

// TestStarmanUnitRuns starts Starman from the rendered unit against a
// small PSGI app that needs a module from app.lib (so -I must work),
// serves requests, reloads gracefully on ExecReload and drains on
// KillSignal.
func TestStarmanUnitRuns(t *testing.T) {
	testtool.Require(t, "starman", "starman")
	var perl *schema.Stack
	for _, s := range testtool.LoadStacks(t) {
		if s.App.Server == "starman" {
			perl = s
		}
	}
	if perl == nil {
		t.Fatal("no example stack runs Starman")
	}
	stacks := map[string]*schema.Stack{
		"example-" + perl.Name: perl,
		"port":                 testtool.Load(t, "t.cue", stackSrc("haproxy", perlApp+fmt.Sprintf("bind: port: %d\nworkers: 2\ngraceful_timeout: 3", testtool.FreePort(t, "127.0.0.1")))),
	}
	for name, s := range stacks {
		t.Run(name, func(t *testing.T) {
			root := readableTempDir(t)
			opt := artifact.Options{Root: root}
			hf := hostFiles(generate(t, s, opt), s.HostsWithRole("app")[0].Name)
			writeFiles(t, root, s, hf)
			if len(s.App.Lib) == 0 {
				t.Fatal("the test needs app.lib")
			}
			mustWrite(t, filepath.Join(opt.P(s.App.Lib[0]), "HacompileHello.pm"), []byte("package HacompileHello;\nsub greet { 'hello from lib' }\n1;\n"))
			mustWrite(t, opt.P(s.App.PSGI), []byte(`use strict;
use HacompileHello;
my $app = sub {
    return [200, ['Content-Type' => 'text/plain'], [HacompileHello::greet() . " pid=$$\n"]];
};
`))
			if err := os.MkdirAll(opt.P(s.App.WorkingDir), 0o755); err != nil {
				t.Fatal(err)
			}
			d := dump(t, filepath.Join(root, "etc/systemd/system"), UnitName(&s.App))
			runtimeDirectory(t, d, root)
			svc := start(t, d, nil)

			c, url := client(opt, &s.App, true)
			pids := func() map[string]bool {
				seen := map[string]bool{}
				for range 3 * s.App.Workers.For(s.HostsWithRole("app")[0]) {
					body, resp := svc.get(t, c, url+"/")
					pid, ok := strings.CutPrefix(strings.TrimSpace(body), "hello from lib pid=")
					if !ok {
						t.Fatalf("body %q", body)
					}
					if !resp.Close {
						t.Errorf("Starman kept the connection open; the unit disables keep-alive")
					}
					seen[pid] = true
				}
				return seen
			}
			before := pids()
			if p := s.App.Bind.Socket; p != "" {
				socketMode(t, opt.P(p), 0o770)
			}
			svc.reload(t)
			// Workers replaced one by one, the master stays: wait until
			// no answer comes from a worker that predates the HUP.
			deadline := time.Now().Add(15 * time.Second)
			for {
				after := pids()
				old := false
				for pid := range after {
					old = old || before[pid]
				}
				if !old {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("workers %v still answer 15 s after ExecReload (before: %v)\n%s", after, before, svc.logs)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if svc.cmd.ProcessState != nil {
				t.Fatalf("the master exited on HUP\n%s", svc.logs)
			}
			svc.stop(t)
			if !strings.Contains(svc.logs.String(), "Received QUIT. Running a graceful shutdown") {
				t.Errorf("Starman did not shut down gracefully:\n%s", svc.logs)
			}
		})
	}
}
