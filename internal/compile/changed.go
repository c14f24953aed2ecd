package compile

import (
	"slices"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/par"
	"github.com/hacompile/hacompile/schema"
)

// Rerendered is what RenderChanged made again of a changed stack.
type Rerendered struct {
	Stack *schema.Stack
	// Files are the files made again: of each generator, the files of
	// the hosts it made again and its stack-level files, checked and
	// sorted by host and path as Render leaves them.
	Files   []artifact.File
	again   map[string]func(host string) bool // by kind; nil: every host
	changed map[string]bool
}

// Again reports whether the files of kind on host were made again (on a
// host the change removed: that it has none now); of any other, base's
// files are the changed stack's.
func (r *Rerendered) Again(kind, host string) bool {
	f, ok := r.again[kind]
	return ok && (f == nil || host == "" || r.changed[host] || f(host))
}

// All is every file of the changed stack, as the generators' Render
// makes them: the files made again, and base's others.
func (r *Rerendered) All(base *Rendered) []artifact.File {
	files := slices.Clone(r.Files)
	for _, f := range base.Files {
		if _, gen := r.again[f.Kind]; gen && !r.Again(f.Kind, f.Host) {
			files = append(files, f)
		}
	}
	slices.SortStableFunc(files, compareFiles)
	return files
}

// RenderChanged renders s with the set's generators, where s is base's
// stack with only the named hosts added, removed or changed and only the
// named settings changed (top-level fields, by their names in the stack
// file); the set is base's (its assemblers are not run). A generator
// that reads a changed setting (artifact.SettingsReader; one that does
// not say reads them all) makes every host's files again. Any other
// makes files again only for the hosts a changed host reaches when it
// says which hosts' records reach each host's files (artifact.Scoper),
// or else for every host. Only the files made again are returned, so
// that a preview of a one-host change on a large fleet costs what the
// change reaches, not the fleet. Files that clash across generators are
// found among the files made again only.
func (g GeneratorSet) RenderChanged(base *Rendered, s *schema.Stack, changed, settings []string) (*Rerendered, error) {
	gens := g.Generators
	if s.MultiApp() {
		gens = artifact.ForApps(gens)
	}
	touched := map[string]bool{} // the changed hosts' roles, before and after
	isChanged := map[string]bool{}
	for _, n := range changed {
		isChanged[n] = true
		for _, st := range []*schema.Stack{base.Stack, s} {
			if h := st.Hosts[n]; h != nil {
				for _, r := range h.Roles {
					touched[r] = true
				}
			}
		}
	}
	names := s.HostNames()
	results := make([]checked, len(gens))
	again := make([]func(string) bool, len(gens))
	par.Each(len(gens), func(i int) {
		gen := gens[i]
		opt := artifact.Options{}
		var redo map[string]bool // the hosts made again; nil: every host
		if !slices.ContainsFunc(settings, func(f string) bool { return artifact.ReadsSetting(gen, f) }) {
			redo = map[string]bool{}
			for _, n := range names {
				if isChanged[n] || reaches(artifact.ReadsOf(gen, s, s.Hosts[n]), touched) {
					redo[n] = true
				}
			}
		}
		if redo != nil && len(redo) < len(names) {
			opt.Only = func(h string) bool { return redo[h] }
			again[i] = opt.Only
		}
		fs, err := gen.Generate(s, opt)
		if err == nil && opt.Only != nil {
			fs = slices.DeleteFunc(fs, func(f artifact.File) bool { return f.Host != "" && !redo[f.Host] })
		}
		results[i] = check(s, gen.Kind(), fs, err)
	})
	files, diags := mergeChecked(s, results, locator(gens))
	if len(diags) > 0 {
		schema.SortDiagnostics(diags)
		return nil, &schema.Error{Diags: diags}
	}
	r := &Rerendered{Stack: s, Files: files, again: map[string]func(string) bool{}, changed: isChanged}
	for i, gen := range gens {
		r.again[gen.Kind()] = again[i]
	}
	return r, nil
}

// reaches reports whether a generator that reads roles for a host sees
// a change to hosts of the touched roles.
func reaches(roles []string, touched map[string]bool) bool {
	for _, r := range roles {
		if r == artifact.All || touched[r] {
			return true
		}
	}
	return false
}
