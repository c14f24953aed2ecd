package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/evalbudget"
	"github.com/hacompile/hacompile/internal/jsonnet"
	"github.com/hacompile/hacompile/internal/outdir"
	"github.com/hacompile/hacompile/schema"
	"github.com/hacompile/hacompile/site"
)

// compiled is a build's compile: the stacks rendered, and the stacks
// kept — left unloaded and unrendered because their inputs are those of
// the build that wrote their files to out/, and out/ still holds those
// files untouched (outdir.StackRecord).
type compiled struct {
	res      *compile.Result
	kept     map[string]*outdir.StackRecord // by stack file name
	keptSite map[string]*site.StackData     // the kept stacks' runbook data, by stack name
	keys     map[string]string              // record key by stack file name; "" never kept
	names    []string                       // every stack file's name, in build order
	findings []schema.Diagnostic            // of every stack, rendered or kept
}

// compileBuild compiles the stacks args name for a build into out, with
// the per-stack records when keep is set (a build without --check or
// --no-cache), prints the HA rules' findings and applies --strict. A
// record's files are checked against listing, out's, when given. hand
// takes the cloud-init documents as they are made; with ow, out's
// writer, a document whose inputs are as its last build's is kept
// instead of made (outWriter.reuse).
func compileBuild(cmd *cobra.Command, args []string, out string, keep, printFindings bool, ow *outWriter, hand func(*schema.Stack, artifact.File) (artifact.File, error), listing *outdir.Listing) (*compiled, error) {
	if len(args) == 0 {
		args = []string{"stacks"}
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	o, err := compileOptions(cmd)
	if err != nil {
		return nil, err
	}
	jpath := slices.Clone(o.Jsonnet.JPath)
	in, o, err := compile.ReadWith(args, wd, o)
	if err != nil {
		return nil, err
	}
	o.Hand = hand
	if ow != nil {
		o.Reuse, o.Ready = ow.reuse, ow.prepare
	}
	today := time.Now().UTC().Format(time.DateOnly)
	c := &compiled{kept: map[string]*outdir.StackRecord{}, keptSite: map[string]*site.StackData{}, keys: map[string]string{}}
	for _, f := range in {
		c.names = append(c.names, f.Name)
	}
	if keep {
		c.keys = stackKeys(cmd, append(slices.Clone(args), jpath...), out, in, o, today)
	}
	var fresh []compile.Input
	for _, f := range in {
		if k := c.keys[f.Name]; k != "" {
			if rec, ok := outdir.LoadStackRecord(out, f.Name, k, listing); ok {
				if sd, err := site.DecodeStackData(rec.Site); err == nil {
					c.kept[f.Name], c.keptSite[rec.Name] = rec, sd
					continue
				}
			}
		}
		fresh = append(fresh, f)
	}
	res, err := compile.CompileInputsWith(fresh, today, o)
	if err != nil && ow != nil && ow.failure() != nil {
		// out/ could not be written: compiling every stack again would
		// meet the same, and the caller says it once.
		return nil, err
	}
	if len(c.kept) > 0 && (err != nil || clashes(res, c.kept)) {
		// A stack that fails, or one that shares a name or a VRRP router
		// id with a kept stack: compile them all, so that the build says
		// what a build of every stack says.
		c.kept, c.keptSite = map[string]*outdir.StackRecord{}, map[string]*site.StackData{}
		res, err = compile.CompileInputsWith(in, today, o)
	}
	if err != nil {
		return nil, err
	}
	c.res = res
	c.findings = slices.Clone(res.Findings)
	for _, rec := range c.kept {
		c.findings = append(c.findings, rec.Findings...)
	}
	schema.SortDiagnostics(c.findings)
	if strict, _ := cmd.Flags().GetBool("strict"); strict {
		for _, d := range c.findings {
			if d.Severity == "warning" {
				return nil, &schema.Error{Diags: c.findings}
			}
		}
	}
	if printFindings {
		for _, d := range c.findings {
			fmt.Fprintln(cmd.ErrOrStderr(), d.String())
		}
	}
	return c, nil
}

// clashes reports whether a rendered stack shares its name or its VRRP
// router id with a kept one (what the checks across stacks look at).
func clashes(res *compile.Result, kept map[string]*outdir.StackRecord) bool {
	names, ids := map[string]bool{}, map[int]bool{}
	for _, rec := range kept {
		names[rec.Name] = true
		if rec.RouterID != 0 {
			ids[rec.RouterID] = true
		}
	}
	for _, r := range res.Rendered {
		if names[r.Stack.Name] {
			return true
		}
		if v := r.Stack.Balancer.VRRP; v != nil && ids[v.RouterID] {
			return true
		}
	}
	return false
}

// stackKeys is the record key of every CUE stack file: everything its
// output depends on — this binary, the working and output directories,
// the date (waivers expire), --strict, the Jsonnet options, the stack
// file's name and bytes, and every other file under the stack paths and
// library directories (custom generators, libraries; other stack files
// excepted). Jsonnet stacks, which may import any file, get none: they
// always render.
func stackKeys(cmd *cobra.Command, roots []string, out string, in []compile.Input, o compile.Options, today string) map[string]string {
	keys := map[string]string{}
	self := programID()
	if self == "" {
		return keys
	}
	wd, err := os.Getwd()
	if err != nil {
		return keys
	}
	skip := map[string]bool{}
	for _, f := range in {
		if !jsonnet.IsJsonnet(f.Name) {
			skip["/"+f.Path] = true
		}
	}
	shared, err := outdir.HashInputsExcept(roots, skip)
	if err != nil {
		return keys
	}
	absOut, _ := filepath.Abs(out)
	strict, _ := cmd.Flags().GetBool("strict")
	for _, f := range in {
		if jsonnet.IsJsonnet(f.Name) {
			continue
		}
		sum := sha256.Sum256(f.Data)
		// "stack-record-2" names the record's format (outdir.StackRecord):
		// a change of format changes it, so that an older record is not
		// read.
		keys[f.Name] = outdir.CacheKey("stack-record-2", self, wd, absOut, today, fmt.Sprint(strict),
			fmt.Sprintf("%v", o.Jsonnet), fmt.Sprintf("%v", evalbudget.Limits), shared, f.Name, hex.EncodeToString(sum[:]))
	}
	return keys
}

// recordStacks stores the record of every stack the build rendered
// whose output depends on its own file alone (no imports, no custom
// generators), from the stamps of what the writer left in out.
func recordStacks(out string, c *compiled, rb *site.Runbook, w *outdir.Writer) {
	for _, r := range c.res.Rendered {
		s := r.Stack
		key := c.keys[s.Source]
		if key == "" || len(s.Generators) > 0 || slices.ContainsFunc(mapValues(s.Positions), func(p schema.Position) bool { return p.File != "" }) {
			continue
		}
		data, err := rb.EncodeStackData(s.Name)
		if err != nil {
			continue
		}
		rec := &outdir.StackRecord{Key: key, Name: s.Name, Source: s.Source, Hosts: len(s.Hosts), Site: data}
		if v := s.Balancer.VRRP; v != nil {
			rec.RouterID = v.RouterID
		}
		for _, d := range c.findings {
			if d.File == s.Source {
				rec.Findings = append(rec.Findings, d)
			}
		}
		// Its files, and its runbook pages (a stack's name is no other's
		// prefix: the slash ends it).
		n, own := w.StampsUnder(s.Name + "/")
		_, pages := w.StampsUnder(site.Dir + "/" + site.StackDir(s.Name) + "/")
		rec.Files = n
		outdir.StoreStackRecord(out, rec, own, pages)
	}
}

func mapValues[K comparable, V any](m map[K]V) []V {
	vs := make([]V, 0, len(m))
	for _, v := range m {
		vs = append(vs, v)
	}
	return vs
}
