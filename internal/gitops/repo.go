// Package gitops connects hacompile to git through go-git, never the
// git command: it renders the stacks as they are at any revision
// (reading the repository's objects, with no checkout), compares two
// renderings host by host for review (hacompile diff), and commits the
// rendered out/ tree to a branch, here or in another repository, and
// pushes it (hacompile publish).
package gitops

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Repo is a git repository with a working tree.
type Repo struct {
	Git *git.Repository
	// Root is the working tree's root: absolute, symbolic links
	// resolved, so paths under it can be made relative to it.
	Root string
}

// Open opens the repository whose working tree holds dir.
func Open(dir string) (*Repo, error) {
	r, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("%s is not inside a git repository", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the git repository at %s: %w", dir, err)
	}
	wt, err := r.Worktree()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	root, err := realPath(wt.Filesystem.Root())
	if err != nil {
		return nil, err
	}
	return &Repo{Git: r, Root: root}, nil
}

func realPath(p string) (string, error) {
	p, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(p)
}

// Rev is a resolved revision and the words that tell a reader which one
// it is ("main", "merge base of HEAD and origin/main").
type Rev struct {
	Name   string
	Commit *object.Commit
}

// Short is the abbreviated commit hash.
func (r Rev) Short() string { return r.Commit.Hash.String()[:12] }

// String is "NAME (SHORT)", for messages.
func (r Rev) String() string { return fmt.Sprintf("%s (%s)", r.Name, r.Short()) }

// ErrNoCommits is returned when HEAD names no commit yet.
var ErrNoCommits = errors.New("the repository has no commits yet")

// Head is the commit HEAD points to.
func (r *Repo) Head() (Rev, error) {
	ref, err := r.Git.Head()
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return Rev{}, ErrNoCommits
	}
	if err != nil {
		return Rev{}, fmt.Errorf("reading HEAD: %w", err)
	}
	c, err := r.Git.CommitObject(ref.Hash())
	if err != nil {
		return Rev{}, fmt.Errorf("HEAD: %w", err)
	}
	return Rev{Name: "HEAD", Commit: c}, nil
}

// DefaultBase is what a pull request is reviewed against: the merge
// base of HEAD and the default branch, or HEAD itself when there is no
// default branch or no common history.
func (r *Repo) DefaultBase() (Rev, error) {
	head, err := r.Head()
	if err != nil {
		return Rev{}, err
	}
	ref := r.defaultBranch()
	if ref == nil {
		return head, nil
	}
	other, err := r.Git.CommitObject(ref.Hash())
	if err != nil {
		return Rev{}, fmt.Errorf("%s: %w", ref.Name().Short(), err)
	}
	bases, err := head.Commit.MergeBase(other)
	if err != nil {
		return Rev{}, fmt.Errorf("merge base of HEAD and %s: %w", ref.Name().Short(), err)
	}
	if len(bases) == 0 {
		return head, nil
	}
	// Criss-cross merges have several best bases; any is right, so take
	// the same one every time.
	slices.SortFunc(bases, func(a, b *object.Commit) int { return strings.Compare(a.Hash.String(), b.Hash.String()) })
	return Rev{Name: "merge base of HEAD and " + ref.Name().Short(), Commit: bases[0]}, nil
}

// defaultBranch is where origin/HEAD points, else main or master (local,
// then origin's), else nil.
func (r *Repo) defaultBranch() *plumbing.Reference {
	resolve := func(n plumbing.ReferenceName) *plumbing.Reference {
		ref, err := r.Git.Reference(n, true)
		if err != nil {
			return nil
		}
		return plumbing.NewHashReference(n, ref.Hash())
	}
	if sym, err := r.Git.Reference("refs/remotes/origin/HEAD", false); err == nil && sym.Type() == plumbing.SymbolicReference {
		if ref := resolve(sym.Target()); ref != nil {
			return ref
		}
	}
	for _, n := range []plumbing.ReferenceName{"refs/heads/main", "refs/heads/master", "refs/remotes/origin/main", "refs/remotes/origin/master"} {
		if ref := resolve(n); ref != nil {
			return ref
		}
	}
	return nil
}

// Changes lists what makes the working tree differ from HEAD, as
// `git status --short` prints it ("XY path", sorted): tracked files
// added, modified or deleted anywhere, and untracked files under dirs
// (slash paths relative to the root), which a render would read
// although no commit holds them. Ignored files are not listed.
func (r *Repo) Changes(dirs []string) ([]string, error) {
	wt, err := r.Git.Worktree()
	if err != nil {
		return nil, err
	}
	st, err := wt.Status()
	if err != nil {
		return nil, fmt.Errorf("reading the working tree's status: %w", err)
	}
	var out []string
	for p, s := range st {
		if s.Worktree == git.Untracked {
			if !under(p, dirs) {
				continue
			}
		} else if s.Worktree == git.Unmodified && s.Staging == git.Unmodified {
			continue
		}
		out = append(out, string([]byte{byte(s.Staging), byte(s.Worktree)})+" "+p)
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(a[3:], b[3:]) })
	return out, nil
}

// under reports whether the slash path p is one of dirs or inside one.
func under(p string, dirs []string) bool {
	for _, d := range dirs {
		if d == "." || p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}
