package site

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/rules"
	"github.com/hacompile/hacompile/schema"
)

// A preview renders a changed copy of the stack with the same
// generators and compares the files, so a procedure can say exactly
// which files change on which host, and which HA rules the change
// would trip, instead of guessing.

type fileChange struct {
	Host, Path, Change string // Change: added, changed, removed
	Validate, Reload   string
}

type preview struct {
	Err      string
	Changes  []fileChange
	Findings []schema.Diagnostic // new, compared with the stack as it is
	files    []artifact.File     // the changed copy's files made again (the changed hosts' among them)
	stack    *schema.Stack       // the changed copy
}

// previewHosts previews a change to the named hosts only (mutate adds,
// removes or changes them and nothing else).
func previewHosts(sc *stackCtx, hosts []string, mutate func(*schema.Stack)) preview {
	return previewChange(sc, hosts, nil, mutate)
}

// previewSettings previews a change to the named settings only (mutate
// changes those top-level fields, their positions among them, and
// nothing else).
func previewSettings(sc *stackCtx, settings []string, mutate func(*schema.Stack)) preview {
	return previewChange(sc, nil, settings, mutate)
}

// previewChange renders the stack changed by mutate, which changes the
// named hosts and settings only: the generators make again only the
// files the change reaches (compile.RenderChanged).
func previewChange(sc *stackCtx, hosts, settings []string, mutate func(*schema.Stack)) preview {
	// One preview at a time: each holds the files it made again, and
	// RenderChanged itself runs on every core.
	sc.previewMu.Lock()
	defer sc.previewMu.Unlock()
	c := sc.s.Clone()
	mutate(c)
	c.Reindex()
	var p preview
	// The generators only: assemblers (cloud-init, provider files) repack
	// the same files, and re-running them for every preview would cost a
	// full build per procedure on a large fleet. The page says that each
	// changed host's cloud-init follows.
	set := sc.r.Set.GeneratorsOnly()
	ch, err := set.RenderChanged(sc.r, c, hosts, settings)
	if err != nil {
		var se *schema.Error
		if errors.As(err, &se) && len(se.Diags) > 0 {
			p.Err = se.Diags[0].Message
		} else {
			p.Err = err.Error()
		}
		return p
	}
	// The files that may differ are those the change reaches.
	var old []artifact.File
	for _, f := range sc.r.Files {
		if ch.Again(f.Kind, f.Host) {
			old = append(old, f)
		}
	}
	p.files, p.stack = ch.Files, c
	p.Changes = changedFiles(sc.r.Set, old, ch.Files)
	// Waivers are not dated here: the site has no clock, and an expired
	// waiver is the build's business, not the preview's.
	before := sc.undatedFindings()
	for _, d := range rules.Check(c, "") {
		if !before[d.Rule+"\x00"+d.Message] {
			p.Findings = append(p.Findings, d)
		}
	}
	return p
}

// changedFiles compares the generators' files of two renders, both
// sorted by host and path (as Render leaves them), in one merge: a
// preview of a 10,000-host fleet compares 120,000 files. Assembled
// files (cloud-init, provider files) are not in a preview's render.
func changedFiles(set compile.GeneratorSet, old, cur []artifact.File) []fileChange {
	var out []fileChange
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		if i < len(old) && set.Assembles(old[i].Kind) {
			i++
			continue
		}
		c := 1 // cur[j] comes first, or old is done
		if i < len(old) && j < len(cur) {
			if c = strings.Compare(old[i].Host, cur[j].Host); c == 0 {
				c = strings.Compare(old[i].Path, cur[j].Path)
			}
		} else if i < len(old) {
			c = -1
		}
		switch {
		case c < 0:
			out = append(out, fileChange{Host: old[i].Host, Path: hostPath(old[i]), Change: "removed"})
			i++
		case c > 0:
			f := cur[j]
			out = append(out, fileChange{Host: f.Host, Path: hostPath(f), Change: "added", Validate: f.Validate.String(), Reload: f.Reload.String()})
			j++
		default:
			o, f := old[i], cur[j]
			if !bytes.Equal(o.Content, f.Content) || o.Mode != f.Mode || o.Owner != f.Owner {
				out = append(out, fileChange{Host: f.Host, Path: hostPath(f), Change: "changed", Validate: f.Validate.String(), Reload: f.Reload.String()})
			}
			i++
			j++
		}
	}
	return out
}

// changeGroup is a preview's changes of one host (or of the stack-level
// files), summed up for a table.
type changeGroup struct {
	Host    string // "" for out/<stack>/ files
	Summary string
	Files   []fileChange
	Actions []string
}

func groupChanges(cs []fileChange) []changeGroup {
	var out []changeGroup
	for _, c := range cs {
		if len(out) == 0 || out[len(out)-1].Host != c.Host {
			out = append(out, changeGroup{Host: c.Host})
		}
		g := &out[len(out)-1]
		g.Files = append(g.Files, c)
		for _, a := range []string{c.Validate, c.Reload} {
			if a != "" && !slices.Contains(g.Actions, a) {
				g.Actions = append(g.Actions, a)
			}
		}
	}
	for i := range out {
		n := map[string]int{}
		for _, f := range out[i].Files {
			n[f.Change]++
		}
		var parts []string
		for _, k := range []string{"added", "changed", "removed"} {
			if n[k] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n[k], k))
			}
		}
		out[i].Summary = joinAnd(parts)
	}
	return out
}

func joinAnd(parts []string) string {
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	s := ""
	for i, p := range parts {
		switch {
		case i == 0:
			s = p
		case i == len(parts)-1:
			s += " and " + p
		default:
			s += ", " + p
		}
	}
	return s
}
