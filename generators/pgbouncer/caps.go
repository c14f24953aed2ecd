package pgbouncer

import (
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/rules"
	"github.com/hacompile/hacompile/schema"
)

var (
	_ artifact.Packager = Gen{}
	_ artifact.Booter   = Gen{}
	_ artifact.Sourcer  = Gen{}
)

// Packages implements artifact.Packager: pgbouncer, psql for its
// console (the ini's comment), and the CA bundle verify-ca and
// verify-full check the primary against.
func (Gen) Packages(_ *schema.Stack, _ *schema.Host, files []artifact.File) []string {
	return artifact.IfAny(files, Package, "postgresql-client", "ca-certificates")
}

// PackageDirs implements artifact.Packager: the package ships
// pgbouncer.ini and an empty userlist.txt there.
func (Gen) PackageDirs() []string { return []string{"etc/pgbouncer/"} }

// FirstBoot implements artifact.Booter. PgBouncer starts without its
// auth file (Debian ships it empty; it refuses logins until the
// operator writes it and reloads), so the first boot starts it either
// way and says what is left to do.
func (Gen) FirstBoot(s *schema.Stack, h *schema.Host, files []artifact.File) []artifact.Step {
	if len(files) == 0 {
		return nil
	}
	return []artifact.Step{
		{Phase: artifact.PhaseServices, Command: "systemctl enable pgbouncer"},
		{Phase: artifact.PhaseServices, Command: "systemctl restart pgbouncer"},
		{Phase: artifact.PhaseServices, Command: "[ -s " + UserlistPath + " ] || echo 'hacompile: provision " + UserlistPath + " from " + PasswordFile(s, h) + " as /" + IniPath + " says, then run: systemctl reload pgbouncer'"},
	}
}

// Sources implements artifact.Sourcer. With several apps the pools
// (DatabasesPath) follow the workers of the apps on the host, and the
// hba file and the pools the apps there.
func (Gen) Sources(s *schema.Stack, f artifact.File) []string {
	var apps []string
	if h := s.Hosts[f.Host]; h != nil && s.MultiApp() {
		for _, p := range rules.PoolerPools(s, h) {
			apps = append(apps, p.App.Field+".hosts")
			if f.Path == DatabasesPath {
				apps = append(apps, p.App.Field+".workers")
			}
		}
	}
	switch f.Path {
	case DropInPath:
		return []string{"tuning.nofile", "database.pooler"}
	case HBAPath:
		// With a read pool its line comes from the replicas' settings.
		return append([]string{"database.user", "database.pooler", "database.replica_pool_size", "database.replicas"}, apps...)
	case DatabasesPath:
		return append([]string{"database.pooler", "database"}, apps...)
	}
	return append([]string{"database.pooler", "database"}, apps...)
}
