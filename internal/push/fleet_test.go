package push

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
