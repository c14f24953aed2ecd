package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/push/pushtest"
	"github.com/hacompile/hacompile/internal/testtool"
)

// untouched fails unless the host's tree is what the fleet put there
// (the gunicorn stub) and it ran no command.
func untouched(t *testing.T, e *env, n string) {
	t.Helper()
	h := e.f.Hosts[n]
	if tree := targets(t, h); len(tree) != 0 {
		t.Errorf("%s was written: %d files", n, len(tree))
	}
	if cmds := h.Commands(t); len(cmds) != 0 {
		t.Errorf("%s ran %q", n, cmds)
	}
}

// A host that fails its preflight (here: one unreachable, one whose
// lock another push holds) is reported and left out; it counts against
// --max-fail. Within the tolerance the others go ahead, the balancer
// first; beyond it, or under --require-all, nothing is written anywhere.
func TestPreflightFailureSkipsHost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 211, "lb1", "app1", "app2", "app3", "app4")
	lock := filepath.Join(e.f.Hosts["app3"].Root, lockPath("fleet"))
	os.MkdirAll(filepath.Dir(lock), 0o755)
	if err := os.WriteFile(lock, []byte(`{"by":"other@push","pid":7,"token":"theirs"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := func() Options {
		o := e.opts(1)
		for i := range o.Hosts {
			if o.Hosts[i].Name == "app1" {
				o.Hosts[i].SSH.Port = testtool.FreePort(t, o.Hosts[i].SSH.HostName) // nothing listens
			}
		}
		return o
	}

	// Two failed preflights, none tolerated: nothing is written.
	o := opts()
	sum, err := Run(context.Background(), o)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "app1: connect to") {
		t.Fatalf("err = %v", err)
	}
	for _, n := range []string{"lb1", "app2", "app4"} {
		if r := result(t, sum, n); r.Status != StatusAborted {
			t.Errorf("%s: %s, want aborted", n, r.Status)
		}
		untouched(t, e, n)
	}

	// Tolerating two, the other hosts go ahead.
	o.MaxFail = 2
	sum, err = Run(context.Background(), o)
	if err == nil || !errors.Is(err, ErrLocked) || sum.OK {
		t.Fatalf("err = %v, ok %v", err, sum.OK)
	}
	var order []string
	for _, r := range sum.Hosts {
		order = append(order, r.Host)
	}
	if !slices.Equal(order, []string{"app1", "app3", "lb1", "app2", "app4"}) {
		t.Errorf("summary order %v", order)
	}
	for _, n := range []string{"app1", "app3"} {
		r := result(t, sum, n)
		if r.Status != StatusFailed || r.Batch != 0 || !slices.ContainsFunc(r.Notes, func(s string) bool { return strings.Contains(s, "failed its preflight") }) {
			t.Errorf("%s: %+v", n, r)
		}
		if n == "app1" {
			untouched(t, e, n)
		}
	}
	if b, _ := os.ReadFile(lock); !strings.Contains(string(b), "theirs") {
		t.Error("the other push's lock on app3 was touched")
	}
	for n, batch := range map[string]int{"lb1": 1, "app2": 2, "app4": 2} {
		if r := result(t, sum, n); r.Status != StatusDone || r.Batch != batch {
			t.Errorf("%s: batch %d %s, want %d done", n, r.Batch, r.Status, batch)
		}
		sameTree(t, n, targets(t, e.f.Hosts[n]), want(o, n))
	}

	// --require-all: one failed preflight stops everything, whatever
	// --max-fail says.
	os.Remove(lock)
	for _, n := range e.f.Names {
		e.f.Hosts[n].Commands(t)
	}
	before := map[string]map[string]string{}
	for _, n := range e.f.Names {
		before[n] = targets(t, e.f.Hosts[n])
	}
	o2 := e.opts(2)
	o2.Hosts[slices.IndexFunc(o2.Hosts, func(h Host) bool { return h.Name == "app1" })].SSH.Port = o.Hosts[slices.IndexFunc(o.Hosts, func(h Host) bool { return h.Name == "app1" })].SSH.Port
	o2.MaxFail, o2.RequireAll = 2, true
	sum, err = Run(context.Background(), o2)
	if err == nil || !strings.Contains(err.Error(), "app1: connect to") {
		t.Fatalf("require-all: err = %v", err)
	}
	for _, n := range []string{"lb1", "app2", "app3", "app4"} {
		if r := result(t, sum, n); r.Status != StatusAborted {
			t.Errorf("require-all %s: %s", n, r.Status)
		}
		if got := targets(t, e.f.Hosts[n]); !mapsEqual(got, before[n]) {
			t.Errorf("require-all: %s was written", n)
		}
	}
}

// sessionCounter dials like the default dialer and counts the SSH
// connections open at once (those to the fleet's sshds, not the health
// checks').
type sessionCounter struct {
	mu        sync.Mutex
	sshd      map[string]bool
	open, max int
	total     int
}

func (s *sessionCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil || !s.sshd[addr] {
		return c, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open++
	s.total++
	s.max = max(s.max, s.open)
	return &countedConn{Conn: c, s: s}, nil
}

type countedConn struct {
	net.Conn
	s    *sessionCounter
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		c.s.open--
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

// --parallel caps the SSH connections open at once, in the preflight
// and in a batch wider than the cap, and every connection is closed by
// the end.
func TestParallelCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 221, "app1", "app2", "app3", "app4", "app5", "app6")
	sc := &sessionCounter{sshd: map[string]bool{}}
	for _, n := range e.f.Names {
		sc.sshd[e.f.Hosts[n].Endpoint()] = true
		// Slow enough that hosts overlap when they may.
		e.f.Hosts[n].SlowCommand(t, "gunicorn", 1)
	}
	o := e.opts(1)
	o.Parallel, o.Dial = 2, sc.dial
	sum := run1(t, o)
	for _, n := range e.f.Names {
		if r := result(t, sum, n); r.Status != StatusDone || r.Batch != 1 {
			t.Errorf("%s: batch %d %s", n, r.Batch, r.Status)
		}
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.max != 2 {
		t.Errorf("%d SSH connections open at once, want 2 (--parallel 2)", sc.max)
	}
	if sc.open != 0 {
		t.Errorf("%d SSH connections left open", sc.open)
	}
	// More hosts than slots: each is connected to for its preflight and
	// again in its batch.
	if sc.total != 12 {
		t.Errorf("%d SSH connections made, want 12", sc.total)
	}
}

// A canary batch goes first (after the balancers); when its host fails,
// the rollout stops although --max-fail would tolerate the failure, and
// the other hosts are left untouched. Once it passes, the rest follow in
// their batches.
func TestCanaryStopsRollout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 231, "lb1", "app1", "app2", "app3", "app4")
	e.f.Hosts["app1"].FailCommand(t, "gunicorn", "Error: worker_class invalid")
	o := e.opts(1)
	o.Canary, o.MaxFail = -1, 3 // the default: 1 host, as there are 4 app hosts
	sum, err := Run(context.Background(), o)
	if !errors.Is(err, ErrValidate) {
		t.Fatalf("err = %v", err)
	}
	wantStatus := map[string]string{"lb1": StatusDone, "app1": StatusReverted, "app2": StatusSkipped, "app3": StatusSkipped, "app4": StatusSkipped}
	wantBatch := map[string]int{"lb1": 1, "app1": 2, "app2": 3, "app3": 3, "app4": 3}
	for n, st := range wantStatus {
		if r := result(t, sum, n); r.Status != st || r.Batch != wantBatch[n] {
			t.Errorf("%s: batch %d %s, want %d %s", n, r.Batch, r.Status, wantBatch[n], st)
		}
	}
	for _, n := range []string{"app2", "app3", "app4"} {
		untouched(t, e, n)
	}

	e.f.Hosts["app1"].FailCommand(t, "gunicorn", "")
	sum = run1(t, o)
	for _, n := range []string{"app1", "app2", "app3", "app4"} {
		if r := result(t, sum, n); r.Status != StatusDone {
			t.Errorf("second run %s: %s", n, r.Status)
		}
		sameTree(t, n, targets(t, e.f.Hosts[n]), want(o, n))
	}
}

// When a reload or the health check after it fails, the host gets its
// previous files back byte for byte (modes too), its records say the
// generation was reverted, and the same reloads run again on the
// previous files; the next push starts over from there.
func TestReloadFailureReverts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 241, "app1")
	h := e.f.Hosts["app1"]
	run1(t, e.opts(1))
	afterV1 := targets(t, h)
	sp := filepath.Join(h.Root, statePath("fleet"))
	stateV1, _ := os.ReadFile(sp)
	h.Commands(t)

	// v3 changes gunicorn's config and the sysctl file.
	v3 := e.opts(3)
	changeTuning(t, e, &v3, 3)
	h.FailOnce(t, "systemctl", "Job for app.service failed because the control process exited with error code.")
	sum, err := Run(context.Background(), v3)
	if !errors.Is(err, ErrReload) || !strings.Contains(err.Error(), "generation 2 was reverted: the previous files are back and reloaded (and healthy)") {
		t.Fatalf("err = %v", err)
	}
	if r := result(t, sum, "app1"); r.Status != StatusReverted || r.Generation != 2 {
		t.Errorf("app1: %+v", r)
	}
	sameTree(t, "app1", targets(t, h), afterV1)
	if st, _ := os.ReadFile(sp); string(st) != string(stateV1) {
		t.Errorf("host record after the revert:\n%s\nwant:\n%s", st, stateV1)
	}
	if g := readGen(t, h, 2); g.Status != genReverted {
		t.Errorf("generation 2: %s", g.Status)
	}
	wantCmds := []string{
		"gunicorn --check-config --config $ROOT/etc/app/gunicorn.conf.py wsgi:app",
		"sysctl --system", "systemctl reload app.service", // fails
		"sysctl --system", "systemctl reload app.service", // the previous files
	}
	if cmds := h.Commands(t); !slices.Equal(cmds, wantCmds) {
		t.Errorf("commands %q, want %q", cmds, wantCmds)
	}
	if n := e.health.Hits("app1"); n != 2 { // v1's push, then after the revert
		t.Errorf("%d health checks", n)
	}

	// Unhealthy after the reload: the same.
	e.health.SetStatus("app1", 503)
	v3.HealthTimeout = 600 * time.Millisecond
	_, err = Run(context.Background(), v3)
	if !errors.Is(err, ErrHealth) || !strings.Contains(err.Error(), "generation 3 was reverted") || !strings.Contains(err.Error(), "still unhealthy") {
		t.Fatalf("err = %v", err)
	}
	sameTree(t, "app1", targets(t, h), afterV1)
	if st, _ := os.ReadFile(sp); string(st) != string(stateV1) {
		t.Errorf("host record after the second revert:\n%s", st)
	}

	// Healthy again, the push goes through and rollback undoes it to v1.
	e.health.SetStatus("app1", 200)
	if r := result(t, run1(t, v3), "app1"); r.Status != StatusDone || r.Generation != 4 || r.Updated != 2 {
		t.Errorf("push after the reverts: %+v", r)
	}
	sameTree(t, "app1", targets(t, h), want(v3, "app1"))
	if _, err := Rollback(context.Background(), e.opts(1)); err != nil {
		t.Fatal(err)
	}
	sameTree(t, "app1", targets(t, h), afterV1)
}

// Under a root prefix (push --root: a chroot or staging tree on some
// machine), push runs only the validate commands that check the tree;
// the others and every reload (systemctl, sysctl) would act on the
// machine's own services, so they are left out and the plan and the
// result say so.
func TestRootSkipsMachineCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 251, "app1")
	h := e.f.Hosts["app1"]
	o := e.opts(1)
	o.sandboxCommands = false
	sum := run1(t, o)
	r := result(t, sum, "app1")
	wantCmds := []string{
		"gunicorn --check-config --config $ROOT/etc/app/gunicorn.conf.py wsgi:app",
		"nginx -t -c $ROOT/etc/nginx/nginx.conf",
		"systemd-analyze verify --man=no $ROOT/etc/systemd/system/app.service",
	}
	if cmds := h.Commands(t); !slices.Equal(cmds, wantCmds) {
		t.Errorf("commands under --root: %q, want %q", cmds, wantCmds)
	}
	note := "not run under the root " + h.Root + ", as it would act on this machine's own services rather than the tree: " +
		"systemd-analyze verify --man=no nginx.service; systemctl daemon-reload; sysctl --system;"
	if !slices.ContainsFunc(r.Notes, func(s string) bool { return strings.HasPrefix(s, note) }) || r.Plan == nil ||
		!slices.ContainsFunc(r.Plan.Notes, func(s string) bool { return strings.HasPrefix(s, note) }) || len(r.Reloaded) != 0 {
		t.Errorf("result notes %q, plan notes %q, reloaded %q", r.Notes, r.Plan.Notes, r.Reloaded)
	}
	sameTree(t, "app1", targets(t, h), want(o, "app1"))
}

// writeLock puts a lock on the host as another push would have left it,
// refreshed age ago.
func writeLock(t *testing.T, h string, li LockInfo, age time.Duration) {
	t.Helper()
	b, _ := json.Marshal(li)
	os.MkdirAll(filepath.Dir(h), 0o755)
	if err := os.WriteFile(h, b, 0o644); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-age)
	os.Chtimes(h, at, at)
}

// A lock records who holds it: machine, boot, pid and the process's
// start time. It is taken over only from a holder proven gone, and
// never while its heartbeat is fresh: a holder on this machine whose
// process still runs keeps it however old its heartbeat; one whose
// process exited, or from before a reboot, loses it once stale.
func TestLockTakenOnlyFromHolderGone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 243, "app1")
	h := e.f.Hosts["app1"]
	lp := filepath.Join(h.Root, lockPath("fleet"))

	// A running push (this test process) records its identity, and a
	// second push may not take its lock even when it looks stale.
	reached, release := e.health.Hold("app1")
	defer release()
	o1 := e.opts(1)
	o1.By, o1.PID = "first@push", os.Getpid()
	first := background(o1)
	select {
	case <-reached:
	case err := <-first:
		t.Fatalf("first push ended early: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("first push never reached its health check")
	}
	var held LockInfo
	readJSONFile(t, lp, &held)
	me, _ := os.Hostname()
	if held.Machine != me || held.BootID != bootID() || held.BootID == "" || held.PID != os.Getpid() || held.ProcStart != procStart(os.Getpid()) || held.ProcStart == 0 || held.Started.IsZero() {
		t.Errorf("lock content: %+v", held)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(lp, old, old)
	o2 := e.opts(2)
	o2.LockTimeout = 30 * time.Second
	_, err := Run(context.Background(), o2)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("its process (pid %d) still runs on this machine", os.Getpid())) {
		t.Fatalf("second push: %v", err)
	}
	release()
	if err := <-first; err != nil {
		t.Fatalf("first push: %v", err)
	}

	// A pid that no longer runs: a process that has exited.
	sh := exec.Command("true")
	if err := sh.Run(); err != nil {
		t.Fatal(err)
	}
	dead := LockInfo{By: "crashed@here", PID: sh.Process.Pid, Token: "dead", Machine: me, BootID: bootID(), ProcStart: 1}
	writeLock(t, lp, dead, 0)
	if _, err := Run(context.Background(), o2); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "no longer runs on this machine") {
		t.Fatalf("fresh lock of an exited process: %v", err)
	}
	writeLock(t, lp, dead, time.Hour)
	sum := run1(t, o2)
	if r := result(t, sum, "app1"); !slices.ContainsFunc(r.Notes, func(s string) bool {
		return strings.Contains(s, fmt.Sprintf("took over the lock of crashed@here (pid %d", dead.PID)) && strings.HasSuffix(s, "no longer runs on this machine")
	}) {
		t.Errorf("notes: %q", r.Notes)
	}

	// From before a reboot of this machine.
	writeLock(t, lp, LockInfo{By: "before@reboot", PID: os.Getpid(), Token: "boot", Machine: me, BootID: "another-boot", ProcStart: procStart(os.Getpid())}, time.Hour)
	o1.PID = 4242
	sum = run1(t, o1)
	if r := result(t, sum, "app1"); !slices.ContainsFunc(r.Notes, func(s string) bool { return strings.HasSuffix(s, "its machine rebooted since") }) {
		t.Errorf("notes: %q", r.Notes)
	}
	if _, err := os.Stat(lp); !os.IsNotExist(err) {
		t.Error("lock left behind")
	}
}

// Two pushes started at once against a host whose lock a crashed push
// left: one takes it over, the other is refused while the first runs;
// neither removes the other's lock.
func TestConcurrentTakeover(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 245, "app1")
	h := e.f.Hosts["app1"]
	lp := filepath.Join(h.Root, lockPath("fleet"))
	writeLock(t, lp, LockInfo{By: "crashed@elsewhere", PID: 1, Token: "crashed", Machine: "elsewhere"}, time.Hour)
	reached, release := e.health.Hold("app1")
	defer release()
	a, b := e.opts(1), e.opts(1)
	a.By, b.By = "a@push", "b@push"
	da, db := background(a), background(b)
	var loser error
	select {
	case loser = <-da:
		da = db
	case loser = <-db:
	case <-time.After(30 * time.Second):
		t.Fatal("neither push was refused")
	}
	if !errors.Is(loser, ErrLocked) || !strings.Contains(loser.Error(), "held by ") || strings.Contains(loser.Error(), "crashed@elsewhere") {
		t.Fatalf("the refused push: %v", loser)
	}
	<-reached
	var held LockInfo
	readJSONFile(t, lp, &held)
	if held.By != "a@push" && held.By != "b@push" {
		t.Errorf("lock held by %q while the winner runs", held.By)
	}
	release()
	if err := <-da; err != nil {
		t.Fatalf("the winning push: %v", err)
	}
	sameTree(t, "app1", targets(t, h), want(a, "app1"))
	if _, err := os.Stat(lp); !os.IsNotExist(err) {
		t.Error("lock left behind")
	}

	// Another push is taking over the stale lock right now (its
	// takeover file is fresh): refused; a takeover file its taker left
	// behind (as old as the stale period) is cleared.
	writeLock(t, lp, LockInfo{By: "crashed@elsewhere", PID: 1, Token: "crashed", Machine: "elsewhere"}, time.Hour)
	writeLock(t, lp+".takeover", LockInfo{By: "taker@elsewhere", Token: "taker"}, 0)
	if _, err := Run(context.Background(), e.opts(2)); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "is being taken over by another push") {
		t.Fatalf("with a takeover under way: %v", err)
	}
	writeLock(t, lp+".takeover", LockInfo{By: "taker@elsewhere", Token: "taker"}, time.Hour)
	run1(t, e.opts(2))
	for _, p := range []string{lp, lp + ".takeover"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind", p)
		}
	}
}

// waitLog waits until the host's command log has a line containing s.
func waitLog(t *testing.T, h *pushtest.Host, s string, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(h.Log); strings.Contains(string(b), s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the command log within %s", s, within)
		}
	}
}

// A change that can cut the connection (here the sysctl file) is
// guarded by a dead-man timer on the host: when the connection is lost
// during the reload and push cannot confirm, the timer puts the previous
// files and records back byte for byte and reloads them; when push
// confirms over a new connection, the timer fires and does nothing.
func TestDeadmanTimer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 247, "app1")
	h := e.f.Hosts["app1"]
	run1(t, e.opts(1))
	afterV1 := targets(t, h)
	sp := filepath.Join(h.Root, statePath("fleet"))
	stateV1, _ := os.ReadFile(sp)
	h.Commands(t)

	// v3 changes the sysctl file; the host is reached through a proxy
	// that stops letting push in while sysctl --system runs.
	v3 := e.opts(3)
	changeTuning(t, e, &v3, 3)
	v3.ConfirmTimeout = 6 * time.Second
	proxy := pushtest.StartProxy(t, h.Addr, h.Endpoint())
	v3.Hosts[0].SSH.Port = proxy.Port()
	known := filepath.Join(e.f.Dir, "known_hosts-proxy")
	os.WriteFile(known, []byte(pushtest.KnownHostsLine(proxy.Addr, h.HostKey, true)+"\n"), 0o600)
	v3.Auth.KnownHosts = []string{known}
	h.SlowCommand(t, "sysctl", 1)
	done := background(v3)
	waitLog(t, h, "sysctl --system", 20*time.Second)
	proxy.Close()
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "the connection to the host is lost (") || !strings.Contains(err.Error(), "its dead-man timer hacompile-deadman-fleet-2-") {
		t.Fatalf("err = %v", err)
	}
	t.Logf("push: %v", err)
	if b, _ := os.ReadFile(h.Log); !strings.Contains(string(b), "timer fired") && mapsEqual(targets(t, h), afterV1) {
		t.Fatal("the files are back before the timer fired")
	}
	waitLog(t, h, "timer fired", 20*time.Second)
	sameTree(t, "app1", targets(t, h), afterV1)
	if st, _ := os.ReadFile(sp); string(st) != string(stateV1) {
		t.Errorf("host record after the timer:\n%s\nwant:\n%s", st, stateV1)
	}
	if g := readGen(t, h, 2); g.Status != genReverted {
		t.Errorf("generation 2: %s", g.Status)
	}
	cmds := h.Commands(t)
	if len(cmds) < 6 || !strings.HasPrefix(cmds[1], "systemd-run --quiet --unit=hacompile-deadman-fleet-2-") ||
		!strings.Contains(cmds[1], " --on-active=6s --timer-property=AccuracySec=1s /bin/sh $ROOT/var/lib/hacompile/backups/fleet/2/deadman-") ||
		!slices.Equal(cmds[len(cmds)-3:], []string{"sysctl --system", "systemctl reload app.service", "timer fired: exit 0"}) {
		t.Errorf("commands: %q", cmds)
	}

	// Reachable after the change: push confirms, and the timer, when
	// it fires, leaves the new files.
	h.SlowCommand(t, "sysctl", 0)
	v3.Hosts[0].SSH.Port, v3.Auth.KnownHosts = h.Port, []string{e.known}
	v3.LockTimeout = time.Millisecond // the cut-off push's lock
	time.Sleep(5 * time.Millisecond)
	sum := run1(t, v3)
	r := result(t, sum, "app1")
	if r.Status != StatusDone || r.Generation != 3 || !slices.ContainsFunc(r.Notes, func(s string) bool { return strings.HasPrefix(s, "confirmed over a new connection") }) {
		t.Errorf("confirmed push: %+v", r)
	}
	waitLog(t, h, "timer fired", 20*time.Second)
	sameTree(t, "app1", targets(t, h), want(v3, "app1"))
	if g := readGen(t, h, 3); g.Status != genApplied {
		t.Errorf("generation 3: %s", g.Status)
	}
}

// A rollback whose reload fails is reverted like a push: the files it
// replaced (the undone push's) are back byte for byte, the undone
// generation is in effect again, and a later rollback still undoes it.
func TestRollbackReloadFailureReverts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 249, "app1")
	h := e.f.Hosts["app1"]
	run1(t, e.opts(1))
	afterV1 := targets(t, h)
	run1(t, e.opts(2))
	afterV2 := targets(t, h)
	sp := filepath.Join(h.Root, statePath("fleet"))
	stateV2, _ := os.ReadFile(sp)
	h.FailOnce(t, "systemctl", "Job for app.service failed")
	sum, err := Rollback(context.Background(), e.opts(2))
	if !errors.Is(err, ErrReload) || !strings.Contains(err.Error(), "generation 3 was reverted") {
		t.Fatalf("err = %v", err)
	}
	if r := result(t, sum, "app1"); r.Status != StatusReverted {
		t.Errorf("status %s", r.Status)
	}
	sameTree(t, "app1", targets(t, h), afterV2)
	if st, _ := os.ReadFile(sp); string(st) != string(stateV2) {
		t.Errorf("host record:\n%s\nwant:\n%s", st, stateV2)
	}
	if g2, g3 := readGen(t, h, 2), readGen(t, h, 3); g2.Status != genApplied || g3.Status != genReverted {
		t.Errorf("generations 2 and 3: %s, %s", g2.Status, g3.Status)
	}
	if _, err := Rollback(context.Background(), e.opts(2)); err != nil {
		t.Fatal(err)
	}
	sameTree(t, "app1", targets(t, h), afterV1)
}

// A push cut off after arming its dead-man timer leaves it pending; the
// next push that reaches the host confirms it (the host still lets push
// in), runs the reloads the cut-off push owed, and the timer, when it
// fires, leaves the files.
func TestPendingDeadmanConfirmedByNextPush(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 252, "app1")
	h := e.f.Hosts["app1"]
	run1(t, e.opts(1))
	h.Commands(t)
	v3 := e.opts(3)
	changeTuning(t, e, &v3, 3)
	v3.ConfirmTimeout = 12 * time.Second
	direct := v3
	direct.Hosts = slices.Clone(v3.Hosts)
	proxy := pushtest.StartProxy(t, h.Addr, h.Endpoint())
	v3.Hosts[0].SSH.Port = proxy.Port()
	known := filepath.Join(e.f.Dir, "known_hosts-proxy")
	os.WriteFile(known, []byte(pushtest.KnownHostsLine(proxy.Addr, h.HostKey, true)+"\n"), 0o600)
	v3.Auth.KnownHosts = []string{known}
	h.SlowCommand(t, "sysctl", 1)
	done := background(v3)
	waitLog(t, h, "sysctl --system", 20*time.Second)
	proxy.Close()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "dead-man timer") {
		t.Fatalf("cut-off push: %v", err)
	}
	h.SlowCommand(t, "sysctl", 0)
	h.Commands(t)

	direct.LockTimeout = time.Millisecond // the cut-off push's lock
	time.Sleep(5 * time.Millisecond)
	sum := run1(t, direct)
	r := result(t, sum, "app1")
	if r.Status != StatusDone || !slices.ContainsFunc(r.Notes, func(s string) bool {
		return strings.HasPrefix(s, "confirmed the dead-man timer an earlier, cut-off push armed")
	}) {
		t.Errorf("next push: %+v", r)
	}
	if cmds := h.Commands(t); !slices.Contains(cmds, "sysctl --system") {
		t.Errorf("the owed reloads did not run: %q", cmds)
	}
	waitLog(t, h, "timer fired", 30*time.Second)
	sameTree(t, "app1", targets(t, h), want(direct, "app1"))
	if g := readGen(t, h, 2); g.Status != genApplied {
		t.Errorf("generation 2: %s", g.Status)
	}
}
