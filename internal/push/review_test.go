package push

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/push/pushtest"
)

// Regression tests for the findings of the security review.

// A directory on the host replaced by a symlink since (or before) the
// first push is not followed: push refuses with a drift error naming
// the host and the directory, and nothing lands outside the root.
func TestSymlinkedDirectoryRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 141, "app1")
	h := e.f.Hosts["app1"]
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(h.Root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(h.Root, "etc/nginx")); err != nil {
		t.Fatal(err)
	}
	for _, force := range []bool{false, true} {
		o := e.opts(1)
		o.Force = force
		_, err := Run(context.Background(), o)
		if !errors.Is(err, ErrDrift) {
			t.Fatalf("force=%v: err = %v, want drift", force, err)
		}
		if want := "app1: /etc/nginx is a symlink (to " + outside + ") on the host, expected a directory"; !strings.Contains(err.Error(), want) {
			t.Errorf("force=%v: error %q does not contain %q", force, err, want)
		}
		ents, _ := os.ReadDir(outside)
		if len(ents) != 0 {
			t.Fatalf("force=%v: push wrote outside the root: %v", force, ents)
		}
	}
}

// The state directory's parents are checked before the lock is taken
// there: a /var/lib planted as a symlink is refused as drift, and
// neither the lock nor the records where it points are read or written
// (a push used to take the lock through it, and so find a planted lock
// "held", or leave its own there).
func TestStateDirSymlinkRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 121, "app1")
	h := e.f.Hosts["app1"]
	outside := t.TempDir()
	planted := filepath.Join(outside, "hacompile", "fleet.lock")
	if err := os.MkdirAll(filepath.Dir(planted), 0o755); err != nil {
		t.Fatal(err)
	}
	lock := `{"by":"planted@elsewhere","pid":1,"token":"planted"}` + "\n"
	if err := os.WriteFile(planted, []byte(lock), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(h.Root, "var"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(h.Root, "var/lib")); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		o := e.opts(1)
		o.DryRun, o.Force = dry, true
		_, err := Run(context.Background(), o)
		if !errors.Is(err, ErrDrift) || errors.Is(err, ErrLocked) {
			t.Fatalf("dry run %v: err = %v, want drift (and no lock judged)", dry, err)
		}
		if want := "app1: /var/lib is a symlink (to " + outside + ") on the host, expected a directory"; !strings.Contains(err.Error(), want) {
			t.Errorf("dry run %v: error %q does not contain %q", dry, err, want)
		}
	}
	ents, _ := os.ReadDir(filepath.Dir(planted))
	if b, _ := os.ReadFile(planted); len(ents) != 1 || string(b) != lock {
		t.Errorf("push wrote where /var/lib points: %v, lock %q", ents, b)
	}
	if _, err := os.Stat(filepath.Join(h.Root, "etc")); !os.IsNotExist(err) {
		t.Error("files written despite the refusal")
	}
}

// A lock file that is a symlink was planted (push creates its lock
// exclusively, as a file): push refuses without reading where it points.
func TestLockSymlinkRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 131, "app1")
	h := e.f.Hosts["app1"]
	elsewhere := filepath.Join(t.TempDir(), "lock.json")
	lock := `{"by":"planted@elsewhere","pid":1,"token":"planted"}` + "\n"
	if err := os.WriteFile(elsewhere, []byte(lock), 0o644); err != nil {
		t.Fatal(err)
	}
	lp := filepath.Join(h.Root, lockPath("fleet"))
	if err := os.MkdirAll(filepath.Dir(lp), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, lp); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), e.opts(1))
	if !errors.Is(err, ErrUnsafeTarget) || errors.Is(err, ErrLocked) || strings.Contains(err.Error(), "planted@elsewhere") {
		t.Fatalf("err = %v, want an unsafe target, the link's target unread", err)
	}
	if b, _ := os.ReadFile(elsewhere); string(b) != lock {
		t.Errorf("the link's target was changed: %q", b)
	}
	if fi, err := os.Lstat(lp); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the planted link was replaced: %v", err)
	}
}

// What a host says reaches the operator's terminal with its control
// characters escaped: a failing command's output and the holder named
// in a lock could otherwise send escape sequences (retitle the window,
// rewrite what is shown) to the terminal push runs in.
func TestHostTextEscaped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 133, "app1")
	h := e.f.Hosts["app1"]
	run1(t, e.opts(1))
	const evil = "bad\x1b]0;pwned\x07 config\x1b[2J\u202e"
	const shown = `bad\x1b]0;pwned\x07 config\x1b[2J\u202e`
	h.FailCommand(t, "gunicorn", evil)
	_, err := Run(context.Background(), e.opts(2))
	if err == nil || strings.ContainsAny(err.Error(), "\x1b\x07\u202e") || !strings.Contains(err.Error(), shown) {
		t.Errorf("validate failure: %q, want its output escaped (%s)", err, shown)
	}
	h.FailCommand(t, "gunicorn", "")
	b, _ := json.Marshal(LockInfo{By: evil, PID: 7, Token: "theirs"})
	lp := filepath.Join(h.Root, lockPath("fleet"))
	if err := os.WriteFile(lp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), e.opts(2))
	if !errors.Is(err, ErrLocked) || strings.ContainsAny(err.Error(), "\x1b\x07\u202e") || !strings.Contains(err.Error(), "held by "+shown) {
		t.Errorf("lock held: %q, want the holder escaped", err)
	}
}

// With an SFTP server whose umask is 0000, every directory push creates
// is still 0755, not world-writable.
func TestCreatedDirectoriesMode(t *testing.T) {
	t.Parallel()
	f := pushtest.StartWith(t, pushtest.Options{SFTPUmask: "0000"}, 151, "app1")
	e := &env{t: t, f: f, health: pushtest.StartHealth(t), known: f.KnownHosts(true)}
	h := f.Hosts["app1"]
	h.Stub(t, "/srv/app/venv/bin/gunicorn")
	run1(t, e.opts(1))
	n := 0
	filepath.Walk(h.Root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.IsDir() || p == h.Root || strings.HasPrefix(p, h.Root+"/srv/app/venv") {
			return nil
		}
		n++
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %04o, want 0755", strings.TrimPrefix(p, h.Root), fi.Mode().Perm())
		}
		return nil
	})
	if n < 3 {
		t.Fatalf("only %d directories created", n)
	}
}

// Push runs only commands of the reviewed manifest: a validate or
// reload command written into the host's state file is not run (and is
// named in a note), while the manifest's commands still are.
func TestHostRecordCommandsNotRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 171, "app1")
	h := e.f.Hosts["app1"]
	run1(t, e.opts(1))
	h.Commands(t)
	sp := filepath.Join(h.Root, statePath("fleet"))
	var st map[string]any
	readJSONFile(t, sp, &st)
	for _, f := range st["files"].([]any) {
		m := f.(map[string]any)
		if m["path"] == "/etc/app/gunicorn.conf.py" {
			m["validate"] = "nginx -t -c /etc/passwd"
			m["reload"] = "systemctl restart evil.service"
		}
	}
	b, _ := json.Marshal(st)
	if err := os.WriteFile(sp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := run1(t, e.opts(2))
	got := h.Commands(t)
	for _, c := range got {
		if strings.Contains(c, "/etc/passwd") || strings.Contains(c, "evil") {
			t.Errorf("ran %q from the host's state file", c)
		}
	}
	if !slices.Contains(got, "gunicorn --check-config --config $ROOT/etc/app/gunicorn.conf.py wsgi:app") {
		t.Errorf("the manifest's validate command did not run: %q", got)
	}
	r := result(t, sum, "app1")
	if !slices.ContainsFunc(r.Plan.Notes, func(n string) bool {
		return strings.Contains(n, `"systemctl restart evil.service" comes from the host's records`)
	}) {
		t.Errorf("no note about the dropped command: %q", r.Plan.Notes)
	}
}

// Without the automatic revert, a reload that failed stays owed: the
// next push, with no file to change, runs it again, and once it
// succeeds the push after runs nothing.
func TestFailedReloadRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 181, "app1")
	h := e.f.Hosts["app1"]
	run1(t, e.opts(1))
	h.Commands(t)
	h.FailCommand(t, "systemctl", "Job for app.service failed")
	o := e.opts(2)
	o.NoAutoRevert = true
	if _, err := Run(context.Background(), o); !errors.Is(err, ErrReload) || !strings.Contains(err.Error(), "the new files are in place") {
		t.Fatalf("err = %v, want a reload failure", err)
	}
	var st State
	readJSONFile(t, filepath.Join(h.Root, statePath("fleet")), &st)
	if len(st.PendingReload) == 0 {
		t.Errorf("no pending reload recorded: %+v", st)
	}
	h.FailCommand(t, "systemctl", "")
	h.Commands(t)
	sum := run1(t, e.opts(2))
	got := h.Commands(t)
	if !slices.Contains(got, "systemctl reload app.service") {
		t.Errorf("the failed reload was not retried; ran %q", got)
	}
	if r := result(t, sum, "app1"); r.Status != StatusDone || r.Created+r.Updated+r.Removed != 0 {
		t.Errorf("retry push: %+v", r)
	}
	run1(t, e.opts(2))
	if got := h.Commands(t); len(got) > 0 {
		t.Errorf("reload retried after it succeeded: %q", got)
	}
	var after State
	readJSONFile(t, filepath.Join(h.Root, statePath("fleet")), &after)
	if len(after.PendingReload) != 0 {
		t.Errorf("pending reload left: %q", after.PendingReload)
	}
}

// A push whose validate command runs longer than --lock-timeout keeps
// its lock (its heartbeat refreshes it), so a second push is refused
// instead of taking the lock over; the first completes.
func TestLockHeldThroughLongCommand(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 191, "app1")
	h := e.f.Hosts["app1"]
	run1(t, e.opts(1))
	// SFTP carries whole seconds of mtime: the timeout is well above.
	h.SlowCommand(t, "gunicorn", 8)
	o1 := e.opts(2)
	o1.By, o1.LockTimeout = "first@push", 3*time.Second
	first := background(o1)
	// The first is in its slow gunicorn --check-config, for longer than
	// the lock timeout: only its heartbeat keeps the lock fresh.
	h.WaitSlow(t, "gunicorn", time.Minute)
	time.Sleep(4 * time.Second)
	o2 := e.opts(2)
	o2.LockTimeout = 3 * time.Second
	_, err := Run(context.Background(), o2)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "held by first@push (pid 4242)") {
		t.Errorf("second push: %v, want the lock held by first@push", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("first push: %v", err)
	}
}

// A push whose lock was taken over (here: replaced by another token)
// writes none of the host's records and fails naming the new holder.
func TestLostLockStopsRecordWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 201, "app1")
	h := e.f.Hosts["app1"]
	run1(t, e.opts(1))
	sp := filepath.Join(h.Root, statePath("fleet"))
	before, _ := os.ReadFile(sp)
	h.SlowCommand(t, "gunicorn", 3)
	first := background(e.opts(2))
	h.WaitSlow(t, "gunicorn", time.Minute) // the push holds the lock, in its slow gunicorn --check-config
	lp := filepath.Join(h.Root, lockPath("fleet"))
	if err := os.WriteFile(lp, []byte(`{"by":"other@push","pid":7,"token":"theirs"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	err := <-first
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "app1: "+lockPath("fleet")+" was taken over by other@push (pid 7)") {
		t.Errorf("err = %v, want the lock taken over", err)
	}
	if after, _ := os.ReadFile(sp); string(after) != string(before) {
		t.Error("the state file was written without the lock")
	}
	if b, _ := os.ReadFile(lp); !strings.Contains(string(b), "theirs") {
		t.Error("the other push's lock was removed")
	}
}

// background runs a push and delivers its error.
func background(o Options) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), o)
		done <- err
	}()
	return done
}
