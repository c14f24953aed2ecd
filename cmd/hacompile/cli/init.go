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

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/schema"
)

//go:embed starter/stack.cue.tmpl
var starterStack string

var starterTmpl = template.Must(template.New("stack").Parse(starterStack))

// StarterStack is the stack init writes, named name, whose balancers
// use VRRP router id routerID.
func StarterStack(name string, routerID int) ([]byte, error) {
	var b bytes.Buffer
	data := struct {
		Name     string
		RouterID int
	}{name, routerID}
	if err := starterTmpl.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// starterRouterID is the starter's VRRP router id when no stack beside
// it has taken it.
const starterRouterID = 51

// neighbours reads the stacks beside file, which a build of its
// directory checks together with it: their names (at their name field,
// file:line:col) and VRRP router ids, which the new stack must not
// share. A file that does not read or validate is left out: vet reports
// it on its own.
func neighbours(file string) (names map[string]string, ids map[int]bool, err error) {
	names, ids = map[string]string{}, map[int]bool{}
	dir := filepath.Dir(file)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return names, ids, nil
	}
	files, err := compile.FindStacks(os.DirFS(dir), []string{"."}, func(string) string { return dir })
	if err != nil {
		return names, ids, nil // no stack files
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, nil, err
	}
	l, err := schema.NewLoader("")
	if err != nil {
		return nil, nil, err
	}
	for _, f := range files {
		if f == filepath.Base(file) {
			continue // init does not overwrite it
		}
		in, err := compile.ReadInputs([]string{filepath.Join(dir, filepath.FromSlash(f))}, wd)
		if err != nil {
			continue
		}
		stacks, err := compile.Load(l, in, compile.Options{})
		if err != nil {
			continue
		}
		for _, s := range stacks {
			names[s.Name] = s.Source
			if d := s.At("name"); d.Line > 0 {
				names[s.Name] = fmt.Sprintf("%s:%d:%d", d.File, d.Line, d.Column)
			}
			if v := s.Balancer.VRRP; v != nil {
				ids[v.RouterID] = true
			}
		}
	}
	return names, ids, nil
}

// freeRouterID is the first VRRP router id from starterRouterID on
// (1 after 255) that no stack in ids uses.
func freeRouterID(ids map[int]bool) (int, bool) {
	for i := range 255 {
		id := (starterRouterID-1+i)%255 + 1
		if !ids[id] {
			return id, true
		}
	}
	return 0, false
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
It creates FILE's directory if needed. The stacks already in that directory
are built with the new one, so its balancers get a VRRP router id none of
them uses (51, or the next free one), and a name one of them has is an
error.`,
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
			names, ids, err := neighbours(file)
			if err != nil {
				return err
			}
			if other, ok := names[name]; ok {
				return fmt.Errorf("%s: stack name %q is already used by %s, and the stacks of one directory are built together: name the file differently", file, name, other)
			}
			routerID, ok := freeRouterID(ids)
			if !ok {
				return fmt.Errorf("%s: the stacks in %s use every VRRP router id (1-255), and the starter's balancers need one of their own", file, filepath.Dir(file))
			}
			src, err := StarterStack(name, routerID)
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
