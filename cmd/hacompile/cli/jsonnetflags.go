package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/evalbudget"
	"github.com/hacompile/hacompile/internal/jsonnet"
	"github.com/hacompile/hacompile/schema"
)

// jsonnetFlags are the jsonnet command line's flags for external
// variables, top-level arguments and library paths, with its syntax:
// --ext-str k=v, or --ext-str k to take the value from the environment
// variable k; -J dir, right-most wins.
var jsonnetFlags = []struct{ name, usage string }{
	{"ext-str", "Jsonnet external variable `k=v` as a string (k alone: from the environment)"},
	{"ext-code", "Jsonnet external variable `k=code` as Jsonnet code"},
	{"tla-str", "top-level argument `k=v` of Jsonnet stack files, as a string"},
	{"tla-code", "top-level argument `k=code` of Jsonnet stack files, as Jsonnet code"},
}

// addStackFlags adds the flag group of every command that compiles
// stacks — build, vet, diff, publish, serve, push and rollback: the
// Jsonnet inputs. One group, so a stack that builds with some flags is
// read the same way by every later command (push compares out/ with
// its own compile, and would call a --tla-str build stale without it).
func addStackFlags(c *cobra.Command) {
	for _, f := range jsonnetFlags {
		c.Flags().StringArray(f.name, nil, f.usage)
	}
	c.Flags().StringArrayP("jpath", "J", nil, "Jsonnet library `dir` for imports (repeatable, right-most wins)")
	c.Flags().Duration("eval-time", evalbudget.Limits.Time, "longest one evaluation of a stack file (CUE or Jsonnet) or custom generator may run before hacompile stops (exit 1)")
	c.Flags().Uint64("eval-memory-mib", evalbudget.Limits.Memory>>20, "most memory in MiB one evaluation of a stack file or custom generator may take before hacompile stops (exit 1)")
	// The names these flags had when only Jsonnet was bounded.
	c.Flags().Duration("jsonnet-time", evalbudget.Limits.Time, "")
	c.Flags().Uint64("jsonnet-memory-mib", evalbudget.Limits.Memory>>20, "")
	_ = c.Flags().MarkHidden("jsonnet-time")
	_ = c.Flags().MarkHidden("jsonnet-memory-mib")
}

// budgetFlag is the budget flag to read: name, or its older name old
// when only that was given (with a warning on stderr, where it cannot
// mix with a command's JSON output).
func budgetFlag(cmd *cobra.Command, name, old string) string {
	if !cmd.Flags().Changed(name) && cmd.Flags().Changed(old) {
		fmt.Fprintf(cmd.ErrOrStderr(), "hacompile: warning: --%s is now --%s\n", old, name)
		return old
	}
	return name
}

// maxMemoryMiB is the largest --eval-memory-mib whose bytes fit the
// budget's uint64.
const maxMemoryMiB = math.MaxUint64 >> 20

// compileOptions reads the stack flags of cmd, if it has them.
func compileOptions(cmd *cobra.Command) (compile.Options, error) {
	var o compile.Options
	dst := []*map[string]string{&o.Jsonnet.ExtStr, &o.Jsonnet.ExtCode, &o.Jsonnet.TLAStr, &o.Jsonnet.TLACode}
	if cmd.Flags().Lookup("jpath") == nil {
		return o, nil // a command without the Jsonnet flags
	}
	for i, f := range jsonnetFlags {
		for _, kv := range flagValues(cmd, f.name) {
			k, v, ok := strings.Cut(kv, "=")
			fromEnv := !ok
			if fromEnv {
				v, ok = os.LookupEnv(k)
			}
			if k == "" || !ok {
				return o, usageError{fmt.Errorf("--%s %s: want NAME=VALUE, or the NAME of a set environment variable", f.name, shellWord(kv))}
			}
			// One name once: a later value silently replaced the first.
			// An external variable or a top-level argument is one name
			// whether given as a string or as code.
			for j := i &^ 1; j <= i|1; j++ {
				if _, dup := (*dst[j])[k]; dup {
					return o, usageError{fmt.Errorf("--%s %s: %s is given twice (--%s); give it once", f.name, kv, k, jsonnetFlags[j].name)}
				}
			}
			// Code is read now, whether a stack reads it or not.
			if strings.HasSuffix(f.name, "-code") {
				if err := jsonnet.CheckArg("--"+f.name, k, v, fromEnv); err != nil {
					return o, usageError{err}
				}
			}
			if *dst[i] == nil {
				*dst[i] = map[string]string{}
			}
			(*dst[i])[k] = v
		}
	}
	o.Jsonnet.JPath = flagValues(cmd, "jpath")
	// An empty directory (a script's unset variable) would be read as
	// the working directory.
	if slices.Contains(o.Jsonnet.JPath, "") {
		return o, usageError{errors.New("-J '': want a directory of Jsonnet libraries (leave -J out for none)")}
	}
	// pflag reads -J= as the value "=" (--jpath= as ''): the same
	// unset variable, said as a directory nobody has.
	if slices.Contains(o.Jsonnet.JPath, "=") {
		return o, usageError{errors.New(`-J =: want a directory of Jsonnet libraries, got "=" (as -J= reads; leave -J out for none, or give a directory named = as ./=)`)}
	}
	// The budget stops a runaway evaluation; it changes no output.
	if name := budgetFlag(cmd, "eval-time", "jsonnet-time"); cmd.Flags().Lookup(name) != nil {
		d, _ := cmd.Flags().GetDuration(name)
		if d <= 0 {
			return o, usageError{fmt.Errorf("--%s %s: want a positive duration", name, d)}
		}
		evalbudget.Limits.Time = d
	}
	if name := budgetFlag(cmd, "eval-memory-mib", "jsonnet-memory-mib"); cmd.Flags().Lookup(name) != nil {
		m, _ := cmd.Flags().GetUint64(name)
		if m == 0 {
			return o, usageError{fmt.Errorf("--%s 0: want a positive number of MiB", name)}
		}
		// The limit is kept in bytes: a larger m would wrap around to a
		// tiny limit (2^44 MiB to 0).
		if m > maxMemoryMiB {
			return o, usageError{fmt.Errorf("--%s %d: too large: the most is %d (2^64 bytes less 1 MiB)", name, m, uint64(maxMemoryMiB))}
		}
		evalbudget.Limits.Memory = m << 20
	}
	return o, nil
}

// budgetInJSON makes an evaluation over its budget, which ends the
// process with exit status 1, say so as the command's --output json
// says any failure: doc, the command's document for a failure with
// that diagnostic, on stdout. It returns the function that restores
// the message on stderr.
func budgetInJSON(cmd *cobra.Command, doc func(schema.Diagnostic) any) func() {
	return budgetInJSONIndent(cmd, "  ", doc)
}

// budgetInJSONIndent is budgetInJSON for a document indented by indent:
// "" for the one line of push's and rollback's JSON lines.
func budgetInJSONIndent(cmd *cobra.Command, indent string, doc func(schema.Diagnostic) any) func() {
	prev := evalbudget.Report
	evalbudget.Report = func(msg string) {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", indent)
		_ = enc.Encode(doc(errorDiagnostic(errors.New(msg))))
	}
	return func() { evalbudget.Report = prev }
}

// flagValues is every value given to the repeatable flag name, as
// given: GetStringArray reads a lone empty value (--ext-str with an
// empty argument) as no value at all.
func flagValues(cmd *cobra.Command, name string) []string {
	return cmd.Flags().Lookup(name).Value.(interface{ GetSlice() []string }).GetSlice()
}

// shellWord is s as an error message shows a flag's value: the empty
// string as two single quotes, as a shell user writes it, not as no
// word at all.
func shellWord(s string) string {
	if s == "" {
		return "''"
	}
	return s
}

// compileStacks is the one way the command line compiles stacks: the
// files and directories in args (default: the stacks directory), with
// the command's stack flags, names relative to the working directory and
// waivers judged today.
func compileStacks(cmd *cobra.Command, args []string) (*compile.Result, error) {
	return compileStacksWith(cmd, args, false)
}

// compileStacksWith is compileStacks, checking only when checkOnly
// (compile.Options.CheckOnly).
func compileStacksWith(cmd *cobra.Command, args []string, checkOnly bool) (*compile.Result, error) {
	if len(args) == 0 {
		args = []string{"stacks"}
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	o, err := compileOptions(cmd)
	if err != nil {
		return nil, err
	}
	o.CheckOnly = checkOnly
	return compile.CompileWith(args, wd, time.Now().UTC().Format(time.DateOnly), o)
}
