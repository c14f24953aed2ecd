package compile_test

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"testing"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/schema"
)

// TestEveryIntBounded holds every integer option of #Stack (each leaf
// the coverage walk finds, TestEveryOptionCovered) to an upper bound in
// the schema: an unbounded int takes any value up to 2^63-1 and beyond,
// which the generators' and the HA rules' arithmetic overflows (a
// negative maxmemory, a db-pool sum that wraps below max_connections)
// or which renders a setting no host can have. Out of range, the value
// is a CUE error at its position that names the field and the bound.
//
// A field is bounded when one of its declarations (a field declared
// under an if has several, which CUE unifies) admits no integer without
// an upper bound (<= or <, a bounded definition such as #Seconds, or an
// integer constant). Defaults (*v) are not what an author writes.
func TestEveryIntBounded(t *testing.T) {
	tree := schemaTree(t)
	defs := schemaDefs(t)
	var ints, unbounded []string
	tree.eachLeaf("", func(path string, n *optNode) {
		isInt, bounded := false, false
		for _, d := range n.decls {
			s := intKinds(d, defs, nil)
			isInt = isInt || s.ints
			bounded = bounded || (!s.top && !s.unbounded)
		}
		if !isInt {
			return
		}
		ints = append(ints, path)
		if !bounded {
			unbounded = append(unbounded, path)
		}
	})
	if len(ints) < 60 {
		t.Fatalf("found only %d integer options in #Stack: the schema walk is broken", len(ints))
	}
	if len(unbounded) > 0 {
		t.Errorf("%d of %d integer options of the stack have no upper bound (give each one, with its reason, in schema/stack.cue):\n\t%s",
			len(unbounded), len(ints), strings.Join(unbounded, "\n\t"))
	}
}

// intSummary is what a schema expression admits of integers.
type intSummary struct {
	ints      bool // some value it admits is an integer
	unbounded bool // it admits integers without an upper bound
	top       bool // it admits anything (_): it bounds nothing
	upper     bool // it is an upper bound (<=n, <n) on its own
}

// intKinds reads what e admits of integers off the schema's syntax,
// following references to definitions.
func intKinds(e ast.Expr, defs map[string]ast.Expr, seen []string) intSummary {
	switch x := e.(type) {
	case *ast.ParenExpr:
		return intKinds(x.X, defs, seen)
	case *ast.Ident:
		switch x.Name {
		case "int", "number":
			return intSummary{ints: true, unbounded: true}
		case "_":
			return intSummary{top: true}
		}
		if d, ok := defs[x.Name]; ok && !contains(seen, x.Name) {
			return intKinds(d, defs, append(seen, x.Name))
		}
	case *ast.BasicLit:
		return intSummary{ints: x.Kind == token.INT}
	case *ast.UnaryExpr:
		switch x.Op {
		case token.MUL:
			return intSummary{} // a default: computed, or the author's own value
		case token.LSS, token.LEQ:
			return intSummary{upper: true}
		}
	case *ast.ListLit:
		var s intSummary
		for _, el := range x.Elts {
			if el, ok := el.(*ast.Ellipsis); ok && el.Type != nil {
				s = intKinds(el.Type, defs, seen)
			}
		}
		s.upper = false
		return s
	case *ast.BinaryExpr:
		switch x.Op {
		case token.OR:
			a, b := intKinds(x.X, defs, seen), intKinds(x.Y, defs, seen)
			return intSummary{ints: a.ints || b.ints, unbounded: a.unbounded || b.unbounded, top: a.top || b.top}
		case token.AND:
			var terms []intSummary
			var flatten func(e ast.Expr)
			flatten = func(e ast.Expr) {
				if b, ok := e.(*ast.BinaryExpr); ok && b.Op == token.AND {
					flatten(b.X)
					flatten(b.Y)
					return
				}
				terms = append(terms, intKinds(e, defs, seen))
			}
			flatten(x)
			s := intSummary{top: true}
			bounded := false
			for _, c := range terms {
				s.ints = s.ints || c.ints
				s.top = s.top && c.top
				// A term that admits integers only with a bound
				// (#Seconds, a constant) bounds the conjunction.
				bounded = bounded || c.upper || (c.ints && !c.unbounded && !c.top)
			}
			s.unbounded = s.ints && !bounded
			return s
		}
	}
	return intSummary{}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// upperBounds reads the upper bound (<=n) of each integer option the
// schema bounds with a literal, by option path (TestEveryOptionCovered's
// paths, hosts.<name>.cores).
func upperBounds(t *testing.T) map[string]*big.Int {
	t.Helper()
	defs := schemaDefs(t)
	var upper func(e ast.Expr, seen []string) *big.Int
	upper = func(e ast.Expr, seen []string) *big.Int {
		switch x := e.(type) {
		case *ast.ParenExpr:
			return upper(x.X, seen)
		case *ast.Ident:
			if d, ok := defs[x.Name]; ok && !contains(seen, x.Name) {
				return upper(d, append(seen, x.Name))
			}
		case *ast.UnaryExpr:
			if lit, ok := x.X.(*ast.BasicLit); ok && x.Op == token.LEQ && lit.Kind == token.INT {
				n, ok := new(big.Int).SetString(lit.Value, 10)
				if ok {
					return n
				}
			}
		case *ast.BinaryExpr:
			if x.Op == token.MUL { // *default
				return nil
			}
			if n := upper(x.X, seen); n != nil {
				return n
			}
			return upper(x.Y, seen)
		}
		return nil
	}
	out := map[string]*big.Int{}
	schemaTree(t).eachLeaf("", func(path string, n *optNode) {
		for _, d := range n.decls {
			if u, ok := d.(*ast.UnaryExpr); ok && u.Op == token.MUL {
				continue
			}
			if b := upper(d, nil); b != nil {
				out[path] = b
				return
			}
		}
	})
	return out
}

// TestArithmeticAtBounds: with every option the rules and generators
// compute with at its upper bound (read off the schema), their results
// are exact, as arbitrary-precision arithmetic has them: db-pool's
// connections, the descriptors of fd-limit and PgBouncer, Redis's
// maxmemory and Memcached's item memory (shares of memory_mb), and the
// numbers rendered as they are. An overflow there once rendered
// "maxmemory -64467440737095516mb" and let a db-pool sum wrap below
// max_connections; raising a bound past what the arithmetic holds
// fails here.
func TestArithmeticAtBounds(t *testing.T) {
	bounds := upperBounds(t)
	var pairs []string
	val := func(opt string) *big.Int {
		b, ok := bounds[opt]
		if !ok {
			t.Fatalf("%s has no upper bound in the schema", opt)
		}
		return b
	}
	for _, opt := range []string{
		"hosts.<name>.cores", "hosts.<name>.memory_mb", "app.workers", "app.worker_connections",
		"app.max_requests", "app.max_requests_jitter", "workers.concurrency", "workers.max_tasks_per_child",
		"capacity.target_concurrency", "tuning.nofile", "tuning.nginx_worker_connections",
		"database.pool_size", "database.max_overflow", "database.max_connections",
		"database.replica_pool_size", "database.replica_max_overflow", "database.replica_max_connections",
		"database.pooler.default_pool_size", "database.pooler.reserve_pool_size", "database.pooler.max_client_conn",
		"cache.maxmemory_percent", "cache.memory_percent", "cache.max_connections",
		"queue.disk_free_limit_mb", "tls.hsts_max_age", "monitoring.queue_depth", "monitoring.replication_lag_seconds",
	} {
		pairs = append(pairs, "«"+opt+"»", val(opt).String())
	}
	fill := strings.NewReplacer(pairs...).Replace
	n := func(opt string) *big.Int { return val(opt) }
	i := func(v int64) *big.Int { return big.NewInt(v) }
	add := func(xs ...*big.Int) *big.Int {
		s := new(big.Int)
		for _, x := range xs {
			s.Add(s, x)
		}
		return s
	}
	mul := func(a, b *big.Int) *big.Int { return new(big.Int).Mul(a, b) }

	rulesStack := fill(`name: "maxrules"
domain: "example.com"
tls: mode: "none"
hosts: {
	app1: {address: "10.0.0.1", roles: ["app", "worker"]}
	app2: {address: "10.0.0.2", roles: ["app", "worker"]}
}
hosts: [_]: {cores: «hosts.<name>.cores», memory_mb: «hosts.<name>.memory_mb»}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app", worker_class: "gevent"}
app: {worker_connections: «app.worker_connections», workers: «app.workers»}
capacity: target_concurrency: «capacity.target_concurrency»
tuning: {nofile: «tuning.nofile», nginx_worker_connections: «tuning.nginx_worker_connections»}
tuning: sysctl: "fs.file-max": 9223372036854775807
database: {host: "db.internal", name: "app", replicas: ["db2.internal"]}
database: {pool_size: «database.pool_size», max_overflow: «database.max_overflow», max_connections: «database.max_connections»}
database: {replica_pool_size: «database.replica_pool_size», replica_max_overflow: «database.replica_max_overflow»}
database: replica_max_connections: «database.replica_max_connections»
queue: {engine: "redis", host: "10.0.0.9"}
workers: {app: "tasks", concurrency: «workers.concurrency»}
`)
	procs := mul(i(2), add(n("app.workers"), n("workers.concurrency")))
	per := add(n("database.pool_size"), n("database.max_overflow"))
	pools := add(per, n("database.replica_pool_size"), n("database.replica_max_overflow"))
	reads := add(n("database.replica_pool_size"), n("database.replica_max_overflow"))
	wantRules := []string{
		fmt.Sprintf("= %s connections to the primary, above max_connections %s", mul(procs, per), n("database.max_connections")),
		fmt.Sprintf("= %s connections to a replica (each replica must take them all when the others are lost), above replica_max_connections %s", mul(procs, reads), n("database.replica_max_connections")),
		fmt.Sprintf("a gevent worker holds %s connections + %s database connections + 64 spare = %s descriptors, above nofile %s",
			n("app.worker_connections"), pools, add(n("app.worker_connections"), pools, i(64)), n("tuning.nofile")),
		fmt.Sprintf("2 × %s worker_connections = %s, above nofile %s",
			n("tuning.nginx_worker_connections"), mul(i(2), n("tuning.nginx_worker_connections")), n("tuning.nofile")),
	}
	poolerStack := strings.Replace(rulesStack, `name: "maxrules"`, `name: "maxpooler"`, 1) + fill(
		"database: pooler: {default_pool_size: «database.pooler.default_pool_size», reserve_pool_size: «database.pooler.reserve_pool_size», max_client_conn: «database.pooler.max_client_conn»}\n")
	server := add(n("database.pooler.default_pool_size"), n("database.pooler.reserve_pool_size"))
	wantPooler := []string{
		fmt.Sprintf("= %s server connections to the primary, above max_connections %s", mul(i(2), server), n("database.max_connections")),
		fmt.Sprintf("= %s server connections to a replica from the read pools (each replica must take them all when the others are lost), above replica_max_connections %s", mul(i(2), server), n("database.replica_max_connections")),
		fmt.Sprintf("max_client_conn %s + %s server connections (to the primary and as many to the replicas) = %s, above tuning.nofile %s",
			n("database.pooler.max_client_conn"), mul(i(2), server), add(n("database.pooler.max_client_conn"), mul(i(2), server)), n("tuning.nofile")),
		fmt.Sprintf("= %s client connections to the host's PgBouncer, above max_client_conn %s",
			mul(add(n("app.workers"), n("workers.concurrency")), pools), n("database.pooler.max_client_conn")),
	}
	for _, c := range []struct {
		name, src string
		want      []string
	}{{"rules", rulesStack, wantRules}, {"pooler", poolerStack, wantPooler}} {
		_, err := compile.CompileInputs([]compile.Input{{Name: "stacks/" + c.name + ".cue", Data: []byte(c.src)}}, "2026-11-22")
		var se *schema.Error
		if !errors.As(err, &se) {
			t.Fatalf("%s: error %v, want the rules' findings", c.name, err)
		}
		got := err.Error()
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: no finding says %q; got\n%s", c.name, w, got)
			}
		}
		if m := regexp.MustCompile(`[=×+] -[0-9]+`).FindString(got); m != "" {
			t.Errorf("%s: a negative count %q in\n%s", c.name, m, got)
		}
	}

	// Everything rendered from a number at its bound: the shares of
	// memory_mb, and the bounds themselves.
	renderStack := fill(`name: "maxrender"
domain: "example.com"
tls: {mode: "certbot", hsts_max_age: «tls.hsts_max_age»}
hosts: {
	lb1:    {address: "10.0.0.5", roles: ["lb"]}
	lb2:    {address: "10.0.0.6", roles: ["lb"]}
	app1:   {address: "10.0.0.1", roles: ["app"]}
	app2:   {address: "10.0.0.2", roles: ["app"]}
	w1:     {address: "10.0.0.3", roles: ["worker"]}
	cache1: {address: "10.0.0.4", roles: ["cache"]}
	mq1:    {address: "10.0.0.7", roles: ["queue"]}
}
hosts: [_]: {cores: «hosts.<name>.cores», memory_mb: «hosts.<name>.memory_mb»}
balancer: {kind: "nginx", failover: "keepalived", vrrp: {virtual_address: "10.0.0.9", router_id: 9}}
tuning: {nofile: «tuning.nofile», sysctl: "fs.file-max": 9223372036854775807}
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app", worker_class: "gevent"}
app: {worker_connections: «app.worker_connections», workers: «app.workers»}
app: {max_requests: «app.max_requests», max_requests_jitter: «app.max_requests_jitter»}
capacity: target_concurrency: «capacity.target_concurrency»
cache: {engine: "redis", maxmemory_percent: «cache.maxmemory_percent»}
queue: {engine: "rabbitmq", disk_free_limit_mb: «queue.disk_free_limit_mb»}
workers: {app: "tasks", max_tasks_per_child: «workers.max_tasks_per_child»}
database: {host: "db.internal", name: "app", replicas: ["db2.internal"], replica_pool_size: 5}
monitoring: {queue_depth: «monitoring.queue_depth», replication_lag_seconds: «monitoring.replication_lag_seconds»}
`)
	share := func(pct *big.Int) string {
		return new(big.Int).Div(mul(n("hosts.<name>.memory_mb"), pct), i(100)).String()
	}
	memcached := strings.Replace(strings.Replace(renderStack, `"maxrender"`, `"maxmemcached"`, 1),
		fill(`cache: {engine: "redis", maxmemory_percent: «cache.maxmemory_percent»}`),
		fill(`cache: {engine: "memcached", memory_percent: «cache.memory_percent», max_connections: «cache.max_connections»}`), 1)
	for _, c := range []struct {
		name, src string
		want      map[string]string // host/path: a line it must have
	}{
		{"maxrender", renderStack, map[string]string{
			"cache1/etc/redis/redis.conf":    "\nmaxmemory " + share(n("cache.maxmemory_percent")) + "mb\n",
			"mq1/etc/rabbitmq/rabbitmq.conf": "disk_free_limit.absolute = " + n("queue.disk_free_limit_mb").String() + "MB\n",
			"app1/etc/app/gunicorn.conf.py": "max_requests = " + n("app.max_requests").String() + "\n" +
				"max_requests_jitter = " + n("app.max_requests_jitter").String() + "\n",
			"lb1/etc/nginx/conf.d/app-lb.conf":                `"max-age=` + n("tls.hsts_max_age").String() + `"`,
			"w1/etc/systemd/system/app-celery-worker.service": "--max-tasks-per-child " + n("workers.max_tasks_per_child").String() + " ",
		}},
		{"maxmemcached", memcached, map[string]string{
			"cache1/etc/memcached.conf": "\n-m " + share(n("cache.memory_percent")) + "\n",
		}},
	} {
		res, err := compile.CompileInputs([]compile.Input{{Name: "stacks/" + c.name + ".cue", Data: []byte(c.src)}}, "2026-11-22")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		files := map[string]string{}
		for _, f := range res.Rendered[0].Files {
			files[f.Host+"/"+f.Path] = string(f.Content)
		}
		for file, line := range c.want {
			content, ok := files[file]
			if !ok {
				t.Errorf("%s: no file %s", c.name, file)
				continue
			}
			if !strings.Contains(content, line) {
				t.Errorf("%s: %s has no %q", c.name, file, line)
			}
		}
	}
}
