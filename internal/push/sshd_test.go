package push

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/push/pushtest"
)

// These tests run push against real OpenSSH servers (see pushtest).

func readJSONFile(t *testing.T, p string, v any) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}

// A first push writes every file with its mode, records the manifest
// on the host, runs each validate command once and the reloads in
// order, and checks health; pushing again writes nothing at all.
func TestPushFirstThenNoop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 11, "lb1", "app1", "app2")
	o := e.opts(1)
	sum := run1(t, o)
	if !sum.OK {
		t.Fatalf("summary not ok: %+v", sum)
	}
	for _, n := range e.f.Names {
		h := e.f.Hosts[n]
		sameTree(t, n, targets(t, h), want(o, n))
		r := result(t, sum, n)
		if r.Status != StatusDone || r.Created != len(want(o, n)) || r.Updated+r.Removed+r.Unchanged != 0 || r.Generation != 1 {
			t.Errorf("%s: %+v", n, r)
		}
		if e.health.Hits(n) != 1 {
			t.Errorf("%s: %d health checks, want 1", n, e.health.Hits(n))
		}
		var st State
		readJSONFile(t, filepath.Join(h.Root, statePath("fleet")), &st)
		if st.Host != n || st.Generation != 1 || len(st.Files) != len(want(o, n)) {
			t.Errorf("%s: state %+v", n, st)
		}
		if g := readGen(t, h, 1); g.Status != genApplied || g.Kind != "push" || len(g.Changes) != len(st.Files) {
			t.Errorf("%s: generation 1 is %s/%s with %d changes", n, g.Kind, g.Status, len(g.Changes))
		}
		if _, err := os.Stat(filepath.Join(h.Root, lockPath("fleet"))); !os.IsNotExist(err) {
			t.Errorf("%s: lock not released: %v", n, err)
		}
	}
	// Validate commands run once each, in path order, seeing the files
	// under the host's root; reloads: daemon-reload, sysctl, then the
	// services, with "reload" dropped where a "restart" runs anyway.
	wantApp := []string{
		"gunicorn --check-config --config $ROOT/etc/app/gunicorn.conf.py wsgi:app",
		"nginx -t -c $ROOT/etc/nginx/nginx.conf",
		"systemd-analyze verify --man=no $ROOT/etc/systemd/system/app.service",
		"systemd-analyze verify --man=no nginx.service",
		"systemctl daemon-reload",
		"sysctl --system",
		"systemctl restart mtail",
		"systemctl restart prometheus-node-exporter",
		"systemctl enable app.service",
		"systemctl restart app.service",
		"systemctl restart nginx.service",
	}
	if got := e.f.Hosts["app1"].Commands(t); !slices.Equal(got, wantApp) {
		t.Errorf("app1 commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantApp, "\n"))
	}
	wantLB := []string{"nginx -t -c $ROOT/etc/nginx/nginx.conf", "systemd-analyze verify --man=no nginx.service", "systemctl daemon-reload", "sysctl --system",
		"systemctl restart prometheus-node-exporter", "systemctl restart nginx.service"}
	if got := e.f.Hosts["lb1"].Commands(t); !slices.Equal(got, wantLB) {
		t.Errorf("lb1 commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLB, "\n"))
	}
	e.f.Hosts["app2"].Commands(t)

	before := map[string]map[string]string{}
	for _, n := range e.f.Names {
		before[n] = mtimes(t, e.f.Hosts[n])
	}
	time.Sleep(20 * time.Millisecond) // so a rewrite would show in mtimes
	sum = run1(t, e.opts(1))
	for _, n := range e.f.Names {
		h := e.f.Hosts[n]
		r := result(t, sum, n)
		if r.Status != StatusUnchanged || r.Created+r.Updated+r.Removed != 0 || r.Unchanged != len(want(o, n)) {
			t.Errorf("re-push %s: %+v", n, r)
		}
		after := mtimes(t, h)
		for p, m := range before[n] {
			if after[p] != m && !strings.HasSuffix(p, filepath.Dir(lockPath("fleet"))) {
				t.Errorf("re-push %s: %s touched (%s → %s)", n, p, m, after[p])
			}
		}
		if cmds := h.Commands(t); len(cmds) > 0 {
			t.Errorf("re-push %s ran %q", n, cmds)
		}
		if _, err := os.Stat(filepath.Join(h.Root, genDir("fleet", 2))); !os.IsNotExist(err) {
			t.Errorf("re-push %s made generation 2", n)
		}
	}
}

// A file edited by hand since the last push stops the whole push before
// any host is written; --force backs the edit up and overwrites it.
func TestDriftAbortsThenForce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 21, "app1", "app2")
	v1 := e.opts(1)
	run1(t, v1)
	app1, app2 := e.f.Hosts["app1"], e.f.Hosts["app2"]
	conf := filepath.Join(app1.Root, "etc/app/gunicorn.conf.py")
	edited := append(app1.File(t, "/etc/app/gunicorn.conf.py"), "workers = 99  # hot fix\n"...)
	if err := os.WriteFile(conf, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	beforeApp2 := app2.Tree(t)

	v2 := e.opts(2)
	sum, err := Run(context.Background(), v2)
	if !errors.Is(err, ErrDrift) {
		t.Fatalf("err = %v, want drift", err)
	}
	if !strings.Contains(err.Error(), "app1: /etc/app/gunicorn.conf.py was changed on the host since the last push") {
		t.Errorf("error does not name the host and file: %v", err)
	}
	if r := result(t, sum, "app1"); r.Status != StatusFailed || r.Plan == nil || len(r.Plan.Drift) != 1 {
		t.Errorf("app1: %+v", r)
	}
	if r := result(t, sum, "app2"); r.Status != StatusAborted {
		t.Errorf("app2 status %s, want aborted", r.Status)
	}
	// Nothing written anywhere: app2 had a clean change to make.
	if got := app2.Tree(t); !mapsEqual(got, beforeApp2) {
		t.Error("app2 was written although app1 drifted")
	}
	if got := string(app1.File(t, "/etc/app/gunicorn.conf.py")); got != string(edited) {
		t.Error("app1's edited file was overwritten without --force")
	}
	for _, n := range e.f.Names {
		if _, err := os.Stat(filepath.Join(e.f.Hosts[n].Root, lockPath("fleet"))); !os.IsNotExist(err) {
			t.Errorf("%s: lock left behind", n)
		}
	}

	v2.Force = true
	sum = run1(t, v2)
	sameTree(t, "app1", targets(t, app1), want(v2, "app1"))
	g := readGen(t, app1, 2)
	if len(g.Changes) != 1 || g.Changes[0].Path != "/etc/app/gunicorn.conf.py" {
		t.Fatalf("generation 2 changes: %+v", g.Changes)
	}
	backup, err := os.ReadFile(filepath.Join(app1.Root, genDir("fleet", 2), g.Changes[0].Backup))
	if err != nil || string(backup) != string(edited) {
		t.Errorf("backup of the hand edit: %v %.60q", err, backup)
	}
	if r := result(t, sum, "app1"); r.Status != StatusDone || r.Updated != 1 {
		t.Errorf("forced app1: %+v", r)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// An unknown host key and a changed one are distinct errors, and
// neither lets anything be written.
func TestHostKeyUnknownAndChanged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 31, "app1")
	h := e.f.Hosts["app1"]

	o := e.opts(1)
	empty := filepath.Join(e.f.Dir, "known_hosts-empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	o.Auth.KnownHosts = []string{empty, filepath.Join(e.f.Dir, "missing")}
	_, err := Run(context.Background(), o)
	var hk *HostKeyError
	if !errors.Is(err, ErrHostKeyUnknown) || errors.Is(err, ErrHostKeyChanged) || !errors.As(err, &hk) {
		t.Fatalf("unknown key: err = %v", err)
	}
	if hk.Addr != h.Endpoint() || !strings.HasPrefix(hk.Fingerprint, "SHA256:") || !strings.Contains(hk.Hint(), "ssh-keyscan -p") {
		t.Errorf("unknown key error: %+v, hint %q", hk, hk.Hint())
	}

	// Another key for the same [host]:port, as after a reinstall or an
	// interception.
	_, other := pushtest.NewKey(t, e.f.Dir, "impostor", "")
	changed := filepath.Join(e.f.Dir, "known_hosts-changed")
	if err := os.WriteFile(changed, []byte(pushtest.KnownHostsLine(h.Endpoint(), other, false)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o.Auth.KnownHosts = []string{changed}
	_, err = Run(context.Background(), o)
	if !errors.Is(err, ErrHostKeyChanged) || errors.Is(err, ErrHostKeyUnknown) {
		t.Fatalf("changed key: err = %v", err)
	}
	if !strings.Contains(err.Error(), "HOST KEY CHANGED for "+h.Endpoint()) || !strings.Contains(err.Error(), changed+":1") {
		t.Errorf("changed key message: %v", err)
	}
	if tree := h.Tree(t); len(tree) != 1 { // the gunicorn stub only
		t.Errorf("files written despite a bad host key: %v", pushtest.Sorted(tree))
	}

	// Unhashed [host]:port entries work as well as hashed ones.
	o.Auth.KnownHosts = []string{e.f.KnownHosts(false)}
	run1(t, o)
}

// A connection cut mid-push leaves every target whole, old or new; the
// next push removes the temp files, finishes the same generation, and a
// rollback of it restores the state before the cut-off push.
func TestConnectionCutMidPush(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 41, "app1")
	h := e.f.Hosts["app1"]
	v1 := e.opts(1)
	run1(t, v1)
	afterV1 := targets(t, h)

	// v3 changes the sysctl file and gunicorn's config; reach the host
	// through a proxy that drops the connection.
	v3 := e.opts(3)
	changeTuning(t, e, &v3, 3)
	proxy := pushtest.StartProxy(t, h.Addr, h.Endpoint())
	v3.Hosts[0].SSH.Port = proxy.Port()
	known := filepath.Join(e.f.Dir, "known_hosts-proxy")
	os.WriteFile(known, []byte(pushtest.KnownHostsLine(proxy.Addr, h.HostKey, true)+"\n"), 0o600)
	v3.Auth.KnownHosts = []string{known}
	renames := 0
	v3.beforeRename = func(host, p, tmp string) {
		renames++
		if renames == 2 {
			proxy.Cut()
		}
	}
	_, err := Run(context.Background(), v3)
	if err == nil {
		t.Fatal("push through a cut connection succeeded")
	}
	if !strings.Contains(err.Error(), "app1: ") {
		t.Errorf("error does not name the host: %v", err)
	}
	got := targets(t, h)
	wantV3 := want(v3, "app1")
	newer := 0
	for p, old := range afterV1 {
		switch got[p] {
		case old:
		case wantV3[p]:
			newer++
		default:
			t.Errorf("%s is neither old nor new after the cut: %.80q", p, got[p])
		}
	}
	if newer != 1 {
		t.Errorf("%d files new after the cut, want exactly the first renamed one", newer)
	}
	if tmp := tempFiles(t, h); len(tmp) != 1 {
		t.Errorf("temp files after the cut: %v, want the one not renamed", tmp)
	}
	if g := readGen(t, h, 2); g.Status != genApplying {
		t.Errorf("generation 2 status %s after the cut", g.Status)
	}

	// Direct connection: the next push cleans up and completes
	// generation 2.
	v3.Hosts[0].SSH.Port = h.Port
	v3.Auth.KnownHosts = []string{e.known}
	v3.beforeRename = nil
	// The cut-off push could not release its lock: let it go stale.
	v3.LockTimeout = time.Millisecond
	time.Sleep(5 * time.Millisecond)
	sum := run1(t, v3)
	sameTree(t, "app1", targets(t, h), wantV3)
	if tmp := tempFiles(t, h); len(tmp) != 0 {
		t.Errorf("temp files left after the next push: %v", tmp)
	}
	r := result(t, sum, "app1")
	if r.Generation != 2 || !slices.ContainsFunc(r.Notes, func(s string) bool { return strings.Contains(s, "removed 1 temp file") }) {
		t.Errorf("resumed push: generation %d, notes %q", r.Generation, r.Notes)
	}
	if g := readGen(t, h, 2); g.Status != genApplied || len(g.Changes) != 2 {
		t.Errorf("generation 2 after resume: %s with %d changes", g.Status, len(g.Changes))
	}
	// Undoing generation 2 returns to v1 exactly: its backups were
	// taken before the cut, not from the half-pushed state.
	if _, err := Rollback(context.Background(), e.opts(1)); err != nil {
		t.Fatal(err)
	}
	sameTree(t, "app1", targets(t, h), afterV1)
}

// changeTuning makes version v differ in the sysctl file too, so a push
// has two files to change.
func changeTuning(t *testing.T, e *env, o *Options, v int) {
	t.Helper()
	src := e.f.StackCUE("fleet", versions[v]) + "tuning: sysctl: \"net.ipv4.tcp_fin_timeout\": 20\n"
	hosts, err := Targets(renderStack(t, src), TargetOptions{Hosts: hostNames(o), Root: e.f.Dir + "/{host}/root", HealthURL: e.health.URL})
	if err != nil {
		t.Fatal(err)
	}
	o.Hosts = hosts
}

func hostNames(o *Options) []string {
	var out []string
	for _, h := range o.Hosts {
		out = append(out, h.Name)
	}
	return out
}

// A failing validate command puts every file back as it was, removes
// created files, reloads nothing, and the host reports it.
func TestValidationFailureRestores(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 51, "app1")
	h := e.f.Hosts["app1"]

	// First push: nothing existed, so restoring means removing.
	h.FailCommand(t, "nginx", `nginx: [emerg] unknown directive "gzip_foo"`)
	sum, err := Run(context.Background(), e.opts(1))
	if !errors.Is(err, ErrValidate) || errors.Is(err, ErrRestore) {
		t.Fatalf("err = %v, want validation failure", err)
	}
	if !strings.Contains(err.Error(), `/etc/nginx/nginx.conf" exited with status 1`) || !strings.Contains(err.Error(), `unknown directive "gzip_foo"`) {
		t.Errorf("error lacks the command and its output: %v", err)
	}
	if r := result(t, sum, "app1"); r.Status != StatusReverted {
		t.Errorf("status %s, want reverted", r.Status)
	}
	if tree := targets(t, h); len(tree) != 0 {
		t.Errorf("files left after restoring a first push: %v", pushtest.Sorted(tree))
	}
	for _, c := range h.Commands(t) {
		if strings.HasPrefix(c, "systemctl") || strings.HasPrefix(c, "sysctl") {
			t.Errorf("reloaded after a failed validation: %s", c)
		}
	}
	if e.health.Hits("app1") != 0 {
		t.Error("health checked after a failed validation")
	}
	if g := readGen(t, h, 1); g.Status != genReverted {
		t.Errorf("generation 1 status %s", g.Status)
	}

	h.FailCommand(t, "nginx", "")
	v1 := e.opts(1)
	run1(t, v1)
	afterV1 := targets(t, h)
	h.Commands(t)

	// v2 changes gunicorn's config; its check fails.
	h.FailCommand(t, "gunicorn", "Error: worker_class invalid")
	_, err = Run(context.Background(), e.opts(2))
	if !errors.Is(err, ErrValidate) {
		t.Fatalf("err = %v", err)
	}
	sameTree(t, "app1", targets(t, h), afterV1)
	if cmds := h.Commands(t); !slices.Equal(cmds, []string{"gunicorn --check-config --config $ROOT/etc/app/gunicorn.conf.py wsgi:app"}) {
		t.Errorf("commands: %q", cmds)
	}
	var st State
	readJSONFile(t, filepath.Join(h.Root, statePath("fleet")), &st)
	if st.Generation != 2 {
		t.Errorf("host record moved to generation %d by a reverted push", st.Generation)
	}
}

// Rollback restores the previous generation byte for byte with modes,
// including a file that existed before hacompile managed it, and steps
// further back each time it runs.
func TestRollback(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 61, "app1")
	h := e.f.Hosts["app1"]
	// The distribution's own nginx.conf, as push finds it.
	orig := filepath.Join(h.Root, "etc/nginx/nginx.conf")
	os.MkdirAll(filepath.Dir(orig), 0o755)
	if err := os.WriteFile(orig, []byte("user www-data;\n# Debian default\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Chmod(orig, 0o640)
	pristine := targets(t, h)

	run1(t, e.opts(1))
	afterV1 := targets(t, h)
	run1(t, e.opts(2))
	if mapsEqual(targets(t, h), afterV1) {
		t.Fatal("v2 changed nothing")
	}
	h.Commands(t)

	sum, err := Rollback(context.Background(), e.opts(2))
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, "app1", targets(t, h), afterV1)
	r := result(t, sum, "app1")
	if r.Status != StatusDone || r.Generation != 3 || r.Plan.Reverts != 2 {
		t.Errorf("rollback: %+v", r)
	}
	if cmds := h.Commands(t); !slices.Contains(cmds, "systemctl reload app.service") {
		t.Errorf("rollback did not reload the app: %q", cmds)
	}
	var st State
	readJSONFile(t, filepath.Join(h.Root, statePath("fleet")), &st)
	if st.Generation != 3 || st.Files[0].SHA256 != sha([]byte(strings.SplitN(afterV1[st.Files[0].Path], " ", 2)[1])) {
		t.Errorf("host record after rollback: generation %d", st.Generation)
	}
	if g := readGen(t, h, 2); g.Status != genRolledBack {
		t.Errorf("generation 2 is %s", g.Status)
	}

	// Again: undo the first push, back to the distribution's files.
	if _, err := Rollback(context.Background(), e.opts(2)); err != nil {
		t.Fatal(err)
	}
	sameTree(t, "app1", targets(t, h), pristine)
	if _, err := os.Stat(filepath.Join(h.Root, statePath("fleet"))); !os.IsNotExist(err) {
		t.Errorf("host record left after undoing the first push: %v", err)
	}
	_, err = Rollback(context.Background(), e.opts(2))
	if !errors.Is(err, ErrNoGeneration) {
		t.Errorf("third rollback: %v", err)
	}
	// A push after all that starts from the pristine host again.
	run1(t, e.opts(1))
	sameTree(t, "app1", targets(t, h), afterV1)
}

// Two pushes to one host cannot interleave: the second fails on the
// lock while the first runs; a lock left by a crashed push goes stale.
func TestConcurrentPushesLock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 71, "app1")
	h := e.f.Hosts["app1"]
	reached, release := e.health.Hold("app1")
	defer release()
	first := make(chan error, 1)
	o1 := e.opts(1)
	o1.By = "first@push"
	go func() {
		_, err := Run(context.Background(), o1)
		first <- err
	}()
	select {
	case <-reached:
	case err := <-first:
		t.Fatalf("first push ended early: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("first push never reached its health check")
	}
	_, err := Run(context.Background(), e.opts(2))
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "held by first@push (pid 4242)") {
		t.Fatalf("second push: %v", err)
	}
	release()
	if err := <-first; err != nil {
		t.Fatalf("first push: %v", err)
	}
	sameTree(t, "app1", targets(t, h), want(e.opts(1), "app1"))

	// A lock nobody refreshed for longer than LockTimeout is taken over.
	lp := filepath.Join(h.Root, lockPath("fleet"))
	os.WriteFile(lp, []byte(`{"by":"crashed@ci","pid":1}`), 0o644)
	o := e.opts(2)
	if _, err := Run(context.Background(), o); !errors.Is(err, ErrLocked) {
		t.Fatalf("fresh foreign lock: %v", err)
	}
	old := time.Now().Add(-2 * o.LockTimeout)
	os.Chtimes(lp, old, old)
	run1(t, o)
	if _, err := os.Stat(lp); !os.IsNotExist(err) {
		t.Error("taken-over lock not released")
	}
}

// With --max-fail 0 the rollout stops after the batch where a host
// failed; later batches are not touched. Balancers go one at a time
// first.
func TestRollingMaxFail(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 81, "lb1", "app1", "app2", "app3", "app4")
	e.f.Hosts["app2"].FailCommand(t, "nginx", "nginx: broken on purpose")
	o := e.opts(1)
	o.Batch = "50%"
	sum, err := Run(context.Background(), o)
	if !errors.Is(err, ErrValidate) {
		t.Fatalf("err = %v", err)
	}
	wantStatus := map[string]string{"lb1": StatusDone, "app1": StatusDone, "app2": StatusReverted, "app3": StatusSkipped, "app4": StatusSkipped}
	wantBatch := map[string]int{"lb1": 1, "app1": 2, "app2": 2, "app3": 3, "app4": 3}
	var order []string
	for _, r := range sum.Hosts {
		order = append(order, r.Host)
		if r.Status != wantStatus[r.Host] || r.Batch != wantBatch[r.Host] {
			t.Errorf("%s: batch %d status %s, want %d %s", r.Host, r.Batch, r.Status, wantBatch[r.Host], wantStatus[r.Host])
		}
	}
	if !slices.Equal(order, []string{"lb1", "app1", "app2", "app3", "app4"}) {
		t.Errorf("rollout order %v", order)
	}
	for _, n := range []string{"app3", "app4"} {
		h := e.f.Hosts[n]
		if tree := h.Tree(t); len(tree) != 1 {
			t.Errorf("%s was touched: %v", n, pushtest.Sorted(tree))
		}
		if cmds := h.Commands(t); len(cmds) != 0 {
			t.Errorf("%s ran %q", n, cmds)
		}
	}

	// Tolerating one failure, the rollout goes on past it.
	o.MaxFail = 1
	sum, err = Run(context.Background(), o)
	if !errors.Is(err, ErrValidate) {
		t.Fatalf("err = %v", err)
	}
	for _, n := range []string{"app3", "app4"} {
		if r := result(t, sum, n); r.Status != StatusDone {
			t.Errorf("%s: %s", n, r.Status)
		}
		sameTree(t, n, targets(t, e.f.Hosts[n]), want(o, n))
	}
	if r := result(t, sum, "lb1"); r.Status != StatusUnchanged {
		t.Errorf("lb1 on the second run: %s", r.Status)
	}
}

// An unhealthy host after reload fails the host (its previous files
// are put back) and, as a failed batch, stops the rollout.
func TestHealthGate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 91, "app1", "app2")
	e.health.SetStatus("app1", 503)
	o := e.opts(1)
	o.Batch = "1"
	o.HealthTimeout = 600 * time.Millisecond
	sum, err := Run(context.Background(), o)
	if !errors.Is(err, ErrHealth) || !strings.Contains(err.Error(), "status 503 Service Unavailable") {
		t.Fatalf("err = %v", err)
	}
	if r := result(t, sum, "app1"); r.Status != StatusReverted {
		t.Errorf("app1: %s", r.Status)
	}
	if r := result(t, sum, "app2"); r.Status != StatusSkipped {
		t.Errorf("app2: %s", r.Status)
	}
}

// A network path that goes silent while a validate command runs is
// caught by keepalives within --timeout, not after --command-timeout;
// the next push validates and reloads what the cut-off push put in
// place, although no file differs any more.
func TestKeepaliveCatchesSilentNetwork(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 101, "app1")
	h := e.f.Hosts["app1"]
	run1(t, e.opts(1))
	h.Commands(t)

	v2 := e.opts(2)
	proxy := pushtest.StartProxy(t, h.Addr, h.Endpoint())
	v2.Hosts[0].SSH.Port = proxy.Port()
	known := filepath.Join(e.f.Dir, "known_hosts-proxy")
	os.WriteFile(known, []byte(pushtest.KnownHostsLine(proxy.Addr, h.HostKey, true)+"\n"), 0o600)
	v2.Auth.KnownHosts = []string{known}
	v2.Timeout, v2.CommandTimeout = 500*time.Millisecond, 30*time.Second
	h.SlowCommand(t, "gunicorn", 5)
	done := make(chan error, 1)
	go func() { _, err := Run(context.Background(), v2); done <- err }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile(h.Log); strings.Contains(string(b), "gunicorn") {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the push ended before its validate command started: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the validate command never started")
		}
	}
	proxy.Freeze()
	frozen := time.Now()
	err := <-done
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "no keepalive answer within 500ms") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(frozen); d > 2*time.Second {
		t.Errorf("silence noticed after %s", d)
	}
	sameTree(t, "app1", targets(t, h), want(v2, "app1"))

	h.SlowCommand(t, "gunicorn", 0)
	h.Commands(t)
	v2.Hosts[0].SSH.Port, v2.Auth.KnownHosts, v2.Timeout = h.Port, []string{e.known}, 5*time.Second
	v2.LockTimeout = time.Millisecond // the cut-off push's lock
	time.Sleep(5 * time.Millisecond)
	sum := run1(t, v2)
	if r := result(t, sum, "app1"); r.Status != StatusDone || r.Generation != 2 || r.Updated != 0 {
		t.Errorf("resumed push: %+v", r)
	}
	wantCmds := []string{"gunicorn --check-config --config $ROOT/etc/app/gunicorn.conf.py wsgi:app", "systemctl reload app.service"}
	if cmds := h.Commands(t); !slices.Equal(cmds, wantCmds) {
		t.Errorf("resumed push ran %q, want %q", cmds, wantCmds)
	}
	if g := readGen(t, h, 2); g.Status != genApplied {
		t.Errorf("generation 2: %s", g.Status)
	}
}

// Only the newest --keep generations of backups stay on a host.
func TestPruneGenerations(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 111, "app1")
	h := e.f.Hosts["app1"]
	for _, v := range []int{1, 2, 3} {
		o := e.opts(v)
		o.Keep = 2
		run1(t, o)
	}
	ents, err := os.ReadDir(filepath.Join(h.Root, backupsDir("fleet")))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range ents {
		names = append(names, d.Name())
	}
	if !slices.Equal(names, []string{"2", "3"}) {
		t.Errorf("generations kept: %v, want [2 3]", names)
	}

	// A generation directory without a record (a push cut off while
	// taking backups) is replaced by the next push's.
	orphan := filepath.Join(h.Root, genDir("fleet", 4), "files/etc/app")
	os.MkdirAll(orphan, 0o755)
	os.WriteFile(filepath.Join(orphan, "gunicorn.conf.py"), []byte("partial"), 0o644)
	sum := run1(t, e.opts(1))
	r := result(t, sum, "app1")
	if g := readGen(t, h, 4); r.Generation != 4 || g.Status != genApplied || g.Changes[0].Old.SHA256 != sha([]byte(strings.SplitN(want(e.opts(3), "app1")["/etc/app/gunicorn.conf.py"], " ", 2)[1])) {
		t.Errorf("generation 4 after an orphan: %d %+v", r.Generation, g)
	}
	if !slices.ContainsFunc(r.Notes, func(s string) bool { return strings.Contains(s, "left without a record") }) {
		t.Errorf("notes: %q", r.Notes)
	}
}
