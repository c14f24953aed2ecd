package rules

import (
	"fmt"
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
}

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
		if s.MultiApp() {
			pool.Alias = s.PoolerAlias(a)
			pool.Size = max(1, min(p.DefaultPoolSize, pool.Clients))
		}
		pool.Max = pool.Size + p.ReservePoolSize
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

// poolWords lists the pools' sizes: "api 20 + web 20".
func poolWords(pools []Pool, size func(Pool) int) string {
	var ws []string
	for _, p := range pools {
		ws = append(ws, fmt.Sprintf("%s %d", p.App.Name, size(p)))
	}
	return strings.Join(ws, " + ")
}
