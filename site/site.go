// Package site renders the runbook: a static HTML handbook for the
// operators of the compiled stacks, written from the same typed stacks
// and rendered files that go to the hosts, so it cannot disagree with
// them. Pages are plain HTML with relative links, their CSS, JavaScript
// and search index embedded in the site itself: it works from file://
// and from any static host, with no network. Like every other artifact
// it is deterministic: no clock, no absolute paths, sorted everything.
package site

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/yuin/goldmark"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/schema"
)

// Dir is where the site lives under out/.
const Dir = "site"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Options carries what the compile result does not.
type Options struct {
	// Source returns the bytes of a stack file by its name as the stack
	// records it (Stack.Source); by default the compile's own Sources. The site shows each stack file with
	// line anchors, and every rendered file links to the lines that
	// produced it. The bytes must match Stack.SourceDigest.
	Source func(name string) ([]byte, error)
	// Kept are the stacks, by name, that this render leaves out because
	// their pages (out/site/stacks/<name>/) are on disk already, each
	// with what the site-wide pages take from it: the stack data an
	// earlier render encoded for the stack (Runbook.EncodeStackData), as
	// DecodeStackData read it.
	Kept map[string]*StackData
	// Done, when set, is handed the rendered files of a stack as soon as
	// no page left to render reads their contents: its stack files once
	// the stack's own pages are rendered, each host's files once its
	// host page is. The render then drops their contents (in
	// Rendered.Files too), so that a build writing them out in Done holds
	// a few hosts' files at a time, not the fleet's. It is called from
	// several goroutines at once; its first error ends the render.
	// The files are r.Files[i] for each i of idx, in host and path
	// order, with their contents still there during the call.
	Done func(r *compile.Rendered, idx []int) error
}

// stackData is what the site-wide pages (the index, the search index)
// take from one stack. Its pages' search entries are in its own parts of
// the index (searchPartPath, searchHostPartPath), kept with its pages.
type stackData struct {
	Card  indexStack  `json:"card"`
	Entry searchEntry `json:"entry"` // the stack's own search entry
	Parts []string    `json:"parts"` // its parts of the search index
}

// StackData is the stack data EncodeStackData encoded, read back: what the
// site-wide pages take from a stack whose pages a render keeps.
type StackData struct{ d stackData }

// DecodeStackData reads stack data EncodeStackData encoded, or says why b
// is not that.
func DecodeStackData(b []byte) (*StackData, error) {
	var d stackData
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("site: kept stack data: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("site: kept stack data: more after the stack's")
	}
	if d.Card.Name == "" || d.Entry.Kind != "stack" {
		return nil, fmt.Errorf("site: kept stack data: no stack")
	}
	if !slices.Contains(d.Parts, searchPartPath(d.Card.Name)) {
		return nil, fmt.Errorf("site: kept stack data: no part of the search index")
	}
	return &StackData{d}, nil
}

// OutTree is the whole out/ tree of a compile: every stack's rendered
// files and manifest (compile.TreeOf) and the runbook under site/, with
// stack sources from the compile itself. build, diff and publish all lay
// out out/ through it, so they agree on what it holds.
func OutTree(res *compile.Result) (compile.Tree, error) {
	tree, err := compile.TreeOf(res.Rendered)
	if err != nil {
		return nil, err
	}
	files, err := Render(res, Options{})
	if err != nil {
		return nil, err
	}
	for p, b := range files {
		tree[path.Join(Dir, p)] = b
	}
	return tree, nil
}

// Render renders the runbook of a successful compile. Keys are slash
// paths relative to the site directory (out/site/).
func Render(res *compile.Result, opt Options) (map[string][]byte, error) {
	rb, err := Prepare(res, opt)
	if err != nil {
		return nil, err
	}
	return rb.Render()
}

// Runbook is a compile's runbook, its inputs checked, ready to render.
type Runbook struct {
	g      *gen
	stacks []*stackCtx
	kept   map[string]stackData
	done   func(r *compile.Rendered, idx []int) error
}

// EncodeStackData is the stack data of the stack named name as JSON:
// what the site-wide pages took from it in the last render, for a later
// render that keeps the stack's pages (Options.Kept). It is an error
// when the render has no such stack.
func (rb *Runbook) EncodeStackData(name string) ([]byte, error) {
	d, ok := rb.g.data[name]
	if !ok {
		return nil, fmt.Errorf("site: no stack data of %s", name)
	}
	return json.Marshal(d)
}

// Prepare checks what the runbook of a compile is made from (each stack's
// source must be the bytes compiled; no stack may be named like the site
// directory). What fails afterwards, in Render, is a defect of
// hacompile, not of the input: build writes the stacks' files while the
// runbook renders only after Prepare succeeded.
func Prepare(res *compile.Result, opt Options) (*Runbook, error) {
	if opt.Source == nil {
		opt.Source = func(name string) ([]byte, error) {
			b, ok := res.Sources[name]
			if !ok {
				return nil, fmt.Errorf("site: no source for %s", name)
			}
			return b, nil
		}
	}
	g, err := newGen()
	if err != nil {
		return nil, err
	}
	rs := slices.Clone(res.Rendered)
	slices.SortFunc(rs, func(a, b *compile.Rendered) int { return strings.Compare(a.Stack.Name, b.Stack.Name) })
	var stacks []*stackCtx
	for _, r := range rs {
		if r.Stack.Name == Dir {
			return nil, fmt.Errorf("%s: name: stack name %q is reserved for the runbook site (out/%s/); rename the stack", r.Stack.Source, Dir, Dir)
		}
		src, err := opt.Source(r.Stack.Source)
		if err != nil {
			return nil, fmt.Errorf("site: reading %s: %w", r.Stack.Source, err)
		}
		if d := digest(src); d != r.Stack.SourceDigest {
			return nil, fmt.Errorf("site: %s changed while the build ran (sha256 %s, compiled %s); build again", r.Stack.Source, d[:12], r.Stack.SourceDigest[:12])
		}
		sc, err := newStackCtx(r, src, res.Findings)
		if err != nil {
			return nil, err
		}
		stacks = append(stacks, sc)
	}
	kept := map[string]stackData{}
	for name, sd := range opt.Kept {
		d := sd.d
		if d.Card.Name != name || slices.ContainsFunc(stacks, func(sc *stackCtx) bool { return sc.s.Name == name }) {
			return nil, fmt.Errorf("site: kept stack %s: not a stack of its own", name)
		}
		kept[name] = d
	}
	return &Runbook{g: g, stacks: stacks, kept: kept, done: opt.Done}, nil
}

// Render renders every page. Keys are slash paths relative to the site
// directory (out/site/).
func (rb *Runbook) Render() (map[string][]byte, error) {
	out := map[string][]byte{}
	var mu sync.Mutex
	err := rb.RenderTo(func(p string, b []byte) error {
		mu.Lock()
		defer mu.Unlock()
		out[p] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RenderTo renders every page and hands each to put as soon as it is
// done (from several goroutines at once), so that a large runbook need
// not be held in memory. Paths are slash paths relative to the site
// directory. The first error put returns ends the render.
func (rb *Runbook) RenderTo(put func(p string, b []byte) error) error {
	return rb.renderInto(&sink{put: put, done: rb.done})
}

func (rb *Runbook) renderInto(s *sink) error {
	rb.g.sink = s
	if err := rb.g.render(rb.stacks, rb.kept); err != nil {
		return err
	}
	return s.err
}

// KeyedSink takes the runbook's pages as RenderTo's put does, and keeps
// beside each host page the key of everything the page was made from,
// so that a later render from the same inputs need not make it again.
type KeyedSink interface {
	// Put takes a page that has no key.
	Put(p string, b []byte) error
	// PutKeyed takes a page made from the inputs key names.
	PutKeyed(p string, b []byte, key [sha256.Size]byte) error
	// Reuse reports whether the sink holds, unchanged since it took it,
	// the page at p that a render made from the inputs key names; it
	// then keeps that page as if it were put again, and the page is not
	// made.
	Reuse(p string, key [sha256.Size]byte) (bool, error)
}

// RenderKeyed is RenderTo into a keyed sink: each host page goes to it
// with its key, and one it holds made from the same inputs is not made
// again. code identifies the program rendering (its build ID, which
// covers the templates and the layout): keys of another program's
// render never match. With code "", nothing is keyed.
func (rb *Runbook) RenderKeyed(code string, s KeyedSink) error {
	sk := &sink{put: s.Put, done: rb.done, keyed: s, code: code}
	if code == "" {
		sk.keyed = nil
	}
	return rb.renderInto(sk)
}

// gen renders one site.
type gen struct {
	sink   *sink // shared by the generators of one render
	tmpl   *template.Template
	hl     *highlighter
	md     goldmark.Markdown
	search []searchEntry
	// hostSearch are entries of one host's, by host name, that a page
	// of the stack's makes (the source page's of the host's settings):
	// they go to the host's part of the index (searchHostPart).
	hostSearch map[string][]searchEntry
	// dirs are the directives of host files only one host carries,
	// merged per stack into search entries.
	dirs []dirHit
	// seenLines is eachDirective's, kept for the next file.
	seenLines map[string]bool
	data      map[string]stackData // by stack name, of the stacks rendered
}

// sink receives finished pages.
type sink struct {
	put  func(p string, b []byte) error
	done func(r *compile.Rendered, idx []int) error
	// keyed, when set, is the sink of RenderKeyed, and code the build
	// ID of the program rendering.
	keyed KeyedSink
	code  string
	mu    sync.Mutex
	err   error // the first error of put
}

// fail records the sink's first error, which ends the render.
func (s *sink) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// failed reports whether the sink refused a file.
func (s *sink) failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil
}

// emit hands a finished file to the sink.
func (g *gen) emit(p string, b []byte) {
	if err := g.sink.put(p, b); err != nil {
		g.sink.fail(err)
	}
}

// emitKeyed hands a finished page to the keyed sink with the key of what
// it was made from (reuse).
func (g *gen) emitKeyed(p string, b []byte, key [sha256.Size]byte) {
	if err := g.sink.keyed.PutKeyed(p, b, key); err != nil {
		g.sink.fail(err)
	}
}

// reuse is the key of the page p made from data, when it has one
// (keyed), and whether the keyed sink holds that page already (reused),
// which then need not be made again. Without a keyed sink nothing is
// keyed.
func (g *gen) reuse(p page, data any) (key [sha256.Size]byte, keyed, reused bool) {
	if g.sink.keyed == nil {
		return key, false, false
	}
	if key, keyed = inputKey(g.sink.code, p, data); !keyed {
		return key, false, false
	}
	reused, err := g.sink.keyed.Reuse(p.Path, key)
	if err != nil {
		g.sink.fail(err)
		return key, true, true // the render ends: make nothing more
	}
	return key, true, reused
}

func newGen() (*gen, error) {
	hl := newHighlighter()
	t, err := template.New("site").Funcs(template.FuncMap{
		"join":      strings.Join,
		"filetable": fileTable,
		"hostrows":  hostRows,
		"caprows":   capRows,
		"listings":  listings,
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	return &gen{tmpl: t, hl: hl, md: newMarkdown()}, nil
}

func (g *gen) render(stacks []*stackCtx, kept map[string]stackData) error {
	if err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assetFS.ReadFile(p)
		g.emit(p, b)
		return err
	}); err != nil {
		return err
	}
	g.emit("assets/chroma.css", g.hl.css())
	// Every stack's card and search entries, in name order: rendered
	// now, or kept from the render that wrote its pages.
	type item struct {
		name string
		sc   *stackCtx
		d    stackData
	}
	var items []item
	for _, sc := range stacks {
		c, e := card(sc)
		items = append(items, item{sc.s.Name, sc, stackData{Card: c, Entry: e}})
	}
	for name, d := range kept {
		items = append(items, item{name: name, d: d})
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.name, b.name) })
	cards := make([]indexStack, len(items))
	for i, it := range items {
		cards[i] = it.d.Card
		g.addSearch(it.d.Entry)
	}
	if err := g.index(cards); err != nil {
		return err
	}
	if err := g.reference(); err != nil {
		return err
	}
	g.data = map[string]stackData{}
	parts := make([]string, 0, len(items))
	for _, it := range items {
		if it.sc == nil {
			// Its parts of the index are kept with its pages.
			parts = append(parts, it.d.Parts...)
			continue
		}
		from := len(g.search)
		hostParts, err := g.stack(it.sc)
		if err != nil {
			if ho := (handOverError{}); errors.As(err, &ho) {
				return ho.err // writing the stack's own files: not the site's
			}
			return fmt.Errorf("site: %s: %w", it.name, err)
		}
		sp := []searchPart{{searchPartPath(it.name), "stack " + it.name, g.search[from:]}}
		for k, es := range hostParts {
			if len(es) > 0 {
				sp = append(sp, searchPart{searchHostPartPath(it.name, k), fmt.Sprintf("stack %s's hosts, part %d of %d", it.name, k+1, len(hostParts)), es})
			}
		}
		g.emitSearchParts(sp)
		for _, p := range sp {
			it.d.Parts = append(it.d.Parts, p.path)
		}
		parts = append(parts, it.d.Parts...)
		// Written: at 10,000 hosts the entries are 250,000.
		clear(g.search[from:])
		g.search = g.search[:from]
		g.data[it.name] = it.d
	}
	idx, err := searchIndexJS(g.search, parts)
	if err != nil {
		return err
	}
	g.emit(searchIndexPath, idx)
	return nil
}

// page is what the layout needs of every page besides its content.
type page struct {
	Path   string // site-relative path of the page
	Title  string
	Root   string // relative path from the page to the site root
	Crumbs []link
	Tabs   []tab
	Footer template.HTML
}

type link struct {
	Text, Href string
}

type tab struct {
	Text, Href string
	Current    bool
}

// write executes the named body template with data, wraps it in the
// layout and stores the page.
func (g *gen) write(p page, body string, data any) error {
	var b bytes.Buffer
	if err := g.tmpl.ExecuteTemplate(&b, body, data); err != nil {
		return fmt.Errorf("%s: %w", p.Path, err)
	}
	g.writePage(p, b.Len(), func(w *htmlw) { w.b = append(w.b, b.Bytes()...) })
	return nil
}

// writePage stores the page whose main content body writes (about size
// bytes), in the layout.
func (g *gen) writePage(p page, size int, body func(w *htmlw)) {
	g.emit(p.Path, layout(withRoot(p), size, body))
}

// withRoot is p with its Root, the way from it to the site's top.
func withRoot(p page) page {
	p.Root = rootOf(p.Path)
	return p
}

// rootOf is the relative path from a page to the site root ("../../").
func rootOf(p string) string { return strings.Repeat("../", strings.Count(p, "/")) }

// rel returns the link from page from to the site path to (which may
// carry a #fragment).
func rel(from, to string) string {
	target, frag, _ := strings.Cut(to, "#")
	if frag != "" {
		frag = "#" + frag
	}
	if target == from {
		return frag
	}
	fromDir := path.Dir(from)
	if fromDir == "." {
		return target + frag
	}
	// Strip the common directory prefix, then climb out of the rest.
	targetDir := path.Dir(target)
	// fd and td are the directories left to match, a "/" between each;
	// fdHas and tdHas say whether any is left (an empty td, for a target
	// at the top, has none).
	fd, fdHas := fromDir, true
	td, tdHas := targetDir, targetDir != "."
	if !tdHas {
		td = ""
	}
	for fdHas && tdHas {
		f, fRest, fMore := strings.Cut(fd, "/")
		t, tRest, tMore := strings.Cut(td, "/")
		if f != t {
			break
		}
		fd, fdHas = fRest, fMore
		td, tdHas = tRest, tMore
	}
	up := 0
	if fdHas {
		up = strings.Count(fd, "/") + 1
	}
	return relJoin(up, td, tdHas, target, frag)
}

// relJoin is up times "../", then the directories left in td (when
// tdHas), then target's base name and frag.
func relJoin(up int, td string, tdHas bool, target, frag string) string {
	var b strings.Builder
	base := path.Base(target)
	b.Grow(3*up + len(td) + 1 + len(base) + len(frag))
	for range up {
		b.WriteString("../")
	}
	if tdHas {
		b.WriteString(td)
		b.WriteByte('/')
	}
	b.WriteString(base)
	b.WriteString(frag)
	return b.String()
}

// StackDir is the directory of the site that holds every page of one
// stack, and nothing else.
func StackDir(stack string) string { return stackDir(stack) }

// Site paths of a stack's pages.
func stackDir(stack string) string        { return "stacks/" + stack }
func stackPage(stack, name string) string { return stackDir(stack) + "/" + name }
func hostPage(stack, host string) string  { return stackDir(stack) + "/hosts/" + host + ".html" }
func sourceLine(stack string, line int) string {
	return sourcePage(stack, line) + "#L" + strconv.Itoa(line)
}

// anchor makes an id from free text: lower-case letters, digits and
// dashes, starting with prefix.
func anchor(prefix, s string) string { return artifact.Anchor(prefix, s) }

// fileAnchors gives every file of a list a unique id: the anchor of its
// path (of holds it for every path), numbered when another file has it.
func fileAnchors(files []artifact.File, of map[string]string) map[string]string {
	ids := make(map[string]string, len(files))
	used := make(map[string]bool, len(files))
	for _, f := range files {
		base := of[f.Path]
		id := base
		for n := 2; used[id]; n++ {
			id = fmt.Sprintf("%s-%d", base, n)
		}
		used[id] = true
		ids[f.Path] = id
	}
	return ids
}

// stackTabs is the navigation of a stack's pages.
func stackTabs(s *schema.Stack, current string) []tab {
	var ts []tab
	for _, t := range []struct{ name, text string }{
		{"index.html", "Overview"},
		{"procedures.html", "Procedures"},
		{"alerts.html", "Alerts"},
		{"files.html", "Stack files"},
		{"source.html", "Source"},
		{ChangesPage, "Changes"},
	} {
		p := stackPage(s.Name, t.name)
		ts = append(ts, tab{Text: t.text, Href: rel(current, p), Current: p == current})
	}
	return ts
}

func stackCrumbs(s *schema.Stack, from string, more ...link) []link {
	cs := []link{{"Runbook", rel(from, "index.html")}, {s.Name, rel(from, stackPage(s.Name, "index.html"))}}
	return append(cs, more...)
}

func footer(s *schema.Stack, from string) template.HTML {
	if s == nil {
		return template.HTML("Generated by hacompile from the stacks it compiled. Rebuild with <code>hacompile build</code>; do not edit.")
	}
	// No digest of the stack file here: a value that changes with every
	// edit, on every page, would make any edit rewrite the whole runbook.
	// The source page alone shows it.
	return template.HTML(fmt.Sprintf(`Generated by hacompile from <a href="%s">%s</a>. Rebuild with <code>hacompile build</code>; do not edit.`,
		template.HTMLEscapeString(rel(from, stackPage(s.Name, "source.html"))), template.HTMLEscapeString(s.Source)))
}
