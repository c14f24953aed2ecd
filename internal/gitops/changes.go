package gitops

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/site"
)

// The runbook's "what changed" pages on a published branch: each
// stack's page says what its rendered files changed since the revision
// published before (the branch's tip), which only publish knows; build
// writes the pages saying so.

// withChanges returns tree with each rendered stack's "what changed"
// page: the parent's pages when, those aside, tree is the parent's tree
// (so that publishing the same tree again commits nothing), else pages
// comparing tree with the parent's files.
func withChanges(s storer.EncodedObjectStorer, tree compile.Tree, rs []*compile.Rendered, parent *object.Commit, parentTree *object.Tree, opt PublishOptions, source Rev) (compile.Tree, error) {
	if len(rs) == 0 {
		return tree, nil
	}
	if parentTree != nil {
		same := maps.Clone(tree)
		for _, r := range rs {
			p := path.Join(site.Dir, site.ChangesPagePath(r.Stack.Name))
			if b, ok, err := fileAt(parentTree, path.Join(opt.Prefix, p)); err != nil {
				return nil, err
			} else if ok {
				same[p] = b
			}
		}
		root, err := rootOf(s, same, parentTree, opt.Prefix)
		if err != nil {
			return nil, err
		}
		if root == parentTree.Hash {
			return same, nil
		}
	}
	base := &Rendering{Tree: compile.Tree{}}
	if parentTree != nil {
		files, err := contentsUnder(parentTree, opt.Prefix)
		if err != nil {
			return nil, err
		}
		base.Tree = files
	}
	head, err := NewRendering(rs)
	if err != nil {
		return nil, err
	}
	rep, err := Compare(base, head)
	if err != nil {
		return nil, err
	}
	c := site.Changes{Source: source.Commit.Hash.String()}
	if parent != nil {
		c.Parent = parent.Hash.String()
		c.ParentSource = trailer(parent.Message, "Source-Commit")
	}
	var cs []site.Changes
	entries := mdEntries(rep)
	for _, r := range rs {
		sc := c
		sc.Stack = r.Stack
		hosts, files := 0, 0
		for _, e := range entries {
			if e.h.Stack != r.Stack.Name {
				continue
			}
			g := site.ChangeGroup{Hosts: e.h.Host, Status: string(e.h.Status), Impact: strings.Join(e.h.Impact, ", ")}
			switch {
			case e.h.Host == "":
				g.Hosts = "stack files"
			case len(e.hosts) > 1:
				g.Hosts = fmt.Sprintf("%s (%d hosts)", e.hostsWords(), len(e.hosts))
			}
			if e.h.Host != "" {
				hosts += e.n()
			}
			for _, f := range e.h.Files {
				cf := site.ChangeFile{Path: f.Path, Status: string(f.Status), Added: f.LinesAdded, Removed: f.LinesRemoved, Diff: f.Diff}
				if f.Noise != "" {
					cf.Note = noiseWords(f, "−")
				}
				g.Files = append(g.Files, cf)
			}
			files += len(e.h.Files)
			sc.Groups = append(sc.Groups, g)
		}
		if len(sc.Groups) > 0 {
			sc.Summary = fmt.Sprintf("%d %s and %d %s changed (each group shows its first host's files).", hosts, plural(hosts, "host", "hosts"), files, plural(files, "file", "files"))
		}
		cs = append(cs, sc)
	}
	pages, err := site.ChangesPages(cs)
	if err != nil {
		return nil, err
	}
	out := maps.Clone(tree)
	for p, b := range pages {
		out[path.Join(site.Dir, p)] = b
	}
	return out, nil
}

// rootOf is the root tree hash a commit of tree under prefix has.
func rootOf(s storer.EncodedObjectStorer, tree compile.Tree, parentTree *object.Tree, prefix string) (plumbing.Hash, error) {
	root, err := writeTree(s, tree, map[string]plumbing.Hash{})
	if err != nil || prefix == "" {
		return root, err
	}
	return splice(s, parentTree, strings.Split(prefix, "/"), root)
}

// fileAt reads the file at p in t.
func fileAt(t *object.Tree, p string) ([]byte, bool, error) {
	f, err := t.File(p)
	if errors.Is(err, object.ErrFileNotFound) || errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrEntryNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	b, err := blobBytes(f)
	return b, err == nil, err
}

func blobBytes(f *object.File) ([]byte, error) {
	rd, err := f.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(rd)
}

// contentsUnder reads the files under prefix of t, the runbook left
// out, as an out/ tree.
func contentsUnder(t *object.Tree, prefix string) (compile.Tree, error) {
	out := compile.Tree{}
	t, err := subtree(t, prefix)
	if t == nil || err != nil {
		return out, err
	}
	err = t.Files().ForEach(func(f *object.File) error {
		if isSite(f.Name) {
			return nil
		}
		b, err := blobBytes(f)
		out[f.Name] = b
		return err
	})
	return out, err
}

// trailer is the value of a "Key: value" line of a commit message.
func trailer(msg, key string) string {
	for l := range strings.Lines(msg) {
		if v, ok := strings.CutPrefix(strings.TrimRight(l, "\n"), key+": "); ok {
			return v
		}
	}
	return ""
}
