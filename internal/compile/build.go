// Package build is the compile: find stack files, load and validate
// them, review them with the HA rules, run every generator of each
// stack's set, and lay the result out as one in-memory tree. Writing that
// tree to out/ (or comparing it with out/) is internal/outdir's.
package compile

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/hacompile/hacompile/internal/par"

	"github.com/hacompile/hacompile/generators"
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/jsonnet"
	"github.com/hacompile/hacompile/internal/outdir"
	"github.com/hacompile/hacompile/internal/rules"
	"github.com/hacompile/hacompile/schema"
)

// StackFileExts are the stack file kinds the build discovers in a
// directory: CUE and Jsonnet. Jsonnet libraries (.libsonnet) are
// imported, not built.
var StackFileExts = []string{".cue", ".jsonnet"}

// Options are a compile's settings besides the stack files and the
// date.
type Options struct {
	// Jsonnet holds external variables, top-level arguments and library
	// paths for Jsonnet stacks and custom generators. Its JPath are
	// paths in the inputs' file system for CompileInputsWith, and paths
	// on disk (relative to the working directory, or absolute) for
	// CompileWith.
	Jsonnet jsonnet.Options
	// CheckOnly compiles to check, not to write (hacompile vet): every
	// error and finding and every file are as a build's, but assembled
	// files whose making cannot fail may have no content
	// (artifact.Options.CheckOnly).
	CheckOnly bool
	// Hand is artifact.Options.Hand for every stack rendered: a build
	// writing out/ takes the cloud-init documents as they are made.
	Hand func(s *schema.Stack, f artifact.File) (artifact.File, error)
	// Reuse is artifact.Options.Reuse for every stack rendered: with
	// Hand, a build skips the documents whose inputs are as its last
	// build's.
	Reuse func(s *schema.Stack, f artifact.File, key [sha256.Size]byte) (artifact.File, bool, error)
	// Ready, when set, is called once the stacks have passed the rules,
	// as the generators start: a build makes ready to write out/ while
	// they run, not after, when the first document is handed over.
	Ready func()
}

// Rendered is one stack and every file generated for it.
type Rendered struct {
	Stack *schema.Stack
	Files []artifact.File // sorted by host, then path
	// Set is what rendered it. Whatever renders the stack again (push
	// under --root, the runbook's previews of a changed stack) renders
	// with it, so no command drops the stack's custom generators.
	Set GeneratorSet

	// sums and sizes are those of Files' contents, taken once (by
	// hashes): the manifest and the runbook show them, and the writer
	// compares them with the last build's.
	hashOnce sync.Once
	sums     [][sha256.Size]byte
	sizes    []int
}

// Tree maps slash-separated paths relative to out/ to file contents;
// internal/outdir writes and compares it.
type Tree = outdir.Tree

// Input is one stack file to compile: the name diagnostics and
// generated headers show (relative to the project, slash-separated), its
// bytes, and where it was read from, for stack languages with imports.
type Input struct {
	Name string
	Data []byte
	FS   fs.FS  // the file system the file was read from
	Path string // its path in FS
}

// FindStacks expands args — slash paths in fsys naming files or
// directories — into stack file paths, sorted. A directory contributes
// its stack files (StackFileExts), not recursing. shown maps a path
// back to what the user typed, for error messages.
func FindStacks(fsys fs.FS, args []string, shown func(string) string) ([]string, error) {
	found, err := findStacks(fsys, args, shown)
	if err != nil {
		return nil, err
	}
	files := make([]string, len(found))
	for i, f := range found {
		files[i] = f.path
	}
	return files, nil
}

// stackFile is a stack file found, and the directory it must be read
// from: the directory named, or the named file's own.
type stackFile struct{ path, root string }

func findStacks(fsys fs.FS, args []string, shown func(string) string) ([]stackFile, error) {
	var files []stackFile
	for _, a := range args {
		fi, err := fs.Stat(fsys, a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", shown(a), unwrapPathErr(err))
		}
		if !fi.IsDir() {
			files = append(files, stackFile{a, path.Dir(a)})
			continue
		}
		entries, err := fs.ReadDir(fsys, a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", shown(a), unwrapPathErr(err))
		}
		for _, e := range entries {
			// Hidden files are not stacks: an editor's lock or backup
			// (Emacs's .#shop.cue, a dangling link) sits beside the
			// stack it edits. A file named on the command line is read
			// whatever its name.
			if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") && slices.Contains(StackFileExts, path.Ext(e.Name())) {
				files = append(files, stackFile{path.Join(a, e.Name()), a})
			}
		}
	}
	slices.SortFunc(files, func(a, b stackFile) int { return cmp.Compare(a.path, b.path) })
	files = slices.CompactFunc(files, func(a, b stackFile) bool { return a.path == b.path })
	if len(files) == 0 {
		names := make([]string, len(args))
		for i, a := range args {
			names[i] = shown(a)
		}
		return nil, fmt.Errorf("no stack files (*%s) in %s", strings.Join(StackFileExts, ", *"), strings.Join(names, ", "))
	}
	return files, nil
}

// readStack reads a stack file found in fsys inside its root only: no
// symbolic link may lead out of it, and it must be a regular file of at
// most jsonnet.MaxFileSize bytes.
func readStack(fsys fs.FS, f stackFile) ([]byte, error) {
	data, _, err := jsonnet.ReadInside(fsys, f.path, f.root)
	return data, unwrapPathErr(err)
}

// ReadInputs reads the stack files named by args (files or directories
// on disk, relative to the working directory) with names relative to
// base.
func ReadInputs(args []string, base string) ([]Input, error) {
	root := os.DirFS("/")
	abs := map[string]string{} // fs path → as typed
	var paths []string
	for _, a := range args {
		p, err := filepath.Abs(a)
		if err != nil {
			return nil, err
		}
		p = strings.TrimPrefix(filepath.ToSlash(p), "/")
		if p == "" {
			p = "."
		}
		abs[p] = a
		paths = append(paths, p)
	}
	files, err := findStacks(root, paths, func(p string) string { return abs[p] })
	if err != nil {
		return nil, err
	}
	in := make([]Input, 0, len(files))
	for _, f := range files {
		name := "/" + f.path
		if r, err := filepath.Rel(base, filepath.FromSlash(name)); err == nil {
			name = filepath.ToSlash(r)
		}
		if err := schema.CheckFileName(name); err != nil {
			return nil, err
		}
		data, err := readStack(root, f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		in = append(in, Input{Name: name, Data: data, FS: root, Path: f.path})
	}
	return in, nil
}

// ReadInputsFS reads the stack files named by args from fsys (a git
// tree, say); names are the paths in fsys.
func ReadInputsFS(fsys fs.FS, args []string) ([]Input, error) {
	files, err := findStacks(fsys, args, func(p string) string { return p })
	if err != nil {
		return nil, err
	}
	in := make([]Input, 0, len(files))
	for _, f := range files {
		if err := schema.CheckFileName(f.path); err != nil {
			return nil, err
		}
		data, err := readStack(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.path, err)
		}
		in = append(in, Input{Name: f.path, Data: data, FS: fsys, Path: f.path})
	}
	return in, nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Load validates every input and checks that stack names are unique
// and none is the runbook site's (SiteDir), at the name field. All
// problems are reported together. Jsonnet stacks are evaluated with
// o.Jsonnet first.
func Load(l *schema.Loader, in []Input, o Options) ([]*schema.Stack, error) {
	var stacks []*schema.Stack
	var diags []schema.Diagnostic
	for _, f := range in {
		s, err := load(l, f, o)
		if err != nil {
			var se *schema.Error
			if errors.As(err, &se) {
				diags = append(diags, se.Diags...)
				continue
			}
			return nil, err
		}
		stacks = append(stacks, s)
	}
	seen := map[string]*schema.Stack{}
	for _, s := range stacks {
		d := s.At("name")
		d.Severity = "error"
		if s.Name == SiteDir {
			// vet says so as build does: its runbook would share the
			// directory.
			d.Message = fmt.Sprintf("stack name %q is reserved for the runbook site (out/%s/); rename the stack", s.Name, SiteDir)
			diags = append(diags, d)
			continue
		}
		if prev, ok := seen[s.Name]; ok {
			d.Message = fmt.Sprintf("stack name %q is already used by %s", s.Name, where(prev.At("name")))
			diags = append(diags, d)
			continue
		}
		seen[s.Name] = s
	}
	if len(diags) > 0 {
		schema.SortDiagnostics(diags)
		return nil, &schema.Error{Diags: diags}
	}
	return stacks, nil
}

// SiteDir is the directory of out/ the runbook site is written to
// (site.Dir, which a test keeps equal). A stack's files go to
// out/<name>/, so no stack may have that name.
const SiteDir = "site"

// where is a diagnostic's position, file:line:col (or the file alone
// when the line is unknown), for a message that names another place.
func where(d schema.Diagnostic) string {
	if d.Line > 0 {
		return fmt.Sprintf("%s:%d:%d", d.File, d.Line, d.Column)
	}
	return d.File
}

func load(l *schema.Loader, f Input, o Options) (*schema.Stack, error) {
	if !jsonnet.IsJsonnet(f.Name) {
		return l.Load(f.Name, f.Data)
	}
	data, pos, err := jsonnet.EvalStack(f.source(), o.Jsonnet)
	if err != nil {
		return nil, err
	}
	return l.LoadData(f.Name, f.Data, data, pos)
}

func (f Input) source() jsonnet.Source {
	return jsonnet.Source{Name: f.Name, Data: f.Data, FS: f.FS, Path: f.Path}
}

// GeneratorSet is what renders one stack: the built-in table, then the
// custom generators the stack lists, then the assemblers. A compile fixes
// it per stack (Rendered.Set), and every later render of that stack
// reuses it.
type GeneratorSet struct {
	Generators []artifact.Generator
	Assemblers []artifact.Assembler
}

// Builtin is the set of a stack without custom generators.
func Builtin() GeneratorSet {
	return GeneratorSet{Generators: generators.All(), Assemblers: generators.Assemblers()}
}

// For is the set a stack renders with: the built-in table and the
// custom generators s lists, which resolve from src, the file s was read
// from, with o's Jsonnet options.
func For(s *schema.Stack, src Input, o Options) GeneratorSet {
	set := Builtin()
	set.Generators = append(set.Generators, jsonnet.Generators(s, src.source(), o.Jsonnet)...)
	return set
}

// Render renders s (the stack the set was made for, or a changed copy
// of it) with every generator of the set.
func (g GeneratorSet) Render(s *schema.Stack, opt artifact.Options) (*Rendered, error) {
	return Render(s, g.Generators, g.Assemblers, opt)
}

// GeneratorsOnly is the set without its assemblers, whose files only
// repack the generators' (a preview that needs to know which files
// change skips them).
func (g GeneratorSet) GeneratorsOnly() GeneratorSet {
	return GeneratorSet{Generators: g.Generators}
}

// Assembles reports whether kind is one of the set's assemblers.
func (g GeneratorSet) Assembles(kind string) bool {
	return slices.ContainsFunc(g.Assemblers, func(a artifact.Assembler) bool { return a.Kind() == kind })
}

// kind is the generator or assembler of the set that writes kind, or
// nil.
func (g GeneratorSet) kind(kind string) any {
	for _, x := range g.Generators {
		if x.Kind() == kind {
			return x
		}
	}
	for _, x := range g.Assemblers {
		if x.Kind() == kind {
			return x
		}
	}
	return nil
}

// Sources is the stack fields a file comes from, as its generator or
// assembler says (artifact.Sourcer); nil when it does not say.
func (g GeneratorSet) Sources(s *schema.Stack, f artifact.File) []string {
	if src, ok := g.kind(f.Kind).(artifact.Sourcer); ok {
		return src.Sources(s, f)
	}
	return nil
}

// Effect is when a file of kind that has no reload action takes effect,
// as its generator says (artifact.Effecter); "" when it does not say.
func (g GeneratorSet) Effect(kind string) string {
	if e, ok := g.kind(kind).(artifact.Effecter); ok {
		return e.Effect()
	}
	return ""
}

// Render runs every generator over a stack, then every assembler over
// their files, and checks the result: paths stay inside their root and no
// two generators write the same path.
func Render(s *schema.Stack, gens []artifact.Generator, asms []artifact.Assembler, opt artifact.Options) (*Rendered, error) {
	// Generators are pure functions of the stack: run them on every core,
	// each result checked and sorted on its own, then merged in table
	// order, so the files, the clash messages and everything after do not
	// depend on scheduling.
	if s.MultiApp() {
		gens = artifact.ForApps(gens)
	}
	results := make([]checked, len(gens))
	par.Each(len(gens), func(i int) {
		fs, err := gens[i].Generate(s, opt)
		results[i] = check(s, gens[i].Kind(), fs, err)
	})
	files, diags := mergeChecked(s, results, locator(gens))
	if len(diags) == 0 && len(asms) > 0 {
		// Each assembler sees the generators' files (which nothing
		// changes: merging copies); theirs are merged in after, in table
		// order too.
		results = []checked{{files: files}}
		for _, a := range asms {
			fs, err := a.Assemble(s, opt, files, gens)
			results = append(results, check(s, a.Kind(), fs, err))
		}
		files, diags = mergeChecked(s, results, nil)
	}
	if len(diags) > 0 {
		schema.SortDiagnostics(diags)
		return nil, &schema.Error{Diags: diags}
	}
	return &Rendered{Stack: s, Files: files, Set: GeneratorSet{Generators: gens, Assemblers: asms}}, nil
}

func compareFiles(a, b artifact.File) int {
	// Not cmp.Or, which would compare the paths every time.
	if c := strings.Compare(a.Host, b.Host); c != 0 {
		return c
	}
	return strings.Compare(a.Path, b.Path)
}

// locator finds where the generator of kind among gens writes path, for
// the generators that can say (artifact.Locator): a custom generator's
// clash is placed in its program.
func locator(gens []artifact.Generator) func(kind, path string) (schema.Diagnostic, bool) {
	return func(kind, path string) (schema.Diagnostic, bool) {
		for _, g := range gens {
			if l, ok := g.(artifact.Locator); ok && g.Kind() == kind {
				return l.Locate(path)
			}
		}
		return schema.Diagnostic{}, false
	}
}

// checked is one generator's files, checked and sorted, and the problems
// found in them.
type checked struct {
	files []artifact.File
	diags []schema.Diagnostic
}

// check checks one generator's files: paths clean and inside their
// root, hosts known; mode and owner default to 0644 root:root. The files
// come back sorted by host and path (a generator's own order kept for
// equal paths).
func check(s *schema.Stack, kind string, fs []artifact.File, err error) checked {
	var c checked
	fail := func(msg, rule string) {
		c.diags = append(c.diags, schema.Diagnostic{File: s.Source, Severity: "error", Message: msg, Rule: rule})
	}
	var se *schema.Error
	if errors.As(err, &se) { // positioned already (a custom generator)
		c.diags = append(c.diags, se.Diags...)
		if len(fs) == 0 {
			return c
		}
		// Files beside the errors (a custom generator's that it did not
		// refuse) are checked too, for their clashes in the same round.
		err = nil
	}
	if fe, ok := artifact.AsFieldError(err); ok {
		// Positioned like a schema error; the context a generator
		// wrapped around it ("host app1: …") stays in the message.
		d := s.At(fe.Path)
		d.Severity = "error"
		d.Message = s.Name + "/" + kind + ": " + strings.Replace(err.Error(), fe.Path+": ", "", 1)
		c.diags = append(c.diags, d)
		return c
	}
	if err != nil {
		fail(fmt.Sprintf("%s/%s: %v", s.Name, kind, err), "")
		return c
	}
	c.files = make([]artifact.File, 0, len(fs))
	// A fleet's hosts share their paths: each is checked once (up to a
	// few hundred paths; a kind with a path per host checks each).
	clean := map[string]bool{}
	for _, f := range fs {
		f.Kind = kind
		if !clean[f.Path] {
			if err := artifact.CheckPath(f.Path); err != nil {
				fail(s.Name+"/"+cmp.Or(f.Host, "-")+"/"+kind+": "+err.Error(), "path-escape")
				continue
			}
			if len(clean) < 256 {
				clean[f.Path] = true
			}
		}
		if f.Host == "" && (f.Path == "hosts" || strings.HasPrefix(f.Path, "hosts/")) {
			fail(s.Name+"/-/"+kind+": "+f.Path+": out/"+s.Name+"/hosts/ holds the hosts' files", "path-escape")
			continue
		}
		if f.Host == "" && f.Path == "manifest.json" {
			fail(s.Name+"/-/"+kind+": "+f.Path+": out/"+s.Name+"/manifest.json is the stack's manifest", "path-escape")
			continue
		}
		if f.Host != "" && s.Hosts[f.Host] == nil {
			fail(s.Name+"/"+f.Host+"/"+kind+": unknown host", "")
			continue
		}
		if f.Mode == 0 {
			f.Mode = 0o644
		}
		if f.Owner == "" {
			f.Owner = "root:root"
		}
		c.files = append(c.files, f)
	}
	slices.SortStableFunc(c.files, compareFiles)
	return c
}

// mergeChecked merges sorted results, in their order, into one sorted
// list: of files with the same host and path, the first (in result
// order, then in its generator's order) is kept and every later one is a
// clash.
func mergeChecked(s *schema.Stack, rs []checked, locate func(kind, path string) (schema.Diagnostic, bool)) ([]artifact.File, []schema.Diagnostic) {
	var diags []schema.Diagnostic
	for _, r := range rs {
		diags = append(diags, r.diags...)
	}
	// The results are merged as runs into one buffer (a second one, as
	// a pairwise merge takes, is tens of MB at 10,000 hosts): the next
	// file is the least of the runs' heads, of equal paths the earliest
	// run's, so equal paths stay in result order.
	var runs [][]artifact.File
	n := 0
	for _, r := range rs {
		if len(r.files) > 0 {
			runs = append(runs, r.files)
			n += len(r.files)
		}
	}
	files := make([]artifact.File, 0, n)
	// heap holds the runs not yet used up, least head first (ties: the
	// earlier run).
	heap := make([]int, len(runs))
	for i := range heap {
		heap[i] = i
	}
	less := func(a, b int) bool {
		c := compareFiles(runs[heap[a]][0], runs[heap[b]][0])
		return c < 0 || c == 0 && heap[a] < heap[b]
	}
	down := func(i int) {
		for {
			m := i
			if l := 2*i + 1; l < len(heap) && less(l, m) {
				m = l
			}
			if r := 2*i + 2; r < len(heap) && less(r, m) {
				m = r
			}
			if m == i {
				return
			}
			heap[i], heap[m] = heap[m], heap[i]
			i = m
		}
	}
	for i := len(heap)/2 - 1; i >= 0; i-- {
		down(i)
	}
	for len(heap) > 0 {
		r := heap[0]
		files = append(files, runs[r][0])
		if runs[r] = runs[r][1:]; len(runs[r]) == 0 {
			heap[0] = heap[len(heap)-1]
			heap = heap[:len(heap)-1]
		}
		down(0)
	}
	out := files[:0] // written behind the reading
	// A clash is said once for all the hosts it is on: a custom
	// generator's path on a fleet of thousands was as many lines.
	type clash struct {
		kind, path, other string
		hosts             []string
	}
	var clashes []*clash
	at := map[[3]string]*clash{}
	for _, f := range files {
		if n := len(out); n > 0 && compareFiles(out[n-1], f) == 0 {
			k := [3]string{f.Kind, f.Path, out[n-1].Kind}
			c := at[k]
			if c == nil {
				c = &clash{kind: f.Kind, path: f.Path, other: out[n-1].Kind}
				at[k] = c
				clashes = append(clashes, c)
			}
			c.hosts = append(c.hosts, f.Host)
			continue
		}
		out = append(out, f)
	}
	for _, c := range clashes {
		d := schema.Diagnostic{File: s.Source, Severity: "error", Rule: "path-clash"}
		if locate != nil {
			if p, ok := locate(c.kind, c.path); ok {
				d.File, d.Line, d.Column = p.File, p.Line, p.Column
			}
		}
		d.Message = fmt.Sprintf("%s/%s/%s: %s is also written by the %s generator%s", s.Name, cmp.Or(c.hosts[0], "-"), c.kind, c.path, c.other, artifact.AndSoOn(c.hosts))
		diags = append(diags, d)
	}
	if len(out) == 0 {
		return nil, diags // as before the merge: no files is nil
	}
	return out, append(diags, fileUnderFile(s, out)...)
}

// fileUnderFile finds paths that need another path of the same host to
// be both a file and a directory (etc/x and etc/x/y): no file system
// holds both. files are sorted by host; hosts are checked on every core.
func fileUnderFile(s *schema.Stack, files []artifact.File) []schema.Diagnostic {
	var starts []int // where each host's files begin
	for i := range files {
		if i == 0 || files[i].Host != files[i-1].Host {
			starts = append(starts, i)
		}
	}
	starts = append(starts, len(files))
	found := make([][]schema.Diagnostic, len(starts)-1)
	par.Each(len(starts)-1, func(h int) {
		// The host's files are sorted by path, one file a path (clashes
		// are gone): a directory's file, if any, is found by halving.
		group := files[starts[h]:starts[h+1]]
		for _, f := range group {
			for d := path.Dir(f.Path); d != "." && d != "/"; d = path.Dir(d) {
				if i, ok := slices.BinarySearchFunc(group, d, func(g artifact.File, p string) int { return cmp.Compare(g.Path, p) }); ok {
					found[h] = append(found[h], schema.Diagnostic{File: s.Source, Severity: "error", Rule: "path-clash",
						Message: fmt.Sprintf("%s/%s/%s: %s needs %s to be a directory, and the %s generator writes a file there", s.Name, cmp.Or(f.Host, "-"), f.Kind, f.Path, d, group[i].Kind)})
				}
			}
		}
	})
	var diags []schema.Diagnostic
	for _, d := range found {
		diags = append(diags, d...)
	}
	return diags
}

// RenderAll renders stacks that list no custom generators (tests build
// them in memory). A stack that lists some is refused rather than
// rendered without them: its files need the stack file it came from,
// which only a compile of its inputs (CompileInputs) knows.
func RenderAll(stacks []*schema.Stack, opt artifact.Options) ([]*Rendered, error) {
	sets := make(map[*schema.Stack]GeneratorSet, len(stacks))
	for _, s := range stacks {
		if len(s.Generators) > 0 {
			return nil, fmt.Errorf("%s: the stack lists custom generators: compile it from its file", s.Name)
		}
		sets[s] = Builtin()
	}
	return renderAll(stacks, sets, opt)
}

// renderAll renders every stack with its generator set.
func renderAll(stacks []*schema.Stack, sets map[*schema.Stack]GeneratorSet, opt artifact.Options) ([]*Rendered, error) {
	var out []*Rendered
	var diags []schema.Diagnostic
	for _, s := range stacks {
		r, err := sets[s].Render(s, opt)
		if err != nil {
			var se *schema.Error
			if errors.As(err, &se) {
				diags = append(diags, se.Diags...)
				continue
			}
			return nil, err
		}
		out = append(out, r)
	}
	if len(diags) > 0 {
		schema.SortDiagnostics(diags)
		return nil, &schema.Error{Diags: diags}
	}
	return out, nil
}

// ManifestEntry describes one rendered file for push and review.
type ManifestEntry struct {
	Host     string          `json:"host,omitempty"`
	Path     string          `json:"path"`
	Kind     string          `json:"kind"`
	SHA256   string          `json:"sha256"`
	Size     int             `json:"size"`
	Mode     string          `json:"mode"`
	Owner    string          `json:"owner"`
	Validate artifact.Action `json:"validate,omitzero"`
	Reload   artifact.Action `json:"reload,omitzero"`
}

// Equal reports whether e and o describe the same file the same way.
func (e ManifestEntry) Equal(o ManifestEntry) bool {
	return e.Host == o.Host && e.Path == o.Path && e.Kind == o.Kind && e.SHA256 == o.SHA256 && e.Size == o.Size &&
		e.Mode == o.Mode && e.Owner == o.Owner && e.Validate.Equal(o.Validate) && e.Reload.Equal(o.Reload)
}

// Manifest lists a stack's files. Host files carry their absolute path
// on the host; stack-level files their path under out/<stack>/.
type Manifest struct {
	Stack        string          `json:"stack"`
	Source       string          `json:"source"`
	SourceSHA256 string          `json:"source_sha256"`
	Hosts        []string        `json:"hosts"`
	Files        []ManifestEntry `json:"files"`
}

// ManifestOf is the manifest of a rendered stack. Its Files are in the
// order of r.Files. It is made on each call from r.Files and their
// digests (taken once, while r.Files still hold their contents): a large
// fleet's manifest is not kept in memory.
func ManifestOf(r *Rendered) Manifest {
	m := manifestHead(r)
	m.Files = make([]ManifestEntry, len(r.Files))
	for i := range r.Files {
		m.Files[i] = entryOf(r, i)
	}
	return m
}

// manifestHead is the manifest of r without its Files.
func manifestHead(r *Rendered) Manifest {
	return Manifest{
		Stack:        r.Stack.Name,
		Source:       r.Stack.Source,
		SourceSHA256: r.Stack.SourceDigest,
		Hosts:        r.Stack.HostNames(),
	}
}

// entryOf is the manifest entry of r.Files[i].
func entryOf(r *Rendered, i int) ManifestEntry {
	hashes(r)
	f := &r.Files[i]
	p := f.Path
	if f.Host != "" {
		p = "/" + p
	}
	return ManifestEntry{
		Host: f.Host, Path: p, Kind: f.Kind,
		SHA256: hex.EncodeToString(r.sums[i][:]), Size: r.sizes[i],
		Mode: modeStrings[f.Mode.Perm()], Owner: f.Owner,
		Validate: f.Validate, Reload: f.Reload,
	}
}

// hashes takes the digest and size of each of r's files, once.
func hashes(r *Rendered) {
	r.hashOnce.Do(func() {
		r.sums = make([][sha256.Size]byte, len(r.Files))
		r.sizes = make([]int, len(r.Files))
		// Hashing every file of a large fleet is worth every core.
		par.Each(len(r.Files), func(i int) {
			f := &r.Files[i]
			if f.Handed != nil {
				r.sums[i], r.sizes[i] = f.Handed.SHA256, f.Handed.Size
				return
			}
			r.sums[i], r.sizes[i] = sha256.Sum256(f.Content), len(f.Content)
		})
	})
}

// modeStrings are the manifest's modes ("%04o" of each permission), made
// once rather than once a file.
var modeStrings = func() (m [fs.ModePerm + 1]string) {
	for p := range m {
		m[p] = fmt.Sprintf("%04o", p)
	}
	return m
}()

// Digests finds the sha256 taken of a rendered stack's files,
// so that whatever hashes them again (the writer, to compare with the
// last build's digests) need not. A file is found by halving r.Files,
// which Render leaves sorted by host and path; only files in another
// order take an index of their own.
type Digests struct {
	r     *Rendered
	order []int32 // indices into r.Files by host and path; nil: r.Files is in that order
}

// DigestsOf is the digests of r's files. It hashes them when no one has:
// call it while r.Files still hold their contents.
func DigestsOf(r *Rendered) *Digests {
	hashes(r)
	d := &Digests{r: r}
	if !slices.IsSortedFunc(r.Files, compareFiles) {
		d.order = make([]int32, len(r.Files))
		for i := range d.order {
			d.order[i] = int32(i)
		}
		slices.SortStableFunc(d.order, func(i, j int32) int { return compareFiles(r.Files[i], r.Files[j]) })
	}
	return d
}

// file is the index in r.Files of the k-th file in host and path order.
func (d *Digests) file(k int) int {
	if d.order == nil {
		return k
	}
	return int(d.order[k])
}

// Of is the digest of f, a file of the stack with the same host, path
// and size; ok is false when the stack has no such file, or more than
// one (then the caller hashes f itself).
func (d *Digests) Of(f artifact.File) (sum [sha256.Size]byte, ok bool) {
	if i, ok := d.Index(f); ok && d.r.sizes[i] == len(f.Content) {
		return d.r.sums[i], true
	}
	return sum, false
}

// Sum is the sha256 and size of r.Files[i]'s content.
func (d *Digests) Sum(i int) ([sha256.Size]byte, int) { return d.r.sums[i], d.r.sizes[i] }

// Index is the index in r.Files (and in its manifest's Files) of the
// file with f's host and path; ok is false when there is no such file,
// or more than one.
func (d *Digests) Index(f artifact.File) (int, bool) {
	files := d.r.Files
	k := sort.Search(len(files), func(k int) bool { return compareFiles(files[d.file(k)], f) >= 0 })
	if k == len(files) || compareFiles(files[d.file(k)], f) != 0 || k+1 < len(files) && compareFiles(files[d.file(k+1)], f) == 0 {
		return 0, false
	}
	return d.file(k), true
}

// OutPath is where a rendered file lives under out/.
func OutPath(stack string, f artifact.File) string {
	if f.Host == "" {
		return path.Join(stack, f.Path)
	}
	return path.Join(stack, "hosts", f.Host, f.Path)
}

// TreeOf lays out the rendered stacks as the out/ tree, manifests
// included.
func TreeOf(rs []*Rendered) (Tree, error) {
	t := Tree{}
	for _, r := range rs {
		for _, f := range r.Files {
			if f.Handed != nil {
				return nil, fmt.Errorf("%s: %s was written as it was made: no tree of it (a defect of hacompile)", r.Stack.Name, OutPath(r.Stack.Name, f))
			}
			t[OutPath(r.Stack.Name, f)] = f.Content
		}
		b, err := ManifestJSON(r)
		if err != nil {
			return nil, err
		}
		t[path.Join(r.Stack.Name, "manifest.json")] = b
	}
	return t, nil
}

// ManifestJSON is the bytes of a rendered stack's out/<stack>/manifest.json.
func ManifestJSON(r *Rendered) ([]byte, error) {
	m := manifestHead(r)
	// Each entry takes some 400 bytes. The entries are made one at a
	// time, not as a Manifest's Files.
	b := appendManifestWith(make([]byte, 0, 512+400*len(r.Files)), &m, func(b []byte) []byte {
		if len(r.Files) == 0 {
			return append(b, "[]"...)
		}
		b = append(b, '[')
		for i := range r.Files {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, "\n    "...)
			e := entryOf(r, i)
			b = appendEntryJSON(b, &e)
		}
		return append(b, "\n  ]"...)
	})
	return append(b, '\n'), nil
}

// Result is a successful compile: the rendered stacks and the HA rules'
// warnings and waived findings. It is what every command works from:
// each Rendered carries the generator set that rendered it, and Options
// the Jsonnet inputs it was read with, so whatever renders a stack again
// (push under --root, the runbook's previews, a later system test)
// renders it the same way.
type Result struct {
	Rendered []*Rendered
	Options  Options
	Findings []schema.Diagnostic
	// Sources are the stack files' bytes by name (Stack.Source), for
	// the runbook's source pages.
	Sources map[string][]byte
}

// Compile runs the pipeline up to the in-memory tree for stack files on
// disk: args are files or directories, names are shown relative to base.
func Compile(args []string, base, today string) (*Result, error) {
	return CompileWith(args, base, today, Options{})
}

// CompileWith is Compile with options; o.Jsonnet.JPath are directories
// on disk.
func CompileWith(args []string, base, today string, o Options) (*Result, error) {
	in, o, err := ReadWith(args, base, o)
	if err != nil {
		return nil, err
	}
	return CompileInputsWith(in, today, o)
}

// ReadWith is the reading half of CompileWith: it reads the stack files
// args name and turns o's library directories into paths of the inputs'
// file system. CompileInputsWith compiles what it returns, or any part
// of it.
func ReadWith(args []string, base string, o Options) ([]Input, Options, error) {
	in, err := ReadInputs(args, base)
	if err != nil {
		return nil, o, err
	}
	// ReadInputs reads through os.DirFS("/"): library paths go there too.
	jpath := make([]string, len(o.Jsonnet.JPath))
	for i, d := range o.Jsonnet.JPath {
		fi, err := os.Stat(d)
		if err == nil && !fi.IsDir() {
			err = fmt.Errorf("not a directory")
		}
		if err != nil {
			return nil, o, fmt.Errorf("-J %s: %w", d, unwrapPathErr(err))
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, o, err
		}
		jpath[i] = strings.TrimPrefix(filepath.ToSlash(abs), "/")
	}
	o.Jsonnet.JPath = jpath
	return in, o, nil
}

// CompileInputs loads and validates the inputs, reviews them with the HA
// rules (waivers compared with today, YYYY-MM-DD) and renders them. Any
// error-severity finding fails the compile, and the returned
// *schema.Error carries every finding.
func CompileInputs(in []Input, today string) (*Result, error) {
	return CompileInputsWith(in, today, Options{})
}

// CompileInputsWith is CompileInputs with options: Jsonnet stacks and
// the custom generators stacks list are evaluated with o.Jsonnet, whose
// JPath are paths in the inputs' file system.
func CompileInputsWith(in []Input, today string, o Options) (*Result, error) {
	l, err := schema.NewLoader("")
	if err != nil {
		return nil, err
	}
	stacks, err := Load(l, in, o)
	if err != nil {
		return nil, err
	}
	// Custom generators read their files next to the stack file.
	byName := map[string]Input{}
	for _, f := range in {
		byName[f.Name] = f
	}
	sets := make(map[*schema.Stack]GeneratorSet, len(stacks))
	for _, s := range stacks {
		sets[s] = For(s, byName[s.Source], o)
	}
	var findings []schema.Diagnostic
	failed := false
	for _, s := range stacks {
		found := rules.Check(s, today)
		found = append(found, rules.CheckSource(s, byName[s.Source].Data, found)...)
		for _, d := range found {
			failed = failed || d.Severity == "error"
			findings = append(findings, d)
		}
	}
	for _, d := range rules.CheckAcross(stacks) {
		failed = true
		findings = append(findings, d)
	}
	schema.SortDiagnostics(findings)
	if failed {
		return nil, &schema.Error{Diags: findings}
	}
	if o.Ready != nil {
		o.Ready()
	}
	rs, err := renderAll(stacks, sets, artifact.Options{CheckOnly: o.CheckOnly, Hand: o.Hand, Reuse: o.Reuse})
	if err != nil {
		return nil, err
	}
	// The rendered files, custom generators' included, must agree with
	// the inventory: pools list the app hosts, the health path is served.
	for _, r := range rs {
		for _, d := range rules.CheckRendered(r.Stack, r.Files) {
			failed = failed || d.Severity == "error"
			findings = append(findings, d)
		}
	}
	schema.SortDiagnostics(findings)
	if failed {
		return nil, &schema.Error{Diags: findings}
	}
	sources := make(map[string][]byte, len(in))
	for _, f := range in {
		sources[f.Name] = f.Data
	}
	// What renders the stacks again writes nothing as it goes.
	o.Hand, o.Reuse, o.Ready = nil, nil, nil
	return &Result{Rendered: rs, Options: o, Findings: findings, Sources: sources}, nil
}
