package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/hacompile/hacompile/internal/gitops"
	"github.com/hacompile/hacompile/schema"
)

func newDiff() *cobra.Command {
	var base, output string
	var stat, exitCode bool
	var limit int
	c := &cobra.Command{
		Use:   "diff [FILE|DIR]...",
		Short: "Show how the rendered files change against a git revision",
		Long: `Diff renders the stacks (default: the stacks directory) twice — as they are at
the base revision, read from the repository's objects without a checkout, and
as they are in the working tree — and compares the two sets of files host by
host. The base defaults to the merge base of HEAD and the default branch
(origin/HEAD, else main or master), else HEAD.

The text report is a table of each changed host (files added, changed and
removed, lines, and what the change needs on the host: reload nginx, restart
app, sysctl --system, daemon-reload, whether a reboot is needed) followed by
unified diffs, coloured on a terminal unless NO_COLOR is set. Hosts whose
change is the same to the byte share one row and one diff ("same change on
app1…app998: 998 hosts"). Each diff is headed by the stack lines that caused
it: the changed fields its generator renders the file from, where they are
written ("from app.timeout (stacks/shop.cue:41)"). Changes confined
to generated headers, manifest checksums or runbook pages, and removed files,
are summarised in one line instead of shown line by line.

Every output also says what the change does beyond its lines: risk labels
(restart: a service restarts rather than reloads; reboot; lb-change: a
balancer's files or a cloud balancer's members change; decommission: a host
goes; failover-change: keepalived's files change), the limits it moves before
→ after (database connections against max_connections, concurrent requests
against capacity.target_concurrency), the HA findings (warnings, waived
ones) that appear or disappear, and each stack's monthly cost estimate
before → after from the runbook's dated price table. In JSON: "risks" (also
per host), "headroom", "findings", "cost" and each file's "sources", so CI
can gate a merge on them.

--output json prints the report as a document, with "groups": the changed
hosts of each stack put together when their change is the same to the byte.
--output markdown prints a pull-request comment with a collapsible section
per group ("same change on app1…app998: 998 hosts", one diff shown, outliers
in sections of their own) and per stack's own files, where cloud-init
documents carrying the same embedded change are shown once too; it is cut to
--markdown-limit bytes (a diff too long is listed in one line) with a note
saying what was left out.

Exit status: 0 when nothing changed, or changes without --exit-code; 6 when
something changed and --exit-code is given; 1 on error (an unknown --base
revision included); 64 on a usage error (a wrong flag, or a --base written in
a form diff does not resolve).

--base takes a branch, tag or other ref (main, v1.2, origin/main,
refs/heads/main, HEAD, @) or a commit hash (full, or at least 4 hex digits),
optionally followed by ~N (the N-th first-parent ancestor) and ^N (the N-th
parent), as in HEAD~2 or main^2~1. Other forms git knows (HEAD@{1},
main@{upstream}, REV:PATH, REV^{/TEXT}, ranges) are refused with exit 64
rather than half-read; resolve them with git first:
--base "$(git rev-parse --verify 'HEAD@{1}^{commit}')".`,
		Example: `  hacompile diff                       # against the merge base with main
  hacompile diff --base HEAD~1 --stat
  hacompile diff --output markdown > comment.md
  hacompile diff --exit-code --stat    # CI: exit 6 when the rendered files change`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch output {
			case "text", "json", "markdown":
			default:
				return usageError{fmt.Errorf("--output: want text, json or markdown, got %q", output)}
			}
			if limit < gitops.MinMarkdownLimit {
				return usageError{fmt.Errorf("--markdown-limit: want at least %d, got %d", gitops.MinMarkdownLimit, limit)}
			}
			if output == "json" {
				defer budgetInJSON(cmd, func(d schema.Diagnostic) any {
					return diffJSON{Diagnostics: []schema.Diagnostic{d}}
				})()
			}
			rep, err := runDiff(cmd, args, base)
			stdout := cmd.OutOrStdout()
			if output == "json" {
				var ue usageError
				if errors.As(err, &ue) {
					return err
				}
				doc := diffJSON{OK: err == nil, Report: rep}
				if err != nil {
					doc.Diagnostics = diffDiagnostics(err)
				}
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(doc); err != nil {
					return err
				}
				if !doc.OK {
					return silentError{}
				}
			} else {
				if err != nil {
					return renderFailure(cmd.ErrOrStderr(), err)
				}
				if output == "markdown" {
					err = gitops.WriteMarkdown(stdout, rep, limit)
				} else {
					err = gitops.WriteText(stdout, rep, gitops.TextOptions{Stat: stat, Color: diffColor(stdout), Escape: isTerminal(stdout)})
				}
				if err != nil {
					return err
				}
			}
			if exitCode && rep.Changed {
				return codedError{exitChanged}
			}
			return nil
		},
	}
	c.Flags().StringVar(&base, "base", "", "revision to compare with: a ref or commit hash, optionally with ~N, ^N, ^{} and ^{commit} (default: merge base of HEAD and the default branch, else HEAD)")
	c.Flags().BoolVar(&stat, "stat", false, "print the summary table only, no diffs")
	c.Flags().StringVarP(&output, "output", "o", "text", "output format: text, json or markdown")
	c.Flags().BoolVar(&exitCode, "exit-code", false, "exit 6 when the rendered files changed (1 is a failure, 64 a usage error)")
	c.Flags().IntVar(&limit, "markdown-limit", gitops.GitHubCommentLimit, "largest --output markdown in bytes (GitHub accepts 65536 characters per comment)")
	addStackFlags(c)
	return c
}

// runDiff resolves the base revision and compares the stacks rendered
// at it with the working tree's.
func runDiff(cmd *cobra.Command, args []string, base string) (*gitops.Report, error) {
	if cmd.Flags().Changed("base") {
		// A form go-git would half-read (HEAD@{1} as HEAD) is
		// refused before anything is rendered.
		if err := gitops.CheckRevision(base); err != nil {
			return nil, usageError{fmt.Errorf("--base: %w", err)}
		}
	}
	repo, st, err := repoStacks(cmd, args)
	if err != nil {
		return nil, err
	}
	var rev gitops.Rev
	if cmd.Flags().Changed("base") {
		if rev, err = repo.Resolve(base); err != nil {
			var se *gitops.RevisionSyntaxError
			if errors.As(err, &se) {
				return nil, usageError{fmt.Errorf("--base: %w", err)}
			}
			return nil, fmt.Errorf("--base: %w", err)
		}
	} else if rev, err = repo.DefaultBase(); err != nil {
		if errors.Is(err, gitops.ErrNoCommits) {
			return nil, fmt.Errorf("%w: nothing to compare with", err)
		}
		return nil, err
	}
	return repo.Diff(rev, st, time.Now().UTC().Format(time.DateOnly))
}

// diffJSON is diff --output json: the report, or, when there is none,
// the errors as diagnostics, in the shape of build's and vet's
// documents.
type diffJSON struct {
	OK bool `json:"ok"`
	*gitops.Report
	Diagnostics []schema.Diagnostic `json:"diagnostics,omitempty"`
}

// diffDiagnostics is err as diff --output json reports it: a side whose
// stacks do not compile is named, then each of its diagnostics.
func diffDiagnostics(err error) []schema.Diagnostic {
	var re *gitops.RenderError
	var se *schema.Error
	if errors.As(err, &re) && errors.As(err, &se) {
		where := schema.Diagnostic{Severity: "error", Message: fmt.Sprintf("the stacks in %s do not compile", re.Where)}
		return append([]schema.Diagnostic{where}, se.Diags...)
	}
	return []schema.Diagnostic{errorDiagnostic(err)}
}

// renderFailure prints which side's stacks failed to compile, with
// every diagnostic, and returns a silent failure; other errors are
// returned for report to print.
func renderFailure(stderr io.Writer, err error) error {
	var re *gitops.RenderError
	var se *schema.Error
	if !errors.As(err, &re) || !errors.As(err, &se) {
		return err
	}
	fmt.Fprintf(stderr, "hacompile: the stacks in %s do not compile:\n", re.Where)
	for _, d := range se.Diags {
		fmt.Fprintln(stderr, d.String())
	}
	return silentError{}
}

// diffColor reports whether w is a terminal that may be coloured: only a
// TTY, and never when NO_COLOR is set (https://no-color.org).
func diffColor(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// repoStacks opens the git repository around the working directory and
// resolves the stack paths in args (default: the stacks directory) with
// the command's Jsonnet flags, as diff and publish both read them.
func repoStacks(cmd *cobra.Command, args []string) (*gitops.Repo, gitops.Stacks, error) {
	// A usage error is said before anything is looked for.
	jo, err := compileOptions(cmd)
	if err != nil {
		return nil, gitops.Stacks{}, err
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, gitops.Stacks{}, err
	}
	repo, err := gitops.Open(wd)
	if err != nil {
		return nil, gitops.Stacks{}, err
	}
	st, err := repo.StacksFor(wd, args)
	if err != nil {
		return nil, gitops.Stacks{}, err
	}
	st, err = repo.WithJsonnet(st, wd, jo)
	if err != nil {
		return nil, gitops.Stacks{}, err
	}
	return repo, st, nil
}
