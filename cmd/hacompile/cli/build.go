package cli

import (
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/hacompile/hacompile/internal/build"
	"github.com/hacompile/hacompile/schema"
	"github.com/hacompile/hacompile/site"
)

func newBuild() *cobra.Command {
	var out string
	var check bool
	c := &cobra.Command{
		Use:   "build [FILE|DIR]...",
		Short: "Render stacks into out/",
		Long: `Build validates every stack (default: the stacks directory) and renders
each host's files into OUT/<stack>/hosts/<host>/, with OUT/<stack>/manifest.json
listing every file's sha256, mode, owner and reload action. Nothing is written
unless every stack is valid; unchanged files are left untouched and files no
longer produced are removed. OUT is owned by hacompile.`,
		Example: `  hacompile build
  hacompile build --check          # CI: fail when the committed out/ is stale
  hacompile build stacks/shop.cue --out /tmp/out`,
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := compile(cmd, args, true)
			if err != nil {
				return err
			}
			rs := res.Rendered
			tree, err := site.OutTree(res)
			if err != nil {
				return err
			}
			stdout := cmd.OutOrStdout()
			if check {
				d, err := build.Compare(out, tree)
				if err != nil {
					return err
				}
				if d.Empty() {
					return nil
				}
				stderr := cmd.ErrOrStderr()
				for _, p := range d.Stale {
					fmt.Fprintf(stderr, "stale:   %s/%s\n", out, p)
				}
				for _, p := range d.Missing {
					fmt.Fprintf(stderr, "missing: %s/%s\n", out, p)
				}
				for _, p := range d.Extra {
					fmt.Fprintf(stderr, "extra:   %s/%s\n", out, p)
				}
				fmt.Fprintf(stderr, "hacompile: %s is out of date (%d stale, %d missing, %d extra)\nhacompile: hint: run 'hacompile build' and commit %s\n",
					out, len(d.Stale), len(d.Missing), len(d.Extra), out)
				return silentError{}
			}
			stats, err := build.Write(out, tree)
			if err != nil {
				return err
			}
			names := make([]string, 0, len(rs))
			for _, r := range rs {
				st := stats[r.Stack.Name]
				if st == nil {
					st = &build.Stats{}
				}
				fmt.Fprintf(stdout, "%s: %d hosts, %d files written, %d unchanged, %d removed\n",
					r.Stack.Name, len(r.Stack.Hosts), st.Written, st.Unchanged, st.Removed)
				names = append(names, r.Stack.Name)
			}
			if st := stats[site.Dir]; st != nil {
				fmt.Fprintf(stdout, "%s: %d files written, %d unchanged, %d removed\n", site.Dir, st.Written, st.Unchanged, st.Removed)
			}
			names = append(names, site.Dir)
			for _, top := range sortedStatKeys(stats) {
				if !slices.Contains(names, top) && stats[top].Removed > 0 {
					fmt.Fprintf(stdout, "%s: removed (%d files)\n", top, stats[top].Removed)
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "out", "output directory")
	c.Flags().BoolVar(&check, "check", false, "render in memory and exit 1 if OUT differs, listing stale, missing and extra files")
	addStrictFlag(c)
	addJsonnetFlags(c)
	return c
}

func sortedStatKeys(m map[string]*build.Stats) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// addStrictFlag adds --strict: HA rule warnings fail like errors.
func addStrictFlag(c *cobra.Command) {
	c.Flags().Bool("strict", false, "fail (exit 1) on HA rule warnings too; waived findings stay accepted")
}

// compile runs the pipeline over args (default: the stacks directory)
// and prints the HA rules' warnings to stderr.
func compile(cmd *cobra.Command, args []string, printFindings bool) (*build.Result, error) {
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
	res, err := build.CompileWith(args, wd, time.Now().UTC().Format(time.DateOnly), o)
	if err != nil {
		return nil, err
	}
	if strict, _ := cmd.Flags().GetBool("strict"); strict {
		for _, d := range res.Findings {
			if d.Severity == "warning" {
				// Every finding, so the warnings read in context; waived
				// ones stay accepted.
				return nil, &schema.Error{Diags: res.Findings}
			}
		}
	}
	if printFindings {
		for _, d := range res.Findings {
			fmt.Fprintln(cmd.ErrOrStderr(), d.String())
		}
	}
	return res, nil
}
