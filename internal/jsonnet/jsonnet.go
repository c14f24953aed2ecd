// Package jsonnet lets stacks and custom generators be written in Jsonnet
// (github.com/google/go-jsonnet).
//
// A Jsonnet stack is evaluated to JSON, which the schema package then
// validates exactly like a CUE stack (schema.Loader.LoadData): same
// schema, defaults, HA rules and output. A custom generator is a Jsonnet
// program a stack lists; it receives the typed, defaulted stack and
// returns files, which join the built-in generators' files.
//
// Evaluation is sandboxed: no native functions, and imports resolve only
// inside the stack file's directory and the library paths (-J), read
// through the file system the stack came from (the disk, or a git tree),
// with symbolic links resolved before the check.
package jsonnet

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	gojsonnet "github.com/google/go-jsonnet"
	"github.com/google/go-jsonnet/ast"

	"github.com/hacompile/hacompile/internal/evalbudget"
	"github.com/hacompile/hacompile/schema"
)

// Options are the jsonnet command line's external variables, top-level
// arguments and library paths.
type Options struct {
	// ExtStr and ExtCode are external variables (std.extVar) as strings
	// and as Jsonnet code; they reach stacks and custom generators.
	ExtStr, ExtCode map[string]string
	// TLAStr and TLACode are top-level arguments of stack files that are
	// functions. Custom generators get their own (stack, host).
	TLAStr, TLACode map[string]string
	// JPath are library directories, as slash paths in the stacks' file
	// system; as with jsonnet -J, the right-most wins.
	JPath []string
}

// Source is a Jsonnet file and where it was read from.
type Source struct {
	// Name is what diagnostics and generated headers call the file.
	Name string
	Data []byte
	// FS and Path locate the file for its imports; a nil FS allows none.
	FS   fs.FS
	Path string
}

// IsJsonnet reports whether a stack file is written in Jsonnet.
func IsJsonnet(name string) bool {
	return slices.Contains([]string{".jsonnet", ".libsonnet"}, path.Ext(name))
}

// newVM returns a VM whose imports go through the sandbox of src, with
// the external variables of o and no native functions.
func newVM(src Source, o Options) (*gojsonnet.VM, *importer) {
	vm := gojsonnet.MakeVM()
	imp := newImporter(src, o.JPath)
	vm.Importer(imp)
	for k, v := range o.ExtStr {
		vm.ExtVar(k, v)
	}
	for k, v := range o.ExtCode {
		vm.ExtCode(k, v)
	}
	return vm, imp
}

// EvalStack evaluates a Jsonnet stack file to JSON, and returns where it
// writes each field it writes literally, for schema.Loader.LoadData.
// Errors are a *schema.Error positioned in the Jsonnet sources.
func EvalStack(src Source, o Options) ([]byte, map[string]schema.Position, error) {
	vm, imp := newVM(src, o)
	for k, v := range o.TLAStr {
		vm.TLAVar(k, v)
	}
	for k, v := range o.TLACode {
		vm.TLACode(k, v)
	}
	if err := o.checkCode(src.Name); err != nil {
		return nil, nil, err
	}
	var ne *NestingError
	if errors.As(checkNesting(src.Data), &ne) {
		return nil, nil, &schema.Error{Diags: []schema.Diagnostic{{File: src.Name, Line: ne.Line, Column: ne.Column, Severity: "error",
			Message: fmt.Sprintf("brackets nest deeper than %d levels (the limit of a Jsonnet file)", MaxNesting)}}}
	}
	node, err := gojsonnet.SnippetToAST(src.Name, string(src.Data))
	if err != nil {
		return nil, nil, toError(err, src.Name, imp)
	}
	out, err := evalbudget.Run(src.Name, "Jsonnet", func() (string, error) { return vm.Evaluate(node) })
	if err != nil {
		var re gojsonnet.RuntimeError
		if errors.As(err, &re) && re.Msg == "Missing argument: stack" {
			re.Msg += " (is this a custom generator? Every .jsonnet file in a stacks directory is built as a stack: keep generators in a subdirectory, such as stacks/generators/)"
			err = re
		}
		if errors.As(err, &re) && (strings.HasPrefix(re.Msg, "function has no parameter ") || strings.HasPrefix(re.Msg, "Missing argument: ")) && !located(re) {
			// The top-level arguments against the file's function: said
			// at its parameters, with the flags that give them.
			d := schema.Diagnostic{File: src.Name, Severity: "error", Message: re.Msg}
			if !strings.HasPrefix(re.Msg, "Missing argument: stack ") {
				d.Message += " (top-level arguments are given with --tla-str or --tla-code)"
			}
			if fn := topFunction(node); fn != nil {
				d.Line, d.Column = fn.Loc().Begin.Line, fn.Loc().Begin.Column
			}
			return nil, nil, &schema.Error{Diags: []schema.Diagnostic{d}}
		}
		return nil, nil, toError(err, src.Name, imp)
	}
	return []byte(out), locate(node, src.Name, vm), nil
}

// located reports whether a frame of re is at a place in a file: a call
// inside the program is, the call of the file's function with the
// top-level arguments is not.
func located(re gojsonnet.RuntimeError) bool {
	for _, f := range re.StackTrace {
		if f.Loc.IsSet() {
			return true
		}
	}
	return false
}

// topFunction is the function a Jsonnet file evaluates to, through its
// locals and parentheses, or nil when it is not one.
func topFunction(n ast.Node) *ast.Function {
	for range maxDepth {
		switch x := n.(type) {
		case *ast.Local:
			n = x.Body
		case *ast.Parens:
			n = x.Inner
		case *ast.Function:
			return x
		default:
			return nil
		}
	}
	return nil
}

// checkCode holds the Jsonnet code given on the command line (--ext-code,
// --tla-code) to a file's nesting limit: the parser would recurse into it
// as deeply as into a file. file names the stack being evaluated.
func (o Options) checkCode(file string) error {
	for _, set := range []struct {
		flag string
		code map[string]string
	}{{"--ext-code", o.ExtCode}, {"--tla-code", o.TLACode}} {
		for _, k := range slices.Sorted(maps.Keys(set.code)) {
			var ne *NestingError
			if errors.As(checkNesting([]byte(set.code[k])), &ne) {
				return &schema.Error{Diags: []schema.Diagnostic{{File: file, Severity: "error",
					Message: fmt.Sprintf("%s %s: %v", set.flag, k, ne)}}}
			}
		}
	}
	return nil
}

func toError(err error, file string, imp *importer) error {
	var se *schema.Error
	if errors.As(err, &se) {
		return err
	}
	d := diagnose(err, file, imp)
	d.Severity = "error"
	return &schema.Error{Diags: []schema.Diagnostic{d}}
}
