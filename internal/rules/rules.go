// Package rules reviews a validated stack as a whole, the way a senior
// operator would: redundancy, capacity, file descriptors, backlogs,
// database pools, secrets, TLS and timeouts. The schema checks each field
// alone; these rules check how fields fit together. Each rule has an id,
// a severity and a message that names the field path and the numbers.
// Warnings can be accepted for a while by a waiver in the stack; errors
// cannot.
package rules

import (
	"cmp"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hacompile/hacompile/internal/secret"
	"github.com/hacompile/hacompile/schema"
)

// Rule is one check.
type Rule struct {
	ID       string
	Severity string // "error" or "warning"
	// Doc says what the rule protects against, for the runbook and --help.
	Doc   string
	check func(s *schema.Stack) []finding
}

type finding struct {
	path, msg string
}

// Table lists every rule. Ids are stable: waivers name them.
var Table = []Rule{
	{"ha-app-count", "warning", "An HA stack needs at least two app hosts, so losing one does not take the site down.", appCount},
	{"ha-single-lb", "warning", "A single load balancer host needs a stated failover (cloud balancer, second host with keepalived or a reserved IP).", singleLB},
	{"lb-hosts", "error", "An nginx or HAProxy balancer needs at least one host with the lb role; a cloud balancer needs none.", lbHosts},
	{"host-address", "error", "Two hosts cannot share an address: the balancer and push would reach one of them twice.", hostAddress},
	{"capacity", "error", "hosts × workers × per-worker concurrency must reach capacity.target_concurrency.", capacity},
	{"fd-limit", "error", "The open-files limit must cover the connections each process is configured to hold.", fdLimit},
	{"fd-host", "error", "What the processes of an app host may hold open together (every app's workers, nginx, PgBouncer) must fit in the host's fs.file-max: apps sharing a host share it.", fdHost},
	{"somaxconn", "warning", "net.core.somaxconn caps every listen backlog; a smaller value silently truncates the configured ones.", somaxconn},
	{"db-pool", "error", "All app processes' database pools together must fit in the database's max_connections.", dbPool},
	{"db-managed", "error", "The database is a managed or external PostgreSQL or MySQL server that hacompile does not configure; a self-hosted one (managed: false) is not rendered.", dbManaged},
	{"db-replica-pool", "warning", "Replicas without a read pool take no reads.", replicaPool},
	{"secret-inline", "error", "Secrets never go into a stack: reference a file on the host (the environment file) instead.", secretInline},
	{"tls-hsts", "error", "HSTS without TLS would tell browsers to insist on HTTPS that is not served.", hstsWithoutTLS},
	{"app-timeout", "warning", "gunicorn's timeout for sync workers (where it kills a worker stuck on one request) must be shorter than the proxy read timeout in front of it, or clients get 504s for requests that still complete.", appTimeout},
	{"trusted-proxies", "warning", "Behind a cloud balancer that terminates TLS, the app hosts must know the balancer's addresses to believe its X-Forwarded-For and X-Forwarded-Proto.", trustedProxies},
	{"workers-queue", "error", "Celery workers, their hosts and their broker come together: worker hosts need a workers section and a queue, and a queue needs workers to consume it.", workersQueue},
	{"beat-host", "error", "Celery beat runs on one host with the worker role; elsewhere nothing would run it.", beatHost},
	{"cache-host", "error", "A self-hosted cache runs on exactly one host with the cache role; a managed one is reached at cache.host.", cacheHost},
	{"queue-host", "error", "A self-hosted RabbitMQ runs on exactly one host with the queue role; a managed broker is reached at queue.host.", queueHost},
	{"broker-eviction", "error", "A Redis broker on a cache that evicts keys loses queued tasks when memory runs out.", brokerEviction},
	{"failover", "error", "A stated balancer failover is rendered: keepalived or a reserved IP needs balancer.vrrp, a virtual address no host has (inside the balancers' subnet for keepalived) and a priority per balancer; DNS failover is not rendered.", failover},
	{"stats-address", "error", "HAProxy binds balancer.stats.address on every balancer: an address other than loopback exists on one host only, and HAProxy will not start on the others.", statsAddress},
	{"app-port", "error", "The app server runs as an unprivileged user with no capabilities: it cannot bind a port below 1024.", appPort},
	{"cloud-lb-capacity", "error", "A DigitalOcean load balancer holds 10,000 concurrent connections per node (size_unit): enough nodes for capacity.target_concurrency.", cloudLBCapacity},
	{"rate-limit-hosts", "warning", "Behind an HAProxy or cloud balancer, rate limits apply on each app host: a client whose requests are spread over N hosts gets N times the rate.", rateLimitHosts},
	{"balancer-option", "error", "A balancer option the stack's balancer kind does not use renders nothing: it is an error, not silence.", balancerOption},
	{"app-option", "error", "An app option the stack's app server does not use renders nothing: it is an error, not silence.", appOption},
	{"db-option", "error", "A read-replica pool setting without replicas (or an overflow without a pool) renders nothing: an error, not silence.", dbOption},
	{"tls-option", "error", "A TLS option that nothing in the stack renders (certbot's webroot or email without certbot or where HAProxy ends TLS, certificate files, a profile or HSTS where no host serves TLS, HSTS's max-age without HSTS, OCSP stapling where no nginx ends TLS) is an error, not silence.", tlsOption},
	{"monitoring-off", "error", "Monitoring settings written while monitoring.enabled is false render nothing: an error, not silence.", monitoringOff},
	{"drain", "error", "Draining is rendered on nginx and HAProxy balancers, for app hosts, and never for all of them: a balancer with every host drained has nowhere to send a request.", drain},
	{"pull", "error", "Pulling from an OCI registry renders what it says: canary hosts the stack has, on a stable channel; an agent download with its sha256; a public key that is an ECDSA P-256 key.", pullRule},
	{"apps", "error", "Several apps share the balancers and hosts: each runs on hosts with the app role, with its own port, socket, user, environment file and error pages on every host it shares, its own host names or paths (no two apps answer the same name and path), and Celery workers name the app whose code they run.", appsRule},
	{"scaling", "error", "An Auto Scaling group is an AWS feature, launched from an app host whose address is known only at launch (0.0.0.0).", scaling},
}

// Known reports whether id names a rule.
func Known(id string) (Rule, bool) {
	for _, t := range [][]Rule{Table, RenderedTable} {
		if i := slices.IndexFunc(t, func(r Rule) bool { return r.ID == id }); i >= 0 {
			return t[i], true
		}
	}
	return Rule{}, false
}

// Check runs every rule over the stack and applies its waivers. today is
// the date waivers are compared with, as YYYY-MM-DD. It returns all
// findings, sorted; those with severity "error" fail the build.
func Check(s *schema.Stack, today string) []schema.Diagnostic {
	var out []schema.Diagnostic
	waived := map[string]schema.Waiver{}
	for i, w := range s.Waive {
		at := s.At(fmt.Sprintf("waive[%d]", i))
		at.Severity = "error"
		r, ok := Known(w.Rule)
		switch {
		case !ok:
			at.Message = fmt.Sprintf("waiver names unknown rule %q (known: %s)", w.Rule, strings.Join(ids(), ", "))
		case r.Severity == "error":
			at.Message = fmt.Sprintf("rule %s is an error and cannot be waived", w.Rule)
		case w.Until < today:
			at.Message = fmt.Sprintf("waiver for %s expired on %s (reason: %s); fix the finding or renew the waiver", w.Rule, w.Until, w.Reason)
		default:
			waived[w.Rule] = w
			continue
		}
		out = append(out, at)
	}
	for _, r := range Table {
		for _, f := range findings(r, s) {
			d := s.At(f.path)
			d.Severity, d.Message, d.Rule = r.Severity, f.msg, r.ID
			if w, ok := waived[r.ID]; ok {
				d.Severity = "waived"
				d.Message += fmt.Sprintf(" (waived until %s: %s)", w.Until, w.Reason)
			}
			out = append(out, d)
		}
	}
	schema.SortDiagnostics(out)
	return out
}

// perApp are the rules about one app's settings: with several apps they
// run on each app's view of the stack (schema.Stack.ForApp), their
// findings about the app moved to its entry and naming it.
var perApp = map[string]bool{"fd-limit": true, "somaxconn": true, "app-timeout": true, "app-port": true, "app-option": true}

func findings(r Rule, s *schema.Stack) []finding {
	if !s.MultiApp() || !perApp[r.ID] {
		return r.check(s)
	}
	var out []finding
	for _, a := range s.Apps {
		for _, f := range r.check(s.ForApp(a)) {
			if p := schema.AppPath(a, f.path); p != f.path {
				f.path = p
				f.msg = fmt.Sprintf("app %q: %s", a.Name, strings.ReplaceAll(f.msg, "app.", a.Field+"."))
			}
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

func ids() []string {
	var s []string
	for _, r := range Table {
		s = append(s, r.ID)
	}
	return s
}

func hostList(hs []*schema.Host) string {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.Name
	}
	return strings.Join(names, ", ")
}

func appCount(s *schema.Stack) []finding {
	apps := s.HostsWithRole("app")
	if len(apps) >= 2 {
		return nil
	}
	if sc := s.Scaling; sc != nil && len(apps) == 1 {
		// The host is a launch template: the group runs the instances.
		if sc.Min >= 2 {
			return nil
		}
		return []finding{{"scaling.min", fmt.Sprintf("the Auto Scaling group keeps %d instance(s) (scaling.min): losing one takes the site down; set scaling.min to at least 2", sc.Min)}}
	}
	return []finding{{"hosts", fmt.Sprintf("%d app host (%s): losing it takes the site down; add a second host with the app role", len(apps), hostList(apps))}}
}

func singleLB(s *schema.Stack) []finding {
	lbs := s.HostsWithRole("lb")
	if s.Balancer.Kind == "cloud" || len(lbs) == 0 {
		return nil
	}
	if s.Balancer.Failover == "keepalived" && len(lbs) < 2 {
		return []finding{{"balancer.failover", fmt.Sprintf("failover is keepalived but only one host (%s) has the lb role: keepalived moves the address between two or more", lbs[0].Name)}}
	}
	if len(lbs) != 1 || s.Balancer.Failover != "none" {
		return nil
	}
	return []finding{{"balancer.failover", fmt.Sprintf("one load balancer host (%s) and no failover: use a cloud balancer (balancer.kind: \"cloud\"), or add a second lb host with keepalived or a reserved IP and set balancer.failover", lbs[0].Name)}}
}

func lbHosts(s *schema.Stack) []finding {
	lbs := s.HostsWithRole("lb")
	switch {
	case s.Balancer.Kind != "cloud" && len(lbs) == 0:
		return []finding{{"balancer.kind", fmt.Sprintf("balancer.kind is %q but no host has the lb role", s.Balancer.Kind)}}
	case s.Balancer.Kind == "cloud" && len(lbs) > 0:
		return []finding{{"balancer.kind", fmt.Sprintf("balancer.kind is \"cloud\" but %s have the lb role: nothing would be rendered for them", hostList(lbs))}}
	}
	return nil
}

func hostAddress(s *schema.Stack) []finding {
	var fs []finding
	seen := map[string]string{}
	for _, n := range s.HostNames() {
		a := s.Hosts[n].Address
		if prev, ok := seen[a]; ok {
			fs = append(fs, finding{"hosts." + n + ".address", fmt.Sprintf("address %s is also host %s's", a, prev)})
			continue
		}
		seen[a] = n
	}
	return fs
}

// PerWorker is how many requests one worker process serves at once.
func PerWorker(a schema.App) (int, string) {
	switch {
	case a.Runtime == "perl":
		return 1, "1 (Starman prefork)"
	case a.WorkerClass == "gthread":
		return a.Threads, fmt.Sprintf("%d threads", a.Threads)
	case a.WorkerClass == "gevent" || a.WorkerClass == "uvicorn":
		return a.WorkerConnections, fmt.Sprintf("%d connections", a.WorkerConnections)
	}
	return 1, "1 (sync)"
}

// Capacity is the stack's concurrent requests: the sum over apps and
// their hosts of workers × per-worker concurrency.
func Capacity(s *schema.Stack) int {
	total := 0
	for _, a := range s.Apps {
		total += AppCapacity(s, a)
	}
	return total
}

// AppCapacity is one app's concurrent requests: the sum over its hosts
// of workers × per-worker concurrency.
func AppCapacity(s *schema.Stack, a *schema.App) int {
	per, _ := PerWorker(*a)
	total := 0
	for _, h := range s.AppHosts(a) {
		total += a.Workers.For(h) * per
	}
	return total
}

func capacity(s *schema.Stack) []finding {
	var fs []finding
	if s.MultiApp() {
		// Each app against its own target; the stack's target, if
		// any, against them all.
		for _, a := range s.Apps {
			if a.TargetConcurrency > 0 {
				fs = append(fs, appCapacity(s, a, a.Field+".target_concurrency", a.TargetConcurrency)...)
			}
		}
		if t := s.Capacity.TargetConcurrency; t > 0 {
			if got := Capacity(s); got < t {
				var parts []string
				for _, a := range s.Apps {
					parts = append(parts, fmt.Sprintf("%s %d", a.Name, AppCapacity(s, a)))
				}
				fs = append(fs, finding{"capacity.target_concurrency", fmt.Sprintf(
					"capacity is %d concurrent requests over %d apps (%s) for a target of %d: short by %d",
					got, len(s.Apps), strings.Join(parts, ", "), t, t-got)})
			}
		}
		return fs
	}
	return appCapacity(s, &s.App, "capacity.target_concurrency", s.Capacity.TargetConcurrency)
}

func appCapacity(s *schema.Stack, a *schema.App, path string, target int) []finding {
	apps := s.AppHosts(a)
	if target == 0 || len(apps) == 0 {
		return nil
	}
	got := AppCapacity(s, a)
	if got >= target {
		return nil
	}
	_, perDesc := PerWorker(*a)
	workers := 0
	for _, h := range apps {
		workers += a.Workers.For(h)
	}
	perHost := float64(got) / float64(len(apps))
	need := int(math.Ceil(float64(target) / perHost))
	msg := fmt.Sprintf(
		"capacity is %s (%s, %s in all, × %s) for a target of %d: short by %d; %d such hosts would meet it",
		count(got, "concurrent request", "concurrent requests"), count(len(apps), "app host", "app hosts"), count(workers, "worker", "workers"), perDesc, target, target-got, need)
	if s.MultiApp() {
		msg = fmt.Sprintf("app %q: %s", a.Name, msg)
	}
	return []finding{{path, msg}}
}

func fdLimit(s *schema.Stack) []finding {
	n := s.Tuning.Nofile
	var fs []finding
	for _, p := range ProcessFDNeeds(s) {
		if p.Need > n {
			fs = append(fs, finding{"tuning.nofile", fmt.Sprintf("%s, above nofile %d", p.Why, n)})
		}
	}
	return fs
}

// Need is a number of descriptors or connections something may ask
// for, with the words that say why.
type Need struct {
	Need int
	Why  string
}

// ProcessFDNeeds is what fd-limit holds against tuning.nofile, each
// process's own limit: nginx's workers, the app's gevent or uvicorn
// workers, HAProxy.
func ProcessFDNeeds(s *schema.Stack) []Need {
	need := 2 * s.Tuning.NginxWorkerConnections
	ns := []Need{{need, fmt.Sprintf("nginx needs 2 descriptors per connection (client and upstream): 2 × %d worker_connections = %d", s.Tuning.NginxWorkerConnections, need)}}
	if s.App.Runtime == "python" && (s.App.WorkerClass == "gevent" || s.App.WorkerClass == "uvicorn") {
		pool := s.Database.ProcessPool()
		// Each connection is one descriptor; add the database pools and
		// a margin for logs, sockets and libraries.
		need := s.App.WorkerConnections + pool + 64
		ns = append(ns, Need{need, fmt.Sprintf("a %s worker holds %d connections + %d database connections + 64 spare = %d descriptors", s.App.WorkerClass, s.App.WorkerConnections, pool, need)})
	}
	if s.Balancer.Kind == "haproxy" {
		need := 2*s.Balancer.MaxConn + 64
		ns = append(ns, Need{need, fmt.Sprintf("HAProxy needs 2 descriptors per connection: 2 × %d maxconn + 64 = %d", s.Balancer.MaxConn, need)})
	}
	return ns
}

// kernelSomaxconn is Linux's default since 5.4.
const kernelSomaxconn = 4096

// nginxBacklog is nginx's listen backlog on Linux when none is set.
const nginxBacklog = 511

func somaxconn(s *schema.Stack) []finding {
	max, err := Somaxconn(s)
	if err != nil {
		return []finding{{`tuning.sysctl."net.core.somaxconn"`, err.Error()}}
	}
	var fs []finding
	for _, b := range listenBacklogs(s) {
		if b.n > max {
			fs = append(fs, finding{b.path, fmt.Sprintf("%s backlog is %d but net.core.somaxconn is %d: the kernel truncates it to %d; raise net.core.somaxconn to at least %d", b.who, b.n, max, max, b.n)})
		}
	}
	return fs
}

// Somaxconn is the hosts' net.core.somaxconn: the stack's, else
// Linux's default.
func Somaxconn(s *schema.Stack) (int, error) {
	v, ok := s.Tuning.Sysctl["net.core.somaxconn"]
	if !ok {
		return kernelSomaxconn, nil
	}
	// An int in the kernel (proc_dointvec_minmax, from 0).
	return sysctlInt("net.core.somaxconn", v, math.MaxInt32)
}

// sysctlInt is the number a kernel setting is set to, which the kernel
// takes from 0 to most. The schema admits any 64-bit number, signed or
// unsigned (kernel.shmmax's default is near 2^64); one out of the
// setting's range is said to be, rather than to be no number.
func sysctlInt(key string, v schema.Scalar, most int64) (int, error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if (err == nil && (n < 0 || n > most)) || errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%s = %s is out of the kernel's range for it (0 to %d)", key, v, most)
	}
	if err != nil {
		return 0, fmt.Errorf("%s = %q is not a number", key, v)
	}
	return int(n), nil
}

type backlog struct {
	path, who string
	n         int
}

// listenBacklogs are the backlogs the somaxconn rule holds against
// net.core.somaxconn. HAProxy's frontends are not among them:
// haproxy.cfg sets backlog to somaxconn when maxconn (its default) is
// larger, so it is never truncated.
func listenBacklogs(s *schema.Stack) []backlog {
	return []backlog{{"app.backlog", s.App.Server + " --backlog", s.App.Backlog}, {"tuning.sysctl", "nginx listen", nginxBacklog}}
}

// LargestBacklog is the largest listen backlog the somaxconn rule
// holds against net.core.somaxconn.
func LargestBacklog(s *schema.Stack) int {
	n := 0
	for _, b := range listenBacklogs(s) {
		n = max(n, b.n)
	}
	return n
}

func dbPool(s *schema.Stack) []finding {
	db := s.Database
	if db == nil {
		return nil
	}
	if db.Pooler != nil {
		if db.Engine != "postgresql" {
			return []finding{{"database.pooler", fmt.Sprintf("the pooler is PgBouncer, which speaks PostgreSQL's protocol only, and database.engine is %q: drop database.pooler", db.Engine)}}
		}
		return poolerPool(s)
	}
	procs, what := PoolProcesses(s)
	var fs []finding
	per := db.PoolSize + db.MaxOverflow
	if need := procs * per; db.MaxConnections > 0 && need > db.MaxConnections {
		fs = append(fs, finding{"database.max_connections", fmt.Sprintf(
			"%s × (pool_size %d + max_overflow %d) = %d connections to the primary, above max_connections %d; lower the pools, add a pooler (database.pooler, PgBouncer on each app and worker host) or raise max_connections",
			what, db.PoolSize, db.MaxOverflow, need, db.MaxConnections)})
	}
	if limit, field := db.ReplicaLimit(); db.ReadPool() && limit > 0 {
		if need := procs * (db.ReplicaPoolSize + db.ReplicaMaxOverflow); need > limit {
			fs = append(fs, finding{field, fmt.Sprintf(
				"%s × (replica_pool_size %d + replica_max_overflow %d) = %d connections to a replica (each replica must take them all when the others are lost), above %s %d; lower the read pools, add a pooler (database.pooler, PgBouncer on each app and worker host) or raise %[5]s",
				what, db.ReplicaPoolSize, db.ReplicaMaxOverflow, need, strings.TrimPrefix(field, "database."), limit)})
		}
	}
	return fs
}

// PoolProcesses is how many processes each hold a connection pool to
// the database (app processes, at full scale for an Auto Scaling group,
// and the Celery processes that hold one), with the words that say so:
// db-pool's arithmetic, which the runbook's headroom table shows too.
func PoolProcesses(s *schema.Stack) (int, string) {
	procs := 0
	var per []string
	for _, a := range s.Apps {
		n := 0
		for _, h := range s.AppHosts(a) {
			n += a.Workers.For(h)
		}
		procs += n
		per = append(per, fmt.Sprintf("%s %d", a.Name, n))
	}
	what := fmt.Sprintf("%d app processes", procs)
	if s.MultiApp() {
		what += " (" + strings.Join(per, ", ") + ")"
	}
	if sc := s.Scaling; sc != nil {
		if h := s.ScalingTemplateHost(); h != nil {
			// At full scale every instance runs the template host's workers.
			procs = sc.Max * s.App.Workers.For(h)
			what = fmt.Sprintf("%d app processes (scaling.max %d instances × %d)", procs, sc.Max, s.App.Workers.For(h))
		}
	}
	if w := s.Workers; w != nil {
		celery := 0
		for _, h := range s.HostsWithRole("worker") {
			celery += celeryProcs(s, h)
		}
		if celery > 0 {
			procs += celery
			what += fmt.Sprintf(" + %d Celery worker processes", celery)
		}
	}
	return procs, what
}

// celeryProcs is how many processes of worker host h hold a pool: each
// prefork child its own; a gevent or threads worker is one process
// sharing one.
func celeryProcs(s *schema.Stack, h *schema.Host) int {
	w := s.Workers
	if w == nil || !h.Has("worker") {
		return 0
	}
	if w.Pool == "prefork" {
		return w.ConcurrencyFor(h)
	}
	return 1
}

// poolerPool does db-pool's arithmetic through PgBouncer on each app and
// worker host: the processes of a host × their pools are client
// connections to its PgBouncer (max_client_conn; in session mode each
// also holds a server connection), and every host's PgBouncer opens at
// most default_pool_size + reserve_pool_size server connections, which
// together must fit max_connections.
func poolerPool(s *schema.Stack) []finding {
	db, p := s.Database, s.Database.Pooler
	per := db.PoolSize + db.MaxOverflow
	// With a read pool each process opens its replica pool to the same
	// PgBouncer, which keeps a pool of its own on the replicas.
	rper := 0
	if db.ReadPool() {
		rper = db.ReplicaPoolSize + db.ReplicaMaxOverflow
	}
	server := p.DefaultPoolSize + p.ReservePoolSize
	type load struct {
		what        string
		need, reads int
		hosts       []string
	}
	var loads []*load
	count, hostNames := PoolerHosts(s)
	tmpl := s.ScalingTemplateHost()
	for _, name := range s.HostNames() {
		h := s.Hosts[name]
		if !h.Has("app") && !h.Has("worker") {
			continue
		}
		var parts []string
		procs := 0
		for _, a := range s.AppsOn(h) {
			n := a.Workers.For(h)
			procs += n
			if s.MultiApp() {
				parts = append(parts, fmt.Sprintf("%d %s processes", n, a.Name))
			} else {
				parts = append(parts, fmt.Sprintf("%d app processes", n))
			}
		}
		if n := celeryProcs(s, h); n > 0 {
			procs += n
			parts = append(parts, fmt.Sprintf("%d Celery worker processes", n))
		}
		who := name
		if tmpl != nil && h == tmpl {
			who = fmt.Sprintf("the scaling.max %d instances", s.Scaling.Max)
		}
		what := strings.Join(parts, " + ")
		if i := slices.IndexFunc(loads, func(l *load) bool { return l.what == what }); i >= 0 {
			loads[i].hosts = append(loads[i].hosts, who)
		} else {
			loads = append(loads, &load{what, procs * per, procs * rper, []string{who}})
		}
	}
	var fs []finding
	for _, l := range loads {
		where := l.hosts[0]
		if len(l.hosts) > 1 || strings.HasPrefix(where, "the ") {
			where = "each of " + strings.TrimPrefix(strings.Join(l.hosts, ", "), "the ")
		}
		if rper > 0 && l.need+l.reads > p.MaxClientConn {
			fs = append(fs, finding{"database.pooler.max_client_conn", fmt.Sprintf(
				"on %s: %s × (pool_size %d + max_overflow %d + replica_pool_size %d + replica_max_overflow %d) = %d client connections to the host's PgBouncer, above max_client_conn %d; raise max_client_conn or lower the pools",
				where, l.what, db.PoolSize, db.MaxOverflow, db.ReplicaPoolSize, db.ReplicaMaxOverflow, l.need+l.reads, p.MaxClientConn)})
		} else if l.need > p.MaxClientConn {
			fs = append(fs, finding{"database.pooler.max_client_conn", fmt.Sprintf(
				"on %s: %s × (pool_size %d + max_overflow %d) = %d client connections to the host's PgBouncer, above max_client_conn %d; raise max_client_conn or lower the pools",
				where, l.what, db.PoolSize, db.MaxOverflow, l.need, p.MaxClientConn)})
		}
		if p.PoolMode == "session" && l.need > server && !s.MultiApp() {
			fs = append(fs, finding{"database.pooler.pool_mode", fmt.Sprintf(
				"on %s: %s × (pool_size %d + max_overflow %d) = %d client connections, and in session mode each holds a server connection while it is open, but the host's PgBouncer opens at most default_pool_size %d + reserve_pool_size %d = %d: clients would wait; use pool_mode \"transaction\" or raise default_pool_size",
				where, l.what, db.PoolSize, db.MaxOverflow, l.need, p.DefaultPoolSize, p.ReservePoolSize, server)})
		}
		if p.PoolMode == "session" && l.reads > server && !s.MultiApp() {
			fs = append(fs, finding{"database.pooler.pool_mode", fmt.Sprintf(
				"on %s: %s × (replica_pool_size %d + replica_max_overflow %d) = %d client connections to the read pool, and in session mode each holds a server connection while it is open, but the host's PgBouncer opens at most default_pool_size %d + reserve_pool_size %d = %d to the replicas: clients would wait; use pool_mode \"transaction\" or raise default_pool_size",
				where, l.what, db.ReplicaPoolSize, db.ReplicaMaxOverflow, l.reads, p.DefaultPoolSize, p.ReservePoolSize, server)})
		}
	}
	if s.MultiApp() {
		return append(fs, poolerApps(s)...)
	}
	// PgBouncer holds a descriptor per client and per server
	// connection, under the LimitNOFILE its drop-in sets: its pool on
	// the primary and, with a read pool, its pool on the replicas.
	servers, which := server, ""
	if rper > 0 {
		servers, which = 2*server, " (to the primary and as many to the replicas)"
	}
	if fds := p.MaxClientConn + servers; fds > s.Tuning.Nofile {
		fs = append(fs, finding{"database.pooler.max_client_conn", fmt.Sprintf(
			"PgBouncer needs a descriptor per connection: max_client_conn %d + %d server connections%s = %d, above tuning.nofile %d (its LimitNOFILE); lower max_client_conn or raise tuning.nofile",
			p.MaxClientConn, servers, which, fds, s.Tuning.Nofile)})
	}
	if db.MaxConnections > 0 && count*server > db.MaxConnections {
		fs = append(fs, finding{"database.max_connections", fmt.Sprintf(
			"%d hosts run PgBouncer (%s) × (default_pool_size %d + reserve_pool_size %d) = %d server connections to the primary, above max_connections %d; lower database.pooler.default_pool_size or reserve_pool_size, or raise max_connections",
			count, hostNames, p.DefaultPoolSize, p.ReservePoolSize, count*server, db.MaxConnections)})
	}
	if limit, field := db.ReplicaLimit(); rper > 0 && limit > 0 && count*server > limit {
		fs = append(fs, finding{field, fmt.Sprintf(
			"%d hosts run PgBouncer (%s) × (default_pool_size %d + reserve_pool_size %d) = %d server connections to a replica from the read pools (each replica must take them all when the others are lost), above %s %d; lower database.pooler.default_pool_size or reserve_pool_size, or raise %[6]s",
			count, hostNames, p.DefaultPoolSize, p.ReservePoolSize, count*server, strings.TrimPrefix(field, "database."), limit)})
	}
	return fs
}

// PoolerHosts is how many hosts run PgBouncer (every app and worker
// host; an Auto Scaling group's template host at scaling.max), and
// which.
func PoolerHosts(s *schema.Stack) (int, string) {
	count := 0
	var names []string
	tmpl := s.ScalingTemplateHost()
	for _, name := range s.HostNames() {
		h := s.Hosts[name]
		switch {
		case !h.Has("app") && !h.Has("worker"):
		case tmpl != nil && h == tmpl:
			count += s.Scaling.Max
			names = append(names, fmt.Sprintf("scaling.max %d instances", s.Scaling.Max))
		default:
			count++
			names = append(names, name)
		}
	}
	return count, strings.Join(names, ", ")
}

func dbManaged(s *schema.Stack) []finding {
	db := s.Database
	if db == nil || db.Managed {
		return nil
	}
	server, files := "PostgreSQL", "postgresql.conf, pg_hba.conf"
	if db.Engine == "mysql" {
		server, files = "MySQL", "my.cnf"
	}
	return []finding{{"database.managed", fmt.Sprintf(
		"a self-hosted database (managed: false) is not rendered: hacompile configures no %s server (%s, replication) on the stack's hosts; "+
			"supported is a managed or external PostgreSQL or MySQL server that the app reaches at database.host (%s): drop managed: false",
		server, files, db.Host)}}
}

func workersQueue(s *schema.Stack) []finding {
	workers := s.HostsWithRole("worker")
	switch {
	case len(workers) > 0 && s.Workers == nil:
		return []finding{{"hosts", fmt.Sprintf("%s have the worker role but the stack has no workers section: nothing would run on them; add workers (the Celery app) or drop the role", hostList(workers))}}
	case s.Workers != nil && len(workers) == 0:
		return []finding{{"workers", "a workers section but no host has the worker role: add the role to the hosts that run Celery"}}
	case s.Workers != nil && s.Queue == nil:
		return []finding{{"workers", "Celery workers need a broker: add a queue section (rabbitmq or redis)"}}
	case s.Queue != nil && s.Workers == nil:
		return []finding{{"queue", "a queue but no workers section: tasks would be queued and never run; add workers and hosts with the worker role"}}
	}
	return nil
}

func beatHost(s *schema.Stack) []finding {
	w := s.Workers
	if w != nil && !w.Beat.Enabled && w.Beat.Host != "" {
		return []finding{{"workers.beat.host", "beat is off (workers.beat.enabled false), so it runs nowhere: set workers.beat.enabled: true or remove the host"}}
	}
	if w == nil || !w.Beat.Enabled || w.Beat.Host == "" {
		return nil
	}
	if h := s.Hosts[w.Beat.Host]; h == nil || !h.Has("worker") {
		return []finding{{"workers.beat.host", fmt.Sprintf("beat runs on %q, which is not a host with the worker role (worker hosts: %s)", w.Beat.Host, hostList(s.HostsWithRole("worker")))}}
	}
	return nil
}

func cacheHost(s *schema.Stack) []finding {
	hosts := s.HostsWithRole("cache")
	c := s.Cache
	switch {
	case c == nil && len(hosts) > 0:
		return []finding{{"hosts", fmt.Sprintf("%s have the cache role but the stack has no cache section: nothing would run on them", hostList(hosts))}}
	case c == nil:
		return nil
	case c.Managed && c.Host == "":
		return []finding{{"cache", "a managed cache needs cache.host, the address the app reaches it at"}}
	case c.Managed && len(hosts) > 0:
		return []finding{{"cache.managed", fmt.Sprintf("the cache is managed (at %s) but %s have the cache role: nothing would be rendered for them", c.Host, hostList(hosts))}}
	case !c.Managed && len(hosts) == 0:
		return []finding{{"cache", "a self-hosted cache (cache.managed false) needs a host with the cache role to run on"}}
	case !c.Managed && len(hosts) > 1:
		return []finding{{"hosts", fmt.Sprintf("%d hosts have the cache role (%s): hacompile renders a standalone %s, and two would be separate caches; keep one, or use a managed cache for failover", len(hosts), hostList(hosts), map[string]string{"redis": "Redis", "memcached": "Memcached"}[c.Engine])}}
	case !c.Managed && c.Engine == "memcached" && c.PasswordFile != "":
		return []finding{{"cache.password_file", "a self-hosted Memcached has no authentication (Debian's memcached runs without SASL): remove cache.password_file, and keep the cache host on the private network"}}
	case c.Engine == "memcached" && c.TLS:
		return []finding{{"cache.tls", "the app reaches Memcached at a memcached:// URL (CACHE_URL), which has no TLS form, and nothing else of the stack talks to it, so cache.tls renders nothing: remove it, or use a Redis cache (rediss://)"}}
	case !c.Managed && c.Host != "" && c.Host != hosts[0].Address:
		return []finding{{"cache.host", fmt.Sprintf("cache.host %s is not the cache host %s's address %s", c.Host, hosts[0].Name, hosts[0].Address)}}
	}
	return nil
}

func queueHost(s *schema.Stack) []finding {
	hosts := s.HostsWithRole("queue")
	q := s.Queue
	switch {
	case (q == nil || q.Managed) && len(hosts) > 0:
		return []finding{{"hosts", fmt.Sprintf("%s have the queue role but the stack runs no broker of its own (a self-hosted RabbitMQ: a queue section with engine rabbitmq and no host): nothing would run on them", hostList(hosts))}}
	case q == nil || q.Managed:
		return nil
	case len(hosts) == 0:
		return []finding{{"queue", "a self-hosted RabbitMQ (queue.managed false) needs a host with the queue role to run on"}}
	case len(hosts) > 1:
		return []finding{{"hosts", fmt.Sprintf("%d hosts have the queue role (%s): hacompile renders a single RabbitMQ node, not a cluster; keep one, or use a managed broker", len(hosts), hostList(hosts))}}
	case q.Host != "":
		return []finding{{"queue.host", fmt.Sprintf("a self-hosted RabbitMQ is reached at its queue host's address (%s): remove queue.host %s", hosts[0].Address, q.Host)}}
	}
	return nil
}

func brokerEviction(s *schema.Stack) []finding {
	q, c := s.Queue, s.Cache
	if q == nil || c == nil || q.Engine != "redis" || c.Managed || c.MaxmemoryPolicy == "noeviction" {
		return nil
	}
	if q.Host != s.CacheEndpoint() || q.Port != c.Port {
		return nil
	}
	return []finding{{"cache.maxmemory_policy", fmt.Sprintf("the Redis broker (queue.host %s) is the cache, whose maxmemory_policy %s evicts keys: queued tasks would vanish when memory runs out; set maxmemory_policy to noeviction or use a separate broker", q.Host, c.MaxmemoryPolicy)}}
}

func scaling(s *schema.Stack) []finding {
	sc := s.Scaling
	if sc == nil {
		return nil
	}
	if s.Provider != "aws" {
		return []finding{{"scaling", fmt.Sprintf("a scaling section (an AWS Auto Scaling group) needs provider \"aws\", not %q", s.Provider)}}
	}
	h := s.ScalingTemplateHost()
	switch {
	case sc.TemplateHost != "" && (h == nil || !h.Has("app")):
		return []finding{{"scaling.template_host", fmt.Sprintf("%q is not a host with the app role", sc.TemplateHost)}}
	case h == nil:
		return []finding{{"scaling", "an Auto Scaling group needs an app host to launch its instances as"}}
	case h.Address != "0.0.0.0":
		return []finding{{"hosts." + h.Name + ".address", fmt.Sprintf("the launch template's host %s has address %s, but an instance's address is known only at launch: set it to 0.0.0.0 so its services listen on every address", h.Name, h.Address)}}
	case s.Balancer.Kind != "cloud":
		return []finding{{"balancer.kind", fmt.Sprintf("an Auto Scaling group registers with an ALB target group: want balancer.kind \"cloud\", not %q", s.Balancer.Kind)}}
	case sc.LoadBalancerARN != "" && sc.TargetGroupARN == "":
		// The load balancer's ARN is only a dimension of the ALB's
		// alarms, which need the target group's too.
		return []finding{{"scaling.load_balancer_arn", "the ALB's alarms (unhealthy targets, the 5xx rate) need the target group too, so without scaling.target_group_arn this renders nothing: add it, or remove this"}}
	}
	return nil
}

func replicaPool(s *schema.Stack) []finding {
	db := s.Database
	if db == nil || len(db.Replicas) == 0 || db.ReplicaPoolSize > 0 {
		return nil
	}
	return []finding{{"database.replicas", fmt.Sprintf("%d replica(s) declared but no database.replica_pool_size: reads all go to the primary", len(db.Replicas))}}
}

func secretInline(s *schema.Stack) []finding {
	var fs []finding
	// A fleet's hosts repeat their roles, sizes and users: each string
	// is matched once.
	what := map[string]string{}
	walkStrings(reflect.ValueOf(*s), &strPath{}, func(path *strPath, v string) {
		w, ok := what[v]
		if !ok {
			w = secret.In(v)
			what[v] = w
		}
		if w != "" {
			p := path.String()
			where := "a file on the host (app.environment_file, mode 0600) that the rendered config references"
			if p == "monitoring.alertmanager.url" || p == "monitoring.alertmanager.watchdog_url" {
				// Alertmanager reads the URL from a file itself.
				where = "a file on the monitoring host that " + p + "_file names (Debian 13)"
			}
			fs = append(fs, finding{p, fmt.Sprintf("looks like %s written into the stack; secrets belong in %s", w, where)})
		}
	})
	return fs
}

// strPath is the field path walkStrings is at, written out only for a
// string that is reported.
type strPath struct {
	elems []pathElem
}

type pathElem struct {
	name  string
	index int // when name is ""
}

// String writes the path as in the stack file: hosts.app1.roles[0].
func (p *strPath) String() string {
	var b strings.Builder
	for _, e := range p.elems {
		switch {
		case e.name == "" && e.index >= 0:
			b.WriteString("[" + strconv.Itoa(e.index) + "]")
		case b.Len() == 0:
			b.WriteString(e.name)
		default:
			b.WriteString("." + e.name)
		}
	}
	return b.String()
}

// jsonFields are a struct type's fields with a json name, by index.
var jsonFields sync.Map // reflect.Type → []jsonField

type jsonField struct {
	index int
	name  string
}

func jsonFieldsOf(t reflect.Type) []jsonField {
	if fs, ok := jsonFields.Load(t); ok {
		return fs.([]jsonField)
	}
	var fs []jsonField
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if tag == "-" || tag == "" {
			continue
		}
		fs = append(fs, jsonField{i, tag})
	}
	jsonFields.Store(t, fs)
	return fs
}

// walkStrings calls fn with the field path of every string in v,
// following json tags so paths read as in the stack file.
func walkStrings(v reflect.Value, path *strPath, fn func(path *strPath, v string)) {
	field := func(name string, v reflect.Value) {
		path.elems = append(path.elems, pathElem{name: name, index: -1})
		walkStrings(v, path, fn)
		path.elems = path.elems[:len(path.elems)-1]
	}
	switch v.Kind() {
	case reflect.String:
		fn(path, v.String())
	case reflect.Pointer:
		if !v.IsNil() {
			walkStrings(v.Elem(), path, fn)
		}
	case reflect.Struct:
		for _, f := range jsonFieldsOf(v.Type()) {
			field(f.name, v.Field(f.index))
		}
	case reflect.Slice:
		for i := range v.Len() {
			path.elems = append(path.elems, pathElem{index: i})
			walkStrings(v.Index(i), path, fn)
			path.elems = path.elems[:len(path.elems)-1]
		}
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(a.String(), b.String()) })
		for _, k := range keys {
			field(k.String(), v.MapIndex(k))
		}
	}
}

func hstsWithoutTLS(s *schema.Stack) []finding {
	if s.TLS.HSTS && !s.TLS.Enabled() {
		return []finding{{"tls.hsts", "HSTS is on but tls.mode is \"none\": browsers would be told to use HTTPS that is not served; set tls.hsts: false or enable TLS"}}
	}
	return nil
}

func trustedProxies(s *schema.Stack) []finding {
	if s.Balancer.Kind != "cloud" || !s.TLS.Enabled() || s.TLS.Terminate != "balancer" || len(s.Balancer.TrustedProxies) > 0 {
		return nil
	}
	return []finding{{"balancer.trusted_proxies", "the cloud balancer terminates TLS but balancer.trusted_proxies is empty: the app hosts will log the balancer's address for every client and see http for every request (apps that force HTTPS loop on redirects); list the balancer's source range (the VPC CIDR)"}}
}

func appTimeout(s *schema.Stack) []finding {
	// Only a sync worker is killed by gunicorn's timeout while it serves
	// one slow request: gthread, gevent and uvicorn workers keep telling
	// the arbiter they are alive from their own loop while a request
	// runs, so there the timeout is a heartbeat limit, not a request
	// limit, and lowering it changes nothing for a slow request.
	// Starman has no worker timeout (app-option).
	if s.App.Timeout < s.Balancer.Timeouts.Read || s.App.Server != "gunicorn" || s.App.WorkerClass != "sync" {
		return nil
	}
	return []finding{{"app.timeout", fmt.Sprintf(
		"%s timeout %ds is not below the proxy read timeout %ds (balancer.timeouts.read): the proxy answers 504 while the request still runs; set app.timeout below %d",
		s.App.Server, s.App.Timeout, s.Balancer.Timeouts.Read, s.Balancer.Timeouts.Read)}}
}

// failover checks that a stated balancer failover is one hacompile
// renders, with what it needs to render it.
func failover(s *schema.Stack) []finding {
	b := s.Balancer
	v := b.VRRP
	lbs := s.HostsWithRole("lb")
	keep := b.Failover == "keepalived" || b.Failover == "reserved-ip"
	switch {
	case b.Failover == "dns":
		return []finding{{"balancer.failover", `failover "dns" is not rendered: hacompile manages no DNS records or health-checked DNS; use "keepalived" (a virtual address in the balancers' subnet), "reserved-ip" (DigitalOcean), or a cloud balancer (balancer.kind: "cloud")`}}
	case b.Kind == "cloud" && b.Failover != "none":
		return []finding{{"balancer.failover", fmt.Sprintf("failover %q is for nginx or HAProxy balancer hosts: a cloud balancer fails over by itself; remove it", b.Failover)}}
	case b.Kind == "cloud" && v != nil:
		return []finding{{"balancer.vrrp", "balancer.vrrp is for nginx or HAProxy balancer hosts; a cloud balancer has none"}}
	case !keep && v != nil:
		return []finding{{"balancer.vrrp", fmt.Sprintf("balancer.vrrp is used only with failover \"keepalived\" or \"reserved-ip\", and failover is %q", b.Failover)}}
	case !keep:
		return nil
	case b.Failover == "reserved-ip" && s.Provider != "digitalocean" && s.Provider != "aws":
		return []finding{{"balancer.failover", fmt.Sprintf(`failover "reserved-ip" is rendered for providers "digitalocean" (the reserved IP) and "aws" (a secondary private address and its Elastic IP), moved through their APIs, and provider is %q; on a network that carries gratuitous ARP use "keepalived"`, s.Provider)}}
	case b.Failover == "keepalived" && (s.Provider == "digitalocean" || s.Provider == "aws"):
		return []finding{{"balancer.failover", fmt.Sprintf(`failover "keepalived" moves an address by gratuitous ARP, which %s's network ignores: use "reserved-ip" on DigitalOcean, or a cloud balancer`, s.Provider)}}
	case v == nil:
		return []finding{{"balancer.failover", fmt.Sprintf("failover %q needs balancer.vrrp: {virtual_address: ..., router_id: ...} to render keepalived", b.Failover)}}
	case len(lbs) < 2:
		// ha-single-lb says so for keepalived; say it for reserved-ip too.
		if b.Failover == "reserved-ip" {
			return []finding{{"balancer.failover", fmt.Sprintf("failover is reserved-ip but only one host (%s) has the lb role: keepalived moves the reserved IP between two or more", hostList(lbs))}}
		}
		return nil
	}
	var out []finding
	if v.ElasticIPAllocation != "" && (s.Provider != "aws" || b.Failover != "reserved-ip") {
		out = append(out, finding{"balancer.vrrp.elastic_ip_allocation", fmt.Sprintf(`an Elastic IP is moved with failover "reserved-ip" on provider "aws"; here failover is %q and provider %q`, b.Failover, s.Provider)})
	}
	vip := net.ParseIP(v.VirtualAddress).To4()
	for _, n := range s.HostNames() {
		if s.Hosts[n].Address == v.VirtualAddress {
			out = append(out, finding{"balancer.vrrp.virtual_address", fmt.Sprintf("virtual address %s is host %s's own address: it must be an address no host has, which keepalived moves to the master", v.VirtualAddress, n)})
		}
	}
	if b.Failover == "reserved-ip" && s.Provider == "digitalocean" && wrote(s, "balancer.vrrp.prefix") {
		out = append(out, finding{"balancer.vrrp.prefix", "the reserved IP is bound as a /32 on each balancer's loopback (DigitalOcean routes it to the droplet that holds it), so a prefix renders nothing: remove it"})
	}
	if b.Failover == "keepalived" || s.Provider == "aws" {
		mask := net.CIDRMask(v.Prefix, 32)
		subnet := &net.IPNet{IP: vip.Mask(mask), Mask: mask}
		for _, h := range lbs {
			if !subnet.Contains(net.ParseIP(h.Address)) {
				out = append(out, finding{"balancer.vrrp.virtual_address", fmt.Sprintf("virtual address %s is outside lb host %s's subnet (%s is not in %s, balancer.vrrp.prefix %d): the master can only take over an address on the balancers' own network", v.VirtualAddress, h.Name, h.Address, subnet, v.Prefix)})
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(v.Priority)) {
		if h, ok := s.Hosts[n]; !ok || !h.Has("lb") {
			out = append(out, finding{"balancer.vrrp.priority." + n, fmt.Sprintf("priority for %s, which is not an lb host (lb hosts: %s)", n, hostList(lbs))})
		}
	}
	seen := map[int]string{}
	for _, h := range lbs {
		p := s.VRRPPriority(h.Name)
		if other, ok := seen[p]; ok {
			out = append(out, finding{"balancer.vrrp.priority", fmt.Sprintf("lb hosts %s and %s both have priority %d: give each balancer its own, so the election does not fall back to comparing addresses", other, h.Name, p)})
		}
		seen[p] = h.Name
	}
	return out
}

// CheckAcross reviews the stacks of one build together: two stacks with
// one VRRP router id would take each other's advertisements for their
// own on a shared network.
func CheckAcross(stacks []*schema.Stack) []schema.Diagnostic {
	var out []schema.Diagnostic
	first := map[int]*schema.Stack{}
	for _, s := range stacks {
		v := s.Balancer.VRRP
		if v == nil {
			continue
		}
		if o, ok := first[v.RouterID]; ok {
			d := s.At("balancer.vrrp.router_id")
			d.Severity, d.Rule = "error", "vrrp-router-id"
			d.Message = fmt.Sprintf("VRRP router id %d is also stack %s's (%s): router ids must be unique among the stacks of one build", v.RouterID, o.Name, o.Source)
			out = append(out, d)
			continue
		}
		first[v.RouterID] = s
	}
	schema.SortDiagnostics(out)
	return out
}

// statsAddress: the stats listener binds one address on every balancer.
func statsAddress(s *schema.Stack) []finding {
	lbs := s.HostsWithRole("lb")
	a := s.Balancer.Stats.Address
	if s.Balancer.Kind != "haproxy" || len(lbs) < 2 || strings.HasPrefix(a, "127.") {
		return nil
	}
	return []finding{{"balancer.stats.address", fmt.Sprintf("the stats page binds %s on every balancer (%s), and one address is on one host only: HAProxy would not start on the others; keep it on loopback (the default, reached with ssh -L)", a, hostList(lbs))}}
}

// appPort: gunicorn and Starman run as app.user with an empty
// capability set, so a privileged port cannot be bound.
func appPort(s *schema.Stack) []finding {
	p := s.App.Bind.Port
	if p == 0 || p >= 1024 {
		return nil
	}
	return []finding{{"app.bind.port", fmt.Sprintf("%s runs as %s with no capabilities and cannot bind port %d (below 1024); nginx on the same host listens on app.http_port and proxies to the app, so give the app a port of 1024 or above, or a socket", s.App.Server, s.App.User, p)}}
}

// DOConnectionsPerNode is what DigitalOcean documents one load balancer
// node (size unit) to hold.
const DOConnectionsPerNode = 10000

// cloudLBCapacity: the DigitalOcean balancer's nodes hold the target.
func cloudLBCapacity(s *schema.Stack) []finding {
	target := s.Capacity.TargetConcurrency
	if s.Balancer.Kind != "cloud" || s.Provider != "digitalocean" || target == 0 {
		return nil
	}
	units := 1
	path := "balancer.kind"
	if d := s.Balancer.DigitalOcean; d != nil {
		units, path = d.SizeUnit, "balancer.digitalocean.size_unit"
	}
	if units*DOConnectionsPerNode >= target {
		return nil
	}
	need := (target + DOConnectionsPerNode - 1) / DOConnectionsPerNode
	return []finding{{path, fmt.Sprintf("the DigitalOcean load balancer has %d node(s) of %d concurrent connections (%d) for capacity.target_concurrency %d: set balancer.digitalocean.size_unit to at least %d", units, DOConnectionsPerNode, units*DOConnectionsPerNode, target, need)}}
}

// rateLimitHosts: nginx limit_req counts per host. On an nginx balancer
// the limit applies once, at the balancer; behind HAProxy or a cloud
// balancer it applies on each app host, and unless the balancer keeps
// a client on one host, the client gets the rate once per host.
func rateLimitHosts(s *schema.Stack) []finding {
	apps := s.HostsWithRole("app")
	haproxy := s.Balancer.Kind == "haproxy"
	if s.RateLimit == nil || s.Balancer.Kind == "nginx" || (haproxy && s.Balancer.Algorithm == "source") || len(apps) < 2 {
		return nil
	}
	n := len(apps)
	fix := "use an nginx balancer (the limit then applies once) or divide the rates by " + strconv.Itoa(n)
	if haproxy {
		fix = `use an nginx balancer (the limit then applies once), balancer.algorithm "source" (a client stays on one host), or divide the rates by ` + strconv.Itoa(n)
	}
	return []finding{{"rate_limit.rate", fmt.Sprintf("behind the %s balancer the limit applies on each of the %d app hosts, which share a client's requests: a client gets up to %d × %s (per-location rates too); %s", s.Balancer.Kind, n, n, s.RateLimit.Rate, fix)}}
}

// balancerOptions are the balancer fields only some kinds render, with
// those kinds.
var balancerOptions = []struct {
	field string
	kinds []string
	what  string
}{
	{"max_fails", []string{"nginx"}, "nginx's passive health checks"},
	{"fail_timeout", []string{"nginx"}, "nginx's passive health checks"},
	{"maxconn", []string{"haproxy"}, "HAProxy's connection limit"},
	{"retries", []string{"haproxy"}, "HAProxy's retries (nginx tries each app host once)"},
	{"slowstart", []string{"haproxy"}, "HAProxy's slow start (open-source nginx has none)"},
	{"stats", []string{"haproxy"}, "HAProxy's statistics page"},
	{"environment_file", []string{"haproxy"}, "HAProxy's environment file"},
	{"health.timeout", []string{"haproxy", "cloud/digitalocean", "cloud/aws"}, "active health checks (nginx has none: it judges app hosts by their answers)"},
	{"health.fall", []string{"haproxy", "cloud/digitalocean", "cloud/aws"}, "active health checks (nginx has none: it judges app hosts by their answers)"},
	{"health.interval", []string{"haproxy", "nginx", "cloud/digitalocean", "cloud/aws"}, "active health checks (on nginx, the default of balancer.fail_timeout)"},
	{"health.rise", []string{"haproxy", "nginx", "cloud/digitalocean", "cloud/aws"}, "active health checks (on nginx, the default of balancer.fail_timeout)"},
	{"keepalive", []string{"nginx", "cloud/digitalocean"}, "idle upstream connections kept open (nginx's keepalive, the DigitalOcean balancer's backend keep-alive; HAProxy reuses idle connections with no such limit)"},
	{"digitalocean", []string{"cloud/digitalocean"}, "the DigitalOcean load balancer"},
	{"algorithm", []string{"nginx", "haproxy"}, "choosing an app host per request (a cloud balancer's algorithm is the provider's)"},
}

// balancerOption: an option written for another kind of balancer.
func balancerOption(s *schema.Stack) []finding {
	var out []finding
	for _, o := range balancerOptions {
		path := "balancer." + o.field
		kind := s.Balancer.Kind
		if slices.Contains(o.kinds, kind) || !wrote(s, path) {
			continue
		}
		which := fmt.Sprintf("a balancer of kind %q", kind)
		if kind == "cloud" {
			// hacompile renders AWS's balancer side as the Auto
			// Scaling group's target group only.
			rendered := s.Provider != "aws" || s.Scaling != nil
			if rendered && slices.Contains(o.kinds, "cloud/"+s.Provider) {
				continue // this provider's balancer has it
			}
			if slices.ContainsFunc(o.kinds, func(k string) bool { return strings.HasPrefix(k, "cloud/") }) {
				which = fmt.Sprintf("the cloud balancer of provider %q", s.Provider)
				if !rendered && slices.Contains(o.kinds, "cloud/"+s.Provider) {
					which += " without scaling (no target group is rendered)"
				}
			}
		}
		out = append(out, finding{path, fmt.Sprintf("%s is for %s, which %s does not have: remove it", path, o.what, which)})
	}
	// The DigitalOcean balancer's backend keep-alive is on or off.
	if s.Balancer.Kind == "cloud" && s.Provider == "digitalocean" && s.Balancer.Keepalive > 0 && wrote(s, "balancer.keepalive") {
		out = append(out, finding{"balancer.keepalive", fmt.Sprintf("the DigitalOcean load balancer's backend keep-alive is on or off (enable_backend_keepalive), with no count of connections, so %d renders nothing but on: remove it (on by default), or write 0 to turn it off", s.Balancer.Keepalive)})
	}
	// nginx has no active checks: interval and rise only make the
	// default fail_timeout.
	if s.Balancer.Kind == "nginx" && wrote(s, "balancer.fail_timeout") {
		for _, f := range []string{"health.interval", "health.rise"} {
			if path := "balancer." + f; wrote(s, path) {
				out = append(out, finding{path, fmt.Sprintf("nginx has no active health checks: %s only sets the default of balancer.fail_timeout, which the stack gives: remove it", path)})
			}
		}
	}
	return out
}

// appOptions are the app settings one app server has and the other does
// not; the Python-only ones (worker_class, threads, …) the schema
// already refuses for Perl.
var appOptions = []struct {
	field   string
	servers []string
	what    string
}{
	{"timeout", []string{"gunicorn"}, "gunicorn's worker timeout (Starman has none: nginx's proxy_read_timeout bounds a request)"},
	{"keepalive", []string{"gunicorn"}, "gunicorn's keep-alive (Starman runs with --disable-keepalive: a pre-forked worker held by an idle connection serves nobody else)"},
	{"max_requests_jitter", []string{"gunicorn"}, "gunicorn's max_requests_jitter (Starman has none)"},
}

// appOption: an app option written for the other app server.
func appOption(s *schema.Stack) []finding {
	var out []finding
	for _, o := range appOptions {
		path := "app." + o.field
		if slices.Contains(o.servers, s.App.Server) || !wrote(s, path) {
			continue
		}
		out = append(out, finding{path, fmt.Sprintf("%s is for %s, which app server %q does not have: remove it", path, o.what, s.App.Server)})
	}
	// gunicorn renders threads for gthread workers only, and
	// worker_connections for gevent and uvicorn workers only.
	if a := s.App; a.Runtime == "python" {
		if a.WorkerClass != "gthread" && wrote(s, "app.threads") {
			out = append(out, finding{"app.threads", fmt.Sprintf("app.threads is for gunicorn's gthread workers, and app.worker_class is %q: remove it, or set worker_class \"gthread\"", a.WorkerClass)})
		}
		if a.WorkerClass != "gevent" && a.WorkerClass != "uvicorn" && wrote(s, "app.worker_connections") {
			out = append(out, finding{"app.worker_connections", fmt.Sprintf("app.worker_connections is for gunicorn's gevent and uvicorn workers, and app.worker_class is %q: remove it, or set worker_class \"gevent\" or \"uvicorn\"", a.WorkerClass)})
		}
	}
	return out
}

// wrote reports whether the stack file sets path or a field inside it
// (rather than leaving it to the schema's default).
func wrote(s *schema.Stack, path string) bool { return s.Wrote(path) }

// dbOption: replica pool settings the app never gets.
func dbOption(s *schema.Stack) []finding {
	db := s.Database
	if db == nil {
		return nil
	}
	var out []finding
	for _, f := range []string{"replica_pool_size", "replica_max_overflow", "replica_max_connections"} {
		if p := "database." + f; wrote(s, p) && len(db.Replicas) == 0 {
			out = append(out, finding{p, "the database has no replicas (database.replicas), so there is no read pool: remove it"})
		}
	}
	if len(db.Replicas) > 0 && db.ReplicaPoolSize == 0 && wrote(s, "database.replica_max_overflow") {
		out = append(out, finding{"database.replica_max_overflow", "there is no read pool to overflow without database.replica_pool_size: set it or remove this"})
	}
	if len(db.Replicas) > 0 && db.ReplicaPoolSize == 0 && wrote(s, "database.replica_max_connections") {
		out = append(out, finding{"database.replica_max_connections", "no read pool is checked against it without database.replica_pool_size: set that or remove this"})
	}
	if db.Engine == "postgresql" && db.ReplicaMaxConnections > 0 && db.ReplicaMaxConnections < db.MaxConnections {
		out = append(out, finding{"database.replica_max_connections", fmt.Sprintf(
			"a PostgreSQL standby takes at least the primary's max_connections, or it does not start: %d is below max_connections %d; raise it to %d or more, or remove it",
			db.ReplicaMaxConnections, db.MaxConnections, db.MaxConnections)})
	}
	return out
}

// tlsOption: TLS settings written where nothing renders them.
func tlsOption(s *schema.Stack) []finding {
	t := s.TLS
	var out []finding
	haproxyTLS := s.Balancer.Kind == "haproxy" && t.Terminate == "balancer"
	// A cloud balancer ending TLS holds the provider's certificate: no
	// host serves TLS, whatever tls.mode says.
	cloudTLS := s.Balancer.Kind == "cloud" && t.Terminate == "balancer" && (t.Mode == "certbot" || t.Mode == "files")
	if cloudTLS {
		out = append(out, finding{"tls.terminate", fmt.Sprintf(`TLS ends on the cloud balancer with a certificate the provider holds, and no host serves TLS, so tls.mode %q renders nothing: set tls.mode "cloud", or tls.terminate "app" to pass TLS through to the app hosts' nginx`, t.Mode)})
	}
	if wrote(s, "tls.terminate") && t.Mode == "none" {
		out = append(out, finding{"tls.terminate", `tls.mode is "none": nothing serves TLS, so where it ends renders nothing: remove it`})
	}
	// noHostTLS: what tls.mode names, where no host serves TLS.
	noHostTLS := ""
	switch {
	case t.Mode == "none" || t.Mode == "cloud":
		noHostTLS = fmt.Sprintf("no host serves TLS (tls.mode %q)", t.Mode)
	case cloudTLS:
		noHostTLS = "no host serves TLS (the cloud balancer ends it)"
	}
	switch {
	case !wrote(s, "tls.acme_root"):
	case t.Mode != "certbot":
		out = append(out, finding{"tls.acme_root", fmt.Sprintf("the ACME webroot is certbot's, and tls.mode is %q: remove it", t.Mode)})
	case haproxyTLS:
		out = append(out, finding{"tls.acme_root", "TLS ends on HAProxy, where certbot answers the ACME challenges itself (standalone) and no nginx serves a webroot: remove it"})
	}
	switch {
	case !wrote(s, "tls.email"):
	case t.Mode != "certbot":
		out = append(out, finding{"tls.email", fmt.Sprintf("the email is certbot's Let's Encrypt account, and tls.mode is %q: remove it", t.Mode)})
	case cloudTLS:
		out = append(out, finding{"tls.email", "the email is certbot's Let's Encrypt account, and no host runs certbot (the cloud balancer ends TLS): remove it"})
	}
	if wrote(s, "tls.acme_root") && cloudTLS && t.Mode == "certbot" {
		out = append(out, finding{"tls.acme_root", "the ACME webroot is certbot's, and no host runs certbot (the cloud balancer ends TLS): remove it"})
	}
	if wrote(s, "tls.profile") && noHostTLS != "" {
		out = append(out, finding{"tls.profile", noHostTLS + ", so no TLS profile is rendered: remove it"})
	}
	for _, f := range []string{"certificate", "key"} {
		if p := "tls." + f; wrote(s, p) && noHostTLS != "" {
			out = append(out, finding{p, fmt.Sprintf("%s, so no %s file is read: remove it", noHostTLS, f)})
		}
	}
	switch {
	case !wrote(s, "tls.hsts"):
	case t.HSTS && (t.Mode == "cloud" || cloudTLS):
		out = append(out, finding{"tls.hsts", "the cloud balancer terminates TLS and is configured outside hacompile, so no host sends HSTS: set it on the balancer and remove tls.hsts"})
	case !t.HSTS && cloudTLS:
		out = append(out, finding{"tls.hsts", "the cloud balancer terminates TLS, so no host sends HSTS, on or off: remove tls.hsts"})
	}
	switch {
	case !wrote(s, "tls.hsts_max_age"):
	case !t.HSTS:
		out = append(out, finding{"tls.hsts_max_age", "HSTS is off (tls.hsts), so no max-age is sent: remove it or set tls.hsts: true"})
	case noHostTLS != "":
		out = append(out, finding{"tls.hsts_max_age", noHostTLS + ", so no host sends HSTS's max-age: remove it"})
	}
	if wrote(s, "tls.ocsp_stapling") && t.OCSPStapling {
		switch {
		case noHostTLS != "":
			out = append(out, finding{"tls.ocsp_stapling", noHostTLS + ", so nothing staples: remove it"})
		case haproxyTLS:
			out = append(out, finding{"tls.ocsp_stapling", "TLS ends on HAProxy, which hacompile configures without OCSP stapling: remove it"})
		}
	}
	return out
}

// monitoringOff: monitoring settings written while monitoring is off
// render nothing, but for the thresholds of an Auto Scaling group's
// CloudWatch alarms.
func monitoringOff(s *schema.Stack) []finding {
	if s.Monitoring.Enabled {
		return nil
	}
	alarms := map[string]bool{}
	if sc := s.Scaling; sc != nil {
		alarms = map[string]bool{"monitoring.cpu_percent": true, "monitoring.for_minutes": true}
		// The 5xx alarm reads the ALB's metrics, named by both ARNs.
		alarms["monitoring.error_rate_percent"] = sc.TargetGroupARN != "" && sc.LoadBalancerARN != ""
	}
	var out []finding
	for p := range s.Positions {
		if strings.HasPrefix(p, "monitoring.") && p != "monitoring.enabled" && !alarms[p] && strings.Count(p, ".") == 1 && !strings.Contains(p, "[") {
			if _, alarm := alarms[p]; alarm {
				out = append(out, finding{p, fmt.Sprintf("monitoring.enabled is false, and the ALB's 5xx alarm needs scaling.target_group_arn and scaling.load_balancer_arn, so %s renders nothing: give both, enable monitoring, or remove it", p)})
				continue
			}
			out = append(out, finding{p, fmt.Sprintf("monitoring.enabled is false, so %s renders nothing: remove it or enable monitoring", p)})
		}
	}
	slices.SortFunc(out, func(a, b finding) int { return strings.Compare(a.path, b.path) })
	return out
}

// drain: hosts.X.drain renders on the nginx and HAProxy balancers only
// (a cloud balancer is configured outside the hosts; the runbook's
// "Drain a host" says how), for app hosts, and leaves one in rotation.
func drain(s *schema.Stack) []finding {
	var out []finding
	var drained []*schema.Host
	apps := s.HostsWithRole("app")
	for _, name := range s.HostNames() {
		h := s.Hosts[name]
		if !h.Drain {
			continue
		}
		path := "hosts." + name + ".drain"
		switch {
		case !h.Has("app"):
			out = append(out, finding{path, fmt.Sprintf("%s has no app role: only app hosts are in a balancer's rotation", name)})
		case s.Balancer.Kind != "nginx" && s.Balancer.Kind != "haproxy":
			out = append(out, finding{path, fmt.Sprintf("the %s balancer is configured outside the hosts, so draining is not rendered: take %s out of the provider's pool (the runbook's \"Drain a host\")", s.Balancer.Kind, name)})
		default:
			drained = append(drained, h)
		}
	}
	if len(apps) > 0 && len(drained) == len(apps) {
		last := drained[len(drained)-1].Name
		out = append(out, finding{"hosts." + last + ".drain", fmt.Sprintf("every app host (%s) is draining: the balancers would have nowhere to send a request; leave at least one in rotation", hostList(drained))})
	}
	return out
}

// pullRule: delivery.pull's options each render something, and the key
// the hosts verify with is one they can use.
func pullRule(s *schema.Stack) []finding {
	if !s.PullEnabled() {
		return nil
	}
	p := s.Delivery.Pull
	var out []finding
	for i, h := range p.CanaryHosts {
		path := fmt.Sprintf("delivery.pull.canary_hosts[%d]", i)
		switch {
		case s.Hosts[h] == nil:
			out = append(out, finding{path, fmt.Sprintf("no host %q in the stack (have %s)", h, strings.Join(s.HostNames(), ", "))})
		case slices.Index(p.CanaryHosts, h) != i:
			out = append(out, finding{path, fmt.Sprintf("%s is listed twice", h)})
		case p.Channel == "canary":
			out = append(out, finding{path, "delivery.pull.channel is already canary, so canary_hosts changes nothing: remove it or follow stable"})
		}
	}
	a := p.Agent
	if a.URL != "" && a.SHA256 == "" {
		out = append(out, finding{"delivery.pull.agent.url", "the agent is downloaded on first boot and must be checked: give delivery.pull.agent.sha256 (sha256sum of the binary)"})
	}
	if a.SHA256 != "" && a.URL == "" {
		out = append(out, finding{"delivery.pull.agent.sha256", "a sha256 without delivery.pull.agent.url checks nothing: give the url it is the digest of, or remove it"})
	}
	if p.PublicKey != "" {
		if msg := checkPublicKey(p.PublicKey); msg != "" {
			out = append(out, finding{"delivery.pull.public_key", msg})
		}
	}
	return out
}

func checkPublicKey(pemText string) string {
	blk, _ := pem.Decode([]byte(pemText))
	if blk == nil {
		return "not a PEM block"
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return "not a public key: " + err.Error()
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok || ek.Curve != elliptic.P256() {
		return "want an ECDSA P-256 key (hacompile keygen writes one; cosign's keys are the same kind)"
	}
	return ""
}

// count says "1 app host", "2 app hosts".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
