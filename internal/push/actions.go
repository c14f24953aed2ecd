package push

import (
	"path"
	"slices"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
)

// validateCommands are the distinct validate commands of the changes,
// in the order they first appear (changes are sorted by path).
func validateCommands(changes []Change) []string {
	var out []string
	for _, c := range changes {
		for _, a := range c.Validate {
			if v := a.String(); v != "" && !slices.Contains(out, v) && !namesRemoved(c, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

// namesRemoved reports whether cmd names the file c removes, by path
// or by name ("systemd-analyze verify /etc/…/app.service", "systemctl
// restart app.service"): such a command cannot work once the file is
// gone, while the others ("nginx -t") check what is left.
func namesRemoved(c Change, cmd string) bool {
	if c.Action != "remove" {
		return false
	}
	base := path.Base(c.Path)
	for _, w := range strings.Fields(cmd) {
		if strings.HasSuffix(w, c.Path) || w == base {
			return true
		}
	}
	return false
}

// reloadSteps turns the changes' reload actions into the commands to
// run, each once, in an order that works:
//
//   - A reload action is a chain of steps ("systemctl daemon-reload",
//     then "systemctl restart nginx.service"); the steps run one by one,
//     stopping at the first failure, as the chain would.
//   - systemctl daemon-reload goes first: a service reloaded before
//     systemd has read its changed unit runs with the old unit.
//   - sysctl --system goes next: services may size themselves from
//     kernel limits when they start.
//   - The rest keep the order they first appear in.
//   - A command naming a file the push removes is left out: it would
//     fail on the missing file. (A removed unit is not stopped or
//     disabled; the plan says so.)
//   - "systemctl reload X" is dropped when "systemctl restart X" is also
//     run: the restart reads the new configuration anyway, and a reload
//     right before it is wasted work.
func reloadSteps(changes []Change) []string {
	var steps []artifact.Op
	for _, c := range changes {
		for _, chain := range c.Reload {
			for _, op := range chain.Ops() {
				if !slices.ContainsFunc(steps, func(o artifact.Op) bool { return o.Command == op.Command }) && !namesRemoved(c, op.Command) {
					steps = append(steps, op)
				}
			}
		}
	}
	restarted := map[string]bool{}
	for _, op := range steps {
		if verb, unit, ok := op.Unit(); ok && verb == "restart" {
			restarted[unit] = true
		}
	}
	rank := func(o artifact.Op) int {
		switch {
		case o.DaemonReload():
			return 0
		case o.Command == "sysctl --system":
			return 1
		}
		return 2
	}
	var keep []artifact.Op
	for _, op := range steps {
		if verb, unit, ok := op.Unit(); ok && verb == "reload" && restarted[unit] {
			continue
		}
		keep = append(keep, op)
	}
	slices.SortStableFunc(keep, func(a, b artifact.Op) int { return rank(a) - rank(b) })
	out := make([]string, len(keep))
	for i, op := range keep {
		out[i] = op.Command
	}
	return out
}
