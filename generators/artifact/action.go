package artifact

import (
	"encoding/json"
	"slices"
	"strings"
)

// Action is what a file asks of its host: the command that checks it
// before it takes effect (File.Validate) or the steps that make it live
// (File.Reload). Generators build actions from typed steps (Run,
// Systemctl, DaemonReload, Sysctl); push, diff, cloud-init and the
// runbook read the steps instead of parsing shell text. The manifest
// and push's records on a host keep an action as the shell text a human
// runs ("systemctl daemon-reload && systemctl restart nginx.service"):
// that is its JSON form, read back by ParseAction.
type Action struct{ ops []Op }

// Op is one step of an action.
type Op struct {
	// Command is the step with its words separated by single spaces.
	Command string
	args    []string
}

// op is a step of the words args, each quoted for the shell
// (ShellQuote) in its Command: a word a generator takes from a stack
// reaches the shell as one argument whatever it holds. Plain words
// (paths, flags, unit names) read as written.
func op(args ...string) Op {
	words := make([]string, len(args))
	for i, a := range args {
		words[i] = ShellQuote(a)
	}
	return Op{Command: strings.Join(words, " "), args: slices.Clip(args)}
}

// Run is an action of one command, given as its words. Each word is
// quoted for the shell, by construction: the command run is these
// words, whatever they hold.
func Run(args ...string) Action {
	if len(args) == 0 {
		return Action{}
	}
	return Action{ops: []Op{op(args...)}}
}

// Systemctl is "systemctl VERB UNIT…" as one step.
func Systemctl(verb string, units ...string) Action {
	return Run(append([]string{"systemctl", verb}, units...)...)
}

// Restart restarts the units.
func Restart(units ...string) Action { return Systemctl("restart", units...) }

// ReloadUnit reloads the units.
func ReloadUnit(units ...string) Action { return Systemctl("reload", units...) }

// Enable enables the units.
func Enable(units ...string) Action { return Systemctl("enable", units...) }

// DaemonReload makes systemd reread its unit files.
func DaemonReload() Action { return Systemctl("daemon-reload") }

// SysctlSystem applies every sysctl.d file.
func SysctlSystem() Action { return Run("sysctl", "--system") }

// Then is a followed by the steps of next, in order.
func (a Action) Then(next ...Action) Action {
	ops := slices.Clone(a.ops)
	for _, n := range next {
		ops = append(ops, n.ops...)
	}
	return Action{ops: ops}
}

// ParseAction reads an action's shell text, as the manifest keeps it:
// steps separated by "&&", words by blanks. Custom generators and the
// records push keeps on a host give actions this way.
func ParseAction(s string) Action {
	var a Action
	for step := range strings.SplitSeq(s, "&&") {
		if f := strings.Fields(step); len(f) > 0 {
			// Already shell text: kept as written, not quoted again.
			a.ops = append(a.ops, Op{Command: strings.Join(f, " "), args: slices.Clip(f)})
		}
	}
	return a
}

// Ops are the action's steps, in order.
func (a Action) Ops() []Op { return slices.Clone(a.ops) }

// IsZero reports whether the action has no step.
func (a Action) IsZero() bool { return len(a.ops) == 0 }

// String is the action as shell text: the steps joined by " && ".
func (a Action) String() string {
	cmds := make([]string, len(a.ops))
	for i, o := range a.ops {
		cmds[i] = o.Command
	}
	return strings.Join(cmds, " && ")
}

// Equal reports whether a and b have the same steps.
func (a Action) Equal(b Action) bool { return a.String() == b.String() }

// MarshalJSON writes the action as its shell text.
func (a Action) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// UnmarshalJSON reads an action from its shell text.
func (a *Action) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*a = ParseAction(s)
	return nil
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
