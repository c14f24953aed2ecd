package jsonnet

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	gojsonnet "github.com/google/go-jsonnet"
)

// importer resolves imports inside the sandbox: the stack file's
// directory and the library paths, in the stack's file system. A file
// is read only after every symbolic link in its path has been resolved
// and the result found inside a root, so no link leads out.
//
// go-jsonnet identifies a file by the name the importer returns for it
// (foundAt), which is also the name its errors show; the importer
// returns display names (stacks/lib/common.libsonnet) and maps them
// back to paths in the file system.
type importer struct {
	fsys     fs.FS
	stackDir string   // the stack file's directory: where "" imports from
	jpath    []string // library directories, searched right-most first
	// roots are the directories imports may read, as given and with
	// their links resolved.
	roots []string
	names names
	// path maps a returned display name to its path in fsys.
	path map[string]string
	// cache holds one Contents per file, as go-jsonnet requires.
	cache map[string]gojsonnet.Contents
}

func newImporter(src Source, jpath []string) *importer {
	imp := &importer{
		fsys:     src.FS,
		stackDir: path.Dir(src.Path),
		names:    newNames(src.Name, src.Path),
		path:     map[string]string{src.Name: src.Path},
		cache:    map[string]gojsonnet.Contents{},
	}
	for _, d := range jpath {
		imp.jpath = append(imp.jpath, path.Clean(d))
	}
	if imp.fsys == nil {
		return imp
	}
	for _, d := range append([]string{imp.stackDir}, imp.jpath...) {
		imp.roots = append(imp.roots, d)
		if real, err := realPath(imp.fsys, d); err == nil && real != d {
			imp.roots = append(imp.roots, real)
		}
	}
	return imp
}

// ImportError is an import the sandbox cannot satisfy.
type ImportError struct {
	Path   string // as the program wrote it
	Reason string
}

func (e *ImportError) Error() string {
	return fmt.Sprintf("cannot import %q: %s", e.Path, e.Reason)
}

// errOutside is an import the sandbox refuses.
var errOutside = errors.New("outside the stack's directory and the library paths (-J)")

// Import implements gojsonnet.Importer.
func (imp *importer) Import(importedFrom, importedPath string) (gojsonnet.Contents, string, error) {
	fail := func(why string) (gojsonnet.Contents, string, error) {
		return gojsonnet.Contents{}, "", &ImportError{Path: importedPath, Reason: why}
	}
	if imp.fsys == nil {
		return fail("this stack was not read from a file system")
	}
	if importedPath == "" {
		return fail("empty path")
	}
	dir := imp.stackDir
	if p, ok := imp.path[importedFrom]; ok {
		dir = path.Dir(p)
	}
	var candidates []string
	if strings.HasPrefix(importedPath, "/") {
		candidates = []string{path.Clean(importedPath)[1:]}
	} else {
		candidates = append(candidates, path.Join(dir, importedPath))
		for i := len(imp.jpath) - 1; i >= 0; i-- {
			candidates = append(candidates, path.Join(imp.jpath[i], importedPath))
		}
	}
	outside := false
	for _, c := range candidates {
		if c == "" {
			c = "."
		}
		if !fs.ValidPath(c) || !imp.inside(c) {
			outside = true
			continue
		}
		real, err := realPath(imp.fsys, c)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if errors.Is(err, errOutside) || err == nil && !imp.inside(real) {
			return fail("it links to a file " + errOutside.Error())
		}
		if err != nil {
			return fail(unwrapPathErr(err).Error())
		}
		name := imp.names.show(real)
		if contents, ok := imp.cache[name]; ok {
			return contents, name, nil
		}
		data, err := readRegular(imp.fsys, real)
		if err == nil {
			err = checkNesting(data) // before go-jsonnet parses it
		}
		if err != nil {
			return fail(unwrapPathErr(err).Error())
		}
		contents := gojsonnet.MakeContentsRaw(data)
		imp.cache[name] = contents
		imp.path[name] = real
		return contents, name, nil
	}
	if outside {
		return fail("it is " + errOutside.Error())
	}
	return fail("no such file in the stack's directory or the library paths (-J)")
}

// inside reports whether the slash path p is in one of the roots.
func (imp *importer) inside(p string) bool {
	for _, r := range imp.roots {
		if r == "." || p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

// maxLinks bounds the symbolic links followed in one path, as the
// kernel's ELOOP does.
const maxLinks = 40

// realPath resolves every symbolic link in the clean slash path p. A
// link's absolute target is taken relative to the root of fsys (right
// for the whole disk, os.DirFS("/"), which is what builds use); a
// target above that root is errOutside. Without fs.ReadLinkFS, fsys
// has no links to resolve.
func realPath(fsys fs.FS, p string) (string, error) {
	rl, ok := fsys.(fs.ReadLinkFS)
	if !ok {
		_, err := fs.Stat(fsys, p)
		return p, err
	}
	done := "."
	rest := strings.Split(p, "/")
	links := 0
	for len(rest) > 0 {
		next := path.Join(done, rest[0])
		rest = rest[1:]
		fi, err := rl.Lstat(next)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = next
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", next)
		}
		target, err := rl.ReadLink(next)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			target = path.Clean(target)[1:]
		} else {
			target = path.Join(path.Dir(next), target)
		}
		if target == "" {
			target = "."
		}
		if !fs.ValidPath(target) {
			return "", errOutside
		}
		rest = append(strings.Split(target, "/"), rest...)
		done = "."
	}
	return done, nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// names translates paths in the file system into the names diagnostics
// show, from one known pair: the stack file's display name and its path.
// Both end in the same elements; what precedes them is one directory,
// fsDir in the file system and nameDir in display names.
type names struct{ fsDir, nameDir string }

func newNames(name, fsPath string) names {
	n := strings.Split(name, "/")
	p := strings.Split(fsPath, "/")
	for len(n) > 0 && len(p) > 0 && n[len(n)-1] == p[len(p)-1] && n[len(n)-1] != ".." {
		n, p = n[:len(n)-1], p[:len(p)-1]
	}
	m := names{fsDir: strings.Join(p, "/"), nameDir: strings.Join(n, "/")}
	if m.fsDir == "" {
		m.fsDir = "."
	}
	if m.nameDir == "" {
		m.nameDir = "."
		if len(n) == 1 { // the name was absolute
			m.nameDir = "/"
		}
	}
	return m
}

func (m names) show(fsPath string) string {
	rel, err := filepath.Rel(filepath.FromSlash(m.fsDir), filepath.FromSlash(fsPath))
	if err != nil {
		return fsPath
	}
	return path.Join(m.nameDir, filepath.ToSlash(rel))
}

// MaxFileSize bounds a stack file or an imported file: real stacks are
// kilobytes, and a larger file is refused rather than read into memory.
const MaxFileSize = 16 << 20

// ReadInside reads the file at the clean slash path p of fsys after
// resolving every symbolic link in its path: the result must lie in one
// of roots (as given, or with their own links resolved), be a regular
// file (not a FIFO or a device, which could block or never end) and
// hold at most MaxFileSize bytes. It returns the resolved path too.
func ReadInside(fsys fs.FS, p string, roots ...string) ([]byte, string, error) {
	var all []string
	for _, r := range roots {
		all = append(all, r)
		if real, err := realPath(fsys, r); err == nil && real != r {
			all = append(all, real)
		}
	}
	in := func(q string) bool {
		for _, r := range all {
			if r == "." || q == r || strings.HasPrefix(q, r+"/") {
				return true
			}
		}
		return false
	}
	if !fs.ValidPath(p) || !in(p) {
		return nil, "", errOutside
	}
	real, err := realPath(fsys, p)
	if errors.Is(err, errOutside) || err == nil && !in(real) {
		return nil, "", errLinksOut
	}
	if err != nil {
		return nil, "", err
	}
	data, err := readRegular(fsys, real)
	return data, real, err
}

// errLinksOut is a file whose links lead out of its root.
var errLinksOut = errors.New("a symbolic link leads outside the stack's directory")

// readRegular reads the regular file p, at most MaxFileSize bytes.
func readRegular(fsys fs.FS, p string) ([]byte, error) {
	tooLarge := fmt.Errorf("larger than the limit of %d MiB", MaxFileSize>>20)
	check := func(fi fs.FileInfo) error {
		switch {
		case fi.IsDir():
			return errors.New("is a directory")
		case !fi.Mode().IsRegular():
			return fmt.Errorf("not a regular file (%s)", fileKind(fi.Mode()))
		case fi.Size() > MaxFileSize:
			return tooLarge
		}
		return nil
	}
	// Checked before opening: opening a named pipe blocks.
	fi, err := fs.Stat(fsys, p)
	if err != nil {
		return nil, err
	}
	if err := check(fi); err != nil {
		return nil, err
	}
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := check(fi); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, tooLarge
	}
	return data, nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeIrregular != 0:
		return "an irregular file"
	}
	return m.Type().String()
}
