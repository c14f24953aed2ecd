package schema

import (
	"cmp"
	"slices"
	"strings"
)

// Route is one rule of the balancers' routing between several apps:
// requests for the host names App answers (AppDomains) whose path
// starts with Path go to App; Path "" is every path.
type Route struct {
	App  *App
	Path string
}

// Routes lists the routing rules in the order a balancer tries them:
// the longest path prefix first, then by path and app name, an app's
// every-path rule after every path rule. A request goes to the first
// rule whose app answers its host name and whose path prefix its path
// starts with (RouteOf); the HAProxy balancer writes them as use_backend
// rules in this order, the nginx balancer as locations (Sites), where
// nginx's longest-prefix match picks the same rule.
func (s *Stack) Routes() []Route {
	var rs []Route
	for _, a := range s.Apps {
		if len(a.Paths) == 0 {
			rs = append(rs, Route{a, ""})
		}
		for _, p := range a.Paths {
			rs = append(rs, Route{a, p})
		}
	}
	slices.SortStableFunc(rs, func(x, y Route) int {
		return cmp.Or(cmp.Compare(len(y.Path), len(x.Path)), strings.Compare(x.Path, y.Path), strings.Compare(x.App.Name, y.App.Name))
	})
	return rs
}

// RouteOf returns the app a request for host (a Host header: any case,
// a port dropped) and path goes to, or nil when no app answers it.
func (s *Stack) RouteOf(host, path string) *App {
	return routeOf(s, s.Routes(), host, path)
}

func routeOf(s *Stack, rs []Route, host, path string) *App {
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	host = strings.ToLower(host)
	for _, r := range rs {
		if slices.Contains(s.AppDomains(r.App), host) && strings.HasPrefix(path, r.Path) {
			return r.App
		}
	}
	return nil
}

// Site is a set of host names that the same apps answer, so a balancer
// routes a request for any of them alike: one nginx server block.
type Site struct {
	// Domains are the host names, in the order of AllDomains.
	Domains []string
	// Routes are the rules of the apps answering Domains, in the order
	// of Routes.
	Routes []Route
}

// RouteOf returns the app a request for one of the site's host names
// and path goes to, or nil.
func (st Site) RouteOf(s *Stack, path string) *App {
	return routeOf(s, st.Routes, st.Domains[0], path)
}

// Sites groups the stack's host names (AllDomains) by the apps that
// answer them, in the order of each group's first name.
func (s *Stack) Sites() []Site {
	rs := s.Routes()
	var sites []Site
	key := map[string]int{}
	for _, d := range s.AllDomains() {
		var mine []Route
		var names []string
		for _, r := range rs {
			if slices.Contains(s.AppDomains(r.App), d) {
				mine = append(mine, r)
				names = append(names, r.App.Name+" "+r.Path)
			}
		}
		if len(mine) == 0 {
			continue
		}
		k := strings.Join(names, "\n")
		if i, ok := key[k]; ok {
			sites[i].Domains = append(sites[i].Domains, d)
			continue
		}
		key[k] = len(sites)
		sites = append(sites, Site{Domains: []string{d}, Routes: mine})
	}
	return sites
}
