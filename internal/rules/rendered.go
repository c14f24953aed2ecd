package rules

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// RenderedTable lists the rules that read the rendered files rather
// than the stack: they catch a generator (built-in or custom) whose
// output disagrees with the inventory.
var RenderedTable = []Rule{
	{"lb-backends", "error", "Every balancer backend pool lists exactly the inventory's app hosts on app.http_port.", nil},
	{"health-path", "error", "The health check path is served on every app host and is the one the balancer checks.", nil},
}

// CheckRendered runs the rendered-output rules over a stack's files.
func CheckRendered(s *schema.Stack, files []artifact.File) []schema.Diagnostic {
	var out []schema.Diagnostic
	add := func(rule, path, msg string) {
		d := s.At(path)
		d.Severity, d.Message, d.Rule = "error", msg, rule
		out = append(out, d)
	}
	want := map[string]bool{}
	appAddr := map[string]bool{}
	for _, h := range s.HostsWithRole("app") {
		want[h.Address+":"+strconv.Itoa(s.App.HTTPPort)] = true
		appAddr[h.Address] = true
	}
	healthServed := map[string]bool{}
	for _, f := range files {
		if f.Host == "" {
			continue
		}
		// Pools on app hosts (the ACME relay between siblings) are not
		// the balancer's.
		if s.Hosts[f.Host].Has("lb") && s.MultiApp() {
			for _, msg := range appPoolMismatches(s, f, appAddr) {
				add("lb-backends", "hosts", msg)
			}
		} else if s.Hosts[f.Host].Has("lb") {
			for _, msg := range poolMismatches(f, want, appAddr) {
				add("lb-backends", "hosts", msg)
			}
		}
		if f.Kind == "nginx" && bytes.Contains(f.Content, []byte("location = "+s.Balancer.Health.Path+" ")) {
			healthServed[f.Host] = true
		}
		if f.Kind == "haproxy" {
			if uri, ok := checkedURI(f.Content); ok && uri != s.Balancer.Health.Path {
				add("health-path", "balancer.health.path", fmt.Sprintf("/%s on %s checks %s, not the stack's health path %s", f.Path, f.Host, uri, s.Balancer.Health.Path))
			}
		}
	}
	for _, h := range s.HostsWithRole("app") {
		if !healthServed[h.Name] {
			add("health-path", "balancer.health.path", fmt.Sprintf("no nginx location on app host %s serves %s, which the balancer checks", h.Name, s.Balancer.Health.Path))
		}
	}
	schema.SortDiagnostics(out)
	return out
}

// checkedURI is the URI of HAProxy's "http-check send ... uri X" line.
func checkedURI(cfg []byte) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(cfg))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "http-check" || fields[1] != "send" {
			continue
		}
		if i := slices.Index(fields, "uri"); i >= 0 && i+1 < len(fields) {
			return fields[i+1], true
		}
	}
	return "", false
}

// poolMismatches reports each pool of f that reaches app hosts but does
// not list exactly want.
func poolMismatches(f artifact.File, want, appAddr map[string]bool) []string {
	var msgs []string
	for _, pool := range pools(f) {
		app := false
		for _, srv := range pool.servers {
			host, _, _ := strings.Cut(srv, ":")
			app = app || appAddr[host]
		}
		if !app {
			continue // an ACME relay or a stats listener, not the app pool
		}
		if missing, extra := setDiff(want, pool.servers); len(missing)+len(extra) > 0 {
			msgs = append(msgs, fmt.Sprintf("/%s on %s: pool %s lists %s; the inventory's app hosts are %s (missing %s, extra %s)",
				f.Path, f.Host, pool.name, strings.Join(pool.servers, " "), strings.Join(slices.Sorted(maps.Keys(want)), " "),
				orNone(missing), orNone(extra)))
		}
	}
	return msgs
}

// appPoolMismatches is poolMismatches for a stack of several apps: each
// app's pool (HAProxy backend app_<name>, nginx upstream
// <name>_app_hosts) lists exactly that app's hosts on its http_port, and
// every pool that reaches app hosts is some app's.
func appPoolMismatches(s *schema.Stack, f artifact.File, appAddr map[string]bool) []string {
	var msgs []string
	for _, pool := range pools(f) {
		app := false
		for _, srv := range pool.servers {
			host, _, _ := strings.Cut(srv, ":")
			app = app || appAddr[host]
		}
		if !app {
			continue
		}
		i := slices.IndexFunc(s.Apps, func(a *schema.App) bool {
			return pool.name == "app_"+a.Name || pool.name == a.Name+"_app_hosts"
		})
		if i < 0 {
			msgs = append(msgs, fmt.Sprintf("/%s on %s: pool %s reaches app hosts and is no app's", f.Path, f.Host, pool.name))
			continue
		}
		a := s.Apps[i]
		want := map[string]bool{}
		for _, h := range s.AppHosts(a) {
			want[h.Address+":"+strconv.Itoa(a.HTTPPort)] = true
		}
		if missing, extra := setDiff(want, pool.servers); len(missing)+len(extra) > 0 {
			msgs = append(msgs, fmt.Sprintf("/%s on %s: pool %s lists %s; app %s's hosts are %s (missing %s, extra %s)",
				f.Path, f.Host, pool.name, strings.Join(pool.servers, " "), a.Name, strings.Join(slices.Sorted(maps.Keys(want)), " "),
				orNone(missing), orNone(extra)))
		}
	}
	return msgs
}

type pool struct {
	name    string
	servers []string // address:port
}

// pools reads the backend pools of an nginx (upstream blocks) or HAProxy
// (backend and listen sections) configuration.
func pools(f artifact.File) []pool {
	var ps []pool
	var cur *pool
	sc := bufio.NewScanner(bytes.NewReader(f.Content))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(line, "#") {
			continue
		}
		switch f.Kind {
		case "nginx":
			switch {
			case fields[0] == "upstream" && len(fields) >= 2:
				ps = append(ps, pool{name: fields[1]})
				cur = &ps[len(ps)-1]
			case fields[0] == "}":
				cur = nil
			case cur != nil && fields[0] == "server" && len(fields) >= 2:
				cur.servers = append(cur.servers, strings.TrimSuffix(fields[1], ";"))
			}
		case "haproxy":
			switch {
			case slices.Contains([]string{"backend", "listen"}, fields[0]) && len(fields) >= 2:
				ps = append(ps, pool{name: fields[1]})
				cur = &ps[len(ps)-1]
			case slices.Contains([]string{"global", "defaults", "frontend", "resolvers", "userlist", "peers"}, fields[0]):
				cur = nil
			case cur != nil && fields[0] == "server" && len(fields) >= 3:
				cur.servers = append(cur.servers, fields[2])
			}
		}
	}
	return ps
}

func setDiff(want map[string]bool, got []string) (missing, extra []string) {
	have := map[string]bool{}
	for _, g := range got {
		have[g] = true
		if !want[g] {
			extra = append(extra, g)
		}
	}
	for w := range want {
		if !have[w] {
			missing = append(missing, w)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return missing, extra
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " ")
}
