package cli

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/spf13/cobra"

	"github.com/hacompile/hacompile/schema"
)

//go:embed starter/stack.cue.tmpl
var starterStack string

var starterTmpl = template.Must(template.New("stack").Parse(starterStack))

// StarterStack is the stack init writes, named name.
func StarterStack(name string) ([]byte, error) {
	var b bytes.Buffer
	if err := starterTmpl.Execute(&b, struct{ Name string }{name}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func newInit() *cobra.Command {
	c := &cobra.Command{
		Use:   "init [FILE]",
		Short: "Write a commented starter stack",
		Long: `Init writes a starter stack to FILE (default stacks/app.cue): two nginx load
balancers sharing a virtual address with keepalived in front of two gunicorn
app hosts, with a comment on each part, a commented-out database and a
capacity target. The stack is named after the file (stacks/shop.cue: "shop"),
so the name must be a valid stack name: lower-case letters, digits and dashes,
starting with a letter. It passes hacompile vet as written; edit the
addresses, the domain and the app, then run hacompile build. Every field is in
the runbook's stack file reference (out/site/reference.html) and in
hacompile schema.

Init never overwrites: an existing FILE is an error, and nothing is written.
It creates FILE's directory if needed.`,
		Example: `  hacompile init                    # stacks/app.cue
  hacompile init stacks/shop.cue && hacompile vet stacks/shop.cue`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := filepath.Join("stacks", "app.cue")
			if len(args) == 1 {
				file = args[0]
			}
			if filepath.Ext(file) != ".cue" {
				return usageError{fmt.Errorf("%s: init writes a CUE stack: want a file name ending in .cue", file)}
			}
			name := strings.TrimSuffix(filepath.Base(file), ".cue")
			if err := schema.CheckFileName(filepath.ToSlash(file)); err != nil || name == "site" {
				return usageError{fmt.Errorf("%s: the stack is named after its file, and %q is not a stack name (lower-case letters, digits and dashes, starting with a letter, at most 63; not \"site\")", file, name)}
			}
			src, err := StarterStack(name)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s already exists: init does not overwrite a file", file)
			}
			if err != nil {
				return err
			}
			if _, err := f.Write(src); err != nil {
				f.Close()
				os.Remove(file)
				return err
			}
			if err := f.Close(); err != nil {
				os.Remove(file)
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: stack %q; check it with hacompile vet %s\n", file, name, file)
			return nil
		},
	}
	return c
}
