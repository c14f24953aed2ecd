//go:build unix

package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hacompile/hacompile/internal/par"
	"github.com/hacompile/hacompile/internal/systest"
	"github.com/hacompile/hacompile/schema"
)

func newTest() *cobra.Command {
	var (
		out       string
		scenarios []string
		output    string
		keep      bool
		verbose   bool
		parallel  int
	)
	c := &cobra.Command{
		Use:   "test [FILE|DIR]...",
		Short: "Boot the rendered stacks as real hosts and drive load and faults through them",
		Long: `Test boots every host of each stack (default: the stacks directory) as a
container with systemd as PID 1 (systemd-nspawn) on a Debian image of the
release the stack targets, built once with debootstrap and cached in the
user's cache directory. Each host has its own network namespace with its
stack address on a bridge the test creates and removes; nothing leaves the
machine. A host is provisioned by nothing but its cloud-init user data from
out/<stack>/cloud-init/<host>.yaml, exactly as committed (NoCloud), with a
stand-in application where the stack's code would be deployed and throwaway
secrets where the runbook says to provision them.

Scenarios, in order:
  boot            cloud-init finishes, every unit runs, health paths answer
                  through every balancer, HTTP redirects, ACME is served
  pull            (stacks with delivery.pull) every host applied its signed
                  artifact from the registry on first boot; a published
                  change reaches every host by its timer; an artifact
                  signed with another key is refused and counted
  backend-faults  under load: app server stopped, nginx stopped, host frozen
                  (SIGSTOP) on one app host, each brought back
  monitoring      Prometheus with the rendered configuration and rules
  provisioning    an app host added as the runbook says: a push over the
                  booted hosts changes nothing, the new host comes up (from
                  its cloud-init, or on DigitalOcean from a bare image and
                  a push), a push of the stack adds it to the balancers
  balancer-loss   under load: the active balancer host is lost

It needs root (namespaces, containers). Exit 0 only when every check holds.`,
		Example: `  sudo hacompile test
  sudo hacompile test stacks/shop.cue --scenario boot
  sudo hacompile test --output json > report.json
  sudo hacompile test stacks/shop.cue --keep   # leave the hosts running`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if parallel < 1 {
				return usageError{fmt.Errorf("--parallel: want 1 or more, got %d", parallel)}
			}
			if output != "text" && output != "json" {
				return usageError{fmt.Errorf("--output: want text or json, got %q", output)}
			}
			for _, s := range scenarios {
				if !slices.Contains(systest.Scenarios, s) {
					return usageError{fmt.Errorf("--scenario %s: want one of %s", s, strings.Join(systest.Scenarios, ", "))}
				}
			}
			// The reports of the stacks tested, in order, for --output json.
			done := []*systest.Report{}
			// fail ends the test with err. With --output json a machine
			// reading stdout gets the document there, {"ok": false,
			// "stacks": the reports of those tested, "diagnostics"}, and
			// nothing goes to stderr; a usage error is said on stderr
			// either way.
			fail := func(err error) error {
				if output != "json" {
					return err
				}
				return failInJSON(cmd, "  ", err, func(ds []schema.Diagnostic) any {
					return testJSON{Stacks: done, Diagnostics: ds}
				})
			}
			if output == "json" {
				defer budgetInJSON(cmd, func(d schema.Diagnostic) any {
					return testJSON{Stacks: []*systest.Report{}, Diagnostics: []schema.Diagnostic{d}}
				})()
			}
			res, err := compileArgs(cmd, args, false, false)
			if err != nil {
				return fail(err)
			}
			cache, err := os.UserCacheDir()
			if err != nil {
				return fail(fmt.Errorf("no cache directory for the test image: %w", err))
			}
			// A stack that pulls finds this very binary in its hosts'
			// image as the agent.
			agent, err := os.Executable()
			if err != nil {
				return fail(fmt.Errorf("the agent for stacks that pull: %w", err))
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var progress io.Writer = io.Discard
			if verbose {
				progress = cmd.ErrOrStderr()
			}
			var stacks []*systest.Stack
			for _, r := range res.Rendered {
				st := &systest.Stack{Stack: r.Stack, Files: r.Files, UserData: map[string][]byte{}, Set: &r.Set}
				// The hosts boot from out/ as committed: a stale out/ would
				// test something other than what goes to the hosts.
				for _, f := range r.Files {
					if !strings.HasPrefix(f.Path, "cloud-init/") || f.Host != "" {
						continue
					}
					p := filepath.Join(out, r.Stack.Name, filepath.FromSlash(f.Path))
					b, err := os.ReadFile(p)
					if err != nil {
						return fail(fmt.Errorf("%s: %w (run hacompile build)", p, err))
					}
					if !bytes.Equal(b, f.Content) {
						return fail(fmt.Errorf("%s is stale: run hacompile build", p))
					}
					st.UserData[strings.TrimSuffix(strings.TrimPrefix(f.Path, "cloud-init/"), ".yaml")] = b
				}
				stacks = append(stacks, st)
			}
			// The largest stacks (most hosts) start first, the others by
			// name: with stacks run side by side, the longest started
			// last would run on alone at the end.
			slices.SortStableFunc(stacks, func(a, b *systest.Stack) int {
				return cmp.Compare(len(b.Stack.Hosts), len(a.Stack.Hosts))
			})
			// What the stacks and out/ say comes first, the same on any
			// machine; then what this machine lacks.
			if err := systest.Preflight(); err != nil {
				return fail(err)
			}
			// Stacks of one release share one image with every stack's
			// packages: one build, not one a stack.
			pkgs := map[string][]string{}
			for _, st := range stacks {
				rel := systest.OSOf(st.Stack)
				pkgs[rel] = append(pkgs[rel], st.Packages()...)
			}
			// The images are built side by side (downloads, mostly) before
			// the first host boots.
			cacheDir := filepath.Join(cache, "hacompile")
			var wg sync.WaitGroup
			errs := make([]error, 0, len(pkgs))
			var mu sync.Mutex
			for rel, p := range pkgs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := systest.EnsureImage(cacheDir, rel, p, progress); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				return fail(err)
			}
			// Up to --parallel stacks run at once, each on a fabric of its
			// own; they start in that order, and each report is printed
			// as soon as those before it are.
			reports := make([]*systest.Report, len(stacks))
			errs = make([]error, len(stacks))
			ok := true
			var failed error
			par.InOrder(len(stacks), parallel, func(i int) {
				st := stacks[i]
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: testing %s\n", st.Stack.Name, systest.Describe(st.Stack))
				reports[i], errs[i] = systest.Run(ctx, st, systest.Options{
					CacheDir: cacheDir, Scenarios: scenarios, Keep: keep, Log: progress,
					Packages: pkgs[systest.OSOf(st.Stack)], Agent: agent,
				})
			}, func(i int) {
				if errs[i] != nil {
					failed = errors.Join(failed, fmt.Errorf("%s: %w", stacks[i].Stack.Name, errs[i]))
					return
				}
				ok = ok && reports[i].OK
				done = append(done, reports[i])
				if output == "text" {
					systest.WriteText(cmd.OutOrStdout(), reports[i], isTerminal(cmd.OutOrStdout()) && os.Getenv("NO_COLOR") == "")
				}
			})
			if failed != nil {
				return fail(failed)
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(testJSON{OK: ok, Stacks: reports}); err != nil {
					return err
				}
			}
			if !ok {
				return silentError{}
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&out, "out", "out", "the rendered output directory the hosts boot from")
	fl.StringArrayVar(&scenarios, "scenario", nil, "run only this scenario (repeatable): "+strings.Join(systest.Scenarios, ", "))
	fl.StringVarP(&output, "output", "o", "text", "report format: text or json")
	fl.BoolVar(&keep, "keep", false, "leave the hosts running afterwards and print how to enter each")
	fl.BoolVarP(&verbose, "verbose", "v", false, "print progress (image build, boots, scenarios)")
	fl.IntVarP(&parallel, "parallel", "j", 1, "test up to this many stacks at once, each on its own network")
	addStackFlags(c)
	return c
}

// testJSON is test --output json: every stack's report, or, when the
// test failed before its end (a stack that does not compile, a stale
// out/, a machine that cannot boot the hosts, a stack's run that broke
// off), ok false, the reports of the stacks tested and the errors as
// diagnostics, in the shape of build's and vet's documents.
type testJSON struct {
	OK          bool                `json:"ok"`
	Stacks      []*systest.Report   `json:"stacks"`
	Diagnostics []schema.Diagnostic `json:"diagnostics,omitempty"`
}
