package site

import (
	"html/template"
	"sync"

	"github.com/hacompile/hacompile/schema"
)

// The "what changed" page of each stack (stacks/<stack>/changes.html):
// what the stack's rendered files changed since the revision published
// before. Only a publish knows that revision, so build writes the page
// saying so, and publish writes it again, filled in, into the tree it
// commits (ChangesPages).

// ChangesPage is the page's name in a stack's directory.
const ChangesPage = "changes.html"

// Changes is what a publish found changed in one stack.
type Changes struct {
	Stack *schema.Stack
	// Parent is the last published revision (a commit id), ParentSource
	// the source commit it was rendered from ("" when it does not say),
	// Source the one published now. Parent is "" for a first publish.
	Parent, ParentSource, Source string
	// Summary is one sentence of totals.
	Summary string
	Groups  []ChangeGroup
}

// ChangeGroup is hosts whose change is the same to the byte (or the
// stack's own files), with the first host's files.
type ChangeGroup struct {
	Hosts  string // "app1…app12 (12 hosts)", "lb1", "stack files"
	Status string // added, changed, removed
	Impact string
	Files  []ChangeFile
}

// ChangeFile is one file of a group.
type ChangeFile struct {
	Path           string
	Status         string
	Added, Removed int
	// Note replaces the diff: why it is summarised.
	Note string
	Diff string
}

type changesData struct {
	Stack     string
	Published bool
	*Changes
	Groups []changeGroupView
}

type changeGroupView struct {
	ChangeGroup
	Files []changeFileView
}

type changeFileView struct {
	ChangeFile
	Listing template.HTML
}

// maxChangesDiff bounds the diff bytes one page shows; the files past
// it are listed with their line counts.
const maxChangesDiff = 256 << 10

// changesPage renders the page of one stack; c nil is build's page,
// which says that publish fills it in.
func (g *gen) changesPage(s *schema.Stack, c *Changes) error {
	p := stackPage(s.Name, ChangesPage)
	d := changesData{Stack: s.Name, Published: c != nil, Changes: c}
	if c != nil {
		left := maxChangesDiff
		for _, gr := range c.Groups {
			v := changeGroupView{ChangeGroup: gr}
			for _, f := range gr.Files {
				fv := changeFileView{ChangeFile: f}
				switch {
				case f.Diff == "":
				case len(f.Diff) > left:
					fv.Note = "diff not shown: too large for this page; run hacompile diff"
				default:
					left -= len(f.Diff)
					fv.Listing = g.hl.highlight("diff", []byte(f.Diff))
				}
				v.Files = append(v.Files, fv)
			}
			d.Groups = append(d.Groups, v)
		}
	}
	return g.write(page{Path: p, Title: "What changed · " + s.Name, Crumbs: stackCrumbs(s, p), Tabs: stackTabs(s, p), Footer: footer(s, p)}, "changes", d)
}

// ChangesPages renders the "what changed" page of each stack, by site
// path (relative to out/site/).
func ChangesPages(cs []Changes) (map[string][]byte, error) {
	g, err := newGen()
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	var mu sync.Mutex
	g.sink = &sink{put: func(p string, b []byte) error {
		mu.Lock()
		defer mu.Unlock()
		out[p] = b
		return nil
	}}
	for i := range cs {
		if err := g.changesPage(cs[i].Stack, &cs[i]); err != nil {
			return nil, err
		}
	}
	if g.sink.err != nil {
		return nil, g.sink.err
	}
	return out, nil
}

// ChangesPagePath is a stack's "what changed" page, relative to the
// site directory.
func ChangesPagePath(stack string) string { return stackPage(stack, ChangesPage) }
