package compile_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/fleet"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// TestRenderChangedMatchesRender proves the roles each generator says it
// reads (artifact.Scoper): for every example stack and the CUE stack of every
// golden and feature archive, each host in turn is removed, copied under a new name, and has
// each of its fields changed; RenderChanged of the changed stack, which
// makes again only the hosts a changed host reaches, must give the files
// a whole Render gives, byte for byte. A generator that reads a role it
// does not declare shows here as a file that differs.
func TestRenderChangedMatchesRender(t *testing.T) {
	stacks := testtool.LoadStacks(t)
	// Each example stack again with two hosts of each: a host's peers
	// in its role then change with it.
	for _, s := range slices.Clone(stacks) {
		stacks = append(stacks, doubled(s))
	}
	stacks = append(stacks, archiveStacks(t)...)
	stacks = append(stacks, testtool.Load(t, "stacks/brokers.cue", brokersStack))
	cases := 0
	for _, s := range stacks {
		base, err := compile.Builtin().Render(s, artifact.Options{})
		if err != nil {
			if strings.HasSuffix(s.Name, "-doubled") {
				continue // the generators do not take it: nothing to compare
			}
			t.Fatalf("%s: %v", s.Name, err)
		}
		set := base.Set.GeneratorsOnly()
		for _, name := range s.HostNames() {
			for _, m := range hostChanges(s, name) {
				c := s.Clone()
				changed := m.apply(c)
				c.Reindex()
				want, err := set.Render(c, artifact.Options{})
				if err != nil {
					continue // not a stack the generators take: nothing to compare
				}
				cases++
				got, err := set.RenderChanged(base, c, changed)
				if err != nil {
					t.Errorf("%s: %s: RenderChanged: %v (Render gives files)", s.Name, m.what, err)
					continue
				}
				if d := diffFiles(want.Files, got.All(base)); d != "" {
					t.Errorf("%s: %s: RenderChanged differs from Render:\n%s", s.Name, m.what, d)
				}
				// A preview compares only the files made again: every
				// other file of base must be the changed stack's as it is.
				var kept []artifact.File
				for _, f := range base.Files {
					if !base.Set.Assembles(f.Kind) && !got.Again(f.Kind, f.Host) {
						kept = append(kept, f)
					}
				}
				if d := diffFiles(kept, keepOnly(want.Files, kept)); d != "" {
					t.Errorf("%s: %s: files RenderChanged did not make again are not Render's:\n%s", s.Name, m.what, d)
				}
			}
		}
	}
	if cases < 100 {
		t.Fatalf("only %d changed stacks rendered: the cases do not cover the stacks", cases)
	}
	t.Logf("%d stacks, %d changed stacks compared", len(stacks), cases)
}

// TestRenderChangedSkipsUnreachedHosts: on a fleet, a changed app host's
// size makes files again for that host and for the hosts that read app
// hosts (the balancers, monitoring), not for the other app hosts.
func TestRenderChangedSkipsUnreachedHosts(t *testing.T) {
	s := testtool.Load(t, "stacks/fleet.cue", string(fleet.Fleet(40, "")))
	base, err := compile.Builtin().Render(s, artifact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	set := base.Set.GeneratorsOnly()
	c := s.Clone()
	c.Hosts["app2"].Cores *= 2
	c.Reindex()
	var made []string
	counting := compile.GeneratorSet{}
	for _, g := range set.Generators {
		counting.Generators = append(counting.Generators, recorder{g, &made})
	}
	got, err := counting.RenderChanged(base, c, []string{"app2"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := set.Render(c, artifact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := diffFiles(want.Files, got.All(base)); d != "" {
		t.Fatalf("RenderChanged differs from Render:\n%s", d)
	}
	hosts := map[string]bool{}
	for _, h := range made {
		hosts[h] = true
	}
	if !hosts["app2"] {
		t.Errorf("app2's files were not made again (made: %v)", made)
	}
	for _, h := range []string{"app4", "app5", "app17"} {
		if hosts[h] {
			t.Errorf("%s's files were made again, though no generator of %s reads app hosts", h, h)
		}
	}
}

// recorder is a generator that notes which hosts it was asked to make
// files for.
type recorder struct {
	artifact.Generator
	made *[]string
}

func (r recorder) Reads(s *schema.Stack, h *schema.Host) []string {
	return artifact.ReadsOf(r.Generator, s, h)
}

func (r recorder) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	fs, err := r.Generator.Generate(s, opt)
	for _, f := range fs {
		if f.Host != "" && opt.Renders(f.Host) {
			*r.made = append(*r.made, f.Host)
		}
	}
	return fs, err
}

// brokersStack has two self-hosted Redis cache hosts, one of them the
// Celery broker: each cache host's exporter watches the queues when any
// cache host is the broker.
const brokersStack = `
name:   "brokers"
domain: "example.com"
tls: mode: "none"
hosts: {
	lb1:     {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1:    {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2:    {address: "10.0.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
	cache1:  {address: "10.0.0.31", roles: ["cache"], cores: 1, memory_mb: 2048}
	cache2:  {address: "10.0.0.32", roles: ["cache"], cores: 1, memory_mb: 2048}
	worker1: {address: "10.0.0.21", roles: ["worker"], cores: 2, memory_mb: 2048}
}
balancer: kind: "nginx"
cache: {engine: "redis", maxmemory_percent: 50, persistence: "none"}
queue: {engine: "redis", host: "10.0.0.31", db: 4}
workers: {app: "shop", queues: ["celery"]}
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app"}
`

type hostChange struct {
	what  string
	apply func(c *schema.Stack) (changed []string)
}

// hostChanges are the changes to host name of s the test renders: the
// host removed, copied (sorting last and first), and each of its
// fields and roles changed.
func hostChanges(s *schema.Stack, name string) []hostChange {
	h := s.Hosts[name]
	fresh := freshAddress(s)
	edit := func(what string, f func(h *schema.Host)) hostChange {
		return hostChange{name + ": " + what, func(c *schema.Stack) []string {
			f(c.Hosts[name])
			return []string{name}
		}}
	}
	out := []hostChange{
		{name + ": removed", func(c *schema.Stack) []string {
			delete(c.Hosts, name)
			return []string{name}
		}},
		{name + ": copied", func(c *schema.Stack) []string {
			n := *c.Hosts[name]
			n.Name, n.Address = name+"x", fresh
			c.Hosts[n.Name] = &n
			return []string{n.Name}
		}},
		// Sorting first, the copy becomes the role's first host: the one
		// a stack's defaults pick (beat, the launch template, the cache).
		{name + ": copied first", func(c *schema.Stack) []string {
			n := *c.Hosts[name]
			n.Name, n.Address = "0"+name, fresh
			c.Hosts[n.Name] = &n
			return []string{n.Name}
		}},
		edit("address", func(h *schema.Host) { h.Address = fresh }),
		edit("cores", func(h *schema.Host) { h.Cores++ }),
		edit("memory", func(h *schema.Host) { h.MemoryMB *= 2 }),
		edit("drain", func(h *schema.Host) { h.Drain = !h.Drain }),
		edit("ssh", func(h *schema.Host) { h.SSH.Port++; h.SSH.User += "x" }),
		edit("notes", func(h *schema.Host) { h.Notes += " changed" }),
	}
	for _, o := range s.Hosts {
		if o.Size != h.Size {
			size := o.Size
			out = append(out, edit("size "+size, func(h *schema.Host) { h.Size = size }))
			break
		}
	}
	for _, r := range []string{"app", "lb", "worker", "cache", "queue"} {
		if !h.Has(r) {
			out = append(out, edit("role "+r+" added", func(h *schema.Host) { h.Roles = append(h.Roles, r) }))
		}
	}
	if len(h.Roles) > 1 {
		out = append(out, edit("role "+h.Roles[0]+" dropped", func(h *schema.Host) { h.Roles = h.Roles[1:] }))
	}
	return out
}

// doubled is a copy of s with a second host beside each, named with a
// "b" after it.
func doubled(s *schema.Stack) *schema.Stack {
	c := s.Clone()
	c.Name += "-doubled"
	for _, n := range s.HostNames() {
		h := *c.Hosts[n]
		h.Name, h.Address = n+"b", freshAddress(c)
		h.Roles = slices.Clone(h.Roles)
		c.Hosts[h.Name] = &h
	}
	c.Reindex()
	return c
}

// freshAddress is an address of the same family as s's hosts that none
// of them has.
func freshAddress(s *schema.Stack) string {
	var top netip.Addr
	for _, h := range s.Hosts {
		if a, err := netip.ParseAddr(h.Address); err == nil && a.Compare(top) > 0 {
			top = a
		}
	}
	return top.Next().String()
}

// archiveStacks are the CUE stacks of the golden and feature archives.
func archiveStacks(t *testing.T) []*schema.Stack {
	golden, err := filepath.Glob("testdata/golden/*.txtar")
	feature, err2 := filepath.Glob("testdata/feature/*.txtar")
	if err != nil || err2 != nil || len(golden) == 0 || len(feature) == 0 {
		t.Fatalf("no golden or feature cases: %v %v", err, err2)
	}
	files := append(golden, feature...)
	var out []*schema.Stack
	for _, f := range files {
		ar, err := txtar.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, af := range ar.Files {
			if af.Name == "stack.cue" {
				out = append(out, testtool.Load(t, "stacks/"+strings.TrimSuffix(filepath.Base(f), ".txtar")+".cue", string(af.Data)))
			}
		}
	}
	return out
}

// keepOnly is the files of fs at the hosts and paths of sorted list of.
func keepOnly(fs, of []artifact.File) []artifact.File {
	at := map[[2]string]bool{}
	for _, f := range of {
		at[[2]string{f.Host, f.Path}] = true
	}
	return slices.DeleteFunc(slices.Clone(fs), func(f artifact.File) bool { return !at[[2]string{f.Host, f.Path}] })
}

// diffFiles describes how two sorted file lists differ, or is "".
func diffFiles(want, got []artifact.File) string {
	var b strings.Builder
	i, j := 0, 0
	for (i < len(want) || j < len(got)) && b.Len() < 2000 {
		switch {
		case j == len(got) || i < len(want) && (want[i].Host < got[j].Host || want[i].Host == got[j].Host && want[i].Path < got[j].Path):
			fmt.Fprintf(&b, "  missing %s:%s (%s)\n", want[i].Host, want[i].Path, want[i].Kind)
			i++
		case i == len(want) || want[i].Host != got[j].Host || want[i].Path != got[j].Path:
			fmt.Fprintf(&b, "  extra %s:%s (%s)\n", got[j].Host, got[j].Path, got[j].Kind)
			j++
		default:
			w, g := want[i], got[j]
			if !bytes.Equal(w.Content, g.Content) || w.Mode != g.Mode || w.Owner != g.Owner || w.Kind != g.Kind ||
				!w.Validate.Equal(g.Validate) || !w.Reload.Equal(g.Reload) {
				fmt.Fprintf(&b, "  differs %s:%s (%s)\n", w.Host, w.Path, w.Kind)
			}
			i++
			j++
		}
	}
	return b.String()
}
