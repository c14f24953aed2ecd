package gunicorn

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// stackSrc is a small Python stack: an nginx balancer and one app host
// with 3 cores; app holds the extra app fields.
func stackSrc(app string) string {
	return `
name:   "t"
domain: "t.example.com"
tls: mode: "none"
hosts: {
	lb1:  {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.0.0.11", roles: ["app"], cores: 3, memory_mb: 2048}
}
balancer: kind: "nginx"
app: {
	runtime:     "python"
	module:      "wsgi:app"
	working_dir: "/srv/t"
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
	if len(again) != len(files) {
		t.Fatalf("second Generate returned %d files, first %d", len(again), len(files))
	}
	for i := range files {
		if files[i].Path != again[i].Path || files[i].Host != again[i].Host || !bytes.Equal(files[i].Content, again[i].Content) {
			t.Fatalf("Generate is not deterministic for %s:%s", files[i].Host, files[i].Path)
		}
	}
	return files
}

// fileFor returns the one file generated for host.
func fileFor(t *testing.T, files []artifact.File, host string) artifact.File {
	t.Helper()
	for _, f := range files {
		if f.Host == host {
			return f
		}
	}
	t.Fatalf("no gunicorn.conf.py generated for host %s", host)
	return artifact.File{}
}

// sandbox lays out what gunicorn needs under root: the rendered file,
// the working directory with a throwaway WSGI module named as in
// app.module, the socket directory systemd would create, and, for a
// virtualenv, its bin/gunicorn pointing at Debian's gunicorn.
func sandbox(t *testing.T, root string, s *schema.Stack, f artifact.File) string {
	t.Helper()
	opt := artifact.Options{Root: root}
	conf := filepath.Join(root, f.Path)
	mustWrite(t, conf, f.Content, 0o644)
	mod, callable, _ := strings.Cut(s.App.Module, ":")
	parts := strings.Split(mod, ".")
	dir := opt.P(s.App.WorkingDir)
	for _, p := range parts[:len(parts)-1] {
		dir = filepath.Join(dir, p)
		mustWrite(t, filepath.Join(dir, "__init__.py"), nil, 0o644)
	}
	wsgi := fmt.Sprintf(`def %s(environ, start_response):
    body = ("ok " + environ["PATH_INFO"] + "\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`, callable)
	mustWrite(t, filepath.Join(dir, parts[len(parts)-1]+".py"), []byte(wsgi), 0o644)
	if s.App.Bind.Socket != "" {
		if err := os.MkdirAll(filepath.Dir(opt.P(s.App.Bind.Socket)), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if s.App.Virtualenv != "" {
		bin := Binary(&s.App, opt)
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(testtool.Require(t, "gunicorn", "gunicorn"), bin); err != nil {
			t.Fatal(err)
		}
	}
	return conf
}

func mustWrite(t *testing.T, name string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, mode); err != nil {
		t.Fatal(err)
	}
}

var settingLine = regexp.MustCompile(`^([a-z_]+)\s+= (.*)$`)

// printConfig returns the settings as gunicorn itself reads them from
// the file (gunicorn --print-config), run from / so that only the
// file's chdir can make the module importable.
func printConfig(t *testing.T, gunicorn, conf, module string) map[string]string {
	t.Helper()
	cmd := exec.Command(gunicorn, "--print-config", "--config", conf, module)
	cmd.Dir = "/"
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gunicorn --print-config: %v\n%s", err, stderr.Bytes())
	}
	got := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if m := settingLine.FindStringSubmatch(line); m != nil {
			got[m[1]] = m[2]
		}
	}
	if len(got) < 50 {
		t.Fatalf("gunicorn --print-config printed %d settings, expected the full list:\n%s", len(got), out)
	}
	return got
}

// pyList is how Python prints a list of strings (gunicorn's bind and
// forwarded_allow_ips) for the plain strings the tests use.
func pyList(items ...string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = "'" + s + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// expectations derived from the stack: what gunicorn must read back.
func expected(s *schema.Stack, h *schema.Host, root string) map[string]string {
	opt := artifact.Options{Root: root}
	app := &s.App
	want := map[string]string{
		"workers":             strconv.Itoa(app.Workers.For(h)),
		"worker_class":        WorkerClass(app.WorkerClass),
		"timeout":             strconv.Itoa(app.Timeout),
		"graceful_timeout":    strconv.Itoa(app.GracefulTimeout),
		"keepalive":           strconv.Itoa(app.Keepalive),
		"max_requests":        strconv.Itoa(app.MaxRequests),
		"max_requests_jitter": strconv.Itoa(app.MaxRequestsJitter),
		"backlog":             strconv.Itoa(app.Backlog),
		"chdir":               opt.P(app.WorkingDir),
		"accesslog":           "-",
		"errorlog":            "-",
		"loglevel":            "info",
		"forwarded_allow_ips": pyList(app.ForwardedAllowIPs...),
		"proc_name":           app.Name,
		"worker_tmp_dir":      "/dev/shm",
		// Unset: gunicorn's own default stays.
		"proxy_allow_ips": pyList("127.0.0.1"),
		"proxy_protocol":  "False",
		"preload_app":     "False",
		"daemon":          "False",
		"pidfile":         "None",
	}
	if app.Bind.Socket != "" {
		want["bind"] = pyList("unix:" + opt.P(app.Bind.Socket))
		want["umask"] = "7"
	} else {
		want["bind"] = pyList(fmt.Sprintf("127.0.0.1:%d", app.Bind.Port))
		want["umask"] = "0"
	}
	if app.WorkerClass == "gthread" {
		want["threads"] = strconv.Itoa(app.Threads)
	}
	if app.WorkerClass == "gevent" || app.WorkerClass == "uvicorn" {
		want["worker_connections"] = strconv.Itoa(app.WorkerConnections)
	}
	return want
}

func compareSettings(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("gunicorn reads %s = %q, want %q", k, got[k], v)
		}
	}
}

// checkWithGunicorn runs the real tools over a rendered file: python3
// compiles it, the file's own Validate command (gunicorn --check-config)
// accepts it, and gunicorn --print-config reads back every setting.
func checkWithGunicorn(t *testing.T, s *schema.Stack, host, root string, f artifact.File) map[string]string {
	t.Helper()
	py := testtool.Require(t, "python3", "python3")
	testtool.Require(t, "gunicorn", "gunicorn")
	conf := sandbox(t, root, s, f)
	if out, err := exec.Command(py, "-m", "py_compile", conf).CombinedOutput(); err != nil {
		t.Fatalf("python3 -m py_compile %s: %v\n%s", conf, err, out)
	}
	// py_compile wrote bytecode beside the file; the check must not.
	os.RemoveAll(filepath.Join(filepath.Dir(conf), "__pycache__"))
	// The Validate command as push runs it, from /, as the app's user:
	// here nobody (the stack's user does not exist on this machine),
	// who must reach the sandbox.
	cmd := f.Validate.String()
	if want := "runuser -u " + s.App.User + " -- env PYTHONDONTWRITEBYTECODE=1 "; !strings.HasPrefix(cmd, want) {
		t.Fatalf("validate %q does not start with %q", cmd, want)
	}
	if os.Geteuid() == 0 {
		cmd = strings.Replace(cmd, "runuser -u "+s.App.User+" ", "runuser -u nobody ", 1)
		for d := root; d != "/" && d != "."; d = filepath.Dir(d) {
			if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o005 != 0o005 {
				os.Chmod(d, st.Mode().Perm()|0o005)
			}
		}
	} else {
		cmd = strings.Replace(cmd, "runuser -u "+s.App.User+" -- ", "", 1)
	}
	v := exec.Command("sh", "-c", cmd)
	v.Dir = "/"
	if out, err := v.CombinedOutput(); err != nil {
		t.Fatalf("validate %q: %v\n%s\n--- %s\n%s", cmd, err, out, f.Path, f.Content)
	}
	// Nothing written beside the code or the configuration.
	if _, err := os.Stat(filepath.Join(filepath.Dir(conf), "__pycache__")); err == nil {
		t.Errorf("the check left bytecode in %s", filepath.Dir(conf))
	}
	got := printConfig(t, Binary(&s.App, opt(root)), conf, s.App.Module)
	compareSettings(t, got, expected(s, s.Hosts[host], root))
	return got
}

func opt(root string) artifact.Options { return artifact.Options{Root: root} }

func TestExampleStacks(t *testing.T) {
	t.Parallel()
	// Independently written expectations for the reference systems:
	// seed 000 (gunicorn --workers 3 --threads 2) and seed 001 (gevent,
	// 16 workers of 1000 connections each). Workers "auto" (2 x cores
	// + 1) is covered by TestInTestStacks.
	literal := map[string]map[string]string{
		"do-python-ha": {
			"workers": "3", "worker_class": "gthread", "threads": "2", "timeout": "60",
			"bind": "['unix:ROOT/run/shop/gunicorn.sock']", "chdir": "ROOT/srv/shop",
			"max_requests": "1000", "max_requests_jitter": "100",
		},
		"do-python-50k": {
			"workers": "16", "worker_class": "gevent", "worker_connections": "1000", "timeout": "30",
			"bind": "['unix:ROOT/run/api/gunicorn.sock']", "chdir": "ROOT/srv/api",
			"max_requests": "5000", "max_requests_jitter": "500",
		},
	}
	stacks := testtool.LoadStacks(t)
	seen := 0
	for _, s := range stacks {
		t.Run(s.Name, func(t *testing.T) {
			files := generate(t, s, artifact.Options{})
			if s.App.Runtime != "python" {
				if len(files) != 0 {
					t.Fatalf("%s runs %s, yet gunicorn files were generated", s.Name, s.App.Runtime)
				}
				return
			}
			seen++
			apps := s.HostsWithRole("app")
			if len(files) != len(apps) {
				t.Fatalf("generated %d files for %d app hosts", len(files), len(apps))
			}
			for _, f := range files {
				if !s.Hosts[f.Host].Has("app") {
					t.Errorf("file for non-app host %s", f.Host)
				}
				if f.Path != "etc/"+s.App.Name+"/gunicorn.conf.py" || f.Mode != 0o644 || f.Owner != "root:root" {
					t.Errorf("%s: path %q mode %v owner %q", f.Host, f.Path, f.Mode, f.Owner)
				}
				if want := "systemctl reload " + s.App.Name + ".service"; f.Reload.String() != want {
					t.Errorf("Reload = %q, want %q", f.Reload.String(), want)
				}
				if want := artifact.Header("#", s); !strings.HasPrefix(string(f.Content), want) {
					t.Errorf("%s does not start with the header %q", f.Path, want)
				}
				if want := "runuser -u " + s.App.User + " -- env PYTHONDONTWRITEBYTECODE=1 " + Binary(&s.App, artifact.Options{}) + " --check-config --config /" + f.Path + " " + s.App.Module; f.Validate.String() != want {
					t.Errorf("Validate = %q, want %q", f.Validate.String(), want)
				}
			}
			for _, h := range apps {
				t.Run(h.Name, func(t *testing.T) {
					root := t.TempDir()
					sandboxed := generate(t, s, opt(root))
					got := checkWithGunicorn(t, s, h.Name, root, fileFor(t, sandboxed, h.Name))
					for k, v := range literal[s.Name] {
						if v = strings.ReplaceAll(v, "ROOT", root); got[k] != v {
							t.Errorf("gunicorn reads %s = %q, want %q", k, got[k], v)
						}
					}
				})
			}
		})
	}
	if seen == 0 {
		t.Fatal("no example stack runs Python: nothing was checked")
	}
}

// TestInTestStacks covers what the example stacks do not: every worker
// class, a TCP port, a custom socket, a virtualenv, workers "auto" on 3
// cores, max_requests 0 and a list of trusted proxies.
func TestInTestStacks(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		app  string
		want map[string]string // extra literal expectations
	}{
		{"sync-socket-auto", ``, map[string]string{
			"workers": "7", "worker_class": "sync", "bind": "['unix:ROOT/run/app/gunicorn.sock']", "umask": "7", "threads": "1",
		}},
		{"gthread-port", `worker_class: "gthread", threads: 8, bind: port: 8001, workers: 3`, map[string]string{
			"workers": "3", "worker_class": "gthread", "threads": "8", "bind": "['127.0.0.1:8001']", "umask": "0",
		}},
		{"gevent-custom-socket", `worker_class: "gevent", worker_connections: 500, workers: 2, bind: socket: "/run/t-app/web.sock"`, map[string]string{
			"worker_class": "gevent", "worker_connections": "500", "bind": "['unix:ROOT/run/t-app/web.sock']",
		}},
		{"uvicorn-venv", `worker_class: "uvicorn", virtualenv: "/opt/t/venv", bind: port: 9000`, map[string]string{
			"worker_class": "uvicorn.workers.UvicornWorker", "worker_connections": "1000",
		}},
		{"no-recycling-proxies", `max_requests: 0, max_requests_jitter: 0, forwarded_allow_ips: ["127.0.0.1", "10.0.0.5", "::1"], timeout: 120, graceful_timeout: 45, keepalive: 2, backlog: 512`, map[string]string{
			"max_requests": "0", "forwarded_allow_ips": "['127.0.0.1', '10.0.0.5', '::1']",
			"timeout": "120", "graceful_timeout": "45", "keepalive": "2", "backlog": "512",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := testtool.Load(t, "t.cue", stackSrc(c.app))
			if files := generate(t, s, artifact.Options{}); len(files) != 1 || files[0].Host != "app1" {
				t.Fatalf("want one file, for app1 (lb1 has no app role), got %d", len(files))
			}
			root := t.TempDir()
			got := checkWithGunicorn(t, s, "app1", root, fileFor(t, generate(t, s, opt(root)), "app1"))
			for k, v := range c.want {
				if v = strings.ReplaceAll(v, "ROOT", root); got[k] != v {
					t.Errorf("gunicorn reads %s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// TestServes starts gunicorn with rendered files and has it answer HTTP:
// every worker class that is installed (sync, gthread, gevent), on a
// socket and on a port. It also checks the socket's permissions and that
// SIGHUP (the Reload action) and SIGTERM (systemd's stop) behave.
func TestServes(t *testing.T) {
	gunicorn := testtool.Require(t, "gunicorn", "gunicorn")
	cases := []struct{ name, app string }{
		// A worker still booting when SIGTERM arrives only dies after
		// graceful_timeout; keep that short.
		{"sync-socket", `workers: 2, graceful_timeout: 5`},
		{"gthread-port", `worker_class: "gthread", workers: 2, graceful_timeout: 5, bind: port: PORT`},
		{"gevent-socket", `worker_class: "gevent", workers: 2, graceful_timeout: 5`},
		{"gevent-port", `worker_class: "gevent", workers: 1, graceful_timeout: 5, bind: port: PORT`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if strings.Contains(c.app, "gevent") {
				// gunicorn's gevent worker needs python3-gevent.
				if err := exec.Command("/usr/bin/python3", "-c", "import gevent").Run(); err != nil {
					if os.Getenv("CI") == "true" {
						t.Fatal("python3-gevent is missing: apt-get install -y python3-gevent")
					}
					t.Skip("python3-gevent is missing: apt-get install -y python3-gevent")
				}
			}
			s := testtool.Load(t, "t.cue", stackSrc(strings.ReplaceAll(c.app, "PORT", strconv.Itoa(testtool.FreePort(t, "127.0.0.1")))))
			root := t.TempDir()
			f := fileFor(t, generate(t, s, opt(root)), "app1")
			conf := sandbox(t, root, s, f)
			var logs testtool.SyncBuffer
			cmd := exec.Command(gunicorn, "--config", conf, s.App.Module)
			cmd.Dir = "/"
			cmd.Stdout, cmd.Stderr = &logs, &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() {
				if cmd.ProcessState == nil {
					_ = cmd.Process.Kill()
					<-done
				}
			}()
			client, url := httpClient(opt(root), s)
			get(t, client, url+"/first", "ok /first\n", &logs)
			if p := s.App.Bind.Socket; p != "" {
				fi, err := os.Stat(opt(root).P(p))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o770 {
					t.Errorf("socket mode %v, want srwxrwx---", fi.Mode())
				}
			}
			// Reload: new workers from the re-read file, same listener.
			if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)
			get(t, client, url+"/after-hup", "ok /after-hup\n", &logs)
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("gunicorn exited with %v after SIGTERM\n%s", err, &logs)
				}
			case <-time.After(time.Duration(s.App.GracefulTimeout+5) * time.Second):
				t.Fatalf("gunicorn did not stop within graceful_timeout after SIGTERM\n%s", &logs)
			}
			if !strings.Contains(logs.String(), "GET /first") {
				t.Errorf("access log (accesslog \"-\") does not show the request:\n%s", &logs)
			}
		})
	}
}

// httpClient reaches the app the way the host's nginx does.
func httpClient(o artifact.Options, s *schema.Stack) (*http.Client, string) {
	tr := &http.Transport{DisableKeepAlives: true}
	if p := s.App.Bind.Socket; p != "" {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", o.P(p))
		}
		return &http.Client{Transport: tr, Timeout: 5 * time.Second}, "http://app"
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}, fmt.Sprintf("http://127.0.0.1:%d", s.App.Bind.Port)
}

// get retries until the server is up (10 s), then wants body.
func get(t *testing.T, c *http.Client, url, body string, logs *testtool.SyncBuffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != body {
				t.Fatalf("GET %s: %s %q, want 200 %q\n%s", url, resp.Status, b, body, logs)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v\n%s", url, err, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testtool.SyncBuffer collects a child's output while the test reads it.
