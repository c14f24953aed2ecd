package haproxy

import (
	"fmt"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// dropIn renders haproxy.service.d/hacompile.conf. It adds to Debian's
// unit and overrides nothing: the unit's ExecReload= already validates
// (haproxy -Ws -f $CONFIG -c -q) before kill -USR2 $MAINPID.
func dropIn(s *schema.Stack, opt artifact.Options) []byte {
	var b strings.Builder
	c := func(lines ...string) {
		for _, l := range lines {
			b.WriteString("# " + l + "\n")
		}
	}
	b.WriteString(artifact.Header("#", s))
	b.WriteString("#\n")
	c("Additions to Debian's haproxy.service, which stays the unit: it starts",
		"haproxy -Ws -f /etc/haproxy/haproxy.cfg, and its ExecReload= already checks the",
		"configuration (haproxy -c) before it signals the master (kill -USR2), so nothing",
		"here replaces it.")
	b.WriteString("\n[Service]\n")
	c(PasswordVar+"=... for the stats page, in a root-only (0600) file provisioned on the",
		"host; the runbook says how. The \"-\" lets a new balancer balance from its first",
		"boot, before the file exists: until the password is there the stats page refuses",
		"every request (haproxy.cfg denies it while the variable is empty). The master reads",
		"its environment when it starts: a changed password needs systemctl restart haproxy,",
		"a reload keeps the old one.")
	b.WriteString("EnvironmentFile=-" + opt.P(s.Balancer.EnvironmentFile) + "\n")
	c(fmt.Sprintf("Open files: two per connection (client and server side) at maxconn %d,", s.Balancer.MaxConn),
		"plus listeners, checks and logs, and never below tuning.nofile. HAProxy refuses to",
		"start (\"Cannot raise FD limit\") when it may not raise its own limit that far, as",
		"in a container without CAP_SYS_RESOURCE; with this it never has to. systemd applies",
		"it when haproxy starts: a change needs systemctl restart haproxy.")
	b.WriteString(fmt.Sprintf("LimitNOFILE=%d\n", nofile(s)))
	return []byte(b.String())
}
