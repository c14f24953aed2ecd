package push

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
)

// connectionPaths are the host paths whose change can cut push's own
// connection once reloaded: kernel parameters, resource limits, the SSH
// server and PAM, firewalls and the network configuration. A directory
// ends in "/".
var connectionPaths = []string{
	"/etc/sysctl.conf", "/etc/sysctl.d/",
	"/etc/security/limits.conf", "/etc/security/limits.d/",
	"/etc/ssh/", "/etc/pam.d/sshd",
	"/etc/nftables.conf", "/etc/nftables.d/", "/etc/iptables/", "/etc/ufw/",
	"/etc/network/", "/etc/netplan/", "/etc/systemd/network/",
}

// cutsConnection reports whether a change of p can cut push's
// connection to the host.
func cutsConnection(p string) bool {
	return slices.ContainsFunc(connectionPaths, func(c string) bool {
		if strings.HasSuffix(c, "/") {
			return strings.HasPrefix(p, c)
		}
		return p == c
	})
}

// deadman is a dead-man timer armed on a host for one generation.
type deadman struct {
	unit    string // the transient systemd unit
	decided string // the directory whose creation decides: confirm or restore
	window  time.Duration
}

// needsDeadman reports whether generation g changes a file that can cut
// the connection and has reload steps to make it live. Under a root
// prefix nothing is reloaded (see rootCommands), so nothing is armed.
func (r *hostRun) needsDeadman(g *Generation) bool {
	if r.o.ConfirmTimeout <= 0 || len(r.plan.Reload) == 0 || (r.h.Root != "/" && !r.o.sandboxCommands) {
		return false
	}
	return slices.ContainsFunc(g.Changes, func(c Change) bool { return cutsConnection(c.Path) })
}

// armDeadman leaves on the host, in generation g's directory, a script
// that puts the previous files and records back and runs the reload
// steps again, and starts it with a transient systemd timer after
// ConfirmTimeout. The script first creates the decision directory and
// exits if it exists: push confirms by creating it over a new
// connection, so exactly one of the two acts.
func (r *hostRun) armDeadman(ctx context.Context, g *Generation) (*deadman, error) {
	token := randomSuffix()
	dir := genDir(r.o.Stack, g.Number)
	dm := &deadman{
		unit:    fmt.Sprintf("hacompile-deadman-%s-%d-%s", r.o.Stack, g.Number, token),
		decided: r.root(dir + "/deadman-" + token + ".decided"),
		window:  r.o.ConfirmTimeout,
	}
	// The records as a revert leaves them, moved into place by the
	// script.
	prev := r.state
	if prev != nil {
		st := *prev
		st.PendingReload = nil
		if err := r.writeRecord(r.root(dir+"/deadman-"+token+"-state.json"), &st); err != nil {
			return nil, err
		}
	}
	rev := *g
	rev.Status = genReverted
	if err := r.writeRecord(r.root(dir+"/deadman-"+token+"-generation.json"), &rev); err != nil {
		return nil, err
	}
	script := r.root(dir + "/deadman-" + token + ".sh")
	if err := r.c.writeAtomic(script, writeSpec{Content: r.deadmanScript(g, token, prev != nil), Mode: 0o700, UID: -1, GID: -1}, nil); err != nil {
		return nil, err
	}
	secs := int(dm.window.Round(time.Second) / time.Second)
	cmd := fmt.Sprintf("systemd-run --quiet --unit=%s --on-active=%ds --timer-property=AccuracySec=1s /bin/sh %s",
		artifact.ShellQuote(dm.unit), max(secs, 1), artifact.ShellQuote(script))
	if _, err := r.c.run(ctx, r.h.Root, cmd, r.o.CommandTimeout); err != nil {
		return nil, fmt.Errorf("arm the dead-man timer before reloading a change that can cut the connection (--confirm-timeout 0 goes without): %w", err)
	}
	r.note(fmt.Sprintf("armed the dead-man timer %s: unless this push confirms over a new connection within %s, the host restores the files generation %d replaced and reloads them", dm.unit, dm.window, g.Number))
	return dm, nil
}

// deadmanScript restores generation g: each change undone (its backup
// copied beside the target and renamed over it, keeping mode and owner;
// a created file removed), the host's records as before g, then the
// reload steps. Every path and value is quoted.
func (r *hostRun) deadmanScript(g *Generation, token string, hasPrev bool) []byte {
	q := artifact.ShellQuote
	dir := r.root(genDir(r.o.Stack, g.Number))
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/sh\n# hacompile push's dead-man timer for generation %d of stack %s on %s: unless the\n# push confirmed the change (created the .decided directory), the files it\n# replaced go back and are reloaded.\n", g.Number, r.o.Stack, r.h.Name)
	fmt.Fprintf(&b, "mkdir %s 2>/dev/null || exit 0\n", q(dir+"/deadman-"+token+".decided"))
	fmt.Fprintf(&b, "HACOMPILE_ROOT=%s; export HACOMPILE_ROOT\nstatus=0\n", q(r.h.Root))
	for i := len(g.Changes) - 1; i >= 0; i-- {
		ch := g.Changes[i]
		target := r.root(ch.Path)
		if ch.Old == nil {
			fmt.Fprintf(&b, "rm -f %s || status=1\n", q(target))
			continue
		}
		tmp := path.Dir(target) + "/" + TempPrefix + path.Base(target) + "-deadman"
		fmt.Fprintf(&b, "cp -p %s %s && mv -f %s %s || status=1\n", q(dir+"/"+ch.Backup), q(tmp), q(tmp), q(target))
	}
	state := r.root(statePath(r.o.Stack))
	if hasPrev {
		fmt.Fprintf(&b, "mv -f %s %s || status=1\n", q(dir+"/deadman-"+token+"-state.json"), q(state))
	} else {
		fmt.Fprintf(&b, "rm -f %s || status=1\n", q(state))
	}
	fmt.Fprintf(&b, "mv -f %s %s || status=1\n", q(dir+"/deadman-"+token+"-generation.json"), q(dir+"/generation.json"))
	for _, step := range r.plan.Reload {
		fmt.Fprintf(&b, "%s || status=1\n", step)
	}
	b.WriteString("exit $status\n")
	return []byte(b.String())
}

// confirm disarms the timer: over a new connection, which proves the
// host still lets push in after the change, it creates the decision
// directory. When the timer got there first, the previous files are
// back.
func (r *hostRun) confirm(ctx context.Context, dm *deadman) error {
	c, err := r.d.dial(ctx, r.h.SSH)
	if err != nil {
		return fmt.Errorf("%w: could not connect to the host again after the change (%w); its dead-man timer restores the previous files within %s of the reload", ErrNotConfirmed, err, dm.window)
	}
	defer c.close()
	return claim(c, dm, "confirm")
}

// errTimerFired: the dead-man timer restored the previous files.
var errTimerFired = errors.New("timer fired")

// claim creates the decision directory over c; what says what for.
func claim(c *conn, dm *deadman, what string) error {
	err := c.do("mkdir", dm.decided, func() error { return c.sftp.Mkdir(dm.decided) })
	if err == nil {
		return nil
	}
	if _, serr := c.lstat(dm.decided); serr == nil {
		return fmt.Errorf("%w: %w: the dead-man timer %s fired before this push could %s the change: the host put the previous files back and reloaded them (raise --confirm-timeout if the reloads and health check take longer)", ErrNotConfirmed, errTimerFired, dm.unit, what)
	}
	return fmt.Errorf("%s the change: %w", what, err)
}

// pendingTimers are dead-man timers an earlier push armed on the host
// and never decided (it was cut off): their scripts in the newest
// generation's directory without a .decided directory.
func (r *hostRun) pendingTimers() ([]*deadman, error) {
	if len(r.gens) == 0 {
		return nil, nil
	}
	dir := genDir(r.o.Stack, r.gens[len(r.gens)-1])
	ents, err := r.c.readDir(r.root(dir))
	if notExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, e := range ents {
		names[e.Name()] = true
	}
	var out []*deadman
	for _, e := range ents {
		token, ok := strings.CutPrefix(e.Name(), "deadman-")
		if token, ok = strings.CutSuffix(token, ".sh"); !ok || names["deadman-"+token+".decided"] {
			continue
		}
		out = append(out, &deadman{unit: "hacompile-deadman-…-" + token, decided: r.root(dir + "/deadman-" + token + ".decided")})
	}
	return out, nil
}
