package gitops

// Diff renders the stacks at base and in the working tree and compares
// them. today (YYYY-MM-DD) judges the working tree's waivers.
func (r *Repo) Diff(base Rev, st Stacks, today string) (*Report, error) {
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
