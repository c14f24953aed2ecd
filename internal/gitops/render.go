package gitops

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hacompile/hacompile/internal/compile"
)

// Stacks says which stack files to render, in terms that hold in any
// revision of the repository.
type Stacks struct {
	// Args are the files or directories named on the command line, as
	// slash paths relative to the repository root.
	Args []string
	// Dir is the working directory relative to the root. Stack files
	// are named relative to it, as `hacompile build` run there names
	// them in generated headers, so that both sides of a diff agree on
	// every byte that does not come from the stacks themselves.
	Dir string
	// Options are the Jsonnet settings; their JPath are slash paths
	// relative to the repository root, like Args (WithJsonnet).
	Options compile.Options
}

// WithJsonnet sets the Jsonnet options, turning -J directories (relative
// to wd) into paths in the repository, so both revisions read their own.
func (r *Repo) WithJsonnet(st Stacks, wd string, o compile.Options) (Stacks, error) {
	jpath := make([]string, 0, len(o.Jsonnet.JPath))
	for _, d := range o.Jsonnet.JPath {
		p := d
		if !filepath.IsAbs(p) {
			p = filepath.Join(wd, p)
		}
		if real, err := realPath(p); err == nil {
			p = real
		}
		rel, err := r.rel(filepath.Clean(p))
		if err != nil {
			return st, fmt.Errorf("-J %s is outside the repository at %s", d, r.Root)
		}
		jpath = append(jpath, rel)
	}
	o.Jsonnet.JPath = jpath
	st.Options = o
	return st, nil
}

// StacksFor turns args (relative to wd, default "stacks") into Stacks.
// Every path must be inside the working tree: other revisions of it are
// all this repository can tell about.
func (r *Repo) StacksFor(wd string, args []string) (Stacks, error) {
	if len(args) == 0 {
		args = []string{"stacks"}
	}
	wdReal, err := realPath(wd)
	if err != nil {
		return Stacks{}, err
	}
	dir, err := r.rel(wdReal)
	if err != nil {
		return Stacks{}, fmt.Errorf("the working directory %s is outside the repository at %s", wd, r.Root)
	}
	st := Stacks{Dir: dir}
	for _, a := range args {
		p := a
		if !filepath.IsAbs(p) {
			p = filepath.Join(wdReal, p)
		}
		// Resolve links where the path exists; a stack directory that
		// is gone from the working tree may exist in the base revision.
		if real, err := realPath(p); err == nil {
			p = real
		}
		rel, err := r.rel(filepath.Clean(p))
		if err != nil {
			return Stacks{}, fmt.Errorf("%s is outside the repository at %s", a, r.Root)
		}
		st.Args = append(st.Args, rel)
	}
	return st, nil
}

// rel makes an absolute path relative to the root, slash-separated.
func (r *Repo) rel(p string) (string, error) {
	rel, err := filepath.Rel(r.Root, p)
	if err != nil {
		return "", err
	}
	rel = filepath.ToSlash(rel)
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", errors.New("outside the repository")
	}
	return rel, nil
}

// RenderError is a failure to render the stacks of one side of a
// comparison or publication: Where says which ("revision main
// (1a2b3c4d5e6f)", "the working tree").
type RenderError struct {
	Where string
	Err   error
}

func (e *RenderError) Error() string { return fmt.Sprintf("the stacks in %s: %v", e.Where, e.Err) }
func (e *RenderError) Unwrap() error { return e.Err }

// RenderFS compiles the stacks read from fsys, a tree rooted at the
// repository root. With optional, a path that does not exist or holds
// no stack files contributes nothing instead of failing: at an older
// revision a stack may not exist yet, and in the working tree every
// stack may have been deleted. today (YYYY-MM-DD) is what waivers are
// compared with.
func RenderFS(fsys fs.FS, st Stacks, today string, optional bool) (*compile.Result, error) {
	var args []string
	for _, a := range st.Args {
		if optional {
			ok, err := hasStacks(fsys, a)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		args = append(args, a)
	}
	if len(args) == 0 {
		return &compile.Result{}, nil
	}
	in, err := compile.ReadInputsFS(fsys, args)
	if err != nil {
		return nil, err
	}
	for i := range in {
		in[i].Name = relSlash(st.Dir, in[i].Path)
	}
	return compile.CompileInputsWith(in, today, st.Options)
}

// hasStacks reports whether a names a file, or a directory holding
// stack files, in fsys.
func hasStacks(fsys fs.FS, a string) (bool, error) {
	fi, err := fs.Stat(fsys, a)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return true, nil
	}
	entries, err := fs.ReadDir(fsys, a)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(entries, func(e fs.DirEntry) bool {
		return !e.IsDir() && slices.Contains(compile.StackFileExts, path.Ext(e.Name()))
	}), nil
}

// relSlash is target relative to base, both slash paths relative to
// the same root.
func relSlash(base, target string) string {
	r, err := filepath.Rel(filepath.FromSlash(base), filepath.FromSlash(target))
	if err != nil {
		return target
	}
	return filepath.ToSlash(r)
}

// RenderAt compiles the stacks as they are at rev, read from the
// repository's objects. Waivers are judged on the day of the commit:
// the base of a review passed its checks then, and a waiver that has
// expired since must not make it unreadable now.
func (r *Repo) RenderAt(rev Rev, st Stacks) (*compile.Result, error) {
	tree, err := rev.Commit.Tree()
	if err != nil {
		return nil, &RenderError{Where: "revision " + rev.String(), Err: err}
	}
	today := rev.Commit.Committer.When.UTC().Format(time.DateOnly)
	res, err := RenderFS(NewTreeFS(r.Git.Storer, tree), st, today, true)
	if err != nil {
		return nil, &RenderError{Where: "revision " + rev.String(), Err: err}
	}
	return res, nil
}

// RenderWorktree compiles the stacks as they are on disk, committed or
// not. optional is as for RenderFS.
func (r *Repo) RenderWorktree(st Stacks, today string, optional bool) (*compile.Result, error) {
	res, err := RenderFS(os.DirFS(r.Root), st, today, optional)
	if err != nil {
		return nil, &RenderError{Where: "the working tree", Err: err}
	}
	return res, nil
}
