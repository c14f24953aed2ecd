package cli

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/evalbudget"
	"github.com/hacompile/hacompile/internal/outdir"
	"github.com/hacompile/hacompile/internal/par"
	"github.com/hacompile/hacompile/schema"
	"github.com/hacompile/hacompile/site"
)

func newBuild() *cobra.Command {
	var out string
	var check, noCache bool
	var output string
	c := &cobra.Command{
		Use:   "build [FILE|DIR]...",
		Short: "Render stacks into out/",
		Long: `Build validates every stack (default: the stacks directory) and renders
each host's files into OUT/<stack>/hosts/<host>/, with OUT/<stack>/manifest.json
listing every file's sha256, mode, owner and reload action. Nothing is written
unless every stack is valid; unchanged files are left untouched and files it
wrote that are no longer produced are removed (OUT/.hacompile.owned records
what it wrote; other files stay). A non-empty OUT that hacompile did not
write is refused.`,
		Example: `  hacompile build
  hacompile build --check          # CI: fail when the committed out/ is stale
  hacompile build stacks/shop.cue --out /tmp/out
  hacompile build --output json | jq '.stacks[] | select(.written > 0) | .name'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageError{fmt.Errorf("--output: want text or json, got %q", output)}
			}
			if out == "" {
				return usageError{errors.New("--out: want a directory, got ''")}
			}
			if output == "json" {
				defer budgetInJSON(cmd, func(d schema.Diagnostic) any {
					return &buildReport{Stacks: []buildStack{}, Removed: []buildStack{}, Diagnostics: []schema.Diagnostic{d}}
				})()
			}
			rep := &buildReport{OK: true, Stacks: []buildStack{}, Removed: []buildStack{}, Diagnostics: []schema.Diagnostic{}}
			err := runBuild(cmd, args, out, check, noCache, output == "text", rep)
			if output == "text" {
				if err == nil && !check {
					rep.writeText(cmd.OutOrStdout())
				}
				return err
			}
			var ue usageError
			if errors.As(err, &ue) {
				return err
			}
			if err != nil {
				rep.OK = false
				var se *schema.Error
				switch {
				case errors.As(err, &se):
					rep.Diagnostics = se.Diags
				case errors.Is(err, silentError{}):
					// --check found out/ stale: rep.Check says how.
				default:
					rep.Diagnostics = append(rep.Diagnostics, errorDiagnostic(err))
				}
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			if err := enc.Encode(rep); err != nil {
				return err
			}
			if !rep.OK {
				return silentError{}
			}
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "out", "output directory")
	c.Flags().BoolVar(&check, "check", false, "render in memory and exit 1 if OUT differs, listing stale, missing and extra files")
	c.Flags().BoolVar(&noCache, "no-cache", false, "render everything: read no record of earlier builds, and read every directory of OUT")
	c.Flags().StringVarP(&output, "output", "o", "text", "output format: text, or json (what was written, unchanged and removed per stack, the findings, --check's files)")
	addStrictFlag(c)
	addStackFlags(c)
	return c
}

// buildReport is what a build did, for --output json (and, line by
// line, the text output).
type buildReport struct {
	OK bool `json:"ok"`
	// Cached: nothing changed since the last build, which is reported
	// again without rendering.
	Cached bool         `json:"cached"`
	Stacks []buildStack `json:"stacks"`
	// Site is the runbook's line; null when it was not rebuilt (named
	// stack files).
	Site *buildStack `json:"site"`
	// Removed are directories of out/ no longer built (a stack deleted),
	// with the files removed.
	Removed []buildStack `json:"removed_stacks"`
	Totals  buildCounts  `json:"totals"`
	// Check is --check's finding: out/'s files that differ.
	Check       *buildCheck         `json:"check,omitempty"`
	Diagnostics []schema.Diagnostic `json:"diagnostics"`
}

type buildCounts struct {
	Written   int `json:"written"`
	Unchanged int `json:"unchanged"`
	Removed   int `json:"removed"`
}

type buildStack struct {
	Name string `json:"name"`
	// Hosts is -1 for the runbook and removed directories.
	Hosts int `json:"hosts"`
	Files int `json:"files"`
	buildCounts
	// Kept: not rendered, unchanged since its last build.
	Kept bool `json:"kept"`
}

type buildCheck struct {
	Stale   []string `json:"stale"`
	Missing []string `json:"missing"`
	Extra   []string `json:"extra"`
}

func (r *buildReport) add(s outdir.StackSummary, st *outdir.Stats, kept bool) buildStack {
	b := buildStack{Name: s.Name, Hosts: s.Hosts, Files: s.Files, buildCounts: buildCounts{st.Written, st.Unchanged, st.Removed}, Kept: kept}
	r.Totals.Written += st.Written
	r.Totals.Unchanged += st.Unchanged
	r.Totals.Removed += st.Removed
	return b
}

// writeText is the build's one line per stack.
func (r *buildReport) writeText(w io.Writer) {
	for _, s := range r.Stacks {
		sum, st := outdir.StackSummary{Name: s.Name, Hosts: s.Hosts, Files: s.Files}, &outdir.Stats{Written: s.Written, Unchanged: s.Unchanged, Removed: s.Removed}
		if s.Kept {
			printStackLine(w, sum, st, " (kept: not rendered, unchanged since its last build)")
		} else {
			printStackLine(w, sum, st)
		}
	}
	// A build of named stack files leaves the runbook (its record, which
	// a build with nothing changed reports again, has no line for it).
	if r.Site == nil {
		fmt.Fprintf(w, "%s: not rebuilt (named stack files only; 'hacompile build' renders the runbook)\n", site.Dir)
	} else if r.Site.Files > 0 || r.Site.Removed > 0 {
		printStackLine(w, outdir.StackSummary{Name: r.Site.Name, Hosts: -1}, &outdir.Stats{Written: r.Site.Written, Unchanged: r.Site.Unchanged, Removed: r.Site.Removed})
	}
	for _, s := range r.Removed {
		fmt.Fprintf(w, "%s: removed (%d files)\n", s.Name, s.Removed)
	}
}

// runBuild is build: it writes out (or, with check, compares it) and
// fills rep; printFindings prints the HA findings to stderr as they are
// known (text output), else they go into rep.
func runBuild(cmd *cobra.Command, args []string, out string, check, noCache, printFindings bool, rep *buildReport) error {
	// One build writes an out/ at a time; --check waits for it.
	defer outdir.LockOut(out, !check, func() {
		fmt.Fprintf(cmd.ErrOrStderr(), "hacompile: waiting for another build of %s to finish\n", out)
	})()
	if !check {
		// Records of output directories no build has used for days go
		// (at most once a day).
		defer outdir.TrimCache(time.Now())
	}
	key := ""
	if !check && !noCache {
		key = buildKey(cmd, args, out)
		if rec, ok := outdir.LoadCache(out, key); key != "" && ok {
			// Nothing changed since the last build: say what it
			// would have said, without rendering.
			rep.Cached = true
			for _, d := range rec.Findings {
				if printFindings {
					fmt.Fprintln(cmd.ErrOrStderr(), d.String())
				}
				rep.Diagnostics = append(rep.Diagnostics, d)
			}
			for _, s := range rec.Stacks {
				b := rep.add(s, &outdir.Stats{Unchanged: s.Files}, false)
				if s.Hosts < 0 {
					rep.Site = &b
				} else {
					rep.Stacks = append(rep.Stacks, b)
				}
			}
			return nil
		}
	}
	// Named stack files build just their own directories of OUT:
	// the other stacks' output and the runbook (which covers every
	// stack) are left as they are.
	named := namesFiles(args)
	// What out holds is read while the stacks compile: what its owner
	// record names, when its last build finished (with --no-cache,
	// every directory).
	startListing := outdir.StartListing
	if noCache {
		startListing = outdir.StartListingAll
	}
	var listing *outdir.Listing
	var index *outdir.IndexLoad // the last build's digests (not with --no-cache)
	if !check && !named {
		listing = startListing(out)
		if !noCache {
			index = outdir.StartIndex(out)
		}
	}
	// A full build keeps the stacks whose inputs and output are
	// as its last build left them (--check and --no-cache render
	// every stack).
	// A full build writes the cloud-init documents as they are made.
	var ow *outWriter
	var hand func(*schema.Stack, artifact.File) (artifact.File, error)
	if listing != nil {
		ow = newOutWriter(listing, index)
		hand = ow.hand
	}
	// A full --check compares each file as the build makes it, the
	// cloud-init documents as the compile makes them.
	var chk *outdir.Checker
	if check && !named {
		var err error
		if chk, err = outdir.NewChecker(out); err != nil {
			return err
		}
		hand = checkHand(chk)
	}
	c, err := compileBuild(cmd, args, out, !check && !noCache && !named, printFindings, ow, hand, listing)
	if err != nil {
		if ow != nil {
			ow.abort()
			// The compile failed because out/ could not be written
			// (its stacks and hosts each met the same error): say
			// what is wrong with out/, once.
			if ferr := ow.failure(); ferr != nil {
				return ferr
			}
		}
		return err
	}
	rep.Diagnostics = append(rep.Diagnostics, c.findings...)
	res := c.res
	rs := res.Rendered
	var scope []string
	if named {
		for _, r := range rs {
			scope = append(scope, r.Stack.Name)
		}
	}
	var stats map[string]*outdir.Stats
	var all written // out's files, when the build wrote all of it
	switch {
	case check:
		for _, r := range rs {
			rep.Stacks = append(rep.Stacks, buildStack{Name: r.Stack.Name, Hosts: len(r.Stack.Hosts), Files: len(r.Files) + 1})
		}
		if chk != nil {
			if _, err := streamTree(c, func() (treeSink, error) { return chk, nil }); err != nil {
				return err
			}
			return reportDiff(cmd, out, chk.Diff(), printFindings, rep)
		}
		tree, err := compile.TreeOf(rs)
		if err != nil {
			return err
		}
		d, err := outdir.Compare(out, tree, scope...)
		if err != nil {
			return err
		}
		return reportDiff(cmd, out, d, printFindings, rep)
	case scope != nil:
		tree, err := compile.TreeOf(rs)
		if err != nil {
			return err
		}
		if stats, err = outdir.WriteListed(startListing(out), tree, scope...); err != nil {
			return err
		}
	default:
		// Not --check nor named files: ow was made before the compile.
		if stats, all, err = writeAll(out, ow, c); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(c.names))
	rec := &outdir.CacheRecord{Key: key, Findings: c.findings}
	// Every file of the tree was either written or found unchanged.
	count := func(top string) int {
		st := statsOf(stats, top)
		return st.Written + st.Unchanged
	}
	rendered := map[string]*compile.Rendered{}
	for _, r := range rs {
		rendered[r.Stack.Source] = r
	}
	for _, src := range c.names {
		var sum outdir.StackSummary
		if r := rendered[src]; r != nil {
			sum = outdir.StackSummary{Name: r.Stack.Name, Hosts: len(r.Stack.Hosts), Files: count(r.Stack.Name)}
		} else if k := c.kept[src]; k != nil {
			sum = outdir.StackSummary{Name: k.Name, Hosts: k.Hosts, Files: count(k.Name)}
		} else {
			continue
		}
		rep.Stacks = append(rep.Stacks, rep.add(sum, statsOf(stats, sum.Name), c.kept[src] != nil))
		rec.Stacks = append(rec.Stacks, sum)
		names = append(names, sum.Name)
	}
	if scope == nil {
		sum := outdir.StackSummary{Name: site.Dir, Hosts: -1, Files: count(site.Dir)}
		b := rep.add(sum, statsOf(stats, site.Dir), false)
		rep.Site = &b
		if stats[site.Dir] != nil {
			rec.Stacks = append(rec.Stacks, sum)
		}
	}
	names = append(names, site.Dir)
	for _, top := range sortedStatKeys(stats) {
		if !slices.Contains(names, top) && stats[top].Removed > 0 {
			rep.Removed = append(rep.Removed, rep.add(outdir.StackSummary{Name: top, Hosts: -1}, &outdir.Stats{Removed: stats[top].Removed}, false))
		}
	}
	switch {
	case key == "":
	case all.whole:
		outdir.StoreCacheDigest(out, rec, all.files, all.digest)
	default:
		outdir.StoreCache(out, rec, nil)
	}
	return nil
}

// reportDiff is build --check's verdict: it lists every stale, missing
// and extra file under out and fails when there is one.
func reportDiff(cmd *cobra.Command, out string, d outdir.Diff, text bool, rep *buildReport) error {
	rep.Check = &buildCheck{Stale: orEmpty(d.Stale), Missing: orEmpty(d.Missing), Extra: orEmpty(d.Extra)}
	if d.Empty() {
		return nil
	}
	if !text {
		return silentError{}
	}
	stderr := cmd.ErrOrStderr()
	for _, p := range d.Stale {
		fmt.Fprintf(stderr, "stale:   %s/%s\n", out, p)
	}
	for _, p := range d.Missing {
		fmt.Fprintf(stderr, "missing: %s/%s\n", out, p)
	}
	for _, p := range d.Extra {
		fmt.Fprintf(stderr, "extra:   %s/%s\n", out, p)
	}
	fmt.Fprintf(stderr, "hacompile: %s is out of date (%d stale, %d missing, %d extra)\nhacompile: hint: run 'hacompile build' and commit %s\n",
		out, len(d.Stale), len(d.Missing), len(d.Extra), out)
	return silentError{}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// writeAll makes out hold the whole tree of a compile: the kept stacks'
// files stay, each runbook page is written as soon as it is rendered,
// and each rendered file as soon as no page left to render reads it
// (site.Options.Done), after which it is dropped from memory. Then it
// stores the digest index of out and each stack's record (recordStacks),
// side by side. It returns what the writer did and what it left in out.
func writeAll(out string, ow *outWriter, c *compiled) (map[string]*outdir.Stats, written, error) {
	var w *outdir.Writer
	rb, err := streamTree(c, func() (treeSink, error) {
		var err error
		if w, err = ow.get(); err != nil {
			return nil, err
		}
		// A kept stack's files stay as they are.
		for _, rec := range c.kept {
			for p, st := range rec.Stamps {
				if err := w.Keep(p, st); err != nil {
					return nil, err
				}
			}
		}
		return w, nil
	})
	if err != nil {
		ow.abort()
		return nil, written{}, err
	}
	stats, err := w.Finish()
	if err != nil {
		return nil, written{}, err
	}
	// All three only read what the writer holds now; at 10,000 hosts
	// each takes a tenth of a second or more.
	var files int
	var digest string
	stores := []func(){w.StoreIndex, func() { recordStacks(out, c, rb, w) }, func() { files, digest = w.StampsDigest() }}
	par.Each(len(stores), func(i int) { stores[i]() })
	return stats, written{whole: true, files: files, digest: digest}, nil
}

// written is what a build's writer left in out (the writer owns all of
// out: what it wrote or kept is all there is): the number of files and
// their stamps' digest for the build's record (outdir.StoreCacheDigest).
type written struct {
	whole  bool // a writer of all of out wrote it
	files  int
	digest string
}

// treeSink takes the files of out/'s tree as a build makes them: the
// writer of out/, or the checker of build --check.
type treeSink interface {
	Put(p string, b []byte) error
	PutSum(p string, b []byte, sum [sha256.Size]byte) error
}

// keyedTree is a treeSink that also keeps the keys of pages' inputs
// (the writer of out/; not build --check, which makes every page).
type keyedTree interface {
	treeSink
	PutKeyed(p string, b []byte, key [sha256.Size]byte) error
	Reuse(p string, key [sha256.Size]byte) (bool, error)
}

// siteSink is a keyedTree taking the runbook's pages, by their paths
// under site.Dir.
type siteSink struct{ t keyedTree }

func (s siteSink) Put(p string, b []byte) error { return s.t.Put(path.Join(site.Dir, p), b) }

func (s siteSink) PutKeyed(p string, b []byte, key [sha256.Size]byte) error {
	return s.t.PutKeyed(path.Join(site.Dir, p), b, key)
}

func (s siteSink) Reuse(p string, key [sha256.Size]byte) (bool, error) {
	return s.t.Reuse(path.Join(site.Dir, p), key)
}

// programID identifies this program's build for keys of what it renders
// (outdir.BinaryID), or "" when it cannot tell: then nothing is reused.
// Found once: without a build ID in the binary it is the hash of the
// whole file.
var programID = sync.OnceValue(func() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	id, err := outdir.BinaryID(exe)
	if err != nil {
		return ""
	}
	return id
})

// streamTree hands every file of a compile's out/ tree to the sink open
// returns (called once the runbook's inputs are checked): each runbook
// page as it is rendered, each rendered file as soon as no page left to
// render reads it, after which it is dropped from memory, and the
// manifests last. Files the compile handed over as it made them
// (artifact.Options.Hand) went to the sink then.
func streamTree(c *compiled, open func() (treeSink, error)) (*site.Runbook, error) {
	res := c.res
	var w treeSink
	var handed atomic.Int64
	// The manifests hashed every file already: the writer compares
	// those digests with the last build's, not new ones.
	digests := map[*compile.Rendered]*compile.Digests{}
	for _, r := range res.Rendered {
		digests[r] = compile.DigestsOf(r)
	}
	put := func(r *compile.Rendered, idx []int) error {
		handed.Add(int64(len(idx)))
		errs := make([]error, len(idx))
		d := digests[r]
		par.Each(len(idx), func(k int) {
			f := &r.Files[idx[k]]
			p := compile.OutPath(r.Stack.Name, *f)
			if sum, size := d.Sum(idx[k]); size == len(f.Content) {
				errs[k] = w.PutSum(p, f.Content, sum)
			} else {
				errs[k] = w.Put(p, f.Content)
			}
		})
		return joinDistinct(errs)
	}
	// Files handed over as they were made are not handed back.
	for _, r := range res.Rendered {
		for _, f := range r.Files {
			if f.Handed != nil {
				handed.Add(1)
			}
		}
	}
	rb, err := site.Prepare(res, site.Options{Kept: c.keptSite, Done: put})
	if err != nil {
		return nil, err
	}
	if w, err = open(); err != nil {
		return nil, err
	}
	if kt, ok := w.(keyedTree); ok {
		// The writer keeps the pages whose inputs are as the last
		// build's: they are not made again.
		err = rb.RenderKeyed(programID(), siteSink{kt})
	} else {
		err = rb.RenderTo(func(p string, b []byte) error { return w.Put(path.Join(site.Dir, p), b) })
	}
	if err != nil {
		return nil, err
	}
	// The manifests after the runbook, which has dropped the rendered
	// files by then: a large fleet's manifest is tens of MB of JSON.
	total := 0
	for _, r := range res.Rendered {
		b, err := compile.ManifestJSON(r)
		if err == nil {
			err = w.Put(path.Join(r.Stack.Name, "manifest.json"), b)
		}
		if err != nil {
			return nil, err
		}
		total += len(r.Files)
	}
	if int(handed.Load()) != total {
		return nil, fmt.Errorf("site: %d of %d rendered files were handed back to be written (a defect of hacompile)", handed.Load(), total)
	}
	return rb, nil
}

// joinDistinct is errors.Join of errs with each error text once: the
// files of one directory of out/ that cannot be made all meet the same
// error.
func joinDistinct(errs []error) error {
	var distinct []error
	for _, err := range errs {
		if err != nil && !slices.ContainsFunc(distinct, func(e error) bool { return e.Error() == err.Error() }) {
			distinct = append(distinct, err)
		}
	}
	return errors.Join(distinct...)
}

// namesFiles reports whether any argument is a stack file rather than a
// directory of them.
func namesFiles(args []string) bool {
	for _, a := range args {
		if fi, err := os.Stat(a); err == nil && !fi.IsDir() {
			return true
		}
	}
	return false
}

func statsOf(m map[string]*outdir.Stats, k string) *outdir.Stats {
	if st := m[k]; st != nil {
		return st
	}
	return &outdir.Stats{}
}

// printStackLine is build's one line per stack (Hosts < 0: the site).
func printStackLine(w io.Writer, s outdir.StackSummary, st *outdir.Stats, note ...string) {
	if s.Hosts < 0 {
		fmt.Fprintf(w, "%s: %d files written, %d unchanged, %d removed\n", s.Name, st.Written, st.Unchanged, st.Removed)
		return
	}
	hosts := "hosts"
	if s.Hosts == 1 {
		hosts = "host"
	}
	fmt.Fprintf(w, "%s: %d %s, %d files written, %d unchanged, %d removed%s\n", s.Name, s.Hosts, hosts, st.Written, st.Unchanged, st.Removed, strings.Join(note, ""))
}

// buildKey identifies everything a build's output depends on: this
// binary, the working directory, the arguments and flags, the date
// (waivers expire) and every file under the stack paths (a named stack
// file's whole directory, where its imports and custom generators are)
// and -J directories. "" when it cannot be computed: then the build
// renders.
func buildKey(cmd *cobra.Command, args []string, out string) string {
	if len(args) == 0 {
		args = []string{"stacks"}
	}
	self := programID()
	if self == "" {
		return ""
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	o, err := compileOptions(cmd)
	if err != nil {
		return ""
	}
	inputs, err := outdir.HashInputs(append(stackDirs(args), o.Jsonnet.JPath...))
	if err != nil {
		return ""
	}
	absOut, _ := filepath.Abs(out)
	strict, _ := cmd.Flags().GetBool("strict")
	// The evaluation budget too: a build run with a tighter one must
	// evaluate within it, not report the last build's result.
	return outdir.CacheKey(self, wd, strings.Join(args, "\x00"), absOut, time.Now().UTC().Format(time.DateOnly),
		fmt.Sprint(strict), fmt.Sprintf("%v", o.Jsonnet), fmt.Sprintf("%v", evalbudget.Limits), inputs)
}

// stackDirs are the directories the stacks args name may read from:
// each directory named, and each named file's own directory (a stack
// imports and runs custom generators from there).
func stackDirs(args []string) []string {
	dirs := make([]string, 0, len(args))
	for _, a := range args {
		if fi, err := os.Stat(a); err == nil && !fi.IsDir() {
			a = filepath.Dir(a)
		}
		if !slices.Contains(dirs, a) {
			dirs = append(dirs, a)
		}
	}
	return dirs
}

func sortedStatKeys(m map[string]*outdir.Stats) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// addStrictFlag adds --strict: HA rule warnings fail like errors.
func addStrictFlag(c *cobra.Command) {
	c.Flags().Bool("strict", false, "fail (exit 1) on HA rule warnings too; waived findings stay accepted")
}

// compileArgs runs the pipeline over args (default: the stacks
// directory) and prints the HA rules' warnings to stderr. checkOnly
// compiles to check only (compile.Options.CheckOnly): the same errors
// and findings, but assembled files may have no content.
func compileArgs(cmd *cobra.Command, args []string, printFindings, checkOnly bool) (*compile.Result, error) {
	res, err := compileStacksWith(cmd, args, checkOnly)
	if err != nil {
		return nil, err
	}
	if strict, _ := cmd.Flags().GetBool("strict"); strict {
		for _, d := range res.Findings {
			if d.Severity == "warning" {
				// Every finding, so the warnings read in context; waived
				// ones stay accepted.
				return nil, &schema.Error{Diags: res.Findings}
			}
		}
	}
	if printFindings {
		for _, d := range res.Findings {
			fmt.Fprintln(cmd.ErrOrStderr(), d.String())
		}
	}
	return res, nil
}
