package artifact

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/hacompile/hacompile/schema"
)

// AllApps is a generator that renders every app of a stack with several
// (schema.Stack.Apps) itself: the balancers, which route to them all,
// and the files a host has once whatever it runs. A generator without it
// renders one app at a time: ForApps runs it on each app's view of the
// stack (schema.Stack.ForApp).
type AllApps interface {
	AllApps() bool
}

// ForApps returns gens for a stack of several apps: each generator that
// is not AllApps wrapped so that it renders (and answers its
// capabilities) once per app. A file two apps render alike is kept
// once; two apps rendering one path differently is an error naming both.
func ForApps(gens []Generator) []Generator {
	out := make([]Generator, len(gens))
	for i, g := range gens {
		if a, ok := g.(AllApps); ok && a.AllApps() {
			out[i] = g
			continue
		}
		out[i] = perApp{g}
	}
	return out
}

type perApp struct{ g Generator }

func (p perApp) Kind() string { return p.g.Kind() }

func (p perApp) Generate(s *schema.Stack, opt Options) ([]File, error) {
	if !s.MultiApp() {
		return p.g.Generate(s, opt)
	}
	var files []File
	from := map[[2]string]int{}
	by := map[[2]string]*schema.App{}
	for _, a := range s.Apps {
		fs, err := p.g.Generate(s.ForApp(a), opt)
		if err != nil {
			if fe, ok := AsFieldError(err); ok {
				if np := schema.AppPath(a, fe.Path); np != fe.Path {
					msg := strings.Replace(err.Error(), fe.Path+": ", "", 1)
					return nil, &FieldError{Path: np, Err: fmt.Errorf("app %q: %s", a.Name, msg)}
				}
			}
			return nil, err
		}
		for _, f := range fs {
			k := [2]string{f.Host, f.Path}
			if i, ok := from[k]; ok {
				if !bytes.Equal(files[i].Content, f.Content) || files[i].Mode != f.Mode || files[i].Owner != f.Owner {
					return nil, Errorf(a.Field, "apps %q and %q render %s on %s differently; they cannot share that host", by[k].Name, a.Name, f.Path, f.Host)
				}
				continue
			}
			from[k] = len(files)
			by[k] = a
			files = append(files, f)
		}
	}
	return files, nil
}

func (p perApp) Packages(s *schema.Stack, h *schema.Host, files []File) []string {
	pk, ok := p.g.(Packager)
	if !ok {
		return nil
	}
	return union(s, func(a *schema.App) []string { return pk.Packages(s.ForApp(a), h, files) })
}

// union is what each app's view gives, in order, each item once.
func union[T comparable](s *schema.Stack, each func(*schema.App) []T) []T {
	var out []T
	for _, a := range s.Apps {
		for _, x := range each(a) {
			if !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
	}
	return out
}

func (p perApp) PackageDirs() []string {
	if pk, ok := p.g.(Packager); ok {
		return pk.PackageDirs()
	}
	return nil
}

func (p perApp) FirstBoot(s *schema.Stack, h *schema.Host, files []File) []Step {
	b, ok := p.g.(Booter)
	if !ok {
		return nil
	}
	return union(s, func(a *schema.App) []Step { return b.FirstBoot(s.ForApp(a), h, files) })
}

func (p perApp) Sources(s *schema.Stack, f File) []string {
	src, ok := p.g.(Sourcer)
	if !ok {
		return nil
	}
	return union(s, func(a *schema.App) []string {
		var xs []string
		for _, x := range src.Sources(s.ForApp(a), f) {
			xs = append(xs, schema.AppPath(a, x))
		}
		return xs
	})
}

// Reads is what the generator reads for h in any app's view of s.
func (p perApp) Reads(s *schema.Stack, h *schema.Host) []string {
	if _, ok := p.g.(Scoper); !ok {
		return all
	}
	return union(s, func(a *schema.App) []string { return ReadsOf(p.g, s.ForApp(a), h) })
}

// ReadsSettings is what the generator reads in an app's view, which
// takes its app from apps: (and the hosts' roles from each app's hosts).
func (p perApp) ReadsSettings() []string {
	sr, ok := p.g.(SettingsReader)
	if !ok {
		return all
	}
	return append(slices.Clone(sr.ReadsSettings()), "app", "apps")
}

func (p perApp) Effect() string {
	if e, ok := p.g.(Effecter); ok {
		return e.Effect()
	}
	return ""
}

func (p perApp) Facts(s *schema.Stack, files []File) Facts {
	var all Facts
	if f, ok := p.g.(Facter); ok {
		for _, a := range s.Apps {
			all.RelaysACME = all.RelaysACME || f.Facts(s.ForApp(a), files).RelaysACME
		}
	}
	return all
}

// Unwrap returns the generator ForApps wrapped.
func (p perApp) Unwrap() Generator { return p.g }
