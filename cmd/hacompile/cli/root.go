// Package cli is the hacompile command line: flag parsing and output
// formatting only. The work is done by internal/compile (the compile),
// internal/outdir (the out/ directory) and the packages they call.
package cli

import (
	"errors"
	"fmt"
	"github.com/hacompile/hacompile/internal/memtune"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hacompile/hacompile/internal/gitops"
	"github.com/hacompile/hacompile/internal/secret"
	"github.com/hacompile/hacompile/schema"
)

// Exit codes. Each means one thing, so a CI script can tell them apart:
// 0 success, 1 failure, push's 3/4/5 (exitHostKeyUnknown,
// exitHostKeyChanged, exitDrift), 6 for diff --exit-code's "the
// rendered files changed", 7 for promote's "the canaries have not
// converged" (exitNotConverged), 64 (EX_USAGE) for a usage error and 70
// (EX_SOFTWARE) for an internal error: a panic, reported with its stack.
// 2 is none of them: it is what Go itself exits with on a fatal runtime
// error that no recover reaches. TestExitCodesDistinct keeps them apart.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 64
	exitChanged  = 6
	exitInternal = 70
)

// Main runs the command line with os.Args and returns the exit code.
func Main() int {
	// The heap may grow to half again what it holds live, not twice.
	memtune.Start()
	return Run(os.Args[1:], os.Stdout, os.Stderr)
}

// Run executes hacompile with args, writing to stdout and stderr.
func Run(args []string, stdout, stderr io.Writer) int {
	return guard(stderr, func() int { return run(args, stdout, stderr) })
}

// guard runs f and returns its exit code; a panic in f (or re-raised
// on its goroutine by internal/par from a worker) is an internal error,
// reported with its stack and exit code exitInternal rather than Go's
// 2, which is left to a fatal error of the Go runtime.
func guard(stderr io.Writer, f func() int) (code int) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "hacompile: internal error (a bug in hacompile; please report it with this message): %v\n%s", p, debug.Stack())
			code = exitInternal
		}
	}()
	return f()
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd, stopProfiles := newRoot(stdout, stderr)
	cmd.SetArgs(args)
	err := cmd.Execute()
	// Profiles end with the command, whether it failed or not.
	if perr := stopProfiles(); err == nil {
		err = perr
	}
	if err == nil {
		return exitOK
	}
	return report(stderr, err)
}

// New builds the command tree. Nothing is global, so tests can build as
// many as they like.
func New(stdout, stderr io.Writer) *cobra.Command {
	root, _ := newRoot(stdout, stderr)
	return root
}

// newRoot is New, and the function that ends the profiles the hidden
// --cpuprofile and --memprofile flags start.
func newRoot(stdout, stderr io.Writer) (*cobra.Command, func() error) {
	root := &cobra.Command{
		Use:     "hacompile",
		Version: gitops.Version(),
		Short:   "Compile high-availability web stacks into host configuration",
		Long: `hacompile validates stacks described in CUE or Jsonnet (load balancers, app servers,
workers, database, cache, kernel tuning) against its schema and HA rules,
and renders every file each host needs into out/.`,
		Example: `  hacompile build            # render stacks/ (*.cue and *.jsonnet) into out/
  hacompile build --check    # exit 1 if the committed out/ is stale
  hacompile vet stacks/shop.cue --output json`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\nRun '%s --help' for usage.", err, c.CommandPath())}
	})
	stopProfiles := addProfileFlags(root)
	root.AddCommand(newBuild(), newVet(), newDiff(), newPublish(), newPush(), newRollback(), newApply(), newPromote(), newKeygen(), newServe(), newTest(), newSchema(), newInit())
	checkTopics(root)
	for _, c := range root.Commands() {
		c.Flags().SortFlags = false
	}
	return root, stopProfiles
}

// checkTopics makes "help TOPIC" and "completion SHELL" usage errors
// for a command or a shell hacompile does not have, naming the ones it
// has, where cobra's own print the usage and exit 0.
func checkTopics(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help":
			c.Args = func(c *cobra.Command, args []string) error {
				found, rest, err := c.Root().Find(args)
				if err == nil && len(rest) == 0 {
					return nil
				}
				topic := strings.Join(args, " ")
				if names := commandNames(found); len(names) > 0 {
					return usageError{fmt.Errorf("help: unknown help topic %q: want one of %s%s", topic, strings.Join(names, ", "), after(found))}
				}
				return usageError{fmt.Errorf("help: unknown help topic %q: %s has no commands of its own; see 'hacompile help %s'", topic, found.CommandPath(), strings.Join(args[:len(args)-len(rest)], " "))}
			}
		case "completion":
			c.Args = func(c *cobra.Command, args []string) error {
				if len(args) > 0 {
					return usageError{fmt.Errorf("completion: unknown shell %q: want one of %s", args[0], strings.Join(commandNames(c), ", "))}
				}
				return nil
			}
			// Runnable, so that its arguments are checked; without any
			// it prints its help, as before.
			c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
			c.Use, c.DisableFlagsInUseLine = "completion SHELL", true
		}
	}
}

// commandNames are the names of c's commands a user may run.
func commandNames(c *cobra.Command) []string {
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	return names
}

// after is where a help topic's next word goes, below the root.
func after(c *cobra.Command) string {
	if !c.HasParent() {
		return ""
	}
	return fmt.Sprintf(" after %q", strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" "))
}

// usageError marks errors in how the command was called (exit 64).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// keyFile refuses a key given where the name of its file goes
// (--sign-key "$KEY" in CI): the error naming the file it cannot open
// would print the key.
func keyFile(flag, v string) error {
	if secret.In(v) != "" || strings.ContainsAny(v, "\r\n") {
		return usageError{fmt.Errorf("%s: want the name of a key file, not the key itself (not shown)", flag)}
	}
	return fileFlag(flag, v, "a key file")
}

// fileFlag refuses "=" as the file flag names: pflag reads a
// shorthand followed by "=" and nothing (-i=, as a script writes
// -i=$KEY with KEY unset) as the value "=", a file nobody means;
// the long form (--identity=) reads as the empty string, the flag's
// default.
func fileFlag(flag, v, want string) error {
	if v != "=" {
		return nil
	}
	return usageError{fmt.Errorf(`%s =: want %s, got "=" (as a shorthand flag followed by = reads; leave the flag out for none, or name a file called = as ./=)`, flag, want)}
}

// codedError ends the command with an exit code other than 0 and 1 (diff
// --exit-code's 6 for "changed", push's 3/4/5) after the command has
// printed everything itself.
type codedError struct{ code int }

func (e codedError) Error() string { return "" }

// ExitCode is the process exit code.
func (e codedError) ExitCode() int { return e.code }

// silentError is a failure already reported on stdout/stderr.
type silentError struct{}

func (silentError) Error() string { return "" }

// report prints err once and returns its exit code.
func report(w io.Writer, err error) int {
	var coded codedError
	if errors.As(err, &coded) {
		return coded.code
	}
	if errors.Is(err, silentError{}) {
		return exitFailure
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(w, "hacompile: %v\n", err)
		return exitUsage
	}
	var se *schema.Error
	if errors.As(err, &se) {
		for _, d := range se.Diags {
			fmt.Fprintln(w, d.String())
		}
		return exitFailure
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.Contains(msg, "accepts ") || strings.HasPrefix(msg, "invalid argument") {
		fmt.Fprintf(w, "hacompile: %v\nRun 'hacompile --help' for usage.\n", err)
		return exitUsage
	}
	fmt.Fprintf(w, "hacompile: %v\n", err)
	return exitFailure
}
