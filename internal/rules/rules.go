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
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

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
	{"somaxconn", "warning", "net.core.somaxconn caps every listen backlog; a smaller value silently truncates the configured ones.", somaxconn},
	{"db-pool", "error", "All app processes' database pools together must fit in the database's max_connections.", dbPool},
	{"db-replica-pool", "warning", "Replicas without a read pool take no reads.", replicaPool},
	{"secret-inline", "error", "Secrets never go into a stack: reference a file on the host (the environment file) instead.", secretInline},
	{"tls-hsts", "error", "HSTS without TLS would tell browsers to insist on HTTPS that is not served.", hstsWithoutTLS},
	{"app-timeout", "warning", "The app server's timeout must be shorter than the proxy read timeout in front of it, or clients get 504s for requests that still complete.", appTimeout},
}

// Known reports whether id names a rule.
func Known(id string) (Rule, bool) {
	i := slices.IndexFunc(Table, func(r Rule) bool { return r.ID == id })
	if i < 0 {
		return Rule{}, false
	}
	return Table[i], true
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
		for _, f := range r.check(s) {
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

// Capacity is the stack's concurrent requests: the sum over app hosts of
// workers × per-worker concurrency.
func Capacity(s *schema.Stack) int {
	per, _ := PerWorker(s.App)
	total := 0
	for _, h := range s.HostsWithRole("app") {
		total += s.App.Workers.For(h) * per
	}
	return total
}

func capacity(s *schema.Stack) []finding {
	target := s.Capacity.TargetConcurrency
	apps := s.HostsWithRole("app")
	if target == 0 || len(apps) == 0 {
		return nil
	}
	got := Capacity(s)
	if got >= target {
		return nil
	}
	_, perDesc := PerWorker(s.App)
	workers := 0
	for _, h := range apps {
		workers += s.App.Workers.For(h)
	}
	perHost := float64(got) / float64(len(apps))
	need := int(math.Ceil(float64(target) / perHost))
	return []finding{{"capacity.target_concurrency", fmt.Sprintf(
		"capacity is %d concurrent requests (%d app hosts, %d workers in all, × %s) for a target of %d: short by %d; %d such hosts would meet it",
		got, len(apps), workers, perDesc, target, target-got, need)}}
}

func fdLimit(s *schema.Stack) []finding {
	n := s.Tuning.Nofile
	var fs []finding
	if need := 2 * s.Tuning.NginxWorkerConnections; need > n {
		fs = append(fs, finding{"tuning.nofile", fmt.Sprintf(
			"nginx needs 2 descriptors per connection (client and upstream): 2 × %d worker_connections = %d, above nofile %d", s.Tuning.NginxWorkerConnections, need, n)})
	}
	if s.App.Runtime == "python" && (s.App.WorkerClass == "gevent" || s.App.WorkerClass == "uvicorn") {
		pool := 0
		if s.Database != nil {
			pool = s.Database.PoolSize + s.Database.MaxOverflow + s.Database.ReplicaPoolSize + s.Database.ReplicaMaxOverflow
		}
		// Each connection is one descriptor; add the database pools and
		// a margin for logs, sockets and libraries.
		if need := s.App.WorkerConnections + pool + 64; need > n {
			fs = append(fs, finding{"tuning.nofile", fmt.Sprintf(
				"a %s worker holds %d connections + %d database connections + 64 spare = %d descriptors, above nofile %d", s.App.WorkerClass, s.App.WorkerConnections, pool, need, n)})
		}
	}
	if s.Balancer.Kind == "haproxy" {
		if need := 2*s.Balancer.MaxConn + 64; need > n {
			fs = append(fs, finding{"tuning.nofile", fmt.Sprintf(
				"HAProxy needs 2 descriptors per connection: 2 × %d maxconn + 64 = %d, above nofile %d", s.Balancer.MaxConn, need, n)})
		}
	}
	return fs
}

// kernelSomaxconn is Linux's default since 5.4.
const kernelSomaxconn = 4096

// nginxBacklog is nginx's listen backlog on Linux when none is set.
const nginxBacklog = 511

func somaxconn(s *schema.Stack) []finding {
	max := kernelSomaxconn
	if v, ok := s.Tuning.Sysctl["net.core.somaxconn"]; ok {
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return []finding{{`tuning.sysctl."net.core.somaxconn"`, fmt.Sprintf("net.core.somaxconn = %q is not a number", v)}}
		}
		max = n
	}
	type backlog struct {
		path, who string
		n         int
	}
	bs := []backlog{{"app.backlog", s.App.Server + " --backlog", s.App.Backlog}, {"tuning.sysctl", "nginx listen", nginxBacklog}}
	if s.Balancer.Kind == "haproxy" {
		bs = append(bs, backlog{"balancer.maxconn", "HAProxy frontend (backlog defaults to maxconn)", s.Balancer.MaxConn})
	}
	var fs []finding
	for _, b := range bs {
		if b.n > max {
			fs = append(fs, finding{b.path, fmt.Sprintf("%s backlog is %d but net.core.somaxconn is %d: the kernel truncates it to %d; raise net.core.somaxconn to at least %d", b.who, b.n, max, max, b.n)})
		}
	}
	return fs
}

func dbPool(s *schema.Stack) []finding {
	db := s.Database
	if db == nil || db.MaxConnections == 0 {
		return nil
	}
	procs := 0
	for _, h := range s.HostsWithRole("app") {
		procs += s.App.Workers.For(h)
	}
	per := db.PoolSize + db.MaxOverflow
	if need := procs * per; need > db.MaxConnections {
		return []finding{{"database.max_connections", fmt.Sprintf(
			"%d app processes × (pool_size %d + max_overflow %d) = %d connections to the primary, above max_connections %d; lower the pools, add a pooler (PgBouncer) or raise max_connections",
			procs, db.PoolSize, db.MaxOverflow, need, db.MaxConnections)}}
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

var secretPatterns = []struct {
	re   *regexp.Regexp
	what string
}{
	{regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:[^/\s@]+@`), "a URL with a password"},
	{regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`), "a private key"},
	{regexp.MustCompile(`(?i)\b(password|passwd|secret|token|api[_-]?key)\s*[:=]\s*\S+`), "a password or token assignment"},
	{regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`), "an AWS access key id"},
	{regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{36,}\b`), "a GitHub token"},
	{regexp.MustCompile(`\bsk_live_[A-Za-z0-9]{16,}\b`), "a Stripe secret key"},
}

func secretInline(s *schema.Stack) []finding {
	var fs []finding
	walkStrings(reflect.ValueOf(*s), "", func(path, v string) {
		for _, p := range secretPatterns {
			if p.re.MatchString(v) {
				fs = append(fs, finding{path, fmt.Sprintf("looks like %s written into the stack; secrets belong in a file on the host (app.environment_file, mode 0600) that the rendered config references", p.what)})
				return
			}
		}
	})
	return fs
}

// walkStrings calls fn with the field path of every string in v,
// following json tags so paths read as in the stack file.
func walkStrings(v reflect.Value, path string, fn func(path, v string)) {
	join := func(name string) string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	switch v.Kind() {
	case reflect.String:
		fn(path, v.String())
	case reflect.Pointer:
		if !v.IsNil() {
			walkStrings(v.Elem(), path, fn)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if tag == "-" || tag == "" {
				continue
			}
			walkStrings(v.Field(i), join(tag), fn)
		}
	case reflect.Slice:
		for i := range v.Len() {
			walkStrings(v.Index(i), fmt.Sprintf("%s[%d]", path, i), fn)
		}
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(a.String(), b.String()) })
		for _, k := range keys {
			walkStrings(v.MapIndex(k), join(k.String()), fn)
		}
	}
}

func hstsWithoutTLS(s *schema.Stack) []finding {
	if s.TLS.HSTS && !s.TLS.Enabled() {
		return []finding{{"tls.hsts", "HSTS is on but tls.mode is \"none\": browsers would be told to use HTTPS that is not served; set tls.hsts: false or enable TLS"}}
	}
	return nil
}

func appTimeout(s *schema.Stack) []finding {
	if s.App.Timeout < s.Balancer.Timeouts.Read {
		return nil
	}
	return []finding{{"app.timeout", fmt.Sprintf(
		"%s timeout %ds is not below the proxy read timeout %ds (balancer.timeouts.read): the proxy answers 504 while the request still runs; set app.timeout below %d",
		s.App.Server, s.App.Timeout, s.Balancer.Timeouts.Read, s.Balancer.Timeouts.Read)}}
}
