package gitops

import (
	"cmp"
	"fmt"
	"github.com/hacompile/hacompile/generators/artifact"
	"path"
	"regexp"
	"slices"
	"strings"
)

// HostGroup is hosts of one stack whose change is the same to the
// byte: the same files added, changed and removed, with the same
// hunks (paths and line numbers aside). A pull-request comment shows
// the change once for the group.
type HostGroup struct {
	Stack string `json:"stack"`
	// Hosts are in the report's order; the first one's diff is the one
	// shown.
	Hosts []string `json:"hosts"`
	// Range lists Hosts compactly: "app1…app998, app1000".
	Range string `json:"range"`
}

// FileGroup is files of a stack's own directory (cloud-init documents,
// say) in one folder whose change is the same to the byte, the same
// embedded change repeated per host.
type FileGroup struct {
	// Paths are relative to out/, sorted; the first one's diff is the
	// one shown.
	Paths []string `json:"paths"`
	// Range lists the files' names compactly:
	// "shop/cloud-init/{app1…app998}.yaml".
	Range string `json:"range"`
}

// groupHosts puts the report's changed hosts into groups of identical
// change, biggest first within each stack, then by first host.
func groupHosts(hosts []HostDiff) []HostGroup {
	type acc struct {
		g     HostGroup
		first int
	}
	byKey := map[string]*acc{}
	var order []*acc
	for i, h := range hosts {
		if h.Host == "" {
			continue
		}
		k := h.Stack + "\x00" + hostKey(h)
		a := byKey[k]
		if a == nil {
			a = &acc{g: HostGroup{Stack: h.Stack}, first: i}
			byKey[k] = a
			order = append(order, a)
		}
		a.g.Hosts = append(a.g.Hosts, h.Host)
	}
	slices.SortStableFunc(order, func(a, b *acc) int {
		return cmp.Or(cmp.Compare(a.g.Stack, b.g.Stack), cmp.Compare(len(b.g.Hosts), len(a.g.Hosts)), cmp.Compare(a.first, b.first))
	})
	out := make([]HostGroup, len(order))
	for i, a := range order {
		a.g.Range = artifact.CompactNames(a.g.Hosts)
		out[i] = a.g
	}
	return out
}

// hostKey is what two hosts must share to be grouped: status, impact
// and each file's change, with the host's own directory taken out of
// the paths.
func hostKey(h HostDiff) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x00%s\x00", h.Status, strings.Join(h.Impact, ","))
	prefix := h.Dir() + "/"
	for _, f := range h.Files {
		fmt.Fprintf(&b, "%s\x00", strings.TrimPrefix(f.Path, prefix))
		fileKey(&b, f)
	}
	return b.String()
}

// fileKey writes a file's change without its path: status, noise, line
// counts and the hunks, their line numbers left out (the same change
// may sit lower in one host's cloud-init than in another's).
func fileKey(b *strings.Builder, f FileDiff) {
	fmt.Fprintf(b, "%s\x00%s\x00%d\x00%d\x00%s\x00", f.Status, f.Noise, f.LinesAdded, f.LinesRemoved, strings.Join(f.Impact, ","))
	if f.Status == Removed {
		// Removed files are summarised, not shown.
		b.WriteString("\x01")
		return
	}
	body := f.Diff
	for range 2 {
		// The "--- a/…" and "+++ b/…" labels.
		if i := strings.IndexByte(body, '\n'); i >= 0 && (strings.HasPrefix(body, "--- ") || strings.HasPrefix(body, "+++ ")) {
			body = body[i+1:]
		}
	}
	b.WriteString(hunkHeader.ReplaceAllString(body, "@@"))
	b.WriteString("\x01")
}

var hunkHeader = regexp.MustCompile(`(?m)^@@ -\d+(,\d+)? \+\d+(,\d+)? @@`)

// groupFiles groups a stack-level entry's files that sit in one
// directory and share their change; only groups of two or more are
// returned, in the order of their first file.
func groupFiles(h HostDiff) []FileGroup {
	if h.Host != "" {
		return nil
	}
	byKey := map[string]*FileGroup{}
	var order []*FileGroup
	for _, f := range h.Files {
		if f.Status == Removed || f.Noise == NoiseBinary {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s\x00%s\x00", path.Dir(f.Path), path.Ext(f.Path))
		fileKey(&b, f)
		k := b.String()
		g := byKey[k]
		if g == nil {
			g = &FileGroup{}
			byKey[k] = g
			order = append(order, g)
		}
		g.Paths = append(g.Paths, f.Path)
	}
	var out []FileGroup
	for _, g := range order {
		if len(g.Paths) < 2 {
			continue
		}
		dir, ext := path.Dir(g.Paths[0]), path.Ext(g.Paths[0])
		names := make([]string, len(g.Paths))
		for i, p := range g.Paths {
			names[i] = strings.TrimSuffix(path.Base(p), ext)
		}
		g.Range = dir + "/{" + artifact.CompactNames(names) + "}" + ext
		out = append(out, *g)
	}
	return out
}
