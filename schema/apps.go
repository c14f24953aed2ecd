package schema

import (
	"maps"
	"slices"
	"strings"
)

// normaliseApps lists the stack's applications in s.Apps: the one app:
// of most stacks, or every entry of apps: sorted by name, with s.App
// then a copy of the first (so that code about the stack as a whole,
// such as a header, has a name to show).
func normaliseApps(s *Stack) {
	if len(s.AppsByName) == 0 {
		s.AppsByName = nil
		s.App.Field = "app"
		s.Apps = []*App{&s.App}
		return
	}
	s.Apps = nil
	for _, n := range slices.Sorted(maps.Keys(s.AppsByName)) {
		a := s.AppsByName[n]
		a.Name = n
		a.Field = FieldPath("apps", n)
		s.Apps = append(s.Apps, a)
	}
	s.App = *s.Apps[0]
}

// MultiApp reports whether the stack runs several applications (apps:
// with more than one entry).
func (s *Stack) MultiApp() bool { return len(s.Apps) > 1 }

// AppByName returns the app of that name, or nil.
func (s *Stack) AppByName(name string) *App {
	for _, a := range s.Apps {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// AppHosts returns the hosts running app a, sorted by name: those it
// names (apps.<name>.hosts), else every host with role "app".
func (s *Stack) AppHosts(a *App) []*Host {
	if len(a.Hosts) == 0 {
		return s.HostsWithRole("app")
	}
	var hs []*Host
	for _, h := range s.HostsWithRole("app") {
		if slices.Contains(a.Hosts, h.Name) {
			hs = append(hs, h)
		}
	}
	return hs
}

// AppsOn returns the apps host h runs, sorted by name.
func (s *Stack) AppsOn(h *Host) []*App {
	if !h.Has("app") {
		return nil
	}
	var as []*App
	for _, a := range s.Apps {
		if len(a.Hosts) == 0 || slices.Contains(a.Hosts, h.Name) {
			as = append(as, a)
		}
	}
	return as
}

// AppDomains returns the host names app a answers: its own, else the
// stack's domain and aliases.
func (s *Stack) AppDomains(a *App) []string {
	if len(a.Domains) > 0 {
		return slices.Clone(a.Domains)
	}
	return append([]string{s.Domain}, s.Aliases...)
}

// AllDomains returns every host name the stack answers, the stack's
// domain first, then each app's not listed yet.
func (s *Stack) AllDomains() []string {
	ds := append([]string{s.Domain}, s.Aliases...)
	for _, a := range s.Apps {
		for _, d := range a.Domains {
			if !slices.Contains(ds, d) {
				ds = append(ds, d)
			}
		}
	}
	return ds
}

// ForApp returns the stack as one app's generators see it: s itself for
// a stack of one app; otherwise a copy whose App is a, whose hosts have
// role "app" only where they run a, whose domain and aliases are a's
// (with a certbot certificate of its own, named after its first domain,
// unless the stack names the files), and whose Celery workers are there
// only when they run a's code.
func (s *Stack) ForApp(a *App) *Stack {
	if !s.MultiApp() {
		return s
	}
	v := *s
	v.App = *a
	v.Apps = []*App{&v.App}
	v.AppsByName = nil
	v.index = nil
	v.whole = s
	v.Hosts = make(map[string]*Host, len(s.Hosts))
	for n, h := range s.Hosts {
		if h.Has("app") && len(a.Hosts) > 0 && !slices.Contains(a.Hosts, n) {
			c := *h
			c.Roles = slices.DeleteFunc(slices.Clone(h.Roles), func(r string) bool { return r == "app" })
			h = &c
		}
		v.Hosts[n] = h
	}
	v.Reindex()
	if len(a.Domains) > 0 {
		v.Domain, v.Aliases = a.Domains[0], slices.Clone(a.Domains[1:])
		if s.TLS.Mode == "certbot" && !s.Wrote("tls.certificate") && !s.Wrote("tls.key") {
			v.TLS.Certificate = "/etc/letsencrypt/live/" + v.Domain + "/fullchain.pem"
			v.TLS.Key = "/etc/letsencrypt/live/" + v.Domain + "/privkey.pem"
		}
	}
	if t := a.BalancerTimeouts; t != nil {
		for _, f := range []struct {
			to *int
			v  int
		}{{&v.Balancer.Timeouts.Connect, t.Connect}, {&v.Balancer.Timeouts.Read, t.Read}, {&v.Balancer.Timeouts.Send, t.Send}} {
			if f.v > 0 {
				*f.to = f.v
			}
		}
	}
	if s.Workers != nil && s.Workers.Runs != a.Name {
		v.Workers = nil
	}
	// Each app reads the services' passwords from files of its own
	// (/etc/<app>/secrets/…, as with one app), readable by its user
	// alone, unless the stack names the files.
	own := func(file string) string { return "/etc/" + a.Name + "/secrets/" + file }
	if db := s.Database; db != nil && (!s.Wrote("database.password_file") || db.Pooler != nil) {
		c := *db
		if !s.Wrote("database.password_file") {
			c.PasswordFile = own("database-password")
		}
		if db.Pooler != nil {
			c.Alias = s.PoolerAlias(a)
		}
		v.Database = &c
	}
	if c := s.Cache; c != nil && c.PasswordFile != "" && !s.Wrote("cache.password_file") && c.PasswordFile == "/etc/"+s.Name+"/secrets/cache-password" {
		cc := *c
		cc.PasswordFile = own("cache-password")
		v.Cache = &cc
	}
	if q := s.Queue; q != nil && q.PasswordFile != "" && !s.Wrote("queue.password_file") && q.PasswordFile == "/etc/"+s.Name+"/secrets/broker-password" {
		qq := *q
		qq.PasswordFile = own("broker-password")
		v.Queue = &qq
	}
	// The view's app is at app.…: its positions are the entry's.
	v.Positions = make(map[string]Position, len(s.Positions))
	for p, at := range s.Positions {
		if p == "app" || strings.HasPrefix(p, "app.") || strings.HasPrefix(p, "apps.") {
			continue
		}
		v.Positions[p] = at
	}
	for p, at := range s.Positions {
		if p == a.Field || strings.HasPrefix(p, a.Field+".") || strings.HasPrefix(p, a.Field+"[") {
			v.Positions["app"+p[len(a.Field):]] = at
		}
	}
	return &v
}

// Whole returns the stack s is one app's view of (ForApp), or s itself:
// what a generator rendering one app at a time reads for the files that
// serve every app, such as the nginx balancer's site.
func (s *Stack) Whole() *Stack {
	if s.whole != nil {
		return s.whole
	}
	return s
}

// PoolerAlias is the database name app a's processes ask the host's
// PgBouncer for in a stack of several apps: the app's name, so that
// each app has a pool of its own (and a row of its own in SHOW POOLS)
// on the stack's one database.
func (s *Stack) PoolerAlias(a *App) string { return a.Name }

// AppPath maps a field path of an app's view (ForApp) back to the stack:
// "app.timeout" becomes "apps.web.timeout"; other paths stay. The view's
// domain and aliases are the app's domains.
func AppPath(a *App, path string) string {
	if a.Field == "app" || a.Field == "" {
		return path
	}
	switch {
	case path == "app" || strings.HasPrefix(path, "app.") || strings.HasPrefix(path, "app["):
		return a.Field + path[len("app"):]
	case len(a.Domains) > 0 && (path == "domain" || path == "aliases" || strings.HasPrefix(path, "aliases[")):
		return a.Field + ".domains"
	}
	return path
}

// CertificateViews are the stack as each of its TLS certificates sees
// it: s for a stack of one app; with several, the view (ForApp) of the
// first app of each set of host names, in the order of the apps.
func (s *Stack) CertificateViews() []*Stack {
	if !s.MultiApp() {
		return []*Stack{s}
	}
	var vs []*Stack
	for _, a := range s.Apps {
		v := s.ForApp(a)
		if !slices.ContainsFunc(vs, func(o *Stack) bool { return o.Domain == v.Domain }) {
			vs = append(vs, v)
		}
	}
	return vs
}

// HostNamesOf returns the names of hs, in their order.
func HostNamesOf(hs []*Host) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Name
	}
	return out
}
