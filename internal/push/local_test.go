package push

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/testtool"
)

// A local target (hacompile apply's) goes through the same engine as a
// push over SSH: files land byte for byte with their modes, the host
// keeps its record, a second run changes nothing, and a hand edit is
// drift.
func TestLocalTarget(t *testing.T) {
	if _, err := os.Stat(SFTPServerPaths[0]); err != nil {
		testtool.Missing(t, "openssh-sftp-server")
	}
	root := t.TempDir()
	src := `name: "fleet"
domain: "fleet.example.com"
tls: mode: "none"
hosts: app1: {address: "127.0.0.1", roles: ["app"], cores: 1, memory_mb: 1024}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app", bind: port: 8000}
`
	hosts, err := Targets(renderStack(t, src), TargetOptions{NoHealth: true})
	if err != nil {
		t.Fatal(err)
	}
	hosts[0].Root = root
	hosts[0].SSH = Endpoint{HostName: "127.0.0.1", Local: true}
	o := Options{
		Stack: "fleet", Hosts: hosts,
		Timeout: 5 * time.Second, CommandTimeout: 5 * time.Second, HealthTimeout: time.Second, LockTimeout: time.Minute,
		Batch: "1", By: "test@local", PID: os.Getpid(),
	}
	sum, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if h := sum.Hosts[0]; h.Status != StatusDone || h.Created != len(hosts[0].Files) || h.Endpoint != "local" {
		t.Fatalf("first run: %+v", h)
	}
	for _, f := range hosts[0].Files {
		b, err := os.ReadFile(filepath.Join(root, f.Path))
		if err != nil || !bytes.Equal(b, f.Content) {
			t.Fatalf("%s: %v (content equal: %v)", f.Path, err, bytes.Equal(b, f.Content))
		}
		fi, _ := os.Stat(filepath.Join(root, f.Path))
		if fi.Mode().Perm() != f.Mode.Perm() {
			t.Errorf("%s: mode %v, want %v", f.Path, fi.Mode().Perm(), f.Mode.Perm())
		}
	}
	if _, err := os.Stat(filepath.Join(root, statePath("fleet"))); err != nil {
		t.Fatalf("no record: %v", err)
	}
	sum, err = Run(context.Background(), o)
	if err != nil || sum.Hosts[0].Status != StatusUnchanged {
		t.Fatalf("second run: %v %+v", err, sum.Hosts[0])
	}
	edited := filepath.Join(root, hosts[0].Files[0].Path)
	os.WriteFile(edited, []byte("hand edit\n"), 0o644)
	o.Hosts[0].Files[0].Content = append([]byte("# changed\n"), o.Hosts[0].Files[0].Content...)
	_, err = Run(context.Background(), o)
	if err == nil {
		t.Fatal("a hand edit was not drift")
	}
	if b, _ := os.ReadFile(edited); string(b) != "hand edit\n" {
		t.Fatal("the drifted file was overwritten")
	}
}

// The first interrupt (Options.Stop) lets the host being written finish
// and release its lock, and starts no other host; the second (the
// context) stops at once and leaves the lock of the host under way,
// which is what the first is for.
func TestInterruptFinishesHostUnderWay(t *testing.T) {
	if _, err := os.Stat(SFTPServerPaths[0]); err != nil {
		testtool.Missing(t, "openssh-sftp-server")
	}
	src := `name: "fleet"
domain: "fleet.example.com"
tls: mode: "none"
hosts: {
	app1: {address: "127.0.0.1", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "127.0.0.2", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app", bind: port: 8000}
`
	r := renderStack(t, src)
	t.Run("before", func(t *testing.T) {
		// Interrupted before any host began: none is locked or written.
		hosts, roots := localHosts(t, r)
		stop := make(chan struct{})
		close(stop)
		sum, _ := Run(context.Background(), Options{
			Stack: "fleet", Hosts: hosts,
			Timeout: 5 * time.Second, CommandTimeout: 5 * time.Second, HealthTimeout: time.Second, LockTimeout: time.Minute,
			Batch: "1", By: "test@local", PID: os.Getpid(), Stop: stop,
		})
		if sum == nil || sum.OK || len(sum.Hosts) != 2 || sum.Hosts[0].Status != StatusSkipped || sum.Hosts[1].Status != StatusSkipped {
			t.Fatalf("summary: %+v", sum)
		}
		for h, root := range roots {
			if _, err := os.Stat(filepath.Join(root, StateDir)); !os.IsNotExist(err) {
				t.Errorf("%s was reached: %v", h, err)
			}
		}
	})
	// stopAtPlanned runs the rollout with parallel slots, interrupted as
	// the first host is planned.
	stopAtPlanned := func(t *testing.T, parallel int) (*Summary, []Host, map[string]string) {
		hosts, roots := localHosts(t, r)
		stop := make(chan struct{})
		var once sync.Once
		sum, _ := Run(context.Background(), Options{
			Stack: "fleet", Hosts: hosts,
			Timeout: 5 * time.Second, CommandTimeout: 5 * time.Second, HealthTimeout: time.Second, LockTimeout: time.Minute,
			Batch: "1", Parallel: parallel, By: "test@local", PID: os.Getpid(), Stop: stop,
			Progress: ProgressFunc(func(host string, phase Phase, detail string) {
				if phase == PhasePlanned {
					once.Do(func() { close(stop) })
				}
			}),
		})
		if sum == nil || sum.OK || len(sum.Hosts) != 2 {
			t.Fatalf("summary: %+v", sum)
		}
		return sum, hosts, roots
	}
	t.Run("planning", func(t *testing.T) {
		// Interrupted while the hosts plan (each keeps its lock to its
		// batch, as there are no more hosts than slots): none is
		// written, and every lock is released.
		sum, hosts, roots := stopAtPlanned(t, 2)
		planned := 0
		for i, h := range sum.Hosts {
			if h.Status != StatusSkipped {
				t.Errorf("%s: %+v, want skipped", h.Host, h)
			}
			if _, err := os.Stat(filepath.Join(roots[h.Host], lockPath("fleet"))); !os.IsNotExist(err) {
				t.Errorf("%s's lock: %v, want released", h.Host, err)
			}
			if _, err := os.Stat(filepath.Join(roots[h.Host], StateDir)); err == nil {
				planned++
			}
			if _, err := os.Stat(filepath.Join(roots[h.Host], hosts[i].Files[0].Path)); !os.IsNotExist(err) {
				t.Errorf("%s %s: %v, want none", h.Host, hosts[i].Files[0].Path, err)
			}
		}
		if planned == 0 {
			t.Error("no host was locked: the case did not interrupt planning")
		}
	})
	t.Run("order", func(t *testing.T) {
		// One slot: app2's preflight never begins. The summary is still
		// in rollout order, each host with its batch.
		sum, _, _ := stopAtPlanned(t, 1)
		for i, h := range sum.Hosts {
			if want := fmt.Sprintf("app%d", i+1); h.Host != want || h.Batch != i+1 || h.Status != StatusSkipped {
				t.Errorf("summary[%d]: %s batch %d %s, want %s batch %d skipped", i, h.Host, h.Batch, h.Status, want, i+1)
			}
		}
	})
	t.Run("replanned", func(t *testing.T) {
		// One slot for two hosts: app1 gave up its preflight's lock and
		// takes it again in its batch. Interrupted as it is planned
		// that second time, it is left unwritten, unlocked.
		hosts, roots := localHosts(t, r)
		stop := make(chan struct{})
		plans := map[string]int{}
		var mu sync.Mutex
		sum, _ := Run(context.Background(), Options{
			Stack: "fleet", Hosts: hosts,
			Timeout: 5 * time.Second, CommandTimeout: 5 * time.Second, HealthTimeout: time.Second, LockTimeout: time.Minute,
			Batch: "1", Parallel: 1, By: "test@local", PID: os.Getpid(), Stop: stop,
			Progress: ProgressFunc(func(host string, phase Phase, detail string) {
				mu.Lock()
				defer mu.Unlock()
				if phase == PhasePlanned {
					if plans[host]++; host == "app1" && plans[host] == 2 {
						close(stop)
					}
				}
			}),
		})
		if plans["app1"] != 2 {
			t.Fatalf("app1 was planned %d times, want 2 (preflight, then its batch): the case did not happen", plans["app1"])
		}
		if sum == nil || sum.OK || len(sum.Hosts) != 2 {
			t.Fatalf("summary: %+v", sum)
		}
		for i, h := range sum.Hosts {
			if h.Status != StatusSkipped {
				t.Errorf("%s: %s, want skipped", h.Host, h.Status)
			}
			if _, err := os.Stat(filepath.Join(roots[h.Host], lockPath("fleet"))); !os.IsNotExist(err) {
				t.Errorf("%s's lock: %v, want released", h.Host, err)
			}
			if _, err := os.Stat(filepath.Join(roots[h.Host], hosts[i].Files[0].Path)); !os.IsNotExist(err) {
				t.Errorf("%s %s: %v, want none", h.Host, hosts[i].Files[0].Path, err)
			}
		}
	})
	for _, hard := range []bool{false, true} {
		t.Run(map[bool]string{false: "first", true: "second"}[hard], func(t *testing.T) {
			hosts, roots := localHosts(t, r)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stop := make(chan struct{})
			o := Options{
				Stack: "fleet", Hosts: hosts,
				Timeout: 5 * time.Second, CommandTimeout: 5 * time.Second, HealthTimeout: time.Second, LockTimeout: time.Minute,
				Batch: "1", Parallel: 1, By: "test@local", PID: os.Getpid(), Stop: stop,
			}
			interrupted := false
			o.beforeRename = func(host, p, tmp string) {
				if interrupted {
					return
				}
				interrupted = true
				close(stop)
				if hard {
					cancel()
				}
			}
			sum, _ := Run(ctx, o)
			if sum == nil || len(sum.Hosts) != 2 {
				t.Fatalf("summary: %+v", sum)
			}
			if sum.OK {
				t.Error("an interrupted rollout was OK")
			}
			h1, h2 := sum.Hosts[0], sum.Hosts[1]
			if h2.Host != "app2" || h2.Status != StatusSkipped {
				t.Errorf("app2: %+v, want skipped", h2)
			}
			for _, f := range append(hosts[1].Files, File{Path: lockPath("fleet")}) {
				if _, err := os.Stat(filepath.Join(roots["app2"], f.Path)); !os.IsNotExist(err) {
					t.Errorf("app2 %s: %v, want none", f.Path, err)
				}
			}
			_, err := os.Stat(filepath.Join(roots["app1"], lockPath("fleet")))
			if hard {
				if h1.Status == StatusDone {
					t.Errorf("app1 finished after the second interrupt: %+v", h1)
				}
				if err != nil {
					t.Errorf("app1's lock after the second interrupt: %v (the test no longer shows what the first interrupt is for)", err)
				}
				return
			}
			if h1.Host != "app1" || h1.Status != StatusDone || h1.Err() != nil {
				t.Fatalf("app1: %+v (%v), want done", h1, h1.Err())
			}
			if !os.IsNotExist(err) {
				t.Errorf("app1's lock was left: %v", err)
			}
			for _, f := range hosts[0].Files {
				if b, err := os.ReadFile(filepath.Join(roots["app1"], f.Path)); err != nil || !bytes.Equal(b, f.Content) {
					t.Errorf("app1 %s: %v (content equal: %v)", f.Path, err, bytes.Equal(b, f.Content))
				}
			}
		})
	}
}

// localHosts are r's hosts as local targets (apply's), each under a
// root directory of its own, by host name.
func localHosts(t *testing.T, r *compile.Rendered) ([]Host, map[string]string) {
	t.Helper()
	hosts, err := Targets(r, TargetOptions{NoHealth: true})
	if err != nil {
		t.Fatal(err)
	}
	roots := map[string]string{}
	for i := range hosts {
		roots[hosts[i].Name] = t.TempDir()
		hosts[i].Root, hosts[i].SSH = roots[hosts[i].Name], Endpoint{HostName: hosts[i].Address, Local: true}
	}
	return hosts, roots
}
