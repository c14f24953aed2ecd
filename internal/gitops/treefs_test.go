package gitops_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hacompile/hacompile/internal/gitops"
)

func treeFS(t *testing.T, r *testRepo, rev string) *gitops.TreeFS {
	t.Helper()
	repo := r.open()
	rv, err := repo.Resolve(rev)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := rv.Commit.Tree()
	if err != nil {
		t.Fatal(err)
	}
	return gitops.NewTreeFS(repo.Git.Storer, tree)
}

// TestTreeFSConforms runs the standard library's fs.FS conformance
// checks over a commit's tree: Open, ReadDir (sorted by name, although
// git orders "a/" after "a.b"), ReadFile, Stat and partial reads agree.
func TestTreeFSConforms(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{
		"README":              "hello\n",
		"stacks/web.cue":      webStack,
		"stacks/a.b":          "dot\n",
		"stacks/a/inner.cue":  "x: 1\n",
		"deep/er/still/f.txt": strings.Repeat("line\n", 1000),
	})
	r.commit("files")
	fsys := treeFS(t, r, "HEAD")
	if err := fstest.TestFS(fsys, "README", "stacks/web.cue", "stacks/a.b", "stacks/a/inner.cue", "deep/er/still/f.txt"); err != nil {
		t.Fatal(err)
	}
	b, err := fs.ReadFile(fsys, "stacks/web.cue")
	if err != nil || string(b) != webStack {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
}

// TestTreeFSErrors checks the errors the build relies on: a missing
// path is fs.ErrNotExist (a stack that did not exist yet), a directory
// is not a file, a file is not a directory, and invalid names are
// refused.
func TestTreeFSErrors(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": webStack})
	r.commit("one stack")
	fsys := treeFS(t, r, "HEAD")
	for _, tc := range []struct {
		op, name string
		want     error
		msg      string
	}{
		{"stat", "stacks/nope.cue", fs.ErrNotExist, "stat stacks/nope.cue: file does not exist"},
		{"stat", "nope/web.cue", fs.ErrNotExist, "stat nope/web.cue: file does not exist"},
		{"read", "stacks", nil, "read stacks: is a directory"},
		{"readdir", "stacks/web.cue", nil, "readdir stacks/web.cue: not a directory"},
		{"stat", "stacks/web.cue/x", nil, "stat stacks/web.cue/x: not a directory"},
		{"open", "/stacks", fs.ErrInvalid, "open /stacks: invalid argument"},
		{"open", "stacks/../x", fs.ErrInvalid, "open stacks/../x: invalid argument"},
	} {
		var err error
		switch tc.op {
		case "stat":
			_, err = fs.Stat(fsys, tc.name)
		case "read":
			_, err = fs.ReadFile(fsys, tc.name)
		case "readdir":
			_, err = fs.ReadDir(fsys, tc.name)
		case "open":
			_, err = fsys.Open(tc.name)
		}
		if err == nil || err.Error() != tc.msg || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s %s: got %v, want %q (is %v)", tc.op, tc.name, err, tc.msg, tc.want)
		}
	}
}

// TestTreeFSSymlinks follows links inside the tree, as os.DirFS does on
// disk, and refuses links that leave it or loop.
func TestTreeFSSymlinks(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"real/web.cue": webStack})
	for link, target := range map[string]string{
		"stacks":       "real",
		"real/alias":   "web.cue",
		"out-of-tree":  "../../etc/passwd",
		"absolute":     "/etc/passwd",
		"loop":         "loop",
		"real/up/dots": "x",
	} {
		full := filepath.Join(r.dir, filepath.FromSlash(link))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, full); err != nil {
			t.Fatal(err)
		}
	}
	r.commit("links")
	fsys := treeFS(t, r, "HEAD")

	for _, name := range []string{"stacks/web.cue", "stacks/alias", "real/alias"} {
		b, err := fs.ReadFile(fsys, name)
		if err != nil || string(b) != webStack {
			t.Errorf("ReadFile(%s) = %d bytes, %v; want the stack", name, len(b), err)
		}
	}
	fi, err := fs.Stat(fsys, "stacks")
	if err != nil || !fi.IsDir() || fi.Name() != "stacks" {
		t.Errorf("Stat(stacks) = %v, %v; want the directory it links to, named stacks", fi, err)
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "stacks" && e.Type() != fs.ModeSymlink {
			t.Errorf("ReadDir lists stacks as %v, want a symlink (not followed)", e.Type())
		}
	}
	for name, want := range map[string]string{
		"out-of-tree": "open out-of-tree: symbolic link out-of-tree -> ../../etc/passwd leaves the repository tree",
		"loop":        "open loop: too many levels of symbolic links",
	} {
		if _, err := fsys.Open(name); err == nil || err.Error() != want {
			t.Errorf("Open(%s) = %v, want %q", name, err, want)
		}
	}
	// go-git's worktree stores absolute targets as seen from its chroot
	// ("/../../etc/passwd"); any absolute target is refused all the same.
	if _, err := fsys.Open("absolute"); err == nil || !strings.HasPrefix(err.Error(), "open absolute: symbolic link absolute -> /") ||
		!strings.HasSuffix(err.Error(), " leaves the repository tree") {
		t.Errorf("Open(absolute) = %v, want a link that leaves the tree", err)
	}
	if _, err := fsys.Open("real/up/dots"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dangling link: got %v, want fs.ErrNotExist", err)
	}
}
