package push

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/pkg/sftp"
)

// TempPrefix starts the name of every temporary file push creates next
// to a target. A file with this prefix is left only by an interrupted
// push, and the next push removes it.
const TempPrefix = ".hacompile-tmp-"

// remoteFile is what a path holds on a host.
type remoteFile struct {
	Exists  bool
	Mode    fs.FileMode // type and permission bits
	UID     int
	GID     int
	Size    int64
	SHA256  string
	Content []byte
	Link    string // symlink target, when Mode is a symlink
}

func (f remoteFile) regular() bool { return f.Exists && f.Mode.IsRegular() }

// lstat reports what p is without following a symlink.
func (c *conn) lstat(p string) (fs.FileInfo, error) {
	var fi fs.FileInfo
	err := c.do("lstat", p, func() error {
		var err error
		fi, err = c.sftp.Lstat(p)
		return err
	})
	return fi, err
}

func (c *conn) readLink(p string) (string, error) {
	var t string
	err := c.do("readlink", p, func() error {
		var err error
		t, err = c.sftp.ReadLink(p)
		return err
	})
	return t, err
}

func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// inspect reads p: its type, mode, owner and, for a regular file, its
// content and digest. A missing file is not an error.
func (c *conn) inspect(p string) (remoteFile, error) {
	fi, err := c.lstat(p)
	if notExist(err) {
		return remoteFile{}, nil
	}
	if err != nil {
		return remoteFile{}, err
	}
	rf := remoteFile{Exists: true, Mode: fi.Mode(), Size: fi.Size(), UID: -1, GID: -1}
	if st, ok := fi.Sys().(*sftp.FileStat); ok {
		rf.UID, rf.GID = int(st.UID), int(st.GID)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		_ = c.do("readlink", p, func() error {
			rf.Link, err = c.sftp.ReadLink(p)
			return err
		})
		return rf, nil
	}
	if !fi.Mode().IsRegular() {
		return rf, nil
	}
	b, err := c.readFile(p)
	if err != nil {
		return rf, err
	}
	sum := sha256.Sum256(b)
	rf.Content, rf.SHA256, rf.Size = b, hex.EncodeToString(sum[:]), int64(len(b))
	return rf, nil
}

func (c *conn) readFile(p string) ([]byte, error) {
	var b []byte
	err := c.do("read", p, func() error {
		f, err := c.sftp.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err = io.ReadAll(f)
		return err
	})
	return b, err
}

// writeSpec is one file to put in place.
type writeSpec struct {
	Content []byte
	Mode    fs.FileMode
	UID     int // -1: do not chown
	GID     int
}

// writeAtomic replaces p so that a reader (or a crash, or a dropped
// connection) sees the old file or the new one, never a mix: a temp
// file in the same directory is written, given its mode and owner,
// flushed to disk (fsync@openssh.com), closed — a failed close means
// the data may not have landed — and renamed over p with
// posix-rename@openssh.com, which replaces atomically where plain SFTP
// rename refuses an existing target. The caller has checked that p is
// not a symlink.
func (c *conn) writeAtomic(p string, w writeSpec, beforeRename func(tmp string)) error {
	dir, base := path.Split(p)
	tmp := dir + TempPrefix + base + "-" + randomSuffix()
	var f *sftp.File
	err := c.do("create", tmp, func() error {
		var err error
		f, err = c.sftp.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		return err
	})
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			_ = c.do("close", tmp, f.Close)
			_ = c.do("remove", tmp, func() error { return c.sftp.Remove(tmp) })
		}
	}()
	// Private until complete, so a 0600 file's content is never
	// readable through the temp file under the server's umask.
	if err := c.do("chmod", tmp, func() error { return f.Chmod(0o600) }); err != nil {
		return err
	}
	if err := c.do("write", tmp, func() error {
		_, err := f.Write(w.Content)
		return err
	}); err != nil {
		return err
	}
	// chown before the final chmod: chown may clear set-id bits.
	if w.UID >= 0 {
		if err := c.do("chown", tmp, func() error { return f.Chown(w.UID, w.GID) }); err != nil {
			return err
		}
	}
	if err := c.do("chmod", tmp, func() error { return f.Chmod(w.Mode.Perm()) }); err != nil {
		return err
	}
	if err := c.do("fsync", tmp, f.Sync); err != nil {
		return err
	}
	closed = true
	if err := c.do("close", tmp, f.Close); err != nil {
		_ = c.do("remove", tmp, func() error { return c.sftp.Remove(tmp) })
		return err
	}
	if beforeRename != nil {
		beforeRename(tmp)
	}
	if err := c.do("rename", tmp+" to "+p, func() error { return c.sftp.PosixRename(tmp, p) }); err != nil {
		_ = c.do("remove", tmp, func() error { return c.sftp.Remove(tmp) })
		return err
	}
	return nil
}

func (c *conn) remove(p string) error {
	return c.do("remove", p, func() error { return c.sftp.Remove(p) })
}

// DirMode is the mode of every directory push creates. It is set
// explicitly after each mkdir: the SFTP server applies its own umask
// (internal-sftp -u 0000 would leave a world-writable directory).
const DirMode fs.FileMode = 0o755

// mkdirAll creates p and its missing parents, each with DirMode. An
// existing component that is not a directory (a symlink included) is
// an error.
func (c *conn) mkdirAll(p string) error {
	p = path.Clean(p)
	if p == "/" || p == "." {
		return nil
	}
	fi, err := c.lstat(p)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("mkdir %s: it exists as a %s, expected a directory: %w", p, kindOfAny(fi.Mode()), ErrUnsafeTarget)
	case !notExist(err):
		return err
	}
	if err := c.mkdirAll(path.Dir(p)); err != nil {
		return err
	}
	if err := c.do("mkdir", p, func() error { return c.sftp.Mkdir(p) }); err != nil {
		return err
	}
	return c.do("chmod", p, func() error { return c.sftp.Chmod(p, DirMode) })
}

func kindOfAny(m fs.FileMode) string {
	if m&fs.ModeSymlink != 0 {
		return "symlink"
	}
	if m.IsRegular() {
		return "regular file"
	}
	return kindOf(m)
}

func (c *conn) readDir(p string) ([]fs.FileInfo, error) {
	var out []fs.FileInfo
	err := c.do("list", p, func() error {
		var err error
		out, err = c.sftp.ReadDir(p)
		return err
	})
	return out, err
}

func (c *conn) removeAll(p string) error {
	return c.do("remove", p, func() error { return c.sftp.RemoveAll(p) })
}

// hasExtensions reports the SFTP extensions a safe write needs that the
// server does not offer.
func (c *conn) missingExtensions() []string {
	var missing []string
	for _, ext := range []string{"posix-rename@openssh.com", "fsync@openssh.com"} {
		if _, ok := c.sftp.HasExtension(ext); !ok {
			missing = append(missing, ext)
		}
	}
	return missing
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// joinRoot places the host path p (absolute) under root.
func joinRoot(root, p string) string {
	if root == "/" || root == "" {
		return p
	}
	return strings.TrimRight(root, "/") + p
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func modeString(m fs.FileMode) string { return fmt.Sprintf("%04o", m.Perm()) }
