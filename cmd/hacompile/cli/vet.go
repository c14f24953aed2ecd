package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hacompile/hacompile/schema"
)

type vetStack struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Hosts  int    `json:"hosts"`
	Files  int    `json:"files"`
}

type vetReport struct {
	OK          bool                `json:"ok"`
	Stacks      []vetStack          `json:"stacks"`
	Diagnostics []schema.Diagnostic `json:"diagnostics"`
}

func newVet() *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "vet [FILE|DIR]...",
		Short: "Validate stacks without writing anything",
		Long: `Vet loads and validates stacks, CUE or Jsonnet (default: the stacks directory), and renders
them in memory, reporting every problem with file:line:col or the field path.
It writes nothing. Quiet on success unless --output json is given.`,
		Example: `  hacompile vet
  hacompile vet stacks/shop.cue
  hacompile vet stacks/shop.jsonnet --tla-str domain=staging.example.com
  hacompile vet --output json | jq .diagnostics`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageError{fmt.Errorf("--output: want text or json, got %q", output)}
			}
			if output == "json" {
				defer budgetInJSON(cmd, func(d schema.Diagnostic) any {
					return vetReport{Stacks: []vetStack{}, Diagnostics: []schema.Diagnostic{d}}
				})()
			}
			// Vet reads no file's bytes but the rules': cloud-init
			// documents are checked, not written.
			res, err := compileArgs(cmd, args, output == "text", true)
			if output == "text" {
				return err
			}
			rep := vetReport{OK: err == nil, Stacks: []vetStack{}, Diagnostics: []schema.Diagnostic{}}
			if res != nil {
				rep.Diagnostics = append(rep.Diagnostics, res.Findings...)
				for _, r := range res.Rendered {
					rep.Stacks = append(rep.Stacks, vetStack{Name: r.Stack.Name, Source: r.Stack.Source, Hosts: len(r.Stack.Hosts), Files: len(r.Files)})
				}
			}
			if err != nil {
				var se *schema.Error
				if !errors.As(err, &se) {
					rep.Diagnostics = append(rep.Diagnostics, errorDiagnostic(err))
				} else {
					rep.Diagnostics = se.Diags
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
	c.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	addStrictFlag(c)
	addStackFlags(c)
	return c
}

// errorDiagnostic is an error that is not a stack's diagnostics, as
// --output json reports it: its text, and the hint its text gives on a
// line of its own as the hint field (a message with an embedded
// "hacompile: hint:" line was no use to a program).
func errorDiagnostic(err error) schema.Diagnostic {
	msg, hint, _ := strings.Cut(err.Error(), "\nhacompile: hint: ")
	return schema.Diagnostic{Severity: "error", Message: msg, Hint: hint}
}

// failInJSON ends a command that failed with err as its --output json
// says any failure: doc, its document for err's diagnostics
// (errorDiagnostics), on stdout, indented by indent ("" for a JSON
// line), and a silent failure (exit 1, nothing on stderr). A usage
// error, or no error, is returned as it is.
func failInJSON(cmd *cobra.Command, indent string, err error, doc func([]schema.Diagnostic) any) error {
	var ue usageError
	if err == nil || errors.As(err, &ue) {
		return err
	}
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", indent)
	if err := enc.Encode(doc(errorDiagnostics(err))); err != nil {
		return err
	}
	return silentError{}
}

// errorDiagnostics is any error as --output json reports it: a stack's
// diagnostics as they are, errors joined (errors.Join) one by one, and
// any other error as errorDiagnostic gives it.
func errorDiagnostics(err error) []schema.Diagnostic {
	var se *schema.Error
	if errors.As(err, &se) {
		return se.Diags
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var ds []schema.Diagnostic
		for _, e := range j.Unwrap() {
			ds = append(ds, errorDiagnostics(e)...)
		}
		return ds
	}
	return []schema.Diagnostic{errorDiagnostic(err)}
}
