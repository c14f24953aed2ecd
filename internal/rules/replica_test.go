package rules_test

import (
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/rules"
)

// replicaBase has 2 app hosts of 4 workers each: 8 processes.
const replicaBase = `
name:   "r"
domain: "example.com"
hosts: {
	app1: {address: "10.0.0.11", roles: ["app"], cores: 2, memory_mb: 2048}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 2, memory_mb: 2048}
}
balancer: kind: "cloud"
app: {name: "shop", runtime: "python", module: "wsgi:app", working_dir: "/srv/shop", workers: 4}
`

// TestReadPools: db-pool holds the read pools to what each replica
// takes (replica_max_connections, else max_connections): the
// processes' own pools without a pooler, or each host's PgBouncer's
// pool on the replicas with one, whose clients count against
// max_client_conn with the primary's. Each case's finding is new: the
// replicas were not checked before.
func TestReadPools(t *testing.T) {
	db := func(s string) string {
		return "database: {host: \"db.example.com\", name: \"shop\", replicas: [\"ro1.example.com\", \"ro2.example.com\"], pool_size: 2, max_overflow: 2, " + s + "}\n"
	}
	for _, c := range []struct{ name, add, want string }{
		{"direct pools fit", db(`replica_pool_size: 5, replica_max_overflow: 5, max_connections: 80`), ""},
		{"direct pools above max_connections", db(`replica_pool_size: 5, replica_max_overflow: 6, max_connections: 80`),
			`stacks/m.cue:10:195: database.max_connections: 8 app processes × (replica_pool_size 5 + replica_max_overflow 6) = 88 connections to a replica (each replica must take them all when the others are lost), above max_connections 80; lower the read pools, add a pooler (database.pooler, PgBouncer on each app and worker host) or raise max_connections [db-pool]`},
		{"direct pools above replica_max_connections", db(`replica_pool_size: 5, max_connections: 32, replica_max_connections: 39`),
			`stacks/m.cue:10:199: database.replica_max_connections: 8 app processes × (replica_pool_size 5 + replica_max_overflow 0) = 40 connections to a replica (each replica must take them all when the others are lost), above replica_max_connections 39; lower the read pools, add a pooler (database.pooler, PgBouncer on each app and worker host) or raise replica_max_connections [db-pool]`},
		{"no limit stated", db(`replica_pool_size: 500`), ""},
		{"pooled reads fit", db(`replica_pool_size: 50, max_connections: 50, pooler: {default_pool_size: 20, reserve_pool_size: 5}`), ""},
		{"pooled reads above replica_max_connections", db(`replica_pool_size: 50, replica_max_connections: 49, pooler: {default_pool_size: 20, reserve_pool_size: 5}`),
			`stacks/m.cue:10:179: database.replica_max_connections: 2 hosts run PgBouncer (app1, app2) × (default_pool_size 20 + reserve_pool_size 5) = 50 server connections to a replica from the read pools (each replica must take them all when the others are lost), above replica_max_connections 49; lower database.pooler.default_pool_size or reserve_pool_size, or raise replica_max_connections [db-pool]`},
		{"read clients count", db(`replica_pool_size: 50, pooler: {max_client_conn: 200}`),
			`stacks/m.cue:10:180: database.pooler.max_client_conn: on each of app1, app2: 4 app processes × (pool_size 2 + max_overflow 2 + replica_pool_size 50 + replica_max_overflow 0) = 216 client connections to the host's PgBouncer, above max_client_conn 200; raise max_client_conn or lower the pools [db-pool]`},
		{"session mode read pool", db(`replica_pool_size: 10, pooler: {pool_mode: "session", default_pool_size: 30}`),
			`database.pooler.pool_mode: on each of app1, app2: 4 app processes × (replica_pool_size 10 + replica_max_overflow 0) = 40 client connections to the read pool, and in session mode each holds a server connection while it is open, but the host's PgBouncer opens at most default_pool_size 30 + reserve_pool_size 0 = 30 to the replicas: clients would wait; use pool_mode "transaction" or raise default_pool_size [db-pool]`},
		{"descriptors of both pools", db(`replica_pool_size: 1, pooler: {max_client_conn: 65500}`),
			`database.pooler.max_client_conn: PgBouncer needs a descriptor per connection: max_client_conn 65500 + 40 server connections (to the primary and as many to the replicas) = 65540, above tuning.nofile 65536 (its LimitNOFILE); lower max_client_conn or raise tuning.nofile [db-pool]`},
		{"limit without a read pool", db(`replica_max_connections: 10`),
			`database.replica_max_connections: no read pool is checked against it without database.replica_pool_size: set that or remove this [db-option]`},
		{"a standby below the primary", db(`replica_pool_size: 1, max_connections: 80, replica_max_connections: 79`),
			`database.replica_max_connections: a PostgreSQL standby takes at least the primary's max_connections, or it does not start: 79 is below max_connections 80; raise it to 80 or more, or remove it [db-option]`},
	} {
		checkFindings(t, c.name, replicaBase+c.add, c.want, "db-pool", "db-option")
	}
}

// TestReplicaAliasFits: PgBouncer refuses a database name of 64
// characters or more (checked against Debian's pgbouncer: "too long db
// name", and it does not start), so a read pool's name is the alias and
// _replica while that fits, and else a shortened alias with a hash of
// the whole: at most 63 characters, distinct for distinct aliases.
func TestReplicaAliasFits(t *testing.T) {
	long := "a23456789-123456789-123456789-123456789-123456789-123456789-123" // 63, a #Name's most
	if got := rules.ReplicaAlias(long[:55]); got != long[:55]+"_replica" {
		t.Errorf("55 characters: %q", got)
	}
	seen := map[string]string{}
	for _, a := range []string{long[:56], long, long[:62] + "4", long[:62]} {
		got := rules.ReplicaAlias(a)
		if len(got) > rules.MaxPoolerName || !strings.HasSuffix(got, "_replica") || !strings.HasPrefix(got, a[:46]) {
			t.Errorf("%d characters: %q (%d)", len(a), got, len(got))
		}
		if o, dup := seen[got]; dup {
			t.Errorf("%q and %q share %q", o, a, got)
		}
		seen[got] = a
		if again := rules.ReplicaAlias(a); again != got {
			t.Errorf("%q: %q, then %q", a, got, again)
		}
	}
}
