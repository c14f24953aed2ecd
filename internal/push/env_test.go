package push

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/push/pushtest"
)

// env is a fleet of real sshd hosts with a health server and a
// known_hosts file for all of them.
type env struct {
	t      *testing.T
	f      *pushtest.Fleet
	health *pushtest.Health
	known  string
}

// newEnv starts sshd hosts on 127.0.0.first… Tests that run in
// parallel use distinct ranges so their logs are easy to tell apart.
func newEnv(t *testing.T, first int, names ...string) *env {
	t.Helper()
	f := pushtest.Start(t, first, names...)
	e := &env{t: t, f: f, health: pushtest.StartHealth(t), known: f.KnownHosts(true)}
	for _, n := range names {
		// The sandbox render points gunicorn's validate command at the
		// virtualenv under the host's root.
		f.Hosts[n].Stub(t, "/srv/app/venv/bin/gunicorn")
	}
	return e
}

// render compiles the fleet's stack in version v (see versions).
func (e *env) render(v int) *compile.Rendered {
	e.t.Helper()
	return renderStack(e.t, e.f.StackCUE("fleet", versions[v]))
}

// versions are app timeouts: changing it changes gunicorn.conf.py on
// every app host, and nothing else.
var versions = map[int]int{1: 30, 2: 45, 3: 50}

func renderStack(t testing.TB, src string) *compile.Rendered {
	t.Helper()
	res, err := compile.CompileInputs([]compile.Input{{Name: "stacks/fleet.cue", Data: []byte(src)}}, "2026-01-01")
	if err != nil {
		t.Fatalf("compile test stack: %v\n%s", err, src)
	}
	return res.Rendered[0]
}

// opts returns push options for version v of the stack on the named
// hosts (all when none are named), each host's tree under its sshd's
// root directory.
func (e *env) opts(v int, names ...string) Options {
	e.t.Helper()
	hosts, err := Targets(e.render(v), TargetOptions{Hosts: names, Root: e.f.Dir + "/{host}/root", HealthURL: e.health.URL})
	if err != nil {
		e.t.Fatal(err)
	}
	return Options{
		Stack: "fleet", SourceSHA256: "test", Hosts: hosts,
		Auth:    Auth{KnownHosts: []string{e.known}, Identity: e.f.ClientKey},
		Timeout: 5 * time.Second, CommandTimeout: 10 * time.Second, HealthTimeout: 3 * time.Second, LockTimeout: time.Minute,
		Batch: "100%", Keep: 10, By: "test@push", PID: 4242,
		// The hosts' PATH has stubs: run the commands under the root.
		sandboxCommands: true,
	}
}

func run1(t *testing.T, o Options) *Summary {
	t.Helper()
	sum, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	return sum
}

// result finds a host in a summary.
func result(t *testing.T, s *Summary, host string) HostResult {
	t.Helper()
	for _, h := range s.Hosts {
		if h.Host == host {
			return h
		}
	}
	t.Fatalf("no %s in summary", host)
	return HostResult{}
}

// targets returns a host's tree without push's own records.
func targets(t *testing.T, h *pushtest.Host) map[string]string {
	t.Helper()
	tree := h.Tree(t)
	for p := range tree {
		if strings.HasPrefix(p, StateDir+"/") || p == "/srv/app/venv/bin/gunicorn" {
			delete(tree, p)
		}
	}
	return tree
}

// want returns the tree a host should have after a push of o.
func want(o Options, host string) map[string]string {
	out := map[string]string{}
	for _, h := range o.Hosts {
		if h.Name == host {
			for _, f := range h.Files {
				out[f.Path] = modeString(f.Mode) + " " + string(f.Content)
			}
		}
	}
	return out
}

func sameTree(t *testing.T, host string, got, want map[string]string) {
	t.Helper()
	for _, p := range pushtest.Sorted(want) {
		if got[p] != want[p] {
			t.Errorf("%s:%s differs:\n got %.80q\nwant %.80q", host, p, got[p], want[p])
		}
	}
	for _, p := range pushtest.Sorted(got) {
		if _, ok := want[p]; !ok {
			t.Errorf("%s:%s should not exist", host, p)
		}
	}
}

// mtimes records modification times and inodes of a host's files, to
// prove a no-op push wrote nothing.
func mtimes(t *testing.T, h *pushtest.Host) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(h.Root, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			out[p] = fi.ModTime().String() + " " + fi.Mode().String()
		}
		return nil
	})
	return out
}

func tempFiles(t *testing.T, h *pushtest.Host) []string {
	t.Helper()
	var out []string
	filepath.Walk(h.Root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(fi.Name(), TempPrefix) {
			out = append(out, strings.TrimPrefix(p, h.Root))
		}
		return nil
	})
	slices.Sort(out)
	return out
}

func readGen(t *testing.T, h *pushtest.Host, n int) Generation {
	t.Helper()
	var g Generation
	readJSONFile(t, filepath.Join(h.Root, genDir("fleet", n), "generation.json"), &g)
	return g
}
