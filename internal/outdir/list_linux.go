package outdir

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"path"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/hacompile/hacompile/internal/par"
)

// listFiles lists the files under dir (everything but directories) by
// slash path relative to it, with their stamps when stamped is set.
//
// On a fleet of thousands of hosts out/ holds a hundred thousand files
// in as many directories, and resolving each one's path from dir again
// (os.ReadDir, Lstat) was most of the cost of listing them. Here the
// first levels are read by path, level by level, until a level has
// enough directories to keep every core busy; then each of them is
// walked depth first, every directory opened relative to its parent
// (openat) and every file stamped relative to its directory (fstatat).
// listFilesReadDir lists the same.
func listFiles(dir string, stamped bool) (map[string]FileStamp, error) {
	type found struct {
		files []fileEntry
		dirs  []string // relative to dir: read by the next level
	}
	out := map[string]FileStamp{}
	level := []string{""}
	for len(level) > 0 {
		deep := len(level) >= deepLevel*runtime.GOMAXPROCS(0)
		res := make([]found, len(level))
		errs := make([]error, len(level))
		par.Each(len(level), func(i int) {
			l := &lister{dir: dir, stamped: stamped, deep: deep}
			fd, err := openDir(unix.AT_FDCWD, filepath.Join(dir, filepath.FromSlash(level[i])))
			if err != nil {
				errs[i] = l.pathErr("open", level[i], err)
				return
			}
			errs[i] = l.read(fd, level[i])
			res[i] = found{l.files, l.dirs}
		})
		var next []string
		for i := range level {
			if errs[i] != nil {
				return nil, errs[i]
			}
			for _, f := range res[i].files {
				out[f.rel] = f.stamp
			}
			next = append(next, res[i].dirs...)
		}
		level = next
	}
	return out, nil
}

// deepLevel is how many directories per core a level has before each
// is walked depth first.
var deepLevel = 16

type fileEntry struct {
	rel   string
	stamp FileStamp
}

// lister reads directories for listFiles: with deep set it reads the
// directories it finds too, else it collects them.
type lister struct {
	dir           string
	stamped, deep bool
	files         []fileEntry
	dirs          []string
}

func (l *lister) pathErr(op, rel string, err error) error {
	return &fs.PathError{Op: op, Path: filepath.Join(l.dir, filepath.FromSlash(rel)), Err: err}
}

// direntBufs are buffers for getdents.
var direntBufs = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// read reads the directory open as fd (rel under dir) and closes it.
func (l *lister) read(fd int, rel string) error {
	defer unix.Close(fd)
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	buf := *bp
	for {
		n, err := ignoringEINTR(func() (int, error) { return unix.Getdents(fd, buf) })
		if err != nil {
			return l.pathErr("readdirent", rel, err)
		}
		if n <= 0 {
			return nil
		}
		// linux_dirent64: inode (8 bytes), offset (8), record length
		// (2), type (1), NUL-terminated name.
		for off := 0; off < n; {
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			if reclen < 20 || off+reclen > n {
				return l.pathErr("readdirent", rel, errors.New("malformed directory entry"))
			}
			typ, name := buf[off+18], buf[off+19:off+reclen]
			off += reclen
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			if s := string(name); s == "." || s == ".." || rel == "" && s == OwnerFile {
				continue // OwnerFile: the record of the files, not one of them
			}
			if err := l.entry(fd, rel, string(name), typ); err != nil {
				return err
			}
		}
	}
}

// entry takes the entry name of the directory open as fd (rel under dir).
func (l *lister) entry(fd int, rel, name string, typ byte) error {
	p := path.Join(rel, name)
	var st unix.Stat_t
	statted := false
	if typ == unix.DT_UNKNOWN || typ != unix.DT_DIR && l.stamped {
		if err := ignoringEINTR0(func() error { return unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
			return l.pathErr("lstat", p, err)
		}
		statted = true
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			typ = unix.DT_DIR
		}
	}
	if typ != unix.DT_DIR {
		e := fileEntry{rel: p}
		if statted && l.stamped {
			e.stamp = irregular
			if st.Mode&unix.S_IFMT == unix.S_IFREG {
				e.stamp = statStamp(&st)
			}
		}
		l.files = append(l.files, e)
		return nil
	}
	if !l.deep {
		l.dirs = append(l.dirs, p)
		return nil
	}
	sub, err := openDir(fd, name)
	if err != nil {
		return l.pathErr("open", p, err)
	}
	return l.read(sub, p)
}

// openDir opens the directory name, relative to the directory open as
// fd (unix.AT_FDCWD: the working directory).
func openDir(fd int, name string) (int, error) {
	return ignoringEINTR(func() (int, error) {
		return unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
}

// statStamp is the stamp of the file st describes, as stampOf gives it
// of an fs.FileInfo: what a listing records and a write returns must
// compare equal.
func statStamp(st *unix.Stat_t) FileStamp {
	return FileStamp{Size: int64(st.Size), ModTime: int64(st.Mtim.Sec)*1e9 + int64(st.Mtim.Nsec), Change: int64(st.Ctim.Sec)*1e9 + int64(st.Ctim.Nsec)}
}

func ignoringEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != unix.EINTR {
			return n, err
		}
	}
}

func ignoringEINTR0(f func() error) error {
	_, err := ignoringEINTR(func() (int, error) { return 0, f() })
	return err
}

// stampFiles stamps the files at the tree paths files under dir as
// listFiles would find them: a path that is not there, is a directory,
// or is reached only through a link (or out of dir) is left out; a
// link or other irregular file at the path itself is irregular. Each is
// opened by its path relative to dir, the kernel refusing any link on
// the way (openat2 RESOLVE_NO_SYMLINKS), and stamped (fstat): three
// system calls a file and none a directory. Without openat2 (Linux
// before 5.6, or a sandbox that refuses it) it returns errUnsupported.
func stampFiles(dir string, files []string) (map[string]FileStamp, error) {
	root, err := openDir(unix.AT_FDCWD, dir)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(root)
	stamps := make([]FileStamp, len(files))
	there := make([]bool, len(files))
	errs := make([]error, len(files))
	par.Each(len(files), func(i int) { stamps[i], there[i], errs[i] = stampAt(root, files[i]) })
	have := make(map[string]FileStamp, len(files))
	for i, p := range files {
		if errs[i] != nil {
			if errors.Is(errs[i], errUnsupported) {
				return nil, errUnsupported
			}
			return nil, &fs.PathError{Op: "stat", Path: filepath.Join(dir, filepath.FromSlash(p)), Err: errs[i]}
		}
		if there[i] {
			have[p] = stamps[i]
		}
	}
	return have, nil
}

// stampAt is the stamp of the file at tree path p under the directory
// open as root, and whether a file is there, for stampFiles.
func stampAt(root int, p string) (FileStamp, bool, error) {
	if p == "." || !fs.ValidPath(p) {
		return FileStamp{}, false, nil // no file of dir's
	}
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	}
	fd, err := ignoringEINTR(func() (int, error) { return unix.Openat2(root, p, &how) })
	switch err {
	case nil:
	case unix.ENOENT, unix.ENOTDIR, unix.ELOOP, unix.EXDEV:
		// Not there, or only through a link or out of dir.
		return FileStamp{}, false, nil
	case unix.ENOSYS, unix.EPERM, unix.E2BIG:
		return FileStamp{}, false, errUnsupported
	default:
		return FileStamp{}, false, err
	}
	var st unix.Stat_t
	err = ignoringEINTR0(func() error { return unix.Fstat(fd, &st) })
	unix.Close(fd)
	if err != nil {
		return FileStamp{}, false, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return statStamp(&st), true, nil
	case unix.S_IFDIR:
		return FileStamp{}, false, nil // its files are not in the record
	default:
		// With O_PATH and O_NOFOLLOW, a link at the path itself is
		// opened, not refused.
		return irregular, true, nil
	}
}
