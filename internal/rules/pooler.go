package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/hacompile/hacompile/schema"
)

// Pool is one app's pool in the PgBouncer of one host: the database
// name (PgBouncer's alias) the app's processes ask for, and what they
// and PgBouncer may open.
type Pool struct {
	App *schema.App
	// Alias is the database name the app's processes connect to: the
	// stack's database for a stack of one app; with several apps, the
	// app's name, so that each app has a pool of its own on the one
	// database.
	Alias string
	// Procs is how many of the app's processes on the host hold a
	// database pool (its workers, and the Celery processes when they run
	// its code there), and Clients their client connections to
	// PgBouncer: Procs × (pool_size + max_overflow).
	Procs, Clients int
	// Size is the pool's server connections (PgBouncer's pool_size):
	// default_pool_size, and with several apps no more than the app's
	// clients on the host can use. Max adds reserve_pool_size, the most
	// the pool opens (its max_db_connections).
	Size, Max int
	// What says which processes Procs counts.
	What string
	// ReplicaAlias is, with a read pool (schema.Database.ReadPool), the
	// database name the app's processes ask for to read from the
	// replicas: PgBouncer's pool on them. ReplicaClients are the
	// processes' client connections to it: Procs × (replica_pool_size +
	// replica_max_overflow); ReplicaSize and ReplicaMax its server
	// connections, as Size and Max are of the pool on the primary (with
	// several apps, capped at ReplicaClients). Empty and 0 without a
	// read pool.
	ReplicaAlias                            string
	ReplicaClients, ReplicaSize, ReplicaMax int
}

// MaxPoolerName is the longest database name PgBouncer takes (its
// MAX_DBNAME, 64 with the terminating NUL): a longer one in [databases]
// is "too long db name" and PgBouncer does not start (checked with
// Debian's pgbouncer: 64 characters fail, 63 start).
const MaxPoolerName = 63

// ReplicaAlias is the database name of a primary pool's alias's pool on
// the replicas: the alias and _replica. An alias is a database name or
// an app's name (#Name, which has no "_"), so no alias of a stack is
// another's replica alias. One too long for PgBouncer (MaxPoolerName)
// keeps its first characters and a hash of the whole (a #Name has no
// "_", so the two forms cannot meet).
func ReplicaAlias(alias string) string {
	const suffix = "_replica"
	if len(alias)+len(suffix) <= MaxPoolerName {
		return alias + suffix
	}
	sum := sha256.Sum256([]byte(alias))
	keep := MaxPoolerName - len(suffix) - 9 // "-" and 8 hex digits
	return alias[:keep] + "-" + hex.EncodeToString(sum[:4]) + suffix
}

// Servers is the most server connections the pool opens: Max to the
// primary and ReplicaMax to the replicas.
func (p Pool) Servers() int { return p.Max + p.ReplicaMax }

// PoolerPools are the pools of host h's PgBouncer, one per app whose
// processes on h reach the database (its apps, and on a worker host the
// app whose code the Celery workers run), in the order of the apps; nil
// without PgBouncer or on a host that has none.
func PoolerPools(s *schema.Stack, h *schema.Host) []Pool {
	db := s.Database
	if db == nil || db.Pooler == nil || db.Engine != "postgresql" || (!h.Has("app") && !h.Has("worker")) {
		return nil
	}
	p := db.Pooler
	per := db.PoolSize + db.MaxOverflow
	on := s.AppsOn(h)
	var pools []Pool
	for _, a := range s.Apps {
		procs := 0
		var what []string
		for _, o := range on {
			if o == a {
				procs += a.Workers.For(h)
				what = append(what, fmt.Sprintf("%d %s processes", a.Workers.For(h), a.Name))
			}
		}
		if n := celeryProcs(s, h); n > 0 && (!s.MultiApp() || s.Workers.Runs == a.Name) {
			procs += n
			what = append(what, fmt.Sprintf("%d Celery worker processes", n))
		}
		if procs == 0 && s.MultiApp() {
			continue
		}
		pool := Pool{App: a, Alias: db.Name, Procs: procs, Clients: procs * per, Size: p.DefaultPoolSize, What: strings.Join(what, " + ")}
		if db.ReadPool() {
			pool.ReplicaAlias = ReplicaAlias(db.Name)
			pool.ReplicaClients = procs * (db.ReplicaPoolSize + db.ReplicaMaxOverflow)
			pool.ReplicaSize = p.DefaultPoolSize
		}
		if s.MultiApp() {
			pool.Alias = s.PoolerAlias(a)
			pool.Size = max(1, min(p.DefaultPoolSize, pool.Clients))
			if db.ReadPool() {
				pool.ReplicaAlias = ReplicaAlias(pool.Alias)
				pool.ReplicaSize = max(1, min(p.DefaultPoolSize, pool.ReplicaClients))
			}
		}
		pool.Max = pool.Size + p.ReservePoolSize
		if db.ReadPool() {
			pool.ReplicaMax = pool.ReplicaSize + p.ReservePoolSize
		}
		pools = append(pools, pool)
	}
	return pools
}

// PoolerServerConns is the most server connections host h's PgBouncer
// opens to the primary: each pool's size and reserve.
func PoolerServerConns(pools []Pool) int {
	n := 0
	for _, p := range pools {
		n += p.Max
	}
	return n
}

// PoolerServers is the most server connections host h's PgBouncer
// opens in all, to the primary and the replicas (Pool.Servers), each a
// descriptor.
func PoolerServers(pools []Pool) int {
	n := 0
	for _, p := range pools {
		n += p.Servers()
	}
	return n
}

// poolWords lists the pools' sizes: "api 20 + web 20".
func poolWords(pools []Pool, size func(Pool) int) string {
	var ws []string
	for _, p := range pools {
		ws = append(ws, fmt.Sprintf("%s %d", p.App.Name, size(p)))
	}
	return strings.Join(ws, " + ")
}

// poolerApps is db-pool's arithmetic for PgBouncer's pools with several
// apps, a pool per app on each host (PoolerPools): in session mode each
// app's clients on a host must fit its pool; each host's PgBouncer
// needs a descriptor per client and per server connection; and every
// pool of every host together must fit the primary's max_connections.
func poolerApps(s *schema.Stack) []finding {
	db, p := s.Database, s.Database.Pooler
	var fs []finding
	for _, a := range s.Apps {
		if a.Name == "pgbouncer" {
			fs = append(fs, finding{a.Field, `PgBouncer's console is the database "pgbouncer", and with several apps each app's pool on the host's PgBouncer is the database of the app's name: rename app "pgbouncer"`})
		}
	}
	type hostPools struct {
		host  *schema.Host
		pools []Pool
	}
	var all []hostPools
	for _, name := range s.HostNames() {
		h := s.Hosts[name]
		if pools := PoolerPools(s, h); len(pools) > 0 {
			all = append(all, hostPools{h, pools})
		}
	}
	// Session mode: a client holds a server connection while it is
	// connected, so the app's clients on the host must fit its pool.
	if p.PoolMode == "session" {
		type short struct {
			msg   string
			hosts []string
		}
		var shorts []*short
		for _, hp := range all {
			for _, pl := range hp.pools {
				var msgs []string
				if pl.Clients > pl.Max {
					msgs = append(msgs, fmt.Sprintf("app %q's pool: %s × (pool_size %d + max_overflow %d) = %d client connections, and in session mode each holds a server connection while it is open, but the pool opens at most default_pool_size %d + reserve_pool_size %d = %d: clients would wait; use pool_mode \"transaction\" or raise default_pool_size",
						pl.App.Name, pl.What, db.PoolSize, db.MaxOverflow, pl.Clients, pl.Size, p.ReservePoolSize, pl.Max))
				}
				if pl.ReplicaAlias != "" && pl.ReplicaClients > pl.ReplicaMax {
					msgs = append(msgs, fmt.Sprintf("app %q's read pool: %s × (replica_pool_size %d + replica_max_overflow %d) = %d client connections, and in session mode each holds a server connection while it is open, but the pool opens at most default_pool_size %d + reserve_pool_size %d = %d: clients would wait; use pool_mode \"transaction\" or raise default_pool_size",
						pl.App.Name, pl.What, db.ReplicaPoolSize, db.ReplicaMaxOverflow, pl.ReplicaClients, pl.ReplicaSize, p.ReservePoolSize, pl.ReplicaMax))
				}
				for _, msg := range msgs {
					if i := slices.IndexFunc(shorts, func(x *short) bool { return x.msg == msg }); i >= 0 {
						shorts[i].hosts = append(shorts[i].hosts, hp.host.Name)
						continue
					}
					shorts = append(shorts, &short{msg, []string{hp.host.Name}})
				}
			}
		}
		for _, x := range shorts {
			fs = append(fs, finding{"database.pooler.pool_mode", fmt.Sprintf("on %s: %s", onHosts(x.hosts), x.msg)})
		}
	}
	// PgBouncer holds a descriptor per client and per server
	// connection, under the LimitNOFILE its drop-in sets.
	most := hostPools{}
	for _, hp := range all {
		if most.host == nil || PoolerServers(hp.pools) > PoolerServers(most.pools) {
			most = hp
		}
	}
	if most.host != nil {
		server := PoolerServers(most.pools)
		if fds := p.MaxClientConn + server; fds > s.Tuning.Nofile {
			fs = append(fs, finding{"database.pooler.max_client_conn", fmt.Sprintf(
				"PgBouncer on %s needs a descriptor per connection: max_client_conn %d + %d server connections (%s) = %d, above tuning.nofile %d (its LimitNOFILE); lower max_client_conn or raise tuning.nofile",
				most.host.Name, p.MaxClientConn, server, serverWords(db, most.pools), fds, s.Tuning.Nofile)})
		}
	}
	per := func(apps []AppPools) string {
		var ws []string
		for _, ap := range apps {
			ws = append(ws, fmt.Sprintf("%s %d (%s)", ap.App.Name, ap.Total, strings.Join(ap.Hosts, ", ")))
		}
		return strings.Join(ws, " + ")
	}
	if apps, total := PoolerAppPools(s, false); db.MaxConnections > 0 && total > db.MaxConnections {
		fs = append(fs, finding{"database.max_connections", fmt.Sprintf(
			"PgBouncer's pools, an app's on each of its hosts, each pool_size (default_pool_size %d, or the app's client connections on the host if fewer) + reserve_pool_size %d: %s = %d server connections to the primary, above max_connections %d; lower database.pooler.default_pool_size or reserve_pool_size, or raise max_connections",
			p.DefaultPoolSize, p.ReservePoolSize, per(apps), total, db.MaxConnections)})
	}
	if limit, field := db.ReplicaLimit(); db.ReadPool() && limit > 0 {
		if apps, total := PoolerAppPools(s, true); total > limit {
			f := strings.TrimPrefix(field, "database.")
			fs = append(fs, finding{field, fmt.Sprintf(
				"PgBouncer's read pools, an app's on each of its hosts, each pool_size (default_pool_size %d, or the app's client connections to it on the host if fewer) + reserve_pool_size %d: %s = %d server connections to a replica (each replica must take them all when the others are lost), above %s %d; lower database.pooler.default_pool_size or reserve_pool_size, or raise %[5]s",
				p.DefaultPoolSize, p.ReservePoolSize, per(apps), total, f, limit)})
		}
	}
	return fs
}

// serverWords says what a host's PgBouncer's server connections are:
// "api 10 + web 10", and the read pools' when there are.
func serverWords(db *schema.Database, pools []Pool) string {
	w := poolWords(pools, func(pl Pool) int { return pl.Max })
	if db.ReadPool() {
		w += "; read pools " + poolWords(pools, func(pl Pool) int { return pl.ReplicaMax })
	}
	return w
}

// AppPools is one app's PgBouncer pools: the server connections they
// open to the primary in all (pool_size + reserve_pool_size each), and
// each host's share in words ("app1 8").
type AppPools struct {
	App   *schema.App
	Total int
	Hosts []string
}

// PoolerAppPools is what the primary sees from PgBouncer with several
// apps (with reads, what a replica sees of the read pools): each app's
// pools over its hosts (and the worker hosts running its code), in the
// order of the apps, and their total. db-pool checks
// the total against max_connections; the runbook shows a row per app.
func PoolerAppPools(s *schema.Stack, reads bool) ([]AppPools, int) {
	var all []AppPools
	total := 0
	for _, a := range s.Apps {
		ap := AppPools{App: a}
		for _, name := range s.HostNames() {
			for _, pl := range PoolerPools(s, s.Hosts[name]) {
				if pl.App == a {
					n := pl.Max
					if reads {
						n = pl.ReplicaMax
					}
					ap.Total += n
					ap.Hosts = append(ap.Hosts, fmt.Sprintf("%s %d", name, n))
				}
			}
		}
		if ap.Total > 0 {
			total += ap.Total
			all = append(all, ap)
		}
	}
	return all, total
}

// onHosts says where: "app1" or "each of app1, app2".
func onHosts(hosts []string) string {
	if len(hosts) == 1 {
		return hosts[0]
	}
	return "each of " + strings.Join(hosts, ", ")
}

// DBConnections is the most connections the primary sees from the
// stack (with reads, a replica from the read pools, 0 without them):
// from the processes' pools, or through PgBouncer from each host's
// pools. db-pool holds it against max_connections (ReplicaLimit); the
// runbook and diff show it.
func DBConnections(s *schema.Stack, reads bool) int {
	db := s.Database
	if db == nil || reads && !db.ReadPool() {
		return 0
	}
	p := db.Pooler
	switch {
	case p != nil && s.MultiApp():
		_, n := PoolerAppPools(s, reads)
		return n
	case p != nil:
		n, _ := PoolerHosts(s)
		return n * (p.DefaultPoolSize + p.ReservePoolSize)
	}
	procs, _ := PoolProcesses(s)
	if reads {
		return procs * (db.ReplicaPoolSize + db.ReplicaMaxOverflow)
	}
	return procs * (db.PoolSize + db.MaxOverflow)
}
