package gitops

import (
	"fmt"
	"io/fs"
	"os"
)

// Diff renders the stacks at base and in the working tree and compares
// them. today (YYYY-MM-DD) judges the working tree's waivers.
func (r *Repo) Diff(base Rev, st Stacks, today string) (*Report, error) {
	// A path on neither side (a typo) would compare nothing with
	// nothing and pass: it is an error. On one side only, it is a stack
	// added or removed.
	work := os.DirFS(r.Root)
	var at fs.FS // base's tree, read once if a path needs it
	for _, a := range st.Args {
		if _, err := fs.Stat(work, a); err == nil {
			continue
		}
		if at == nil {
			tree, err := base.Commit.Tree()
			if err != nil {
				return nil, err
			}
			at = NewTreeFS(r.Git.Storer, tree)
		}
		if _, err := fs.Stat(at, a); err == nil {
			continue
		}
		return nil, fmt.Errorf("%s: no such file or directory in the working tree or at revision %s", relSlash(st.Dir, a), base)
	}
	old, err := r.RenderAt(base, st)
	if err != nil {
		return nil, err
	}
	cur, err := r.RenderWorktree(st, today, true)
	if err != nil {
		return nil, err
	}
	a, err := NewRendering(old.Rendered)
	if err != nil {
		return nil, err
	}
	b, err := NewRendering(cur.Rendered)
	if err != nil {
		return nil, err
	}
	rep, err := Compare(a, b)
	if err != nil {
		return nil, err
	}
	rep.Headroom = headroomChanges(old, cur)
	rep.Findings = findingChanges(old, cur)
	rep.Cost = costChanges(old, cur)
	rep.Base = RevInfo{Rev: base.Name, Commit: base.Commit.Hash.String()}
	rep.Head = "working tree"
	return rep, nil
}
