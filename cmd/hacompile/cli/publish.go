package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/mail"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/spf13/cobra"

	"github.com/hacompile/hacompile/internal/gitops"
	"github.com/hacompile/hacompile/schema"
	"github.com/hacompile/hacompile/site"
)

func newPublish() *cobra.Command {
	var o gitops.PublishOptions
	var author, committer, date string
	var allowDirty bool
	var output string
	var of ociFlags
	c := &cobra.Command{
		Use:   "publish [FILE|DIR]...",
		Short: "Commit the rendered out/ tree to a branch and push it",
		Long: `Publish renders the stacks (default: the stacks directory) in memory from the
working tree and commits the result — exactly the out/ tree 'hacompile build'
writes — to a branch: of this repository, of another one (--repo PATH), or of a
remote (--repo URL, always pushed). The commit's tree is the rendered tree at
the branch root, or under --prefix with the rest of the branch kept; its parent
is the branch's tip; its message names the stacks and hosts that changed and
ends with Source-Commit: and Hacompile-Version: trailers. When the branch
already holds that tree, nothing is committed. One page differs from
build's: each stack's runbook page "What changed" (stacks/<stack>/changes.html)
is filled in with what the stack's rendered files changed since the branch's
tip, the revision published before.

The commit is reproducible: author, committer and date come from the flags,
the date from --date, else SOURCE_DATE_EPOCH, else the source commit's date,
so publishing the same source twice gives the same commit hash.

Publish refuses stacks that do not vet, and a working tree with uncommitted
changes (which Source-Commit would not describe) unless --allow-dirty.

--oci REGISTRY/REPOSITORY:TAG publishes to an OCI registry instead (the pull
half of delivery: hosts converge with 'hacompile apply'): each host's files as
one artifact tagged TAG-<stack>-<host>, whose config lists every file with its
manifest entry (mode, owner, validate and reload commands) and whose layers
are the distinct file contents, so identical hosts share every blob and a
blob the registry has is not uploaded again. The same files give the same
manifest digest (no time in it; the source commit is annotated as
org.opencontainers.image.revision). Each artifact is signed with --sign-key,
cosign-compatibly (a simple-signing payload at tag sha256-<hex>.sig), which
cosign verify --key and a containers-policy.json sigstoreSigned requirement
accept. Channels are tags: publish to :canary, then to :stable (the same
digests: only tags move, and the signatures stay valid). Registry
credentials come from the Docker config (docker login, oras login).

--push pushes the branch to --remote of the destination repository, after
fetching its tip so the new commit extends it. Remotes are file:// or ssh://;
ssh host keys are verified against known_hosts (--known-hosts, else
SSH_KNOWN_HOSTS, else ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts), and
the key comes from -i/--identity, else the ssh-agent.`,
		Example: `  hacompile publish                                # commit to the branch "rendered" here
  hacompile publish --push                         # ... and push it to origin
  hacompile publish --repo ../deploy --prefix out  # into another clone, under out/
  hacompile publish --repo ssh://git@git.example.com/ops/rendered.git --branch main
  hacompile publish --output json | jq -r .commit
  hacompile publish --oci registry.example.com/ops/shop:canary --sign-key hacompile.key`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageError{fmt.Errorf("--output: want text or json, got %q", output)}
			}
			if err := of.check(cmd); err != nil {
				return err
			}
			if of.ref != "" && output != "text" {
				return usageError{fmt.Errorf("--output json is for publishing to a branch; --oci reports in text")}
			}
			text := output == "text"
			rep := &publishReport{Branch: o.Branch, Stacks: []publishStack{}, Diagnostics: []schema.Diagnostic{}}
			if !text {
				// What is known of the publication when the stacks
				// are evaluated, and the evaluation's end.
				defer budgetInJSON(cmd, func(d schema.Diagnostic) any {
					r := *rep
					r.OK, r.Diagnostics = false, append(slices.Clone(rep.Diagnostics), d)
					return &r
				})()
			}
			err := func() error {
				if cmd.Flags().Changed("ssh-key") {
					fmt.Fprintln(cmd.ErrOrStderr(), "hacompile: warning: --ssh-key is now -i/--identity, as push names it")
				}
				if err := keyFile("--identity", o.SSH.KeyFile); err != nil {
					return err
				}
				branch, err := branchName(o.Branch)
				if err != nil {
					return err
				}
				o.Branch, rep.Branch = branch, branch
				if o.Prefix != "" && (!fs.ValidPath(o.Prefix) || o.Prefix == ".") {
					return usageError{fmt.Errorf("--prefix: want a clean relative path such as out or rendered/prod, got %q", o.Prefix)}
				}
				au, err := parseSignature("--author", author)
				if err != nil {
					return err
				}
				co := au
				if committer != "" {
					if co, err = parseSignature("--committer", committer); err != nil {
						return err
					}
				}
				var fixed time.Time
				if date != "" {
					var ok bool
					if fixed, ok = parseDate(date); !ok {
						return usageError{fmt.Errorf("--date: want seconds since 1970 or an RFC 3339 time, got %q", date)}
					}
					if !commitDateOK(fixed) {
						return usageError{fmt.Errorf("--date: %q is outside the dates a commit holds: want %s to %s",
							date, time.Unix(0, 0).UTC().Format(time.RFC3339), maxCommitDate.Format(time.RFC3339))}
					}
				}

				repo, st, err := repoStacks(cmd, args)
				if err != nil {
					return err
				}
				source, err := repo.Head()
				if errors.Is(err, gitops.ErrNoCommits) {
					return errors.New("nothing to publish from: the repository has no commits yet (publish records the source commit)")
				}
				if err != nil {
					return err
				}
				stderr := cmd.ErrOrStderr()
				changes, err := repo.Changes(st.Args)
				if err != nil {
					return err
				}
				rep.Source = source.Commit.Hash.String()
				if len(changes) > 0 && !allowDirty {
					if !text {
						rep.Diagnostics = append(rep.Diagnostics, schema.Diagnostic{Severity: "error",
							Message: fmt.Sprintf("refusing to publish: the working tree has uncommitted changes, which Source-Commit %s would not describe: %s", source.Short(), strings.Join(changes, ", ")),
							Hint:    "commit them first, or pass --allow-dirty"})
						return silentError{}
					}
					fmt.Fprintf(stderr, "hacompile: refusing to publish: the working tree has uncommitted changes, which Source-Commit %s would not describe:\n", source.Short())
					for _, c := range changes {
						fmt.Fprintf(stderr, "  %s\n", c)
					}
					fmt.Fprintln(stderr, "hacompile: hint: commit them first, or pass --allow-dirty")
					return silentError{}
				}
				rep.SourceDirty = len(changes) > 0
				o.SourceDirty = len(changes) > 0

				when, err := commitDate(fixed, source)
				if err != nil {
					return err
				}
				au.When, co.When = when, when
				o.Author, o.Committer = au, co

				res, err := repo.RenderWorktree(st, time.Now().UTC().Format(time.DateOnly), false)
				if err != nil {
					var se *schema.Error
					if errors.As(err, &se) && !text {
						rep.Diagnostics = append(rep.Diagnostics, se.Diags...)
						return silentError{}
					}
					if errors.As(err, &se) {
						fmt.Fprintln(stderr, "hacompile: refusing to publish: the stacks do not vet:")
						for _, d := range se.Diags {
							fmt.Fprintln(stderr, d.String())
						}
						return silentError{}
					}
					return err
				}
				for _, d := range res.Findings {
					if text {
						fmt.Fprintln(stderr, d.String())
					}
					rep.Diagnostics = append(rep.Diagnostics, d)
				}
				if of.ref != "" {
					rev := source.Commit.Hash.String()
					if o.SourceDirty {
						rev += "-dirty"
					}
					return publishOCI(cmd, &of, res, rev)
				}
				tree, err := site.OutTree(res)
				if err != nil {
					return err
				}
				o.Rendered = res.Rendered
				pub, err := repo.Publish(source, tree, o)
				if err != nil {
					return err
				}
				rep.fill(pub)
				if !text {
					return nil
				}
				stdout := cmd.OutOrStdout()
				if pub.Committed {
					hosts := 0
					for _, c := range pub.Changes {
						hosts += len(c.Added) + len(c.Changed) + len(c.Removed)
					}
					fmt.Fprintf(stdout, "published %s on %s: %d %s, %d %s changed (source %s)\n", pub.Tip.String()[:12], pub.Where,
						len(pub.Changes), countNoun(len(pub.Changes), "stack", "stacks"), hosts, countNoun(hosts, "host", "hosts"), source.Short())
				} else {
					fmt.Fprintf(stdout, "%s is up to date at %s: nothing to publish\n", pub.Where, pub.Tip.String()[:12])
				}
				if pub.Pushed {
					fmt.Fprintf(stdout, "pushed %s\n", o.Branch)
				}
				return nil
			}()
			if text {
				return err
			}
			var ue usageError
			if errors.As(err, &ue) {
				return err
			}
			rep.OK = err == nil
			if err != nil && !errors.Is(err, silentError{}) {
				rep.Diagnostics = append(rep.Diagnostics, errorDiagnostic(err))
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			if err := enc.Encode(rep); err != nil {
				return err
			}
			if !rep.OK {
				return silentError{}
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&o.Branch, "branch", "rendered", "branch to commit to")
	f.StringVar(&o.Repo, "repo", "", "repository to commit to: a path, or a file:// or ssh:// URL (default: this one)")
	f.StringVar(&o.Prefix, "prefix", "", "directory of the branch to put the tree in (default: the branch root)")
	f.BoolVar(&o.Push, "push", false, "push the branch to --remote after committing")
	f.StringVar(&o.Remote, "remote", "origin", "remote of the destination repository to push to")
	f.StringVar(&author, "author", "hacompile <hacompile@localhost>", `commit author, "Name <email>"`)
	f.StringVar(&committer, "committer", "", `committer, "Name <email>" (default: the author)`)
	f.StringVar(&date, "date", "", "commit date: seconds since 1970 or RFC 3339 (default: SOURCE_DATE_EPOCH, else the source commit's date)")
	f.StringVarP(&output, "output", "o", "text", "output format: text, or json (the commit, the stacks and hosts changed, the findings)")
	f.BoolVar(&allowDirty, "allow-dirty", false, "publish even with uncommitted changes (the commit says Source-Dirty: true)")
	// The same names and types as push's SSH flags.
	f.StringVarP(&o.SSH.KeyFile, "identity", "i", "", "private key file for ssh:// remotes (default: the ssh-agent)")
	f.StringArrayVar(&o.SSH.KnownHosts, "known-hosts", nil, "known_hosts file for ssh:// remotes (repeatable)")
	// --identity's former name.
	f.StringVar(&o.SSH.KeyFile, "ssh-key", "", "")
	_ = f.MarkHidden("ssh-key")
	of.register(c)
	addStackFlags(c)
	return c
}

// publishReport is publish --output json.
type publishReport struct {
	OK bool `json:"ok"`
	// Committed is false when the branch already held the tree.
	Committed bool   `json:"committed"`
	Pushed    bool   `json:"pushed"`
	Branch    string `json:"branch"`
	// Where names the branch and repository.
	Where string `json:"where"`
	// Commit is the branch's tip afterwards, Parent the one before ("" for
	// a new branch).
	Commit      string `json:"commit"`
	Parent      string `json:"parent"`
	Source      string `json:"source_commit"`
	SourceDirty bool   `json:"source_dirty"`
	// Stacks are the stacks that differ from the parent's tree.
	Stacks  []publishStack `json:"stacks"`
	Summary struct {
		StacksChanged int `json:"stacks_changed"`
		HostsChanged  int `json:"hosts_changed"`
	} `json:"summary"`
	Diagnostics []schema.Diagnostic `json:"diagnostics"`
}

type publishStack struct {
	Stack      string   `json:"stack"`
	Status     string   `json:"status"`
	Added      []string `json:"added"`
	Changed    []string `json:"changed"`
	Removed    []string `json:"removed"`
	StackFiles bool     `json:"stack_files"`
}

func (r *publishReport) fill(pub *gitops.Published) {
	r.Committed, r.Pushed, r.Where = pub.Committed, pub.Pushed, pub.Where
	r.Commit = pub.Tip.String()
	if !pub.Parent.IsZero() {
		r.Parent = pub.Parent.String()
	}
	for _, c := range pub.Changes {
		r.Stacks = append(r.Stacks, publishStack{Stack: c.Stack, Status: string(c.Status), Added: orEmpty(c.Added), Changed: orEmpty(c.Changed), Removed: orEmpty(c.Removed), StackFiles: c.StackFiles})
		r.Summary.HostsChanged += len(c.Added) + len(c.Changed) + len(c.Removed)
	}
	r.Summary.StacksChanged = len(pub.Changes)
}

// branchName is the short name of the --branch value: a branch name
// ("rendered"), or the full name of a branch ("refs/heads/rendered",
// which would otherwise become refs/heads/refs/heads/rendered). Another
// full ref name (refs/tags/v1, refs/remotes/origin/x) names no branch,
// and HEAD is not a branch name: both are usage errors.
func branchName(flag string) (string, error) {
	b := flag
	if strings.HasPrefix(b, "refs/") {
		short, ok := strings.CutPrefix(b, "refs/heads/")
		if !ok {
			return "", usageError{fmt.Errorf("--branch: %q is not a branch: give a branch name such as rendered, or refs/heads/NAME", flag)}
		}
		b = short
	}
	if b == "" || b == "HEAD" || strings.HasPrefix(b, "refs/") || plumbing.NewBranchReferenceName(b).Validate() != nil {
		return "", usageError{fmt.Errorf("--branch: %q is not a valid branch name", flag)}
	}
	return b, nil
}

// signature parses "Name <email>".
func parseSignature(flag, s string) (object.Signature, error) {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name == "" {
		return object.Signature{}, usageError{fmt.Errorf(`%s: want "Name <email>", got %q`, flag, s)}
	}
	return object.Signature{Name: a.Name, Email: a.Address}, nil
}

// commitDate is --date (fixed, unless zero), else SOURCE_DATE_EPOCH,
// else the source commit's committer date: each gives the same date on
// every run.
func commitDate(fixed time.Time, source gitops.Rev) (time.Time, error) {
	if !fixed.IsZero() {
		return fixed, nil
	}
	if env := os.Getenv("SOURCE_DATE_EPOCH"); env != "" {
		n, err := strconv.ParseInt(env, 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH: want seconds since 1970, got %q", env)
		}
		if n <= maxCommitDate.Unix() {
			return time.Unix(n, 0).UTC(), nil
		}
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH: %q is after %s, the latest date a commit holds", env, maxCommitDate.Format(time.RFC3339))
	}
	return source.Commit.Committer.When.UTC(), nil
}

// maxCommitDate is the latest commit date publish writes: the last
// second an RFC 3339 time can name. git shows a later one wrongly (as
// 1970 once the year outgrows its calendar), and go-git writes a date
// before 1970 as another date.
var maxCommitDate = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// commitDateOK reports whether t can be a commit's date: from 1970 (git
// stores seconds since then, unsigned) to maxCommitDate.
func commitDateOK(t time.Time) bool {
	return t.Unix() >= 0 && !t.After(maxCommitDate)
}

func parseDate(s string) (time.Time, bool) {
	// ParseInt gives math.MaxInt64 with ErrRange for more digits.
	if n, err := strconv.ParseInt(s, 10, 64); (err == nil || errors.Is(err, strconv.ErrRange)) && n >= 0 {
		// time.Unix wraps around past about 2^63 - 2^35 seconds:
		// anything past the latest commit date is one second past it.
		return time.Unix(min(n, maxCommitDate.Unix()+1), 0).UTC(), true
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	return t, err == nil
}

func countNoun(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
