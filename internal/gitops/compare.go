package gitops

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	udiff "github.com/aymanbagabas/go-udiff"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/cloudinit"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/schema"
	"github.com/hacompile/hacompile/site"
)

// Rendering is one side of a comparison: an out/ tree and what the
// generators said about each file (its kind and reload action), which
// decides what a change costs on the host.
type Rendering struct {
	Tree   compile.Tree
	meta   map[string]fileMeta      // out path → metadata
	stacks map[string]*schema.Stack // by name
}

type fileMeta struct {
	kind, app string
	reload    artifact.Action
	// effect is when a file with no reload action takes effect, as its
	// generator says.
	effect string
	// sources are the stack fields the file is rendered from, most
	// specific first: its generator's (artifact.Sourcer), then a host
	// file's host entry.
	sources []string
}

// ManifestKind is the kind of each stack's manifest.json, which no
// generator produces.
const ManifestKind = "manifest"

// NewRendering lays out rendered stacks as the out/ tree build writes.
// The runbook site is left out: it follows from the stacks and files
// compared here, and its pages are reviewed in a browser, not a diff.
func NewRendering(rs []*compile.Rendered) (*Rendering, error) {
	t, err := compile.TreeOf(rs)
	if err != nil {
		return nil, err
	}
	r := &Rendering{Tree: t, meta: map[string]fileMeta{}, stacks: map[string]*schema.Stack{}}
	for _, s := range rs {
		r.stacks[s.Stack.Name] = s.Stack
		for _, f := range s.Files {
			src := s.Set.Sources(s.Stack, f)
			if f.Host != "" {
				src = append(slices.Clip(src), "hosts."+f.Host)
			}
			r.meta[compile.OutPath(s.Stack.Name, f)] = fileMeta{kind: f.Kind, reload: f.Reload, effect: s.Set.Effect(f.Kind), app: oneApp(s.Stack), sources: src}
		}
		// A host's cloud-init document carries the host's files: it
		// comes from what they come from too.
		hostSources := map[string][]string{}
		for _, f := range s.Files {
			if f.Host == "" {
				continue
			}
			for _, c := range r.meta[compile.OutPath(s.Stack.Name, f)].sources {
				if !slices.Contains(hostSources[f.Host], c) {
					hostSources[f.Host] = append(hostSources[f.Host], c)
				}
			}
		}
		for _, f := range s.Files {
			host, ok := strings.CutPrefix(f.Path, "cloud-init/")
			host, yaml := strings.CutSuffix(host, ".yaml")
			if f.Host != "" || f.Kind != (cloudinit.Gen{}).Kind() || !ok || !yaml {
				continue
			}
			p := compile.OutPath(s.Stack.Name, f)
			m := r.meta[p]
			for _, c := range hostSources[host] {
				if !slices.Contains(m.sources, c) {
					m.sources = append(slices.Clip(m.sources), c)
				}
			}
			r.meta[p] = m
		}
		r.meta[path.Join(s.Stack.Name, "manifest.json")] = fileMeta{kind: ManifestKind}
	}
	return r, nil
}

// Status is what happened to a file or a host.
type Status string

// The statuses.
const (
	Added   Status = "added"
	Changed Status = "changed"
	Removed Status = "removed"
)

// Noise says why a file's change is summarised instead of shown line by
// line.
type Noise string

// The noise rules.
const (
	// NoiseHeader: only generated-file banners changed (the stack file
	// was renamed or moved).
	NoiseHeader Noise = "header"
	// NoiseManifest: only checksums, sizes and the source name in a
	// manifest changed; they follow from the other files' diffs.
	NoiseManifest Noise = "manifest"
	// NoiseSite: a runbook site page, which is reviewed in a browser.
	NoiseSite Noise = "site"
	// NoiseRemoved: the whole file is removed; its lines were reviewed
	// when they were added.
	NoiseRemoved Noise = "removed"
	// NoiseBinary: not text.
	NoiseBinary Noise = "binary"
)

// FileDiff is one file that differs.
type FileDiff struct {
	// Path is relative to out/ ("shop/hosts/app1/etc/nginx/nginx.conf").
	Path         string   `json:"path"`
	Status       Status   `json:"status"`
	Kind         string   `json:"kind,omitempty"`
	Impact       []string `json:"impact"`
	LinesAdded   int      `json:"lines_added"`
	LinesRemoved int      `json:"lines_removed"`
	Noise        Noise    `json:"noise,omitempty"`
	// Diff is the unified diff, empty when Noise is set.
	Diff string `json:"diff,omitempty"`
	// Sources are the changed stack fields this file is rendered from,
	// where they are written (see SourceRef); only for files whose diff
	// is shown.
	Sources []SourceRef `json:"sources,omitempty"`
}

// HostDiff is every difference on one host of a stack. Host is empty
// for the stack's own files (manifest, cloud-init, monitoring).
type HostDiff struct {
	Stack        string   `json:"stack"`
	Host         string   `json:"host"`
	Status       Status   `json:"status"`
	FilesAdded   int      `json:"files_added"`
	FilesChanged int      `json:"files_changed"`
	FilesRemoved int      `json:"files_removed"`
	LinesAdded   int      `json:"lines_added"`
	LinesRemoved int      `json:"lines_removed"`
	Impact       []string `json:"impact"`
	Reboot       bool     `json:"reboot"`
	// Risks are the risk labels of this host's change (see Report).
	Risks []string   `json:"risks"`
	Files []FileDiff `json:"files"`
	// FileGroups, for a stack's own files, are files sharing one change
	// (cloud-init documents embedding the same host change).
	FileGroups []FileGroup `json:"file_groups,omitempty"`
}

// Name is "stack/host", or the stack alone for stack-level files.
func (h *HostDiff) Name() string {
	if h.Host == "" {
		return h.Stack
	}
	return h.Stack + "/" + h.Host
}

// Dir is the group's directory under out/: the host's root, or the
// stack's directory.
func (h *HostDiff) Dir() string {
	if h.Host == "" {
		return h.Stack
	}
	return path.Join(h.Stack, "hosts", h.Host)
}

// Summary adds up a comparison.
type Summary struct {
	StacksChanged  int `json:"stacks_changed"`
	HostsChanged   int `json:"hosts_changed"`
	HostsUnchanged int `json:"hosts_unchanged"`
	FilesAdded     int `json:"files_added"`
	FilesChanged   int `json:"files_changed"`
	FilesRemoved   int `json:"files_removed"`
	LinesAdded     int `json:"lines_added"`
	LinesRemoved   int `json:"lines_removed"`
}

// Report is a comparison of two renderings, hosts sorted by stack and
// host (stack-level files after the stack's hosts), unchanged hosts
// left out.
type Report struct {
	Base    RevInfo    `json:"base"`
	Head    string     `json:"head"`
	Changed bool       `json:"changed"`
	Summary Summary    `json:"summary"`
	Hosts   []HostDiff `json:"hosts"`
	// Risks are the labels of everything that changed: restart, reboot,
	// lb-change, decommission, failover-change (the Risk constants).
	Risks []string `json:"risks"`
	// Headroom lists the limits the change moves; Findings the HA
	// findings that appear or disappear. Both are filled by Diff, which
	// has the compiles.
	Headroom []Headroom      `json:"headroom"`
	Findings []FindingChange `json:"findings"`
	// Cost is each priced stack's monthly estimate before → after, from
	// the price table dated PricesAsOf; filled by Diff.
	Cost       []CostChange `json:"cost"`
	PricesAsOf string       `json:"prices_as_of"`
	// Groups puts every changed host (not the stacks' own files) in one
	// group of hosts whose change is the same to the byte.
	Groups []HostGroup `json:"groups"`
}

// RevInfo names the base of a comparison.
type RevInfo struct {
	Rev    string `json:"rev"`
	Commit string `json:"commit"`
}

// group is where an out/ path belongs.
type group struct{ stack, host string }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func groupOf(p string) group {
	parts := strings.SplitN(p, "/", 4)
	if len(parts) == 4 && parts[1] == "hosts" {
		return group{parts[0], parts[2]}
	}
	if len(parts) == 1 {
		return group{}
	}
	return group{stack: parts[0]}
}

func (g group) less(o group) int {
	// Stack-level files ("") sort after the stack's hosts.
	return cmp.Or(cmp.Compare(g.stack, o.stack), cmp.Compare(b2i(g.host == ""), b2i(o.host == "")), cmp.Compare(g.host, o.host))
}

// Compare reports every difference from base to head.
func Compare(base, head *Rendering) (*Report, error) {
	rep := &Report{Hosts: []HostDiff{}, Groups: []HostGroup{}, Risks: []string{}, Headroom: []Headroom{}, Findings: []FindingChange{}, Cost: []CostChange{}, PricesAsOf: site.PricesAsOf}
	risks := map[string]bool{}
	inBase, inHead := map[group]bool{}, map[group]bool{}
	for p := range base.Tree {
		inBase[groupOf(p)] = true
	}
	for p := range head.Tree {
		inHead[groupOf(p)] = true
	}
	byGroup := map[group]*HostDiff{}
	changes := map[string]*stackChange{}
	paths := slices.Collect(maps.Keys(base.Tree))
	paths = append(paths, slices.Collect(maps.Keys(head.Tree))...)
	slices.Sort(paths)
	for _, p := range slices.Compact(paths) {
		old, hadOld := base.Tree[p]
		cur, hasCur := head.Tree[p]
		if hadOld && hasCur && bytes.Equal(old, cur) {
			continue
		}
		g := groupOf(p)
		h := byGroup[g]
		if h == nil {
			h = &HostDiff{Stack: g.stack, Host: g.host, Status: Changed}
			switch {
			case !inBase[g]:
				h.Status = Added
			case !inHead[g]:
				h.Status = Removed
			}
			byGroup[g] = h
		}
		meta, ok := head.meta[p]
		if !ok {
			meta = base.meta[p]
		}
		f, err := diffFile(p, old, cur, hadOld, hasCur, meta)
		if err != nil {
			return nil, err
		}
		if f.Noise == "" && len(meta.sources) > 0 {
			sc := changes[g.stack]
			if sc == nil {
				sc = newStackChange(base.stacks[g.stack], head.stacks[g.stack])
				changes[g.stack] = sc
			}
			src := meta.sources
			if bm, ok := base.meta[p]; ok && hasCur {
				// What the file came from before counts too (an app
				// host gone from a balancer's servers).
				for _, c := range bm.sources {
					if !slices.Contains(src, c) {
						src = append(slices.Clip(src), c)
					}
				}
			}
			switch {
			case h.Host != "" && h.Status == Added:
				// A new host's files are there because of its entry.
				src = []string{"hosts." + h.Host}
			case f.Status == Added && meta.kind == (cloudinit.Gen{}).Kind():
				// So is its cloud-init document (its generator's own
				// source, the host's entry).
				src = src[:1]
			}
			f.Sources = sc.refs(src)
		}
		switch f.Status {
		case Added:
			h.FilesAdded++
		case Changed:
			h.FilesChanged++
		case Removed:
			h.FilesRemoved++
		}
		h.LinesAdded += f.LinesAdded
		h.LinesRemoved += f.LinesRemoved
		h.Files = append(h.Files, f)
	}
	stacks := map[string]bool{}
	for _, g := range slices.SortedFunc(maps.Keys(byGroup), group.less) {
		h := byGroup[g]
		h.Impact = hostImpact(h)
		h.Reboot = slices.Contains(h.Impact, ImpactReboot)
		h.FileGroups = groupFiles(*h)
		h.Risks = hostRisks(h, base, head)
		for _, r := range h.Risks {
			risks[r] = true
		}
		rep.Hosts = append(rep.Hosts, *h)
		stacks[g.stack] = true
		s := &rep.Summary
		if g.host != "" {
			s.HostsChanged++
		}
		s.FilesAdded += h.FilesAdded
		s.FilesChanged += h.FilesChanged
		s.FilesRemoved += h.FilesRemoved
		s.LinesAdded += h.LinesAdded
		s.LinesRemoved += h.LinesRemoved
	}
	for g := range inHead {
		if g.host != "" && inBase[g] && byGroup[g] == nil {
			rep.Summary.HostsUnchanged++
		}
	}
	rep.Groups = groupHosts(rep.Hosts)
	rep.Risks = sortRisks(risks)
	rep.Summary.StacksChanged = len(stacks)
	rep.Changed = len(rep.Hosts) > 0
	return rep, nil
}

func diffFile(p string, old, cur []byte, hadOld, hasCur bool, meta fileMeta) (FileDiff, error) {
	f := FileDiff{Path: p, Status: Changed, Kind: meta.kind}
	switch {
	case !hadOld:
		f.Status = Added
	case !hasCur:
		f.Status = Removed
	}
	f.Impact = fileImpact(meta)
	if !isText(old) || !isText(cur) {
		f.Noise = NoiseBinary
		return f, nil
	}
	oldLabel, newLabel := "a/"+p, "b/"+p
	switch f.Status {
	case Added:
		oldLabel = "/dev/null"
	case Removed:
		newLabel = "/dev/null"
	}
	if f.Status == Changed && meta.kind == ManifestKind {
		// A manifest whose lines pair up one for one, differing only in
		// checksums, sizes and the source: the line diff can align its
		// many look-alike entries badly, so compare line by line first.
		if n, ok := onlySumLines(old, cur); ok {
			f.LinesAdded, f.LinesRemoved, f.Noise = n, n, NoiseManifest
			return f, nil
		}
	}
	edits := udiff.Lines(string(old), string(cur))
	u, err := udiff.ToUnifiedDiff(oldLabel, newLabel, string(old), edits, udiff.DefaultContextLines)
	if err != nil {
		return f, fmt.Errorf("diffing %s: %w", p, err)
	}
	onlyHeaders, onlyManifestSums := true, true
	for _, h := range u.Hunks {
		for _, l := range h.Lines {
			if l.Kind == udiff.Equal {
				continue
			}
			if l.Kind == udiff.Insert {
				f.LinesAdded++
			} else {
				f.LinesRemoved++
			}
			onlyHeaders = onlyHeaders && IsHeaderLine(l.Content)
			onlyManifestSums = onlyManifestSums && manifestSumLine.MatchString(l.Content)
		}
	}
	switch {
	case isSite(p):
		f.Noise = NoiseSite
	case f.Status == Removed:
		f.Noise = NoiseRemoved
	case f.Status == Changed && onlyHeaders:
		f.Noise = NoiseHeader
	case f.Status == Changed && meta.kind == ManifestKind && onlyManifestSums:
		f.Noise = NoiseManifest
	default:
		f.Diff = u.String()
	}
	return f, nil
}

// onlySumLines reports whether old and cur have the same number of
// lines and differ only in manifest checksum, size and source lines, and
// how many lines differ.
func onlySumLines(old, cur []byte) (int, bool) {
	a, b := strings.Split(string(old), "\n"), strings.Split(string(cur), "\n")
	if len(a) != len(b) {
		return 0, false
	}
	n := 0
	for i := range a {
		if a[i] == b[i] {
			continue
		}
		if !manifestSumLine.MatchString(a[i]) || !manifestSumLine.MatchString(b[i]) {
			return 0, false
		}
		n++
	}
	return n, n > 0
}

func isText(b []byte) bool { return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0 }

// commentMarkers start a line comment in the formats hacompile writes
// (shell, nginx, HAProxy, YAML, systemd, sysctl; Python; C-like; SQL and
// Lua; HTML).
var commentMarkers = []string{"#", ";", "//", "--", "/*", "<!--"}

// IsHeaderLine reports whether a line is a generated-file banner: a
// comment naming the stack it was generated from. Leading blanks are
// allowed, since cloud-init documents carry other files indented.
func IsHeaderLine(l string) bool {
	l = strings.TrimLeft(l, " \t")
	for _, m := range commentMarkers {
		if strings.HasPrefix(l, m) {
			return strings.Contains(l, "Generated by hacompile from")
		}
	}
	return false
}

// manifestSumLine matches the manifest lines that change whenever any
// file does, or the stack file is renamed.
var manifestSumLine = regexp.MustCompile(`^\s*"(sha256|size|source|source_sha256)": `)

// isSite reports whether an out/ path is a runbook site page: under
// out/site/ or under a stack's site/.
func isSite(p string) bool {
	parts := strings.SplitN(p, "/", 3)
	return parts[0] == "site" && len(parts) > 1 || len(parts) > 2 && parts[1] == "site"
}

// What a change needs on the host.
const (
	ImpactDaemonReload = "daemon-reload"
	ImpactSysctl       = "sysctl --system"
	ImpactProvision    = "provision"
	ImpactDecommission = "decommission"
	ImpactReboot       = "reboot"
)

// oneApp is the app's name, whose unit impacts call "app"; with several
// apps, none: each app's unit is called by its name ("restart web").
func oneApp(s *schema.Stack) string {
	if s.MultiApp() {
		return ""
	}
	return s.App.Name
}

// fileImpact turns a file's reload command into the actions it implies,
// in words a reviewer knows: "reload nginx", "restart app", "sysctl
// --system". The app's own unit is called app whatever its name (with
// several apps, each by its own name).
func fileImpact(m fileMeta) []string {
	var out []string
	for _, op := range m.reload.Ops() {
		verb, unit, isUnit := op.Unit()
		switch {
		case op.Sysctl():
			out = append(out, ImpactSysctl)
		case op.Reboot():
			out = append(out, ImpactReboot)
		case op.DaemonReload():
			out = append(out, ImpactDaemonReload)
		case isUnit && verb == "enable":
			// Enabling is idempotent and touches nothing running.
		case isUnit:
			unit = strings.TrimSuffix(unit, ".service")
			if unit == m.app {
				unit = "app"
			}
			out = append(out, verb+" "+unit)
		default:
			out = append(out, op.Command)
		}
	}
	if len(out) > 0 {
		return out
	}
	if m.effect != "" {
		return []string{m.effect}
	}
	return []string{}
}

func hostImpact(h *HostDiff) []string {
	switch {
	case h.Host == "":
	case h.Status == Added:
		return []string{ImpactProvision}
	case h.Status == Removed:
		return []string{ImpactDecommission}
	}
	seen := map[string]bool{}
	for _, f := range h.Files {
		for _, i := range f.Impact {
			seen[i] = true
		}
	}
	// A restart rereads everything a reload would.
	for i := range seen {
		if unit, ok := strings.CutPrefix(i, "reload "); ok && seen["restart "+unit] {
			delete(seen, i)
		}
	}
	return slices.SortedFunc(maps.Keys(seen), func(a, b string) int {
		return cmp.Or(cmp.Compare(impactRank(a), impactRank(b)), cmp.Compare(a, b))
	})
}

// impactRank orders impacts the way an operator applies them: unit
// files, kernel settings, reloads, restarts, then the rest.
func impactRank(i string) int {
	switch {
	case i == ImpactDaemonReload:
		return 0
	case i == ImpactSysctl:
		return 1
	case strings.HasPrefix(i, "reload "):
		return 2
	case strings.HasPrefix(i, "restart "):
		return 3
	case i == ImpactReboot:
		return 5
	}
	return 4
}
