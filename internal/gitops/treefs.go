package gitops

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// TreeFS is a read-only fs.FS over a git tree object. It lets the build
// read stack files as they are at a revision straight from the
// repository's objects, without a checkout and without the git command.
//
// Symbolic links are followed inside the tree, as os.DirFS follows them
// on disk; a link that leaves the tree is an error, since nothing
// outside it belongs to the revision. Submodules are directories whose
// contents are not in this repository's objects, so reading them fails.
// Every file has a zero modification time: a revision has no mtimes.
type TreeFS struct {
	s    storer.EncodedObjectStorer
	root *object.Tree
}

var (
	_ fs.ReadFileFS = (*TreeFS)(nil)
	_ fs.ReadDirFS  = (*TreeFS)(nil)
	_ fs.StatFS     = (*TreeFS)(nil)
)

// NewTreeFS serves the tree t, whose objects are in s.
func NewTreeFS(s storer.EncodedObjectStorer, t *object.Tree) *TreeFS {
	return &TreeFS{s: s, root: t}
}

// maxSymlinks bounds link chains (and cycles), as Linux's ELOOP does.
const maxSymlinks = 40

var (
	errLoop      = errors.New("too many levels of symbolic links")
	errIsDir     = errors.New("is a directory")
	errNotDir    = errors.New("not a directory")
	errSubmodule = errors.New("is a submodule: its files are not in this repository's objects")
)

// node is a resolved name.
type node struct {
	name string
	mode filemode.FileMode
	hash plumbing.Hash
	tree *object.Tree // directories only
}

func (f *TreeFS) lookup(op, name string) (*node, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	n, err := f.resolve(name, 0)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	n.name = path.Base(name)
	return n, nil
}

// resolve walks name from the root, following symbolic links.
func (f *TreeFS) resolve(name string, hops int) (*node, error) {
	cur := &node{name: ".", mode: filemode.Dir, hash: f.root.Hash, tree: f.root}
	if name == "." {
		return cur, nil
	}
	elems := strings.Split(name, "/")
	for i, el := range elems {
		switch {
		case cur.mode == filemode.Submodule:
			return nil, errSubmodule
		case cur.tree == nil:
			return nil, errNotDir
		}
		e, err := cur.tree.FindEntry(el)
		if err != nil {
			return nil, fs.ErrNotExist
		}
		switch e.Mode {
		case filemode.Symlink:
			if hops++; hops > maxSymlinks {
				return nil, errLoop
			}
			target, err := f.blob(e.Hash)
			if err != nil {
				return nil, err
			}
			t := string(target)
			next := path.Join(append([]string{strings.Join(elems[:i], "/"), t}, elems[i+1:]...)...)
			if path.IsAbs(t) || next == ".." || strings.HasPrefix(next, "../") {
				return nil, fmt.Errorf("symbolic link %s -> %s leaves the repository tree", strings.Join(elems[:i+1], "/"), t)
			}
			return f.resolve(next, hops)
		case filemode.Dir:
			t, err := object.GetTree(f.s, e.Hash)
			if err != nil {
				return nil, err
			}
			cur = &node{name: el, mode: e.Mode, hash: e.Hash, tree: t}
		default:
			cur = &node{name: el, mode: e.Mode, hash: e.Hash}
		}
	}
	return cur, nil
}

func (f *TreeFS) blob(h plumbing.Hash) ([]byte, error) {
	b, err := object.GetBlob(f.s, h)
	if err != nil {
		return nil, err
	}
	r, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func (f *TreeFS) info(n *node) (*fileInfo, error) {
	fi := &fileInfo{name: n.name, mode: fileMode(n.mode)}
	if n.mode.IsFile() {
		o, err := f.s.EncodedObject(plumbing.BlobObject, n.hash)
		if err != nil {
			return nil, err
		}
		fi.size = o.Size()
	}
	return fi, nil
}

// Open implements fs.FS.
func (f *TreeFS) Open(name string) (fs.File, error) {
	n, err := f.lookup("open", name)
	if err != nil {
		return nil, err
	}
	fi, err := f.info(n)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	switch {
	case n.mode == filemode.Submodule:
		return nil, &fs.PathError{Op: "open", Path: name, Err: errSubmodule}
	case n.tree != nil:
		return &dir{fsys: f, path: name, info: fi, tree: n.tree}, nil
	}
	b, err := f.blob(n.hash)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &file{info: fi, Reader: bytes.NewReader(b)}, nil
}

// ReadFile implements fs.ReadFileFS.
func (f *TreeFS) ReadFile(name string) ([]byte, error) {
	n, err := f.lookup("read", name)
	if err != nil {
		return nil, err
	}
	switch {
	case n.mode == filemode.Submodule:
		return nil, &fs.PathError{Op: "read", Path: name, Err: errSubmodule}
	case n.tree != nil:
		return nil, &fs.PathError{Op: "read", Path: name, Err: errIsDir}
	}
	b, err := f.blob(n.hash)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return b, nil
}

// Stat implements fs.StatFS.
func (f *TreeFS) Stat(name string) (fs.FileInfo, error) {
	n, err := f.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := f.info(n)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return fi, nil
}

// ReadDir implements fs.ReadDirFS: entries sorted by name, as fs.ReadDir
// promises (git orders a directory "a/" after "a.b", so its order is
// not the same).
func (f *TreeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := f.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	switch {
	case n.mode == filemode.Submodule:
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errSubmodule}
	case n.tree == nil:
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errNotDir}
	}
	return f.entries(n.tree), nil
}

func (f *TreeFS) entries(t *object.Tree) []fs.DirEntry {
	out := make([]fs.DirEntry, 0, len(t.Entries))
	for _, e := range t.Entries {
		out = append(out, &dirEntry{fsys: f, e: e})
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

func fileMode(m filemode.FileMode) fs.FileMode {
	switch m {
	case filemode.Dir, filemode.Submodule:
		return fs.ModeDir | 0o755
	case filemode.Executable:
		return 0o755
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	}
	return 0o644
}

type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (i *fileInfo) Name() string       { return i.name }
func (i *fileInfo) Size() int64        { return i.size }
func (i *fileInfo) Mode() fs.FileMode  { return i.mode }
func (i *fileInfo) ModTime() time.Time { return time.Time{} }
func (i *fileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i *fileInfo) Sys() any           { return nil }

// dirEntry describes an entry without following it, as os.ReadDir does
// for symbolic links.
type dirEntry struct {
	fsys *TreeFS
	e    object.TreeEntry
}

func (d *dirEntry) Name() string      { return d.e.Name }
func (d *dirEntry) IsDir() bool       { return fileMode(d.e.Mode).IsDir() }
func (d *dirEntry) Type() fs.FileMode { return fileMode(d.e.Mode).Type() }
func (d *dirEntry) Info() (fs.FileInfo, error) {
	return d.fsys.info(&node{name: d.e.Name, mode: d.e.Mode, hash: d.e.Hash})
}
func (d *dirEntry) String() string { return fs.FormatDirEntry(d) }

type file struct {
	info *fileInfo
	*bytes.Reader
}

func (f *file) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *file) Close() error               { return nil }

type dir struct {
	fsys    *TreeFS
	path    string
	info    *fileInfo
	tree    *object.Tree
	entries []fs.DirEntry // nil until the first ReadDir
	off     int
}

func (d *dir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dir) Close() error               { return nil }
func (d *dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.path, Err: errIsDir}
}

// ReadDir implements fs.ReadDirFile.
func (d *dir) ReadDir(n int) ([]fs.DirEntry, error) {
	if d.entries == nil {
		d.entries = d.fsys.entries(d.tree)
	}
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	rest = rest[:min(n, len(rest))]
	d.off += len(rest)
	return rest, nil
}
