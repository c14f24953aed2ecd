package artifact

import "strings"

// Op is one step of a file's Reload action. The manifest keeps the
// action as the shell text a human runs ("systemctl daemon-reload &&
// systemctl restart nginx.service"); Ops is its one reading, so push
// (which runs each step once, in a safe order) and diff (which names
// the impact of a change) agree on what it does.
type Op struct {
	// Command is the step with its words separated by single spaces.
	Command string
	args    []string
}

// Ops splits an action at "&&" into its steps, in order; empty steps
// are dropped.
func Ops(action string) []Op {
	var ops []Op
	for step := range strings.SplitSeq(action, "&&") {
		f := strings.Fields(step)
		if len(f) > 0 {
			ops = append(ops, Op{Command: strings.Join(f, " "), args: f})
		}
	}
	return ops
}

// Args are the step's words.
func (o Op) Args() []string { return o.args }

// Unit reads "systemctl VERB UNIT", with the unit's implied .service
// suffix made explicit.
func (o Op) Unit() (verb, unit string, ok bool) {
	if len(o.args) != 3 || o.args[0] != "systemctl" {
		return "", "", false
	}
	unit = o.args[2]
	if !strings.Contains(unit, ".") {
		unit += ".service"
	}
	return o.args[1], unit, true
}

// DaemonReload reports whether the step makes systemd reread its units.
func (o Op) DaemonReload() bool { return o.Command == "systemctl daemon-reload" }

// Sysctl reports whether the step applies kernel settings.
func (o Op) Sysctl() bool { return len(o.args) > 0 && o.args[0] == "sysctl" }

// Reboot reports whether the step reboots the host.
func (o Op) Reboot() bool {
	return len(o.args) > 0 && (o.args[0] == "reboot" || o.args[0] == "systemctl" && len(o.args) > 1 && o.args[1] == "reboot")
}
