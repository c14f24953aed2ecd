package rules

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/schema"
)

// appsRule checks how several apps share the stack's hosts and
// balancers (rule "apps").
func appsRule(s *schema.Stack) []finding {
	var fs []finding
	if len(s.AppsByName) > 0 && s.Wrote("app") {
		fs = append(fs, finding{"app", "a stack has app (one application) or apps (several), not both: move app into apps"})
	}
	if w := s.Workers; w != nil && w.Runs != "" {
		switch {
		case s.AppByName(w.Runs) == nil:
			fs = append(fs, finding{"workers.runs", fmt.Sprintf("%q is no app of the stack (apps: %s)", w.Runs, appNames(s))})
		case s.AppByName(w.Runs).Runtime != "python":
			fs = append(fs, finding{"workers.runs", fmt.Sprintf("Celery workers run Python code and app %q runs %s", w.Runs, s.AppByName(w.Runs).Runtime)})
		}
	}
	if !s.MultiApp() {
		// Routing is among apps: a lone app answers the stack's host
		// names (domain, aliases) on every path, so its own domains and
		// paths would render nothing.
		for _, a := range s.Apps {
			if len(a.Domains) > 0 {
				fs = append(fs, finding{a.Field + ".domains", fmt.Sprintf("app %q is the stack's only app and answers its domain and aliases: with one app, set domain and aliases instead of %s.domains", a.Name, a.Field)})
			}
			if len(a.Paths) > 0 {
				fs = append(fs, finding{a.Field + ".paths", fmt.Sprintf("app %q is the stack's only app and answers every path: paths route requests among several apps; remove %s.paths", a.Name, a.Field)})
			}
			// A lone app is the stack's app: the stack's settings
			// apply, and these per-app ones render nothing.
			if a.BalancerTimeouts != nil {
				fs = append(fs, finding{a.Field + ".balancer_timeouts", fmt.Sprintf("app %q is the stack's only app, whose balancer timeouts are balancer.timeouts: set those instead of %s.balancer_timeouts", a.Name, a.Field)})
			}
			if a.TargetConcurrency > 0 {
				fs = append(fs, finding{a.Field + ".target_concurrency", fmt.Sprintf("app %q is the stack's only app, whose capacity target is capacity.target_concurrency: set that instead of %s.target_concurrency", a.Name, a.Field)})
			}
		}
		return fs
	}
	if w := s.Workers; w != nil && w.Runs == "" {
		fs = append(fs, finding{"workers", fmt.Sprintf("with several apps, workers.runs names the app whose code, user and settings the Celery workers run (one of %s)", appNames(s))})
	}
	if s.Balancer.Kind == "cloud" {
		fs = append(fs, finding{"balancer.kind", `several apps are routed by host name and path on an nginx or HAProxy balancer; a cloud balancer (kind "cloud") is rendered with one pool of app hosts (a DigitalOcean load balancer cannot route by host name or path, and a target group per app behind AWS listener rules is not rendered), so every app would get every request: use kind "haproxy" or "nginx", or one stack per app`})
	}
	if s.Balancer.Kind == "haproxy" && s.TLS.Enabled() && s.TLS.Terminate == "app" {
		fs = append(fs, finding{"tls.terminate", `several apps are routed by host name and path, which a balancer passing TLS through cannot see: terminate TLS on the balancer (tls.terminate: "balancer")`})
	}
	if s.Scaling != nil {
		fs = append(fs, finding{"scaling", "an Auto Scaling group launches one app's hosts; with several apps, use one stack per app"})
	}
	for _, a := range s.Apps {
		for i, n := range a.Hosts {
			p := schema.IndexPath(a.Field+".hosts", i)
			switch h := s.Hosts[n]; {
			case h == nil:
				fs = append(fs, finding{p, fmt.Sprintf("app %q runs on %q, which is no host of the stack", a.Name, n)})
			case !h.Has("app"):
				fs = append(fs, finding{p, fmt.Sprintf("app %q runs on %s, which has no role \"app\"", a.Name, n)})
			}
		}
		if len(s.AppHosts(a)) == 0 && s.RoleCount("app") > 0 {
			fs = append(fs, finding{a.Field, fmt.Sprintf("app %q runs on no host with role \"app\"", a.Name)})
		}
	}
	var cs []clash
	for _, h := range s.HostsWithRole("app") {
		if len(s.AppsOn(h)) == 0 {
			fs = append(fs, finding{"hosts." + h.Name + ".roles", fmt.Sprintf("%s has role \"app\" and runs no app (every app lists its hosts)", h.Name)})
		}
		cs = append(cs, clashesOn(s, h)...)
	}
	fs = append(fs, clashFindings(cs)...)
	// Routing: no two apps may answer the same host name and path.
	type route struct{ domain, path string }
	owner := map[route]*schema.App{}
	for _, a := range s.Apps {
		paths := a.Paths
		if len(paths) == 0 {
			paths = []string{"/"}
		}
		for _, d := range s.AppDomains(a) {
			for _, p := range paths {
				r := route{d, p}
				if o := owner[r]; o != nil {
					fs = append(fs, finding{s.Written(routePath(a), routePath(o)), fmt.Sprintf("apps %q and %q both answer %s%s: give one of them domains or paths of its own", o.Name, a.Name, d, p)})
					continue
				}
				owner[r] = a
			}
		}
	}
	fs = append(fs, certificateGaps(s)...)
	return fs
}

// certificateGaps finds the host names no certificate names: a stack
// of several apps has a certificate per app's first host name
// (schema.Stack.CertificateViews), holding that app's names, so an app
// whose first name is another's but whose other names differ would
// answer names its balancer has no certificate for (HAProxy's
// strict-sni refuses their handshakes; nginx has no server for them).
func certificateGaps(s *schema.Stack) []finding {
	if !s.TLS.Enabled() || s.TLS.Mode == "cloud" {
		return nil
	}
	var fs []finding
	first := map[string]*schema.App{}
	for _, a := range s.Apps {
		ds := s.AppDomains(a)
		if len(ds) == 0 {
			continue
		}
		o := first[ds[0]]
		if o == nil {
			first[ds[0]] = a
			continue
		}
		var missing []string
		for _, d := range ds {
			if !slices.Contains(s.AppDomains(o), d) {
				missing = append(missing, d)
			}
		}
		if len(missing) > 0 {
			fs = append(fs, finding{s.Written(a.Field+".domains", a.Field), fmt.Sprintf("no certificate of the stack names %s, which app %q answers: the certificate for %s is app %q's (%s); give apps that share a first host name the same domains",
				strings.Join(missing, ", "), a.Name, ds[0], o.Name, strings.Join(s.AppDomains(o), ", "))})
		}
	}
	return fs
}

func routePath(a *schema.App) string {
	if len(a.Paths) > 0 {
		return a.Field + ".paths"
	}
	return a.Field + ".domains"
}

// clashesOn finds what two apps on host h would both claim: the port
// nginx listens on for the balancer, the app server's port or socket,
// the user, the environment file and the error pages directory.
func clashesOn(s *schema.Stack, h *schema.Host) []clash {
	var cs []clash
	type claim struct{ what, value string }
	type owned struct {
		app   *schema.App
		field string
	}
	owner := map[claim]owned{}
	for _, a := range s.AppsOn(h) {
		bind := [2]string{"bind.port", strconv.Itoa(a.Bind.Port)}
		what := "port"
		if a.Bind.Socket != "" {
			bind, what = [2]string{"bind.socket", a.Bind.Socket}, "socket"
		}
		for _, c := range []struct {
			field string
			c     claim
		}{
			{"http_port", claim{"port", strconv.Itoa(a.HTTPPort)}},
			{bind[0], claim{what, bind[1]}},
			{"user", claim{"user", a.User}},
			{"environment_file", claim{"environment file", a.EnvironmentFile}},
			{"error_pages", claim{"error pages directory", a.ErrorPages}},
		} {
			if o, ok := owner[c.c]; ok {
				// Point at the one the author wrote.
				path := s.Written(a.Field+"."+c.field, o.app.Field+"."+o.field)
				cs = append(cs, clash{path, fmt.Sprintf("apps %q and %q both use %s %s", o.app.Name, a.Name, c.c.what, c.c.value), h.Name})
				continue
			}
			owner[c.c] = owned{a, c.field}
		}
	}
	return cs
}

// clash is one thing two apps claim on a host.
type clash struct{ path, what, host string }

// clashFindings gives one finding per clash, naming every host it is on.
func clashFindings(cs []clash) []finding {
	var fs []finding
	hosts := map[[2]string][]string{}
	var order [][2]string
	for _, c := range cs {
		k := [2]string{c.path, c.what}
		if hosts[k] == nil {
			order = append(order, k)
		}
		hosts[k] = append(hosts[k], c.host)
	}
	for _, k := range order {
		fs = append(fs, finding{k[0], fmt.Sprintf("%s on %s: each app on a host needs its own (set %s)", k[1], strings.Join(hosts[k], ", "), k[0])})
	}
	return fs
}

func appNames(s *schema.Stack) string {
	var ns []string
	for _, a := range s.Apps {
		ns = append(ns, strconv.Quote(a.Name))
	}
	slices.Sort(ns)
	return strings.Join(ns, ", ")
}

// fileMaxKey is the kernel's limit on open files for the whole host.
const fileMaxKey = "fs.file-max"

// ProcessFDs is the descriptors one process of app a may hold: its
// connections (a gevent or uvicorn worker's worker_connections, a
// gthread worker's threads, one for a sync or Starman worker), its
// database pools and 64 spare for logs, sockets and libraries; with
// the words that say so.
func ProcessFDs(s *schema.Stack, a *schema.App) (int, string) { return processFDs(s, a, true) }

// processFDs is ProcessFDs, with the words only when words is true.
func processFDs(s *schema.Stack, a *schema.App, words bool) (int, string) {
	conns, what := 1, ""
	if words {
		what = "1 connection"
	}
	if a.Runtime == "python" {
		switch a.WorkerClass {
		case "gevent", "uvicorn":
			conns = a.WorkerConnections
			if words {
				what = fmt.Sprintf("%d connections", a.WorkerConnections)
			}
		case "gthread":
			conns = a.Threads
			if words {
				what = fmt.Sprintf("%d threads", a.Threads)
			}
		}
	}
	pool := s.Database.ProcessPool()
	if !words {
		return conns + pool + 64, ""
	}
	if pool > 0 {
		what += fmt.Sprintf(" + %d database", pool)
	}
	return conns + pool + 64, what + " + 64 spare"
}

// HostFDs is the descriptors the processes hacompile renders on app
// host h may hold together: each app's workers × ProcessFDs, the host's
// nginx (a worker per core, 2 descriptors per worker_connection) and
// its PgBouncer (max_client_conn and its server connections, each app's
// pool with several apps); with each one's share in words.
func HostFDs(s *schema.Stack, h *schema.Host) (int, []string) { return hostFDs(s, h, true) }

// hostFDs is HostFDs, with the shares in words only when words is true:
// fd-limit adds up every app host of a fleet, and words only the hosts
// above the limit.
func hostFDs(s *schema.Stack, h *schema.Host, words bool) (int, []string) {
	total := 0
	var shares []string
	for _, a := range s.AppsOn(h) {
		per, what := processFDs(s, a, words)
		n := a.Workers.For(h) * per
		total += n
		if words {
			shares = append(shares, fmt.Sprintf("%s %d workers × (%s) = %d", a.Name, a.Workers.For(h), what, n))
		}
	}
	cores := max(h.Cores, 1)
	n := cores * 2 * s.Tuning.NginxWorkerConnections
	total += n
	if words {
		shares = append(shares, fmt.Sprintf("nginx %d workers × 2 × %d worker_connections = %d", cores, s.Tuning.NginxWorkerConnections, n))
	}
	if pools := PoolerPools(s, h); len(pools) > 0 {
		// A descriptor per client and per server connection: with
		// several apps, each app's pool on the host.
		server := PoolerServers(pools)
		n := s.Database.Pooler.MaxClientConn + server
		total += n
		switch {
		case !words:
		case s.MultiApp():
			shares = append(shares, fmt.Sprintf("PgBouncer %d max_client_conn + %d server connections (%s) = %d",
				s.Database.Pooler.MaxClientConn, server, serverWords(s.Database, pools), n))
		default:
			shares = append(shares, fmt.Sprintf("PgBouncer %d", n))
		}
	}
	return total, shares
}

// fdHost sums what each app host's processes may hold open against the
// kernel's limit for the host (fs.file-max): fd-limit checks each
// process against its own limit (nofile), but apps sharing a host share
// the host's.
func fdHost(s *schema.Stack) []finding {
	v, ok := s.Tuning.Sysctl[fileMaxKey]
	if !ok {
		return nil
	}
	// An unsigned long in the kernel, at most LONG_MAX (proc_doulongvec_minmax).
	limit, err := sysctlInt(fileMaxKey, v, math.MaxInt64)
	if err != nil {
		return []finding{{schema.FieldPath("tuning.sysctl", fileMaxKey), err.Error()}}
	}
	type load struct {
		msg   string
		last  *schema.App
		hosts []string
	}
	var loads []*load
	for _, h := range s.HostsWithRole("app") {
		if total, _ := hostFDs(s, h, false); total <= limit {
			continue
		}
		total, shares := HostFDs(s, h)
		apps := s.AppsOn(h)
		msg := fmt.Sprintf("%s = %d descriptors, above %s %d (the kernel's limit for the whole host); raise tuning.sysctl.%q",
			strings.Join(shares, " + "), total, fileMaxKey, limit, fileMaxKey)
		if len(apps) > 1 {
			msg += ", lower the workers or connections, or move an app to hosts of its own"
		} else {
			msg += " or lower the workers or connections"
		}
		// The app with the largest share (the later by name of equal
		// ones): moving it off the host frees the most.
		var last *schema.App
		most := -1
		for _, a := range apps {
			per, _ := processFDs(s, a, false)
			if n := a.Workers.For(h) * per; n >= most {
				last, most = a, n
			}
		}
		if i := slices.IndexFunc(loads, func(l *load) bool { return l.msg == msg }); i >= 0 {
			loads[i].hosts = append(loads[i].hosts, h.Name)
			continue
		}
		loads = append(loads, &load{msg, last, []string{h.Name}})
	}
	var fs []finding
	for _, l := range loads {
		// The field to change: fs.file-max where the stack sets it, else
		// the hosts of the app with the largest share.
		path := schema.FieldPath("tuning.sysctl", fileMaxKey)
		if l.last != nil {
			path = s.Written(path, l.last.Field+".hosts", l.last.Field+".workers", l.last.Field)
		}
		where := l.hosts[0]
		if len(l.hosts) > 1 {
			where = "each of " + strings.Join(l.hosts, ", ")
		}
		fs = append(fs, finding{path, fmt.Sprintf("on %s: %s", where, l.msg)})
	}
	return fs
}
