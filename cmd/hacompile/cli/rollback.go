package cli

import (
	"github.com/spf13/cobra"
)

const rollbackLong = `Rollback undoes, on each host, the newest push still in effect: every file
that push replaced is restored byte for byte with its mode and owner from the
host's backups (/var/lib/hacompile/backups/<stack>/<n>/), and every file it
created is removed. A file changed on the host since that push is drift and
stops the rollback unless --force.

The rollback runs like a push: all hosts are planned first, validate commands
run before anything is reloaded (a failure puts the files back), then the
reload actions and health checks, in the same batches (a failed reload or
health check puts the files back and reloads them, unless --no-auto-revert). It is recorded as a
generation of its own; running rollback again steps one push further back. To
undo a rollback, push again.

The stack must still compile (it gives the hosts' addresses, users and
roles); out/ is not consulted. --root must be the one the push used.

Exit codes as push's: 0 success; 1 failure (including no push left to undo)
or a host skipped; 64 usage error; when every host that failed failed in its
preflight for one of these: 3 a host key is not in known_hosts; 4 a host key
CHANGED; 5 drift.`

func newRollback() *cobra.Command {
	var f deployFlags
	c := &cobra.Command{
		Use:   "rollback [STACK]",
		Short: "Restore the files of the previous push on the hosts",
		Long:  rollbackLong,
		Example: `  hacompile rollback shop --dry-run
  hacompile rollback shop --hosts app2
  hacompile rollback shop --batch 100%     # every app host at once`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDeploy(cmd, args, &f, true)
		},
	}
	f.register(c)
	addStackFlags(c)
	return c
}
