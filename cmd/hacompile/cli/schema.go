package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/hacompile/hacompile/schema"
)

func newSchema() *cobra.Command {
	var asJSON, asMarkdown bool
	c := &cobra.Command{
		Use:   "schema [--json|--markdown]",
		Short: "Print the stack schema: CUE, or a JSON Schema for editors",
		Long: `Schema prints the CUE schema every stack is unified with (#Stack and the
definitions it uses), the reference for every field, its type, default and
doc comment.

--json prints a JSON Schema (draft 2020-12) of #Stack instead, for editors and
tools that check a stack written as JSON or YAML (for instance with the
yaml-language-server's "# yaml-language-server: $schema=stack.schema.json").
It is closed like the CUE schema and carries each field's type, bounds,
pattern, enum, default and doc comment; what JSON Schema cannot say (defaults
that follow from other fields, a field that exists under a condition, bounds
relative to another field, the HA rules) is left to hacompile vet.

--markdown prints the field reference as Markdown: every field with its type,
default, condition and doc comment, as schema/REFERENCE.md holds it and the
runbook site's reference page shows it.

The output is the same to the byte for the same hacompile.`,
		Example: `  hacompile schema --json > stack.schema.json
  hacompile schema --markdown > REFERENCE.md
  hacompile schema | less`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := schema.SchemaSource()
			if asJSON && asMarkdown {
				return usageError{errors.New("--json and --markdown: pick one")}
			}
			if asMarkdown {
				var err error
				if out, err = schema.ReferenceMarkdown(); err != nil {
					return err
				}
			}
			if asJSON {
				var err error
				if out, err = schema.JSONSchema(); err != nil {
					return err
				}
			}
			_, err := cmd.OutOrStdout().Write(out)
			return err
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON Schema (draft 2020-12) of #Stack instead of the CUE schema")
	c.Flags().BoolVar(&asMarkdown, "markdown", false, "print the field reference as Markdown instead of the CUE schema")
	return c
}
