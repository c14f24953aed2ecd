package gitops

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/secret"
	"github.com/hacompile/hacompile/site"
)

// PublishOptions say where to commit the rendered tree and who signs it.
type PublishOptions struct {
	// Branch is the branch's short name ("rendered").
	Branch string
	// Prefix is the directory the tree goes under in the branch (slash
	// path); empty means the branch root, and then the branch holds the
	// rendered tree and nothing else. Under a prefix the rest of the
	// branch is kept.
	Prefix string
	// Repo is the repository to commit to: empty for the source
	// repository, a path, or a URL. A URL has no local copy, so the
	// commit is pushed to it.
	Repo string
	// Push pushes the branch to Remote of the destination repository.
	Push   bool
	Remote string // default "origin"
	// Author and Committer, with When, make the commit: the same tree,
	// parent, signatures and source give the same hash.
	Author, Committer object.Signature
	// SourceDirty records that the working tree had uncommitted changes
	// (see Repo.Changes), so Source-Commit does not tell all.
	SourceDirty bool
	SSH         SSHOptions
	// Rendered are the stacks tree was rendered from: with them, each
	// stack's runbook page "what changed" (site.ChangesPage) is written
	// against the branch's tip into the tree committed.
	Rendered []*compile.Rendered
}

// Published is what Publish did.
type Published struct {
	// Where names the branch and repository, for messages.
	Where string
	// Tip is the branch's commit afterwards; Parent the one before
	// (zero for a new branch).
	Tip, Parent plumbing.Hash
	// Committed is false when the tree was already the branch's.
	Committed bool
	Pushed    bool
	// Changes are the stacks that differ from the parent's tree.
	Changes []StackChange
	Message string
}

// StackChange lists a stack's hosts that a publish changes.
type StackChange struct {
	Stack                   string
	Status                  Status // of the stack as a whole
	Added, Changed, Removed []string
	// StackFiles is set when the stack's own files (manifest,
	// cloud-init, monitoring) changed.
	StackFiles bool
}

// Version is the hacompile version recorded in commits and printed by
// --version: the main module's version (go install …@v1.2.3; since Go
// 1.24 a build from a git checkout has a pseudo-version naming its
// commit, "+dirty" when the tree had changes), else from an older Go's
// VCS stamp "devel-" and the commit (with "-dirty"), else "(devel)". A
// build made with -buildvcs=false records nothing about its source, and
// nothing the binary can read at run time says it: a hash of its own
// executable would name the binary, not the source, and change the
// commits publish makes with every rebuild.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	return versionOf(bi)
}

// versionOf is Version from a build's information.
func versionOf(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, st := range bi.Settings {
		switch st.Key {
		case "vcs.revision":
			rev = st.Value
		case "vcs.modified":
			if st.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) >= 12 {
		return "devel-" + rev[:12] + dirty
	}
	return "(devel)"
}

// dest is the repository a publish writes to.
type dest struct {
	repo   *git.Repository
	desc   string // "branch rendered", "branch rendered of /srv/out.git"
	remote string // remote to fetch from and push to; "" for none
	url    string // its URL
}

func (r *Repo) openDest(opt PublishOptions) (*dest, error) {
	branch := plumbing.NewBranchReferenceName(opt.Branch)
	d := &dest{desc: "branch " + opt.Branch}
	switch {
	case opt.Repo == "":
		d.repo = r.Git
		if err := refuseCheckedOut(r.Git, branch, r.Root); err != nil {
			return nil, err
		}
	case IsURL(opt.Repo):
		// A URL has no local copy: build the commit in memory and push.
		repo, err := git.Init(memory.NewStorage(), nil)
		if err != nil {
			return nil, err
		}
		if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{opt.Repo}}); err != nil {
			return nil, err
		}
		d.repo, d.remote, d.url = repo, "origin", opt.Repo
		d.desc += " of " + secret.RedactURL(opt.Repo)
		return d, nil
	default:
		repo, err := git.PlainOpen(opt.Repo)
		if err != nil {
			return nil, fmt.Errorf("opening repository %s: %w", opt.Repo, err)
		}
		if err := refuseCheckedOut(repo, branch, opt.Repo); err != nil {
			return nil, err
		}
		d.repo = repo
		d.desc += " of " + opt.Repo
	}
	if opt.Push {
		name := cmp.Or(opt.Remote, "origin")
		rem, err := d.repo.Remote(name)
		if err != nil {
			return nil, fmt.Errorf("remote %q: %w", name, err)
		}
		d.remote, d.url = name, rem.Config().URLs[0]
	}
	return d, nil
}

// refuseCheckedOut stops a publish to the branch a working tree has
// checked out: moving it would make every rendered file look changed
// there, as git refuses to push to a checked-out branch.
func refuseCheckedOut(repo *git.Repository, branch plumbing.ReferenceName, where string) error {
	if _, err := repo.Worktree(); !errors.Is(err, git.ErrIsBareRepository) {
		head, err := repo.Reference(plumbing.HEAD, false)
		if err == nil && head.Type() == plumbing.SymbolicReference && head.Target() == branch {
			return fmt.Errorf("branch %s is checked out in %s; publish to a branch no working tree has checked out", branch.Short(), where)
		}
	}
	// Linked working trees (git worktree add), of a bare repository
	// too: each has its HEAD under the repository's worktrees/.
	if wt, ok := linkedCheckout(repo, branch); ok {
		return fmt.Errorf("branch %s is checked out in %s (a linked working tree of %s); publish to a branch no working tree has checked out", branch.Short(), wt, where)
	}
	return nil
}

// linkedCheckout is the linked working tree that has branch checked
// out, if one has.
func linkedCheckout(repo *git.Repository, branch plumbing.ReferenceName) (string, bool) {
	st, ok := repo.Storer.(*filesystem.Storage)
	if !ok {
		return "", false
	}
	fsys := st.Filesystem()
	entries, err := fsys.ReadDir("worktrees")
	if err != nil {
		return "", false
	}
	read := func(p string) string {
		f, err := fsys.Open(p)
		if err != nil {
			return ""
		}
		defer f.Close()
		b, _ := io.ReadAll(io.LimitReader(f, 4096))
		return strings.TrimSpace(string(b))
	}
	for _, e := range entries {
		dir := fsys.Join("worktrees", e.Name())
		if read(fsys.Join(dir, "HEAD")) != "ref: "+branch.String() {
			continue
		}
		// gitdir names the working tree's .git file.
		wt := filepath.Dir(read(fsys.Join(dir, "gitdir")))
		if wt == "." {
			wt = e.Name()
		}
		return wt, true
	}
	return "", false
}

// Publish commits tree (compile.TreeOf's output for the source) on the
// branch, with source as its Source-Commit, unless the branch already
// holds exactly that tree. With a remote, the branch's tip is fetched
// first so the commit extends what was published, and pushed after.
func (r *Repo) Publish(source Rev, tree compile.Tree, opt PublishOptions) (*Published, error) {
	if len(tree) == 0 {
		return nil, errors.New("nothing to publish: the rendered tree is empty")
	}
	d, err := r.openDest(opt)
	if err != nil {
		return nil, err
	}
	var au transport.AuthMethod
	if d.remote != "" {
		if au, err = auth(d.url, opt.SSH); err != nil {
			return nil, err
		}
	}
	branch := plumbing.NewBranchReferenceName(opt.Branch)
	local, err := d.repo.Reference(branch, true)
	if err != nil && !errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, err
	}
	var parent, remoteTip plumbing.Hash
	if local != nil {
		parent = local.Hash()
	}
	if d.remote != "" {
		if remoteTip, err = fetchTip(d, opt.Branch, au); err != nil {
			return nil, err
		}
		if !remoteTip.IsZero() {
			parent = remoteTip
		}
	}

	// Build every object in memory first: when nothing changed, the
	// destination gets nothing, not even unreachable objects.
	mem := memory.NewStorage()
	layered := &layeredStorer{top: mem, base: d.repo.Storer}
	var parentTree *object.Tree
	var parentCommit *object.Commit
	if !parent.IsZero() {
		pc, err := object.GetCommit(d.repo.Storer, parent)
		if err != nil {
			return nil, fmt.Errorf("%s: tip %s: %w", d.desc, parent, err)
		}
		if parentTree, err = pc.Tree(); err != nil {
			return nil, err
		}
		parentCommit = pc
	}
	if tree, err = withChanges(layered, tree, opt.Rendered, parentCommit, parentTree, opt, source); err != nil {
		return nil, err
	}
	newHashes := map[string]plumbing.Hash{}
	sub, err := writeTree(layered, tree, newHashes)
	if err != nil {
		return nil, err
	}
	root := sub
	if opt.Prefix != "" {
		if root, err = splice(layered, parentTree, strings.Split(opt.Prefix, "/"), sub); err != nil {
			return nil, err
		}
	}

	res := &Published{Where: d.desc, Parent: parent, Tip: parent}
	if parentTree != nil && parentTree.Hash == root {
		if local == nil || local.Hash() != parent {
			// The remote's tip is current: let the local branch say so.
			if err := d.repo.Storer.CheckAndSetReference(plumbing.NewHashReference(branch, parent), local); err != nil {
				return nil, fmt.Errorf("updating %s: %w", d.desc, err)
			}
		}
		return res, pushIfBehind(d, res, remoteTip, au, opt.Branch)
	}
	oldHashes, err := filesUnder(d.repo.Storer, parentTree, opt.Prefix)
	if err != nil {
		return nil, err
	}
	res.Changes = stackChanges(oldHashes, newHashes)
	res.Message = message(source, res.Changes, opt.SourceDirty)

	c := &object.Commit{
		Author: opt.Author, Committer: opt.Committer,
		Message: res.Message, TreeHash: root,
	}
	if !parent.IsZero() {
		c.ParentHashes = []plumbing.Hash{parent}
	}
	ch, err := writeObject(layered, c)
	if err != nil {
		return nil, err
	}
	if err := copyObjects(mem, d.repo.Storer); err != nil {
		return nil, fmt.Errorf("writing to %s: %w", d.desc, err)
	}
	if err := d.repo.Storer.CheckAndSetReference(plumbing.NewHashReference(branch, ch), local); err != nil {
		return nil, fmt.Errorf("updating %s: %w", d.desc, err)
	}
	res.Tip, res.Committed = ch, true
	return res, pushIfBehind(d, res, remoteTip, au, opt.Branch)
}

// pushIfBehind pushes the branch when there is a remote and it does not
// have the tip yet.
func pushIfBehind(d *dest, res *Published, remoteTip plumbing.Hash, au transport.AuthMethod, branch string) error {
	if d.remote == "" || remoteTip == res.Tip {
		return nil
	}
	// The local branch holds the tip: the new commit, or an unchanged
	// tip the remote has not seen (it was published without --push).
	spec := config.RefSpec(fmt.Sprintf("refs/heads/%s:refs/heads/%s", branch, branch))
	err := d.repo.Push(&git.PushOptions{RemoteName: d.remote, RefSpecs: []config.RefSpec{spec}, Auth: au})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("pushing %s to %s: %w", branch, secret.RedactURL(d.url), explainHostKey(err))
	}
	res.Pushed = err == nil
	return nil
}

// fetchTip fetches the branch from the destination's remote and returns
// its tip, zero when the remote has no such branch (or nothing at all).
func fetchTip(d *dest, branch string, au transport.AuthMethod) (plumbing.Hash, error) {
	track := plumbing.NewRemoteReferenceName(d.remote, branch)
	err := d.repo.Fetch(&git.FetchOptions{
		RemoteName: d.remote,
		RefSpecs:   []config.RefSpec{config.RefSpec(fmt.Sprintf("+refs/heads/%s:%s", branch, track))},
		Auth:       au,
		Tags:       git.NoTags,
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
	case errors.Is(err, git.NoMatchingRefSpecError{}), errors.Is(err, transport.ErrEmptyRemoteRepository):
		return plumbing.ZeroHash, nil
	default:
		return plumbing.ZeroHash, fmt.Errorf("fetching %s from %s: %w", branch, secret.RedactURL(d.url), explainHostKey(err))
	}
	ref, err := d.repo.Reference(track, true)
	if err != nil {
		return plumbing.ZeroHash, nil
	}
	return ref.Hash(), nil
}

// encoder is a git object that can be written.
type encoder interface {
	Encode(plumbing.EncodedObject) error
}

type blob []byte

func (b blob) Encode(o plumbing.EncodedObject) error {
	o.SetType(plumbing.BlobObject)
	w, err := o.Writer()
	if err != nil {
		return err
	}
	_, werr := w.Write(b)
	return errors.Join(werr, w.Close())
}

func writeObject(s storer.EncodedObjectStorer, e encoder) (plumbing.Hash, error) {
	o := s.NewEncodedObject()
	if err := e.Encode(o); err != nil {
		return plumbing.ZeroHash, err
	}
	return s.SetEncodedObject(o)
}

// dirNode is a directory of the tree being written.
type dirNode struct {
	files map[string][]byte
	dirs  map[string]*dirNode
}

// writeTree writes the files as blobs and trees and returns the root
// tree's hash; hashes receives each file's blob hash by path.
func writeTree(s storer.EncodedObjectStorer, files compile.Tree, hashes map[string]plumbing.Hash) (plumbing.Hash, error) {
	root := &dirNode{files: map[string][]byte{}, dirs: map[string]*dirNode{}}
	for p, b := range files {
		d := root
		elems := strings.Split(p, "/")
		for _, el := range elems[:len(elems)-1] {
			if d.dirs[el] == nil {
				d.dirs[el] = &dirNode{files: map[string][]byte{}, dirs: map[string]*dirNode{}}
			}
			d = d.dirs[el]
		}
		d.files[elems[len(elems)-1]] = b
	}
	var write func(d *dirNode, dir string) (plumbing.Hash, error)
	write = func(d *dirNode, dir string) (plumbing.Hash, error) {
		var entries []object.TreeEntry
		for name, b := range d.files {
			if d.dirs[name] != nil {
				return plumbing.ZeroHash, fmt.Errorf("%s is both a file and a directory", path.Join(dir, name))
			}
			h, err := writeObject(s, blob(b))
			if err != nil {
				return plumbing.ZeroHash, err
			}
			hashes[path.Join(dir, name)] = h
			entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: h})
		}
		for name, sub := range d.dirs {
			h, err := write(sub, path.Join(dir, name))
			if err != nil {
				return plumbing.ZeroHash, err
			}
			entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
		}
		return writeEntries(s, entries)
	}
	return write(root, "")
}

// writeEntries writes a tree in git's order, where a directory sorts as
// if its name ended in "/" (git fsck rejects any other order).
func writeEntries(s storer.EncodedObjectStorer, entries []object.TreeEntry) (plumbing.Hash, error) {
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	slices.SortFunc(entries, func(a, b object.TreeEntry) int { return strings.Compare(key(a), key(b)) })
	return writeObject(s, &object.Tree{Entries: entries})
}

// splice returns base with the directory at prefix replaced by the tree
// sub, creating the directories on the way.
func splice(s storer.EncodedObjectStorer, base *object.Tree, prefix []string, sub plumbing.Hash) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	var child *object.Tree
	if base != nil {
		for _, e := range base.Entries {
			if e.Name != prefix[0] {
				entries = append(entries, e)
				continue
			}
			if e.Mode == filemode.Dir && len(prefix) > 1 {
				t, err := object.GetTree(s, e.Hash)
				if err != nil {
					return plumbing.ZeroHash, err
				}
				child = t
			}
		}
	}
	h := sub
	if len(prefix) > 1 {
		var err error
		if h, err = splice(s, child, prefix[1:], sub); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	entries = append(entries, object.TreeEntry{Name: prefix[0], Mode: filemode.Dir, Hash: h})
	return writeEntries(s, entries)
}

// subtree is the tree at prefix in t ("" for t itself); nil, with no
// error, when t is nil or holds nothing there.
func subtree(t *object.Tree, prefix string) (*object.Tree, error) {
	if t == nil || prefix == "" {
		return t, nil
	}
	sub, err := t.Tree(prefix)
	if errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrEntryNotFound) {
		return nil, nil
	}
	return sub, err
}

// filesUnder maps the paths of the files under prefix in t (nil: none)
// to their blob hashes.
func filesUnder(s storer.EncodedObjectStorer, t *object.Tree, prefix string) (map[string]plumbing.Hash, error) {
	out := map[string]plumbing.Hash{}
	t, err := subtree(t, prefix)
	if t == nil || err != nil {
		return out, err
	}
	err = t.Files().ForEach(func(f *object.File) error {
		out[f.Name] = f.Hash
		return nil
	})
	return out, err
}

// layeredStorer writes to top and reads from top, then base: new
// objects can refer to the destination's without copying it.
type layeredStorer struct {
	top  *memory.Storage
	base storer.EncodedObjectStorer
}

func (l *layeredStorer) NewEncodedObject() plumbing.EncodedObject { return l.top.NewEncodedObject() }
func (l *layeredStorer) SetEncodedObject(o plumbing.EncodedObject) (plumbing.Hash, error) {
	return l.top.SetEncodedObject(o)
}
func (l *layeredStorer) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	if o, err := l.top.EncodedObject(t, h); err == nil {
		return o, nil
	}
	return l.base.EncodedObject(t, h)
}
func (l *layeredStorer) IterEncodedObjects(t plumbing.ObjectType) (storer.EncodedObjectIter, error) {
	return l.top.IterEncodedObjects(t)
}
func (l *layeredStorer) HasEncodedObject(h plumbing.Hash) error {
	if l.top.HasEncodedObject(h) == nil {
		return nil
	}
	return l.base.HasEncodedObject(h)
}
func (l *layeredStorer) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	if n, err := l.top.EncodedObjectSize(h); err == nil {
		return n, nil
	}
	return l.base.EncodedObjectSize(h)
}
func (l *layeredStorer) AddAlternate(string) error {
	return errors.New("gitops: no alternates in a layered store")
}

// copyObjects writes every object of from that to lacks.
func copyObjects(from *memory.Storage, to storer.EncodedObjectStorer) error {
	it, err := from.IterEncodedObjects(plumbing.AnyObject)
	if err != nil {
		return err
	}
	return it.ForEach(func(o plumbing.EncodedObject) error {
		if to.HasEncodedObject(o.Hash()) == nil {
			return nil
		}
		_, err := to.SetEncodedObject(o)
		return err
	})
}

// stackChanges groups the paths whose blobs differ by stack and host.
func stackChanges(old, cur map[string]plumbing.Hash) []StackChange {
	type hostSets struct{ old, cur, changed map[string]bool }
	by := map[string]*hostSets{}
	get := func(stack string) *hostSets {
		if by[stack] == nil {
			by[stack] = &hostSets{map[string]bool{}, map[string]bool{}, map[string]bool{}}
		}
		return by[stack]
	}
	for p := range old {
		g := groupOf(p)
		get(g.stack).old[g.host] = true
	}
	for p := range cur {
		g := groupOf(p)
		get(g.stack).cur[g.host] = true
	}
	paths := slices.Collect(maps.Keys(old))
	paths = append(paths, slices.Collect(maps.Keys(cur))...)
	for _, p := range paths {
		if oh, ok := old[p]; ok && cur[p] == oh {
			continue
		}
		g := groupOf(p)
		get(g.stack).changed[g.host] = true
	}
	var out []StackChange
	for _, stack := range slices.Sorted(maps.Keys(by)) {
		hs := by[stack]
		if len(hs.changed) == 0 || stack == site.Dir {
			continue // the runbook follows the stacks; it is not one
		}
		sc := StackChange{Stack: stack, Status: Changed}
		switch {
		case len(hs.old) == 0:
			sc.Status = Added
		case len(hs.cur) == 0:
			sc.Status = Removed
		}
		for _, h := range slices.Sorted(maps.Keys(hs.changed)) {
			switch {
			case h == "":
				sc.StackFiles = true
			case !hs.old[h]:
				sc.Added = append(sc.Added, h)
			case !hs.cur[h]:
				sc.Removed = append(sc.Removed, h)
			default:
				sc.Changed = append(sc.Changed, h)
			}
		}
		out = append(out, sc)
	}
	return out
}

// message is the commit message: a subject naming the stacks, a line
// per stack naming its hosts, and trailers for provenance.
func message(source Rev, changes []StackChange, dirty bool) string {
	var b strings.Builder
	names := make([]string, len(changes))
	for i, c := range changes {
		names[i] = c.Stack
	}
	subject := strings.Join(names, ", ")
	switch {
	case len(changes) == 0:
		subject = "the runbook" // only site pages changed (a new hacompile)
	case len(changes) > 3 || len(subject) > 40:
		subject = fmt.Sprintf("%d stacks", len(changes))
	}
	fmt.Fprintf(&b, "Render %s from %s\n\n", subject, source.Short())
	for _, c := range changes {
		b.WriteString(c.Stack + ": " + c.words() + "\n")
	}
	fmt.Fprintf(&b, "\nSource-Commit: %s\n", source.Commit.Hash)
	if dirty {
		b.WriteString("Source-Dirty: true\n")
	}
	fmt.Fprintf(&b, "Hacompile-Version: %s\n", Version())
	return b.String()
}

func (c StackChange) words() string {
	switch c.Status {
	case Added:
		if len(c.Added) == 0 {
			return "added"
		}
		return "added, hosts " + strings.Join(c.Added, ", ")
	case Removed:
		return "removed"
	}
	var parts []string
	for _, p := range []struct {
		verb  string
		hosts []string
	}{{"changed", c.Changed}, {"added", c.Added}, {"removed", c.Removed}} {
		if len(p.hosts) > 0 {
			parts = append(parts, p.verb+" "+strings.Join(p.hosts, ", "))
		}
	}
	if c.StackFiles {
		parts = append(parts, "stack files changed")
	}
	return strings.Join(parts, "; ")
}
