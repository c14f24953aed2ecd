package compile_test

import (
	"bytes"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"reflect"
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
					// Not a stack the generators take: nor may it be
					// when only some hosts are made again.
					if _, err := set.RenderChanged(base, c, changed, nil); err == nil {
						t.Errorf("%s: %s: Render fails, RenderChanged does not", s.Name, m.what)
					}
					continue
				}
				cases++
				got, err := set.RenderChanged(base, c, changed, nil)
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
	got, err := counting.RenderChanged(base, c, []string{"app2"}, nil)
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

// TestRenderChangedSettingsMatchesRender proves the settings each
// generator says it reads (artifact.SettingsReader), on which
// RenderChanged keeps a generator's files: on every example stack and
// the CUE stack of every golden and feature archive, each value under
// each top-level setting in turn is changed (a string lengthened or set
// to a value another stack has there, a number raised, a flag flipped, a
// list's last item dropped or repeated, the field's written positions
// dropped), and the generators that do not read that setting must
// render the changed stack to base's files, byte for byte, as
// RenderChanged keeps them. A setting read but not declared shows here as
// a file that differs (or a render that fails).
func TestRenderChangedSettingsMatchesRender(t *testing.T) {
	stacks := append(testtool.LoadStacks(t), archiveStacks(t)...)
	// A string is also changed to each value another stack has in the
	// same place: a kind, a mode, a release the generators take.
	seen := map[string][]string{}
	for _, s := range stacks {
		for _, m := range settingChanges(s, nil) {
			if m.value != "" && !slices.Contains(seen[m.at], m.value) {
				seen[m.at] = append(seen[m.at], m.value)
			}
		}
	}
	cases := 0
	for _, s := range stacks {
		base, err := compile.Builtin().Render(s, artifact.Options{})
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		for _, m := range settingChanges(s, seen) {
			var kept compile.GeneratorSet
			for _, g := range base.Set.Generators {
				if !artifact.ReadsSetting(g, m.setting) {
					kept.Generators = append(kept.Generators, g)
				}
			}
			c := deepCopy(s)
			m.apply(c)
			c.Reindex()
			cases++
			got, err := renderUnchecked(kept, c)
			if err != nil {
				t.Errorf("%s: %s: a generator that does not read %s fails: %v", s.Name, m.what, m.setting, err)
				continue
			}
			var want []artifact.File
			for _, f := range base.Files {
				if f.Host != "" && slices.ContainsFunc(kept.Generators, func(g artifact.Generator) bool { return g.Kind() == f.Kind }) {
					want = append(want, f)
				}
			}
			hostFiles := slices.DeleteFunc(got.Files, func(f artifact.File) bool { return f.Host == "" })
			if d := diffFiles(want, hostFiles); d != "" {
				t.Errorf("%s: %s: the files of generators that do not read %s changed:\n%s", s.Name, m.what, m.setting, d)
			}
		}
	}
	if cases < 5000 {
		t.Fatalf("only %d changed stacks rendered: the cases do not cover the settings", cases)
	}
	t.Logf("%d stacks, %d changed stacks compared", len(stacks), cases)
}

// renderUnchecked renders a stack the schema never saw: a changed value
// it would refuse may stop a generator (an unknown release panics).
func renderUnchecked(set compile.GeneratorSet, c *schema.Stack) (r *compile.Rendered, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("%v", p)
		}
	}()
	return set.Render(c, artifact.Options{})
}

type settingChange struct {
	setting, what string
	apply         func(c *schema.Stack)
	at, value     string // a string's place (field names, no indexes) and value
}

// settingChanges are the changes the settings test renders: for each
// top-level field of s but its hosts, each value under it changed (a
// string also to each other value seen has at its place), and its
// written positions dropped.
func settingChanges(s *schema.Stack, seen map[string][]string) []settingChange {
	var out []settingChange
	st := reflect.TypeOf(*s)
	for i := range st.NumField() {
		f := st.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "" || name == "-" || name == "hosts" {
			continue
		}
		field := i
		if name == "apps" {
			// apps: is a map; its apps are also Apps, in name order,
			// the same values.
			if s.AppsByName == nil {
				continue
			}
			af, _ := st.FieldByName("Apps")
			field = af.Index[0]
		}
		// Each change is found on a copy and applied to the copy the
		// test renders by its path of field and element indexes.
		var walk func(v reflect.Value, path []int, at, place string)
		walk = func(v reflect.Value, path []int, at, place string) {
			add := func(what string, change func(v reflect.Value)) {
				p := slices.Clone(path)
				out = append(out, settingChange{setting: name, what: at + ": " + what, apply: func(c *schema.Stack) {
					change(follow(reflect.ValueOf(c).Elem().Field(field), p))
				}})
			}
			switch v.Kind() {
			case reflect.String:
				add("lengthened", func(v reflect.Value) { v.SetString(v.String() + "x") })
				out[len(out)-1].at, out[len(out)-1].value = place, v.String()
				n := 0
				for _, o := range seen[place] {
					if o != v.String() && n < 3 {
						add("set to "+o, func(v reflect.Value) { v.SetString(o) })
						n++
					}
				}
			case reflect.Int, reflect.Int64:
				add("raised", func(v reflect.Value) { v.SetInt(v.Int() + 1) })
			case reflect.Bool:
				add("flipped", func(v reflect.Value) { v.SetBool(!v.Bool()) })
			case reflect.Pointer:
				if !v.IsNil() {
					walk(v.Elem(), append(path, -1), at, place)
				}
			case reflect.Struct:
				for j := range v.NumField() {
					if f := v.Type().Field(j); f.IsExported() {
						walk(v.Field(j), append(path, j), at+"."+f.Name, place+"."+f.Name)
					}
				}
			case reflect.Slice:
				if v.Len() > 0 {
					add("last dropped", func(v reflect.Value) { v.Set(v.Slice(0, v.Len()-1)) })
					add("last repeated", func(v reflect.Value) { v.Set(reflect.Append(v, v.Index(v.Len()-1))) })
					for k := range min(v.Len(), 1) {
						walk(v.Index(k), append(path, -2-k), fmt.Sprintf("%s[%d]", at, k), place+"[]")
					}
				}
			}
		}
		walk(reflect.ValueOf(*s).Field(field), nil, name, name)
		out = append(out, settingChange{setting: name, what: name + ": positions dropped", apply: func(c *schema.Stack) {
			c.Positions = maps.Clone(c.Positions)
			for p := range c.Positions {
				if p == name || strings.HasPrefix(p, name+".") || strings.HasPrefix(p, name+"[") {
					delete(c.Positions, p)
				}
			}
		}})
	}
	return out
}

// follow walks path from v: a field index, -1 through a pointer, -2-k
// to element k of a slice.
func follow(v reflect.Value, path []int) reflect.Value {
	for _, i := range path {
		switch {
		case i == -1:
			v = v.Elem()
		case i <= -2:
			v = v.Index(-2 - i)
		default:
			v = v.Field(i)
		}
	}
	return v
}

// deepCopy is a copy of s that shares nothing a change of
// settingChanges reaches with s: its settings copied through every
// pointer, slice and map, its apps as the copy's own (Clone's way).
func deepCopy(s *schema.Stack) *schema.Stack {
	c := s.Clone()
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		if f := v.Type().Field(i); f.IsExported() && f.Name != "Hosts" && f.Name != "Apps" && f.Name != "AppsByName" {
			v.Field(i).Set(copyValue(v.Field(i)))
		}
	}
	if c.AppsByName == nil {
		c.Apps = []*schema.App{&c.App}
	}
	for _, a := range c.Apps {
		av := reflect.ValueOf(a).Elem()
		av.Set(copyValue(av))
	}
	return c
}

// copyValue is a copy of v through pointers, slices, maps and exported
// struct fields.
func copyValue(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(copyValue(v.Elem()))
		return p
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			c.Index(i).Set(copyValue(v.Index(i)))
		}
		return c
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			c.SetMapIndex(it.Key(), copyValue(it.Value()))
		}
		return c
	case reflect.Struct:
		c := reflect.New(v.Type()).Elem()
		c.Set(v)
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				c.Field(i).Set(copyValue(v.Field(i)))
			}
		}
		return c
	}
	return v
}
