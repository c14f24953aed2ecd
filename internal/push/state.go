package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/termtext"
)

// What push keeps on each host, under the remote root:
//
//	/var/lib/hacompile/<stack>.json              the last pushed manifest (State)
//	/var/lib/hacompile/<stack>.lock              held while a push runs
//	/var/lib/hacompile/backups/<stack>/<n>/      generation n:
//	    generation.json                          what it changed (Generation)
//	    files/<path>                             the files it replaced, as they were
const StateDir = "/var/lib/hacompile"

func statePath(stack string) string  { return StateDir + "/" + stack + ".json" }
func lockPath(stack string) string   { return StateDir + "/" + stack + ".lock" }
func backupsDir(stack string) string { return StateDir + "/backups/" + stack }
func genDir(stack string, n int) string {
	return backupsDir(stack) + "/" + strconv.Itoa(n)
}

// State is the manifest of what the last push put on a host.
type State struct {
	Stack        string                  `json:"stack"`
	Host         string                  `json:"host"`
	Generation   int                     `json:"generation"`
	SourceSHA256 string                  `json:"source_sha256,omitempty"`
	Files        []compile.ManifestEntry `json:"files"` // sorted by path
	// PendingReload are reload steps that failed (the first) or did not
	// run after it: the next push runs them again, though no file
	// differs, until they succeed.
	PendingReload []string `json:"pending_reload,omitempty"`
}

func (s *State) entry(p string) *compile.ManifestEntry {
	if s == nil {
		return nil
	}
	for i := range s.Files {
		if s.Files[i].Path == p {
			return &s.Files[i]
		}
	}
	return nil
}

// Generation statuses.
const (
	genApplying   = "applying"    // files are being changed, or a push was cut off
	genApplied    = "applied"     // complete
	genReverted   = "reverted"    // validation failed and the backups were put back
	genRolledBack = "rolled-back" // undone by a later rollback generation
)

// Generation records one push or rollback on a host: enough to undo it
// byte for byte.
type Generation struct {
	Stack    string    `json:"stack"`
	Host     string    `json:"host"`
	Number   int       `json:"number"`
	Kind     string    `json:"kind"` // push | rollback
	Status   string    `json:"status"`
	Started  time.Time `json:"started"`
	By       string    `json:"by"`
	Reverts  int       `json:"reverts,omitempty"` // for a rollback: the generation it undid
	Previous *State    `json:"previous"`          // the host's State before; nil if none
	Changes  []Change  `json:"changes"`           // sorted by path
}

// FileState is a file as it was or is meant to be.
type FileState struct {
	SHA256 string `json:"sha256"`
	Size   int    `json:"size"`
	Mode   string `json:"mode"`
	Owner  string `json:"owner,omitempty"` // user:group as the manifest says
	UID    int    `json:"uid"`             // numeric owner; -1 unknown or not applied
	GID    int    `json:"gid"`
}

// Change is one path a generation created, updated or removed.
type Change struct {
	Path   string     `json:"path"`
	Action string     `json:"action"` // create | update | remove
	Reason string     `json:"reason,omitempty"`
	Old    *FileState `json:"old,omitempty"`    // nil: did not exist
	New    *FileState `json:"new,omitempty"`    // nil: removed
	Backup string     `json:"backup,omitempty"` // the old file, relative to the generation directory
	// Validate and Reload are the commands of the file's manifest
	// entries, old and new, run when the change takes effect or is
	// undone.
	Validate []artifact.Action `json:"validate,omitempty"`
	Reload   []artifact.Action `json:"reload,omitempty"`
}

// readJSON reads p into v; found is false when p does not exist.
func (c *conn) readJSON(p string, v any) (found bool, err error) {
	b, err := c.readFile(p)
	if notExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("%s: %w", p, err)
	}
	return true, nil
}

func (c *conn) writeJSON(p string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := c.mkdirAll(path.Dir(p)); err != nil {
		return err
	}
	return c.writeAtomic(p, writeSpec{Content: append(b, '\n'), Mode: 0o644, UID: -1}, nil)
}

// generations lists the generation numbers on the host, ascending.
func (c *conn) generations(root, stack string) ([]int, error) {
	ents, err := c.readDir(joinRoot(root, backupsDir(stack)))
	if notExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ns []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() && n > 0 {
			ns = append(ns, n)
		}
	}
	slices.Sort(ns)
	return ns, nil
}

func (c *conn) readGeneration(root, stack string, n int) (*Generation, error) {
	var g Generation
	found, err := c.readJSON(joinRoot(root, genDir(stack, n)+"/generation.json"), &g)
	if err != nil {
		return nil, err
	}
	if !found {
		// A directory without a record: the push died while making
		// backups, before any target was touched.
		return nil, nil
	}
	return &g, nil
}

// LockInfo is the content of a lock file: who holds it, with enough of
// the holder's identity for another push to prove it gone.
type LockInfo struct {
	By      string    `json:"by"` // user@machine
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Token   string    `json:"token"`
	// Machine and BootID name the pushing machine and its boot
	// (/proc/sys/kernel/random/boot_id); ProcStart is the pushing
	// process's start time in clock ticks since that boot (field 22 of
	// /proc/PID/stat). Empty or 0 when unknown.
	Machine   string `json:"machine,omitempty"`
	BootID    string `json:"boot_id,omitempty"`
	ProcStart uint64 `json:"proc_start,omitempty"`
}

// Holder fills in the identity of the pushing machine and, when pid is
// this process, its start time.
func (li LockInfo) Holder(pid int) LockInfo {
	li.Machine, _ = os.Hostname()
	li.BootID = bootID()
	if pid == os.Getpid() {
		li.ProcStart = procStart(pid)
	}
	return li
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// procStart is the start time of process pid in clock ticks since boot,
// or 0 when it does not exist (or /proc cannot tell).
func procStart(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields after it start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64) // field 22 overall
	return n
}

// holderGone reports whether the holder of a lock is proven gone, and
// why. A holder on this machine (same name and boot) is gone when its
// process no longer runs (or its pid now belongs to a process started
// at another time), and alive otherwise, however old its heartbeat; on
// this machine before a reboot it is gone. For a holder elsewhere
// nothing can be checked from here: its heartbeat stopping for the
// whole stale period is the evidence (stale says so).
func holderGone(held LockInfo, me LockInfo, stale bool) (gone bool, why string) {
	if held.Machine != "" && held.Machine == me.Machine && held.BootID != "" && me.BootID != "" {
		if held.BootID != me.BootID {
			return true, "its machine rebooted since"
		}
		if held.ProcStart != 0 {
			if procStart(held.PID) == held.ProcStart {
				return false, fmt.Sprintf("its process (pid %d) still runs on this machine", held.PID)
			}
			return stale, fmt.Sprintf("its process (pid %d) no longer runs on this machine", held.PID)
		}
	}
	if stale {
		return true, "its heartbeat stopped"
	}
	return false, ""
}

// lock holds a host's push lock: an exclusively created file, whose
// mtime the holder refreshes (its heartbeat), so a lock left by a
// crashed push can be recognised as stale.
type lock struct {
	c     *conn
	path  string
	info  LockInfo
	stale time.Duration

	mu      sync.Mutex
	touched time.Time
	stop    chan struct{} // closed by release: ends the heartbeat
	done    chan struct{} // closed when the heartbeat has ended
	// tookOver says whose lock this push took over, and why; "" if none.
	tookOver string
}

// acquire creates the lock file or reports who holds it. A lock is
// taken over only from a holder proven gone (see holderGone), never
// while its heartbeat is fresh (refreshed within stale). Takers go one
// at a time (an exclusively created takeover file, itself abandoned
// after stale), each checks the lock is still the one it judged and
// moves it away by a rename: of two pushes taking over the same lock at
// once, one does and the other finds the first's fresh lock.
func (c *conn) acquire(root, stack string, info LockInfo, stale time.Duration, now time.Time) (*lock, error) {
	p := joinRoot(root, lockPath(stack))
	if err := c.mkdirAll(path.Dir(p)); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return nil, err
	}
	tookOver := ""
	guardWaits := 0
	for attempt := 0; ; attempt++ {
		var f *sftp.File
		err := c.do("create", p, func() error {
			var err error
			f, err = c.sftp.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
			return err
		})
		if err == nil {
			werr := c.do("write", p, func() error { _, err := f.Write(append(b, '\n')); return err })
			cerr := c.do("close", p, f.Close)
			// Staleness is judged on the pushers' clocks, not the
			// host's, which may be off: set the mtime explicitly.
			terr := c.do("touch", p, func() error { return c.sftp.Chtimes(p, now, now) })
			if err := errors.Join(werr, cerr, terr); err != nil {
				_ = c.remove(p)
				return nil, err
			}
			return &lock{c: c, path: p, info: info, stale: stale, touched: now, tookOver: tookOver}, nil
		}
		// OpenSSH maps EEXIST to a plain failure status: look at the
		// file to tell "held" from other errors.
		fi, serr := c.lstat(p)
		if serr != nil {
			if notExist(serr) && attempt < 3 {
				continue // released meanwhile
			}
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			// Push never makes one: it was planted, and what it points
			// at is neither read nor judged.
			return nil, fmt.Errorf("%s is a symlink on the host, not a lock push made: refusing to read or replace it: %w", lockPath(stack), ErrUnsafeTarget)
		}
		var held LockInfo
		if raw, rerr := c.readFile(p); rerr == nil {
			_ = json.Unmarshal(raw, &held)
		}
		age := now.Sub(fi.ModTime())
		gone, why := holderGone(held, info, age >= stale)
		if !gone || attempt > 2 {
			msg := fmt.Sprintf("%s is held by %s (pid %d) since %s, refreshed %s ago", lockPath(stack), orUnknown(held.By), held.PID,
				held.Started.UTC().Format(time.RFC3339), age.Round(time.Second))
			if why != "" {
				msg += "; " + why
			}
			return nil, fmt.Errorf("%s: %w", msg, ErrLocked)
		}
		// One taker at a time: whoever creates the takeover file
		// exclusively, and then finds the lock still the one it judged.
		// Only a taker removes a lock judged stale, so the lock moved
		// below is that one (unless its holder came back to release it
		// in between, when it is put back).
		guard := p + ".takeover"
		if err := c.createExcl(guard, append(b, '\n'), now); err != nil {
			if fi, serr := c.lstat(guard); serr == nil && now.Sub(fi.ModTime()) >= stale {
				_ = c.remove(guard) // left by a taker that died
				continue
			} else if serr == nil || notExist(serr) {
				// A takeover takes a few round trips: wait for it to
				// finish, so that the refusal names the new holder.
				// A guard gone by the time it is looked at was a
				// takeover that just ended: look at the lock again.
				if guardWaits < takeoverWaits {
					guardWaits++
					attempt--
					if serr == nil {
						time.Sleep(takeoverPoll)
					}
					continue
				}
				return nil, fmt.Errorf("%s is being taken over by another push: %w", lockPath(stack), ErrLocked)
			}
			return nil, err
		}
		var again LockInfo
		if found, err := c.readJSON(p, &again); err != nil || !found || again.Token != held.Token {
			_ = c.remove(guard)
			if err != nil {
				return nil, err
			}
			continue // taken over or released meanwhile: look again
		}
		moved := p + ".taken-" + info.Token
		err = c.do("rename", p, func() error { return c.sftp.PosixRename(p, moved) })
		var got LockInfo
		if err == nil {
			if raw, rerr := c.readFile(moved); rerr == nil {
				_ = json.Unmarshal(raw, &got)
			}
			if got.Token != held.Token {
				_ = c.do("link", moved, func() error { return c.sftp.Link(moved, p) })
			}
			err = c.remove(moved)
		}
		_ = c.remove(guard)
		if err != nil && !notExist(err) {
			return nil, err
		}
		if got.Token != held.Token {
			continue
		}
		tookOver = fmt.Sprintf("took over the lock of %s (pid %d, started %s): %s", orUnknown(held.By), held.PID, held.Started.UTC().Format(time.RFC3339), why)
	}
}

// A push that finds another taking over a stale lock looks again
// takeoverWaits times, takeoverPoll apart (5 s: a takeover is a few
// SFTP round trips, slower on a loaded host), before it gives up.
const (
	takeoverWaits = 50
	takeoverPoll  = 100 * time.Millisecond
)

// createExcl creates p exclusively with content b and mtime now.
func (c *conn) createExcl(p string, b []byte, now time.Time) error {
	var f *sftp.File
	if err := c.do("create", p, func() error {
		var err error
		f, err = c.sftp.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		return err
	}); err != nil {
		return err
	}
	werr := c.do("write", p, func() error { _, err := f.Write(b); return err })
	cerr := c.do("close", p, f.Close)
	return errors.Join(werr, cerr, c.do("touch", p, func() error { return c.sftp.Chtimes(p, now, now) }))
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown push"
	}
	return termtext.Escape(s) // from the lock file on the host
}

// refresh moves the lock's mtime forward when a third of the stale
// period has passed, so long rollouts keep it.
func (l *lock) refresh(now time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.touched) < l.stale/3 {
		return
	}
	if l.c.do("touch", l.path, func() error { return l.c.sftp.Chtimes(l.path, now, now) }) == nil {
		l.touched = now
	}
}

// heartbeat refreshes the lock every third of the stale period until
// release, also while a long validate or reload command runs: a lock
// whose holder is alive never looks stale, so another push takes over
// only a lock whose holder is gone.
func (l *lock) heartbeat(clock func() time.Time) {
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	every := max(l.stale/3, time.Millisecond)
	go func() {
		defer close(l.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				l.refresh(clock())
			}
		}
	}()
}

// check makes sure the lock is still this push's before a record is
// written: a push that lost it (taken over as stale) must not write.
func (l *lock) check(stack string) error {
	if l == nil {
		return nil
	}
	var held LockInfo
	found, err := l.c.readJSON(l.path, &held)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%s was removed while this push held it; not writing the host's records: %w", lockPath(stack), ErrLocked)
	}
	if held.Token != l.info.Token {
		return fmt.Errorf("%s was taken over by %s (pid %d) while this push held it; not writing the host's records: %w",
			lockPath(stack), orUnknown(held.By), held.PID, ErrLocked)
	}
	return nil
}

// release removes the lock if it is still this push's.
func (l *lock) release() error {
	if l == nil {
		return nil
	}
	if l.stop != nil {
		close(l.stop)
		<-l.done
		l.stop = nil
	}
	var held LockInfo
	if found, err := l.c.readJSON(l.path, &held); err != nil || !found || held.Token != l.info.Token {
		return err
	}
	return l.c.remove(l.path)
}
