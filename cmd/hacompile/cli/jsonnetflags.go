package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hacompile/hacompile/internal/build"
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

// addJsonnetFlags adds the Jsonnet flags to a command that compiles
// stacks.
func addJsonnetFlags(c *cobra.Command) {
	for _, f := range jsonnetFlags {
		c.Flags().StringArray(f.name, nil, f.usage)
	}
	c.Flags().StringArrayP("jpath", "J", nil, "Jsonnet library `dir` for imports (repeatable, right-most wins)")
}

// compileOptions reads the Jsonnet flags of cmd, if it has them.
func compileOptions(cmd *cobra.Command) (build.Options, error) {
	var o build.Options
	dst := []*map[string]string{&o.Jsonnet.ExtStr, &o.Jsonnet.ExtCode, &o.Jsonnet.TLAStr, &o.Jsonnet.TLACode}
	for i, f := range jsonnetFlags {
		vals, err := cmd.Flags().GetStringArray(f.name)
		if err != nil {
			return o, nil // a command without the Jsonnet flags
		}
		for _, kv := range vals {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				v, ok = os.LookupEnv(k)
			}
			if k == "" || !ok {
				return o, usageError{fmt.Errorf("--%s %s: want NAME=VALUE, or the NAME of a set environment variable", f.name, kv)}
			}
			if *dst[i] == nil {
				*dst[i] = map[string]string{}
			}
			(*dst[i])[k] = v
		}
	}
	o.Jsonnet.JPath, _ = cmd.Flags().GetStringArray("jpath")
	return o, nil
}
