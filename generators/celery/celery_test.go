package celery

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hacompile/hacompile/generators/appenv"
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

func exampleStack(t *testing.T, name string) *schema.Stack {
	t.Helper()
	for _, s := range testtool.LoadStacks(t) {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no example stack %s", name)
	return nil
}

func generate(t *testing.T, s *schema.Stack, opt artifact.Options) []artifact.File {
	t.Helper()
	a, err := Gen{}.Generate(s, opt)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Gen{}.Generate(s, opt)
	for i := range a {
		if !bytes.Equal(a[i].Content, b[i].Content) {
			t.Fatalf("%s: two renders differ", a[i].Path)
		}
	}
	return a
}

// TestExampleStack pins what seed 003's stack asks for, written out by
// hand: a worker on each worker host, beat on the first one only.
func TestExampleStack(t *testing.T) {
	s := exampleStack(t, "python-celery-cache")
	files := generate(t, s, artifact.Options{})
	var got []string
	for _, f := range files {
		got = append(got, f.Host+":"+f.Path)
		if !bytes.HasPrefix(f.Content, []byte(artifact.Header("#", s))) || f.Mode != 0o644 || f.Owner != "root:root" {
			t.Errorf("%s: header, mode %v or owner %s", f.Path, f.Mode, f.Owner)
		}
		unit := filepath.Base(f.Path)
		if f.Validate.String() != "systemd-analyze verify --man=no /"+f.Path ||
			f.Reload.String() != "systemctl daemon-reload && systemctl enable "+unit+" && systemctl restart "+unit {
			t.Errorf("%s: Validate %q Reload %q", f.Path, f.Validate.String(), f.Reload.String())
		}
	}
	want := []string{
		"worker1:etc/systemd/system/myapp-celery-worker.service",
		"worker1:etc/systemd/system/myapp-celery-beat.service",
		"worker2:etc/systemd/system/myapp-celery-worker.service",
	}
	if !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
	argv := WorkerArgv(s, s.Hosts["worker1"], artifact.Options{})
	wantArgv := []string{"/srv/myapp/venv/bin/celery", "-A", "myapp", "worker", "--loglevel", "INFO", "--pool", "prefork",
		"--concurrency", "2", "--queues", "celery,emails", "--max-tasks-per-child", "500", "--time-limit", "300", "--soft-time-limit", "270"}
	if !slices.Equal(argv, wantArgv) {
		t.Errorf("worker argv %q, want %q", argv, wantArgv)
	}
}

// TestBeatOnNamedHost: beat follows workers.beat.host; gevent workers
// get no max-tasks-per-child (one process, nothing to recycle); no
// virtualenv means Debian's celery.
func TestBeatOnNamedHost(t *testing.T) {
	l, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Load("t.cue", []byte(`
name: "t"
domain: "t.example.com"
hosts: {
	app1: {address: "10.0.0.11", roles: ["app"], cores: 2, memory_mb: 2048}
	w1: {address: "10.0.0.21", roles: ["worker"], cores: 2, memory_mb: 2048}
	w2: {address: "10.0.0.22", roles: ["worker"], cores: 2, memory_mb: 2048}
}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/t"}
queue: {engine: "redis", host: "10.0.0.40"}
workers: {app: "t.celery:app", pool: "gevent", beat: {enabled: true, host: "w2"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	var beat []string
	for _, f := range generate(t, s, artifact.Options{}) {
		if strings.HasSuffix(f.Path, "-beat.service") {
			beat = append(beat, f.Host)
		}
	}
	if !slices.Equal(beat, []string{"w2"}) {
		t.Errorf("beat on %q, want only w2", beat)
	}
	argv := WorkerArgv(s, s.Hosts["w1"], artifact.Options{})
	want := []string{"/usr/bin/celery", "-A", "t.celery:app", "worker", "--loglevel", "INFO", "--pool", "gevent",
		"--concurrency", "100", "--queues", "celery", "--time-limit", "300"}
	if !slices.Equal(argv, want) {
		t.Errorf("argv %q, want %q", argv, want)
	}
}

// readableTempDir is a sandbox root every user can read: systemd
// refuses --test as root, so it runs as nobody.
func readableTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hacompile-celery-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func write(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// renderSandbox renders worker1's units and settings under a root, with the
// virtualenv's celery pointing at Debian's.
func renderSandbox(t *testing.T, s *schema.Stack) (string, map[string]artifact.File) {
	t.Helper()
	celery := testtool.Require(t, "/usr/bin/celery", "celery")
	root := readableTempDir(t)
	opt := artifact.Options{Root: root}
	files := map[string]artifact.File{}
	env, err := appenv.Gen{}.Generate(s, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(generate(t, s, opt), env...) {
		if f.Host == "worker1" {
			files[f.Path] = f
			testtool.WriteTree(t, root, f)
		}
	}
	write(t, opt.P(s.App.EnvironmentFile), []byte("SECRET_KEY=test\n"))
	bin := Binary(&s.App, opt)
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(celery, bin); err != nil {
		t.Fatal(err)
	}
	return root, files
}

// dump is systemd's own reading of a unit: "key: value" lines of the
// unit's block in systemd --test's dump. Any load warning fails.
func dump(t *testing.T, unitDir, unit string) []string {
	t.Helper()
	const systemd = "/lib/systemd/systemd"
	testtool.Require(t, systemd, "systemd")
	args := []string{"--test", "--system", "--unit=" + unit, "--log-target=console", "--log-level=warning", "--no-pager"}
	cmd := exec.Command(systemd, args...)
	if os.Geteuid() == 0 {
		setpriv := testtool.Require(t, "setpriv", "util-linux")
		cmd = exec.Command(setpriv, append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", systemd}, args...)...)
	}
	none := readableTempDir(t)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/nonexistent", "SYSTEMD_UNIT_PATH=" + unitDir + ":",
		"SYSTEMD_GENERATOR_PATH=" + none, "SYSTEMD_ENVIRONMENT_GENERATOR_PATH=" + none}
	cmd.Dir = "/"
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("systemd --test --unit=%s: %v\n%s", unit, err, stderr.Bytes())
	}
	var lines []string
	in := false
	for _, l := range strings.Split(stdout.String(), "\n") {
		switch {
		case l == "\t-> Unit "+unit+":":
			in = true
			continue
		case strings.HasPrefix(l, "\t-> Unit ") || strings.HasPrefix(l, "\t-> Job "):
			in = false
		}
		if in {
			lines = append(lines, strings.TrimLeft(l, "\t"))
		}
	}
	if len(lines) == 0 {
		t.Fatalf("systemd --test did not dump %s", unit)
	}
	return lines
}

func values(lines []string, key string) []string {
	var out []string
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, key+": "); ok {
			out = append(out, v)
		}
	}
	return out
}

// TestUnitsVerify puts the rendered units in front of systemd:
// systemd-analyze verify (each file's Validate command) must be silent,
// and systemd's loaded view must say what the stack asks for.
func TestUnitsVerify(t *testing.T) {
	testtool.Require(t, "systemd-analyze", "systemd")
	s := exampleStack(t, "python-celery-cache")
	root, files := renderSandbox(t, s)
	unitDir := filepath.Join(root, "etc/systemd/system")
	for _, unit := range []string{WorkerUnit(&s.App), BeatUnit(&s.App)} {
		f := files[UnitPath(unit)]
		cmd := exec.Command("sh", "-c", f.Validate.String())
		cmd.Dir = "/"
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("%s: %v\n%s", f.Validate.String(), err, out)
		}
		d := dump(t, unitDir, unit)
		want := map[string][]string{
			"Type":             {"exec"},
			"User":             {"myapp"},
			"KillSignal":       {"SIGTERM"},
			"EnvironmentFile":  {root + "/etc/myapp/env", root + "/etc/myapp/settings.env"},
			"ProtectSystem":    {"strict"},
			"PrivateTmp":       {"yes"},
			"Restart":          {"always"},
			"WorkingDirectory": {root + "/srv/myapp"},
		}
		if unit == WorkerUnit(&s.App) {
			want["KillMode"] = []string{"mixed"}
			want["TimeoutStopSec"] = []string{"5min 30s"}
		} else {
			want["StateDirectory"] = []string{"myapp-celery-beat"}
		}
		for k, v := range want {
			if got := values(d, k); !slices.Equal(got, v) {
				t.Errorf("%s: systemd reads %s as %q, want %q", unit, k, got, v)
			}
		}
		if got := values(d, "Command Line"); len(got) != 1 || !strings.HasPrefix(got[0], root+"/srv/myapp/venv/bin/celery -A myapp ") {
			t.Errorf("%s: ExecStart read as %q", unit, got)
		}
	}
}

// TestWorkerRuns starts the worker the way the unit says (its ExecStart
// as systemd read it, in its WorkingDirectory) against a real Redis
// broker: it must take a task from one of its queues and run it, then
// stop on KillSignal with a warm shutdown within TimeoutStopSec.
func TestWorkerRuns(t *testing.T) {
	redisServer := testtool.Require(t, "redis-server", "redis-server")
	testtool.Require(t, "/usr/bin/python3", "python3")
	if out, err := exec.Command("/usr/bin/python3", "-c", "import redis").CombinedOutput(); err != nil {
		testtool.Missing(t, "python3-redis is missing (apt-get install -y python3-redis): "+string(out))
	}
	s := exampleStack(t, "python-celery-cache")
	root, _ := renderSandbox(t, s)
	port := testtool.FreePort(t, "127.0.0.1")
	redis := exec.Command(redisServer, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", root)
	if err := redis.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = redis.Process.Kill(); _ = redis.Wait() })

	work := filepath.Join(root, "srv/myapp")
	write(t, filepath.Join(work, "myapp.py"), []byte(`import os
from celery import Celery
app = Celery("myapp", broker=os.environ["TEST_BROKER"])
@app.task
def touch(path):
    with open(path, "w") as f:
        f.write("done by " + os.environ["DATABASE_HOST"])
`))
	d := dump(t, filepath.Join(root, "etc/systemd/system"), WorkerUnit(&s.App))
	argv := strings.Fields(values(d, "Command Line")[0])
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", fmt.Sprintf("TEST_BROKER=redis://127.0.0.1:%d/0", port)}
	// EnvironmentFile=: the settings the unit names, as systemd would.
	settings, err := os.ReadFile(filepath.Join(root, appenv.Path(&s.App)))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(settings), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			env = append(env, l)
		}
	}
	worker := exec.Command(argv[0], argv[1:]...)
	worker.Dir = values(d, "WorkingDirectory")[0]
	worker.Env = env
	var logs bytes.Buffer
	worker.Stdout, worker.Stderr = &logs, &logs
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- worker.Wait() }()
	t.Cleanup(func() {
		if worker.ProcessState == nil {
			_ = worker.Process.Kill()
			<-done
		}
	})

	out := filepath.Join(root, "touched")
	send := exec.Command("/usr/bin/python3", "-c", "import myapp, sys; myapp.touch.apply_async(args=[sys.argv[1]], queue='emails')", out)
	send.Dir, send.Env = worker.Dir, env
	if b, err := send.CombinedOutput(); err != nil {
		t.Fatalf("sending a task: %v\n%s", err, b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The task creates the file and then writes it: an empty file
		// is one being written.
		if b, err := os.ReadFile(out); err == nil && len(b) > 0 {
			if string(b) != "done by db.internal.example.com" {
				t.Errorf("task wrote %q", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker did not run the task from queue emails in 30 s\n%s", logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := worker.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("worker exited with %v after SIGTERM\n%s", err, logs.String())
		}
	case <-time.After(time.Duration(s.Workers.TimeLimit+stopMargin) * time.Second):
		t.Fatalf("worker still running after TimeoutStopSec\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "Warm shutdown") {
		t.Errorf("SIGTERM was not a warm shutdown:\n%s", logs.String())
	}
}
