package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/outdir"
	"github.com/hacompile/hacompile/internal/push"
	"github.com/hacompile/hacompile/schema"
)

// Exit codes of push and rollback beyond 0/1/2, so scripts can tell a
// host to add to known_hosts from an alarm and from a hand edit.
const (
	exitHostKeyUnknown = 3
	exitHostKeyChanged = 4
	exitDrift          = 5
)

// deployFlags are the flags push and rollback share.
type deployFlags struct {
	hosts          []string
	stacks         string
	out            string
	root           string
	knownHosts     []string
	identity       string
	sshConfig      string
	timeout        time.Duration
	commandTimeout time.Duration
	healthURL      string
	noHealth       bool
	healthTimeout  time.Duration
	lockTimeout    time.Duration
	batch          string
	maxFail        string
	requireAll     bool
	parallel       int
	canary         int
	noAutoRevert   bool
	confirmTimeout time.Duration
	dryRun         bool
	force          bool
	keep           int
	output         string
}

func (f *deployFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringSliceVar(&f.hosts, "hosts", nil, "only these hosts (comma-separated names; default all)")
	fl.StringVar(&f.stacks, "stacks", "stacks", "directory holding the stack files, for STACK given as a name")
	fl.StringVar(&f.root, "root", "/", "directory on each host under which its tree goes, for chroots and staging trees ({host} is the host's name); files are rendered with this prefix, and only validate commands checking the tree run (reloads are skipped with a note)")
	fl.StringArrayVar(&f.knownHosts, "known-hosts", []string{"~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts"}, "known_hosts file (repeatable); host keys are always verified")
	fl.StringVarP(&f.identity, "identity", "i", "", "private key file, tried before ssh-agent's keys (SSH_AUTH_SOCK); an encrypted key needs HACOMPILE_SSH_PASSPHRASE")
	fl.StringVarP(&f.sshConfig, "ssh-config", "F", "", "ssh_config-style overrides: Host patterns with HostName, User, Port, IdentityFile")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "deadline for each connect, handshake and SFTP operation, and for keepalive answers")
	fl.DurationVar(&f.commandTimeout, "command-timeout", 2*time.Minute, "deadline for each validate or reload command")
	fl.StringVar(&f.healthURL, "health-url", "", "health check URL template with {host}, {address}, {port}, {path} (default http://{address}:{port}{path})")
	fl.BoolVar(&f.noHealth, "no-health-check", false, "skip the HTTP health checks")
	fl.DurationVar(&f.healthTimeout, "health-timeout", 60*time.Second, "how long a host may take to pass its health check")
	fl.DurationVar(&f.lockTimeout, "lock-timeout", 15*time.Minute, "a host lock whose holder has not refreshed it for this long is taken over (one held from this machine only once its process has also exited; at once after a reboot)")
	fl.StringVar(&f.batch, "batch", "25%", "app hosts per batch: a count or a percentage (load balancers always go one at a time)")
	fl.StringVar(&f.maxFail, "max-fail", "0", "failed hosts tolerated (a host failing its preflight counts) before the rollout stops, as a count or a percentage of the hosts pushed (rounded down); hosts not yet started are left untouched")
	fl.BoolVar(&f.requireAll, "require-all", false, "write nothing anywhere unless every host passes its preflight (connect, host key, lock, plan), whatever --max-fail says")
	fl.IntVar(&f.parallel, "parallel", push.DefaultParallel, "hosts worked on at once, each with one SSH connection (closed when the host is done)")
	fl.IntVar(&f.canary, "canary", 0, "non-balancer hosts in a first batch whose failure stops the rollout (default 1 when more than 2 non-balancer hosts are pushed, else 0)")
	fl.BoolVar(&f.noAutoRevert, "no-auto-revert", false, "when a host's reload or health check fails, leave the new files in place (the next push retries the reload) instead of restoring and reloading the previous ones")
	fl.DurationVar(&f.confirmTimeout, "confirm-timeout", 3*time.Minute, "window of the dead-man timer armed on a host before reloading a change that can cut the connection (sysctl, limits, sshd, firewall, network): unless push confirms over a new connection within it, the host restores the previous files; 0 arms none")
	fl.BoolVar(&f.dryRun, "dry-run", false, "connect and print the plan; change nothing")
	fl.BoolVar(&f.force, "force", false, "overwrite files changed on a host since the last push (they are backed up)")
	fl.IntVar(&f.keep, "keep", 10, "generations of backups kept per host (0 keeps all)")
	fl.StringVarP(&f.output, "output", "o", "text", "output: text, or json (JSON lines: one per host event as it happens, then the summary)")
}

const pushLong = `Push deploys a stack's rendered files (out/<stack>/hosts/<host>/) onto its
hosts over SFTP. STACK is a stack name (looked up in --stacks) or a stack
file; it may be left out when there is one stack. The stack is compiled and
must match the committed out/ exactly: push deploys what was reviewed.

Safety:
  - Host keys are checked against known_hosts (hashed and [host]:port entries
    included); there is no option to skip the check.
  - Every host is connected to, locked and planned before any is written. A
    file changed on a host since the last push is drift (--force backs the
    edit up and overwrites it). A host that fails this preflight
    (unreachable, host key, drift, lock held) is reported and left out; it
    counts against --max-fail: within it the other hosts go ahead, beyond it
    (the default --max-fail 0: any such host) or with --require-all nothing
    is written anywhere.
  - Each file is written to a temp file beside it, chmod/chown'd, fsync'd and
    renamed over the target, so a dropped connection leaves every file old or
    new. Symlinks at targets are refused. Every replaced file is kept in a
    numbered generation under /var/lib/hacompile/backups/<stack>/ on the host.
  - The manifest's validate commands run before anything is reloaded; if one
    fails, the previous files are put back and nothing is reloaded. Then
    reloads run once each (systemctl daemon-reload first, then sysctl
    --system, then services), then an HTTP health check: app hosts at
    http://<address>:<app.http_port><health path>, lb hosts at port 80.
    When a reload or the health check fails, the host's previous files are
    put back byte for byte and the same reloads run again (the generation is
    recorded as reverted); --no-auto-revert leaves the new files instead.
  - A change that can cut push's own connection (sysctl, limits, sshd, PAM,
    firewall, network files) is guarded by a dead-man timer: before the
    reloads, a transient systemd timer is armed on the host that restores
    the previous files and reloads them unless push confirms over a new
    connection within --confirm-timeout (the next push to reach the host
    confirms a timer that a cut-off push left).
  - Hosts go in batches: load balancers one at a time, then a canary batch
    (--canary, by default 1 host when more than 2 non-balancer hosts are
    pushed) whose failure stops the rollout whatever --max-fail says, then
    app hosts (--batch), then the rest. Once more than --max-fail hosts have
    failed, no further host is started. At most --parallel hosts are worked
    on at once, each over one SSH connection, closed as soon as the host is
    done; with more hosts than that, a host is connected to again (locked
    and planned again) when its batch comes.

Connection: user and port come from hosts.<name>.ssh in the stack; an
--ssh-config file (Host patterns matching the host's name or address, with
HostName, User, Port and IdentityFile) overrides them. Keys come from
--identity and ssh-agent.

Exit codes: 0 every host succeeded; 1 a host failed or was skipped; 64 usage
error; when every host that failed failed in its preflight for one of these
(a changed key outranking an unknown one, outranking drift): 3 a host key is
not in known_hosts; 4 a host key CHANGED; 5 drift (the drifted hosts were not
written).`

func newPush() *cobra.Command {
	var f deployFlags
	c := &cobra.Command{
		Use:   "push [STACK]",
		Short: "Deploy rendered files to the hosts over SFTP, in health-gated batches",
		Long:  pushLong,
		Example: `  hacompile push shop --dry-run                 # show what would change on each host
  hacompile push shop                           # roll out: lb hosts one by one, app hosts 25% at a time
  hacompile push shop --hosts app1,app2 --batch 1 --max-fail 1
  hacompile push fleet --max-fail 20 --parallel 50 --canary 3   # thousands of hosts: some are always down
  hacompile push shop --force                   # overwrite hand edits (backed up)
  hacompile push shop --root /srv/staging/{host} --ssh-config staging.conf`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDeploy(cmd, args, &f, false)
		},
	}
	f.register(c)
	c.Flags().StringVar(&f.out, "out", "out", "the rendered output directory the stack must match")
	addStackFlags(c)
	return c
}

// runDeploy is push and rollback: resolve the stack and its hosts, run,
// report.
func runDeploy(cmd *cobra.Command, args []string, f *deployFlags, rollback bool) error {
	if f.output != "text" && f.output != "json" {
		return usageError{fmt.Errorf("--output: want text or json, got %q", f.output)}
	}
	stack := "" // the stack's name, once it compiled
	if f.output == "json" {
		defer budgetInJSONIndent(cmd, "", func(d schema.Diagnostic) any {
			return deployFailure(f, rollback, stack, []schema.Diagnostic{d})
		})()
	}
	if _, _, err := push.ParseBatch(f.batch); err != nil {
		return usageError{err}
	}
	maxFail, maxFailPercent, err := push.ParseMaxFail(f.maxFail)
	if err != nil {
		return usageError{err}
	}
	if f.parallel < 1 {
		return usageError{fmt.Errorf("--parallel: want 1 or more, got %d", f.parallel)}
	}
	// An empty value (a script's unset variable) must not mean "all".
	if cmd.Flags().Changed("hosts") && (len(f.hosts) == 0 || slices.Contains(f.hosts, "")) {
		return usageError{fmt.Errorf("--hosts: want host names, got an empty one in %q (leave --hosts out to reach every host)", strings.Join(f.hosts, ","))}
	}
	if len(args) > 0 && args[0] == "" {
		return usageError{errors.New("STACK: want a stack's name or file, got '' (leave it out when --stacks holds one stack)")}
	}
	if f.keep < 0 {
		return usageError{fmt.Errorf("--keep: want 0 (keep all) or more, got %d", f.keep)}
	}
	canary := f.canary
	if !cmd.Flags().Changed("canary") {
		canary = -1 // push.DefaultCanary of the hosts pushed
	} else if canary < 0 {
		return usageError{fmt.Errorf("--canary: want 0 or more, got %d", f.canary)}
	}
	if err := push.CheckRoot(f.root); err != nil {
		return usageError{err}
	}
	if f.confirmTimeout < 0 {
		return usageError{fmt.Errorf("--confirm-timeout: want 0 (none) or a positive duration, got %s", f.confirmTimeout)}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--timeout", f.timeout}, {"--command-timeout", f.commandTimeout}, {"--health-timeout", f.healthTimeout}, {"--lock-timeout", f.lockTimeout}} {
		if d.v <= 0 {
			return usageError{fmt.Errorf("%s: want a positive duration, got %s", d.name, d.v)}
		}
	}
	if cmd.Flags().Changed("health-url") {
		if err := push.CheckHealthURL(f.healthURL); err != nil {
			return usageError{err}
		}
	}
	if err := keyFile("--identity", f.identity); err != nil {
		return err
	}
	if err := fileFlag("--ssh-config", f.sshConfig, "an ssh_config-style file"); err != nil {
		return err
	}
	var sshCfg *push.SSHConfig
	if f.sshConfig != "" {
		var err error
		if sshCfg, err = push.LoadSSHConfig(f.sshConfig); err != nil {
			return deployFailed(cmd, f, rollback, "", err)
		}
	}
	r, err := resolveStack(cmd, f.stacks, args)
	if err != nil {
		return deployFailed(cmd, f, rollback, "", err)
	}
	stack = r.Stack.Name
	if !rollback {
		// Compared while no build is writing out/.
		unlock := outdir.LockOut(f.out, false, func() {
			fmt.Fprintf(cmd.ErrOrStderr(), "hacompile: waiting for a build of %s to finish\n", f.out)
		})
		err := checkOut(r, f.out)
		unlock()
		if err != nil {
			return deployFailed(cmd, f, rollback, stack, err)
		}
	}
	hosts, err := push.Targets(r, push.TargetOptions{Hosts: f.hosts, SSHConfig: sshCfg, HealthURL: f.healthURL, NoHealth: f.noHealth, Root: f.root})
	if errors.Is(err, push.ErrUnknownHost) {
		return usageError{fmt.Errorf("--hosts: %w", err)}
	}
	if err != nil {
		return deployFailed(cmd, f, rollback, stack, err)
	}

	if maxFailPercent {
		maxFail = maxFail * len(hosts) / 100
	}
	stderr := cmd.ErrOrStderr()
	opt := push.Options{
		Stack: r.Stack.Name, SourceSHA256: r.Stack.SourceDigest, Hosts: hosts,
		Auth: push.Auth{
			KnownHosts: expandHomes(f.knownHosts), Identity: expandHomes([]string{f.identity})[0],
			Passphrase: []byte(os.Getenv("HACOMPILE_SSH_PASSPHRASE")), AgentSocket: os.Getenv("SSH_AUTH_SOCK"),
		},
		Timeout: f.timeout, CommandTimeout: f.commandTimeout, HealthTimeout: f.healthTimeout, LockTimeout: f.lockTimeout,
		Batch: f.batch, MaxFail: maxFail, RequireAll: f.requireAll, Parallel: f.parallel, Canary: canary,
		NoAutoRevert: f.noAutoRevert, ConfirmTimeout: f.confirmTimeout, DryRun: f.dryRun, Force: f.force, Keep: f.keep,
		By: whoAmI(), PID: os.Getpid(),
	}
	var progress push.Tee
	if tty := isTerminal(stderr); tty {
		names := make([]string, len(hosts))
		for i, h := range hosts {
			names[i] = h.Name
		}
		progress = append(progress, push.NewTTYProgress(stderr, names, os.Getenv("NO_COLOR") == ""))
	} else if f.output == "text" {
		progress = append(progress, push.NewLogProgress(stderr))
	}
	stdout := cmd.OutOrStdout()
	if f.output == "json" {
		// One line per host event as it happens; the summary is the last.
		progress = append(progress, push.NewJSONProgress(stdout))
	}
	if len(progress) > 0 {
		opt.Progress = progress
	}

	ctx, interrupted, end := interruptible(contextOf(cmd), sayer(stderr, progress), true)
	defer end()
	opt.Stop = interrupted
	run := push.Run
	if rollback {
		run = push.Rollback
	}
	sum, err := run(ctx, opt)
	// No notice of a late interrupt may land in the summary.
	end()
	if sum == nil {
		// Nothing was done on any host (no host key to read, …).
		return deployFailed(cmd, f, rollback, stack, err)
	}
	if f.output == "json" {
		if err := json.NewEncoder(stdout).Encode(sum); err != nil {
			return err
		}
	} else {
		if f.dryRun {
			for _, h := range sum.Hosts {
				if h.Plan != nil {
					h.Plan.Format(stdout)
				}
			}
		}
		if !f.dryRun {
			printSummary(stdout, sum)
		}
	}
	if err == nil && sum.OK {
		return nil
	}
	return reportHosts(stderr, sum)
}

// deployJSON is the last line of push's and rollback's --output json
// when the command failed before any host had an outcome: the summary
// of no hosts, and the errors as diagnostics, as build and vet give
// them.
type deployJSON struct {
	*push.Summary
	Diagnostics []schema.Diagnostic `json:"diagnostics"`
}

// deployFailure is the deployJSON of diags; stack is the stack's name
// once it is known.
func deployFailure(f *deployFlags, rollback bool, stack string, diags []schema.Diagnostic) deployJSON {
	action := "push"
	if rollback {
		action = "rollback"
	}
	return deployJSON{Summary: &push.Summary{Stack: stack, Action: action, DryRun: f.dryRun, Hosts: []push.HostResult{}}, Diagnostics: diags}
}

// deployFailed ends push or rollback with err before any host had an
// outcome (a stack that does not compile, a stale out/, an unreadable
// key): with --output json, a machine reading stdout gets the failure
// document there, and nothing goes to stderr; a usage error is said on
// stderr either way.
func deployFailed(cmd *cobra.Command, f *deployFlags, rollback bool, stack string, err error) error {
	if f.output != "json" {
		return err
	}
	return failInJSON(cmd, "", err, func(ds []schema.Diagnostic) any {
		return deployFailure(f, rollback, stack, ds)
	})
}

// reportHosts prints each failed host's error with hints, once each,
// and picks the exit code. When every host that failed failed for a
// host key or drift, the code says which (a changed host key outranks
// an unknown one, which outranks drift); any other failure, or a host
// skipped without one (an interrupted rollout), is 1.
func reportHosts(w io.Writer, sum *push.Summary) error {
	code := 0
	rank := map[int]int{0: 0, exitDrift: 1, exitHostKeyUnknown: 2, exitHostKeyChanged: 3}
	mixed := false
	var hints []string
	skipped := 0
	for _, h := range sum.Hosts {
		if h.Status == push.StatusSkipped {
			skipped++
		}
		err := h.Err()
		if err == nil {
			continue
		}
		fmt.Fprintf(w, "hacompile: %v\n", err)
		c := exitFailure
		switch {
		case errors.Is(err, push.ErrHostKeyChanged):
			c = exitHostKeyChanged
		case errors.Is(err, push.ErrHostKeyUnknown):
			c = exitHostKeyUnknown
		case errors.Is(err, push.ErrDrift):
			c = exitDrift
		}
		if c == exitFailure {
			mixed = true
		} else if rank[c] > rank[code] {
			code = c
		}
		if hint := push.Hint(err); hint != "" && !slices.Contains(hints, hint) {
			hints = append(hints, hint)
		}
	}
	if skipped > 0 {
		fmt.Fprintf(w, "hacompile: %d host(s) skipped: the rollout stopped before them\n", skipped)
	}
	for _, h := range hints {
		fmt.Fprintf(w, "hacompile: hint: %s\n", h)
	}
	if mixed || code == 0 {
		code = exitFailure
	}
	return codedError{code: code}
}

func printSummary(w io.Writer, sum *push.Summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tBATCH\tSTATUS\tCREATED\tUPDATED\tREMOVED\tUNCHANGED\tGENERATION")
	for _, h := range sum.Hosts {
		gen := "-"
		if h.Generation > 0 {
			gen = fmt.Sprint(h.Generation)
		}
		batch := "-" // failed its preflight: never in a batch
		if h.Batch > 0 {
			batch = fmt.Sprint(h.Batch)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", h.Host, batch, h.Status, h.Created, h.Updated, h.Removed, h.Unchanged, gen)
	}
	tw.Flush()
	for _, h := range sum.Hosts {
		for _, n := range h.Notes {
			fmt.Fprintf(w, "%s: note: %s\n", h.Host, n)
		}
	}
}

// resolveStack compiles the stack named by args — a file, a stack name
// in dir, or the only stack in dir — with the command's stack flags.
func resolveStack(cmd *cobra.Command, dir string, args []string) (*compile.Rendered, error) {
	pick := func(res *compile.Result, name string) (*compile.Rendered, error) {
		var names []string
		for _, r := range res.Rendered {
			if name == "" || r.Stack.Name == name {
				names = append(names, r.Stack.Name)
			}
		}
		switch {
		case len(names) == 1:
			for _, r := range res.Rendered {
				if r.Stack.Name == names[0] {
					return r, nil
				}
			}
		case name == "":
			return nil, usageError{fmt.Errorf("%s holds several stacks (%s): name one", dir, strings.Join(names, ", "))}
		}
		var all []string
		for _, r := range res.Rendered {
			all = append(all, r.Stack.Name)
		}
		return nil, usageError{fmt.Errorf("no stack named %q in %s (have: %s)", name, dir, strings.Join(all, ", "))}
	}
	if len(args) == 0 {
		res, err := compileStacks(cmd, []string{dir})
		if err != nil {
			return nil, err
		}
		return pick(res, "")
	}
	arg := args[0]
	if fi, err := os.Stat(arg); err == nil && !fi.IsDir() {
		res, err := compileStacks(cmd, []string{arg})
		if err != nil {
			return nil, err
		}
		return pick(res, "")
	}
	// A stack's file is usually named after it: compile just that one
	// so an unrelated broken stack does not block a push.
	for _, ext := range compile.StackFileExts {
		if guess := filepath.Join(dir, arg+ext); fileExists(guess) {
			if res, err := compileStacks(cmd, []string{guess}); err == nil && res.Rendered[0].Stack.Name == arg {
				return res.Rendered[0], nil
			}
		}
	}
	res, err := compileStacks(cmd, []string{dir})
	if err != nil {
		return nil, err
	}
	return pick(res, arg)
}

// checkOut requires out/<stack>/ to hold exactly what the stack renders:
// push deploys what was reviewed and committed.
func checkOut(r *compile.Rendered, out string) error {
	tree, err := compile.TreeOf([]*compile.Rendered{r})
	if err != nil {
		return err
	}
	prefix := r.Stack.Name + "/"
	sub := compile.Tree{}
	for p, b := range tree {
		sub[strings.TrimPrefix(p, prefix)] = b
	}
	dir := filepath.Join(out, r.Stack.Name)
	d, err := outdir.Compare(dir, sub)
	if err != nil {
		return err
	}
	if d.Empty() {
		return nil
	}
	var lines []string
	for _, p := range d.Stale {
		lines = append(lines, "stale:   "+filepath.Join(dir, p))
	}
	for _, p := range d.Missing {
		lines = append(lines, "missing: "+filepath.Join(dir, p))
	}
	for _, p := range d.Extra {
		lines = append(lines, "extra:   "+filepath.Join(dir, p))
	}
	if len(lines) > 10 {
		lines = append(lines[:10], fmt.Sprintf("… and %d more", len(lines)-10))
	}
	return fmt.Errorf("%s does not match %s (%d stale, %d missing, %d extra): push deploys the reviewed out/\n%s\nhacompile: hint: run 'hacompile build', review and commit %s, then push",
		dir, r.Stack.Source, len(d.Stale), len(d.Missing), len(d.Extra), strings.Join(lines, "\n"), dir)
}

// expandHomes expands a leading ~/ as the shell would have.
func expandHomes(ps []string) []string {
	out := make([]string, len(ps))
	home, _ := os.UserHomeDir()
	for i, p := range ps {
		if rest, ok := strings.CutPrefix(p, "~/"); ok && home != "" {
			p = filepath.Join(home, rest)
		}
		out[i] = p
	}
	return out
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

func whoAmI() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return name + "@" + host
}

// isTerminal reports whether w is a terminal, where progress is drawn
// in place; elsewhere (CI logs, pipes, files) it is plain lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// interruptible is the context of a command that changes hosts (push,
// rollback, apply) under two interrupts: the first closes stop, and the
// command starts no more hosts but takes those under way to their end
// (files, reloads, health check) and releases their locks; the second
// cancels ctx, and everything stops at once. SIGINT is an interrupt;
// so is SIGTERM with termGraceful, else SIGTERM stops at once (apply's
// unit stopped as the machine shuts down: finishing a change while its
// services stop helps nothing, and the rebooted host takes its own lock
// back). say prints what happens (through the terminal's progress
// block, which would draw over a line written beside it). end stops
// listening.
func interruptible(parent context.Context, say func(string), termGraceful bool) (ctx context.Context, stop <-chan struct{}, end func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	stopc, quit, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		stopped := false
		for {
			var sig os.Signal
			select {
			case sig = <-sigs:
			case <-quit:
				return
			}
			if !stopped {
				stopped = true
				close(stopc)
				if sig == os.Interrupt || termGraceful {
					say("hacompile: interrupted: no other host starts; the hosts under way finish (their files, reloads and health check) and release their locks. Interrupt again to stop at once, which leaves their locks, and a host cut off mid-change as it is until the next push resumes it")
					continue
				}
			} else {
				say("hacompile: interrupted again: stopping at once")
			}
			cancel()
			return
		}
	}()
	var once sync.Once
	return ctx, stopc, func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(quit)
			<-done
			cancel()
		})
	}
}

// sayer prints a line to stderr, through the progress among progress
// that writes there when there is one (the terminal's block, or the
// log, whose hosts write from their own goroutines).
func sayer(stderr io.Writer, progress push.Tee) func(string) {
	for _, p := range progress {
		switch p := p.(type) {
		case *push.TTYProgress:
			return p.Notice
		case *push.LogProgress:
			return p.Notice
		}
	}
	return func(line string) { fmt.Fprintln(stderr, line) }
}

func contextOf(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}
