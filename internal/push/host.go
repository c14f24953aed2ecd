package push

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/secret"
	"github.com/hacompile/hacompile/internal/termtext"
)

// hostRun is one host's part of a push or rollback.
type hostRun struct {
	o *Options
	h *Host
	// noHealth: the tree is under a root prefix, where the health check
	// would check the machine's own services (rootCommands).
	noHealth bool
	d        *dialer
	rollback bool
	res      *HostResult

	c      *conn
	lk     *lock
	uid    int
	chown  bool // ownership is applied (the remote user is root)
	users  map[string][2]int
	groups map[string]int
	state  *State      // the last pushed manifest; nil before the first push
	gens   []int       // generation numbers on the host
	latest *Generation // the newest generation, when a push was cut off in it
	target *Generation // rollback: the generation to undo
	stale  []string    // temp files left by an interrupted push
	orphan int         // a generation directory without a record, to remove
	plan   *Plan
	// written is the State on the host after this run's record (nil
	// when there is none), which a failed reload marks pending.
	written *State
	slot    bool // holds one of the run's Parallel slots
	fresh   bool // planned just now: apply need not plan again
}

func (r *hostRun) progress(p Phase, detail string) {
	if r.o.Progress != nil {
		r.o.Progress.Update(r.h.Name, p, detail)
	}
}

func (r *hostRun) note(s string) { r.res.Notes = append(r.res.Notes, s) }

func (r *hostRun) root(p string) string { return joinRoot(r.h.Root, p) }

// connect makes sure the host is connected, locked and planned for its
// batch: a host whose connection was closed after its preflight goes
// through it again.
func (r *hostRun) connect(ctx context.Context) error {
	if r.c != nil {
		r.fresh = false
		return nil
	}
	return r.preflight(ctx)
}

// preflight connects, locks and plans. It writes nothing but the lock.
func (r *hostRun) preflight(ctx context.Context) error {
	r.fresh = false
	r.progress(PhaseConnecting, r.h.SSH.String())
	c, err := r.d.dial(ctx, r.h.SSH)
	if err != nil {
		return err
	}
	r.c = c
	out, err := c.run(ctx, r.h.Root, "id -u", r.o.CommandTimeout)
	if err != nil {
		return fmt.Errorf("find the remote user id: %w", err)
	}
	if r.uid, err = strconv.Atoi(strings.TrimSpace(out)); err != nil {
		return fmt.Errorf("find the remote user id: id -u printed %q", out)
	}
	r.chown = r.uid == 0
	// The lock and the records live in StateDir: its components are
	// checked before the lock is created or any record read there, so
	// a symlink planted on the way (/var/lib -> elsewhere) is neither
	// written through nor trusted. makePlan checks the rest.
	stateDirs := map[string]bool{}
	for _, dir := range []string{StateDir, backupsDir(r.o.Stack)} {
		if err := r.checkDirs(dir, stateDirs); err != nil {
			return err
		}
	}
	if r.o.DryRun {
		if fi, err := c.lstat(r.root(lockPath(r.o.Stack))); err == nil {
			r.note(fmt.Sprintf("%s exists (refreshed %s): another push may be running", lockPath(r.o.Stack), fi.ModTime().UTC().Format("2006-01-02 15:04:05Z")))
		}
	} else {
		now := r.o.clock()
		info := LockInfo{By: r.o.By, PID: r.o.PID, Started: r.o.started.UTC(), Token: randomSuffix()}.Holder(r.o.PID)
		r.lk, err = c.acquire(r.h.Root, r.o.Stack, info, r.o.LockTimeout, now)
		if err != nil {
			return err
		}
		if r.lk.tookOver != "" {
			r.note(r.lk.tookOver)
		}
		r.lk.heartbeat(r.o.clock)
	}
	if err := r.load(); err != nil {
		return err
	}
	if err := r.makePlan(); err != nil {
		return err
	}
	p := r.plan
	cr, up, rm := p.Counts()
	r.progress(PhasePlanned, fmt.Sprintf("%d to create, %d to update, %d to remove, %d unchanged", cr, up, rm, p.Unchanged))
	if len(p.Drift) > 0 && !r.o.Force {
		return fmt.Errorf("%s: %w", strings.Join(p.Drift, "; "), ErrDrift)
	}
	// Any write goes through temp file, fsync and rename; a run with no
	// change may still record state, so only a no-op dry run is exempt.
	if len(p.Changes) > 0 || p.Resume || !r.o.DryRun {
		if missing := c.missingExtensions(); len(missing) > 0 {
			err := fmt.Errorf("the SFTP server does not offer %s, needed to replace files atomically and durably (OpenSSH 6.5 or later has them): %w",
				strings.Join(missing, " and "), ErrUnsupported)
			if !r.o.DryRun {
				return err
			}
			p.Notes = append(p.Notes, err.Error())
		}
	}
	r.fresh = true
	return nil
}

// load reads the host's record: the last pushed manifest, the
// generations, and for a rollback the generation to undo.
func (r *hostRun) load() error {
	var st State
	found, err := r.c.readJSON(r.root(statePath(r.o.Stack)), &st)
	if err != nil {
		return err
	}
	if found {
		r.state = &st
	}
	if r.gens, err = r.c.generations(r.h.Root, r.o.Stack); err != nil {
		return err
	}
	if n := len(r.gens); n > 0 {
		g, err := r.c.readGeneration(r.h.Root, r.o.Stack, r.gens[n-1])
		if err != nil {
			return err
		}
		switch {
		case g == nil:
			// Cut off while taking backups, before any target was
			// touched: the directory holds nothing worth keeping.
			r.orphan = r.gens[n-1]
		case g.Status == genApplying:
			r.latest = g
		}
	}
	if !r.rollback {
		return nil
	}
	// Walk back past rollbacks and undone pushes to the newest push
	// still in effect, so repeated rollbacks step back through history.
	for i := len(r.gens) - 1; i >= 0; i-- {
		g, err := r.c.readGeneration(r.h.Root, r.o.Stack, r.gens[i])
		if err != nil {
			return err
		}
		if g == nil || g.Kind != "push" || (g.Status != genApplied && g.Status != genApplying) {
			continue
		}
		r.target = g
		return nil
	}
	return fmt.Errorf("%s has no push generation left to undo under %s: %w", r.h.Name, backupsDir(r.o.Stack), ErrNoGeneration)
}

// makePlan reads every path the push (or rollback) concerns and decides
// what to do with it.
func (r *hostRun) makePlan() error {
	p := &Plan{Host: r.h.Name, Endpoint: r.h.SSH.String(), wants: map[string]*desired{}, olds: map[string]remoteFile{}}
	var pps []pathPlan
	var err error
	if r.rollback {
		pps, err = r.rollbackPaths()
	} else {
		pps, err = r.pushPaths()
	}
	if err != nil {
		return err
	}
	checked := map[string]bool{}
	for _, dir := range []string{StateDir, backupsDir(r.o.Stack)} {
		if err := r.checkDirs(dir, checked); err != nil {
			return err
		}
	}
	for _, pp := range pps {
		if err := r.checkDirs(path.Dir(pp.Path), checked); err != nil {
			return err
		}
		if pp.Have, err = r.c.inspect(r.root(pp.Path)); err != nil {
			return err
		}
		ch, drift, err := planPath(pp)
		if err != nil {
			return err
		}
		if drift != "" {
			p.Drift = append(p.Drift, drift)
		}
		if ch == nil {
			if pp.Want != nil {
				p.Unchanged++
			}
			continue
		}
		p.Changes = append(p.Changes, *ch)
		p.wants[pp.Path] = pp.Want
		p.olds[pp.Path] = pp.Have
	}
	for _, ch := range p.Changes {
		if ch.Action == "remove" && strings.HasPrefix(ch.Path, "/etc/systemd/system/") && strings.HasSuffix(ch.Path, ".service") {
			p.Notes = append(p.Notes, fmt.Sprintf("%s is removed but %s is not stopped or disabled: do that by hand", ch.Path, path.Base(ch.Path)))
		}
	}
	effective := p.Changes
	switch {
	case r.latest != nil && !r.rollback:
		// The cut-off push may have replaced files without validating
		// or reloading them: its changes count as this push's, even
		// when no file differs any more.
		p.Generation, p.Resume = r.latest.Number, true
		effective = mergeChanges(r.latest.Changes, p.Changes)
		p.Notes = append(p.Notes, fmt.Sprintf("generation %d was cut off; this push completes it (validate and reload cover its %d changes)", r.latest.Number, len(effective)))
	case len(p.Changes) == 0:
	case r.orphan > 0:
		p.Generation = r.orphan // its directory is removed first
	case len(r.gens) > 0:
		p.Generation = r.gens[len(r.gens)-1] + 1
	default:
		p.Generation = 1
	}
	effective = r.reviewedActions(p, effective)
	p.Validate = validateCommands(effective)
	if pending := r.pendingReload(p); len(pending) > 0 {
		effective = append(effective, Change{Reload: pending})
		p.Notes = append(p.Notes, fmt.Sprintf("a reload failed after an earlier push; it runs again: %s", strings.Join(r.state.PendingReload, "; ")))
	}
	p.Reload = reloadSteps(effective)
	r.rootCommands(p)
	if r.target != nil {
		p.Reverts = r.target.Number
	}
	if !r.chown && len(p.Changes) > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("owners are not applied: the remote user (uid %d) is not root, so files keep that user's ownership", r.uid))
	}
	if r.stale, err = r.findStale(pps); err != nil {
		return err
	}
	if len(r.stale) > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("%d temp file(s) left by an interrupted push will be removed: %s", len(r.stale), strings.Join(r.stale, ", ")))
	}
	if r.orphan > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("%s has no record (a push was cut off while taking backups) and will be removed", genDir(r.o.Stack, r.orphan)))
	}
	r.plan = p
	r.res.Plan = p
	return nil
}

// rootCommands keeps, when the host's tree is under a root prefix
// (--root: a chroot or staging tree), only the validate commands that
// check the tree (name a path in it): the others, every reload step
// (systemctl, sysctl) and the health check would act on the machine's
// own services, not on the tree. What is left out is a note in the plan
// and the host's result.
func (r *hostRun) rootCommands(p *Plan) {
	if r.h.Root == "/" || r.o.sandboxCommands {
		return
	}
	prefix := strings.TrimRight(r.h.Root, "/") + "/"
	var keep, skip []string
	for _, cmd := range p.Validate {
		inTree := false
		for _, op := range artifact.ParseAction(cmd).Ops() {
			if slices.ContainsFunc(op.Args(), func(a string) bool { return strings.HasPrefix(a, prefix) }) {
				inTree = true
			}
		}
		if inTree {
			keep = append(keep, cmd)
		} else {
			skip = append(skip, cmd)
		}
	}
	skip = append(skip, p.Reload...)
	p.Validate, p.Reload = keep, nil
	if r.h.HealthURL != "" && r.h.HealthDefault {
		// It would check the machine's own services, which nothing
		// reloaded, and a failure would revert the tree (a --health-url
		// given names what to check, and is).
		skip = append(skip, "the health check of "+r.h.HealthURL)
		r.noHealth = true
	}
	if len(skip) > 0 {
		p.rootSkipped = fmt.Sprintf("not run under the root %s, as it would act on this machine's own services rather than the tree: %s", r.h.Root, strings.Join(skip, "; "))
		p.Notes = append(p.Notes, p.rootSkipped)
	}
}

// pendingReload are the reload steps an earlier push recorded as
// failed, as actions; like every command, only steps of the reviewed
// manifest's reload actions are kept.
func (r *hostRun) pendingReload(p *Plan) []artifact.Action {
	if r.rollback || r.state == nil || len(r.state.PendingReload) == 0 {
		return nil
	}
	var reviewed []string
	for _, f := range r.h.Files {
		for _, op := range f.Reload.Ops() {
			reviewed = append(reviewed, op.Command)
		}
	}
	var out []artifact.Action
	for _, step := range r.state.PendingReload {
		if slices.Contains(reviewed, step) {
			out = append(out, artifact.ParseAction(step))
		} else {
			p.Notes = append(p.Notes, fmt.Sprintf("not run: %q comes from the host's records, not from the reviewed manifest", step))
		}
	}
	return out
}

// reviewedActions keeps, of the changes' validate and reload actions,
// only those the reviewed manifest (out/) gives some file of this host.
// The others came from the host's own records (its state file or a
// generation record), which anyone with write access to the host could
// have edited: push never runs a command from there. Each one left out
// is a note in the plan.
func (r *hostRun) reviewedActions(p *Plan, changes []Change) []Change {
	var reviewed []artifact.Action
	for _, f := range r.h.Files {
		reviewed = appendActions(reviewed, f.Validate, f.Reload)
	}
	var dropped []string
	keep := func(as []artifact.Action) []artifact.Action {
		var out []artifact.Action
		for _, a := range as {
			if slices.ContainsFunc(reviewed, a.Equal) {
				out = append(out, a)
			} else if s := a.String(); !slices.Contains(dropped, s) {
				dropped = append(dropped, s)
			}
		}
		return out
	}
	out := slices.Clone(changes)
	for i := range out {
		out[i].Validate, out[i].Reload = keep(out[i].Validate), keep(out[i].Reload)
	}
	for _, s := range dropped {
		p.Notes = append(p.Notes, fmt.Sprintf("not run: %q comes from the host's records, not from the reviewed manifest", s))
	}
	return out
}

// writeRecord writes one of the host's records (state or generation)
// after checking that this push still holds the lock.
func (r *hostRun) writeRecord(p string, v any) error {
	if err := r.lk.check(r.o.Stack); err != nil {
		return err
	}
	return r.c.writeJSON(p, v)
}

// checkDirs lstats every component of the host directory dir below the
// host's root and refuses a symlink or a non-directory: the manifest
// never puts a symlink on a path push writes through, so one there was
// made on the host, and following it would write outside the tree the
// push was reviewed for. --force does not override this. checked
// remembers the directories already seen.
func (r *hostRun) checkDirs(dir string, checked map[string]bool) error {
	if dir == "/" || dir == "." || dir == "" || checked[dir] {
		return nil
	}
	if err := r.checkDirs(path.Dir(dir), checked); err != nil {
		return err
	}
	fi, err := r.c.lstat(r.root(dir))
	switch {
	case notExist(err):
		// Created by the push (as a real directory); nothing below it
		// exists either.
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		link := "?"
		if t, err := r.c.readLink(r.root(dir)); err == nil {
			link = termtext.Escape(t)
		}
		return fmt.Errorf("%s is a symlink (to %s) on the host, expected a directory: refusing to write through it (--force does not override this): %w", dir, link, ErrDrift)
	case !fi.IsDir():
		return fmt.Errorf("%s is a %s on the host, expected a directory: %w", dir, kindOf(fi.Mode()), ErrDrift)
	}
	checked[dir] = true
	return nil
}

// pushPaths are the host's files plus the files the last push wrote
// that the stack no longer produces (they are removed).
func (r *hostRun) pushPaths() ([]pathPlan, error) {
	interrupted := map[string]*Change{}
	if r.latest != nil {
		for i := range r.latest.Changes {
			interrupted[r.latest.Changes[i].Path] = &r.latest.Changes[i]
		}
	}
	expect := func(p string) []expectation {
		var es []expectation
		if e := r.state.entry(p); e != nil {
			ex := expectation{SHA256: e.SHA256, Mode: e.Mode}
			// The record names the owner; push applied it only as root.
			if r.chown && e.Owner != "" {
				if uid, gid, err := r.resolveOwner(e.Owner); err == nil {
					ex.Owned, ex.UID, ex.GID = true, uid, gid
				}
			}
			es = append(es, ex)
		}
		if ch := interrupted[p]; ch != nil {
			// Cut off mid-push, the file may hold either side.
			es = append(es, expectOf(ch.New), expectOf(ch.Old))
		}
		return es
	}
	var pps []pathPlan
	for _, f := range r.h.Files {
		w := &desired{Content: f.Content, Mode: f.Mode, Owner: f.Owner, UID: -1, GID: -1}
		if r.chown {
			var err error
			if w.UID, w.GID, err = r.resolveOwner(f.Owner); err != nil {
				return nil, fmt.Errorf("%s: %w", f.Path, err)
			}
		}
		pp := pathPlan{Path: f.Path, Want: w, Expect: expect(f.Path)}
		pp.Validate = appendActions(pp.Validate, f.Validate)
		pp.Reload = appendActions(pp.Reload, f.Reload)
		if e := r.state.entry(f.Path); e != nil {
			pp.Validate = appendActions(pp.Validate, e.Validate)
			pp.Reload = appendActions(pp.Reload, e.Reload)
		}
		pps = append(pps, pp)
	}
	if r.state != nil {
		for _, e := range r.state.Files {
			if slices.ContainsFunc(r.h.Files, func(f File) bool { return f.Path == e.Path }) {
				continue
			}
			pps = append(pps, pathPlan{Path: e.Path, Expect: expect(e.Path),
				Validate: appendActions(nil, e.Validate), Reload: appendActions(nil, e.Reload)})
		}
	}
	slices.SortFunc(pps, func(a, b pathPlan) int { return strings.Compare(a.Path, b.Path) })
	return pps, nil
}

// rollbackPaths want every path of the target generation back as it
// was before it: its backup, or absent.
func (r *hostRun) rollbackPaths() ([]pathPlan, error) {
	g := r.target
	var pps []pathPlan
	for _, ch := range g.Changes {
		pp := pathPlan{Path: ch.Path, Expect: []expectation{expectOf(ch.New)}, Validate: ch.Validate, Reload: ch.Reload}
		if g.Status == genApplying {
			pp.Expect = append(pp.Expect, expectOf(ch.Old))
		}
		if ch.Old != nil {
			b, err := r.readBackup(g.Number, ch)
			if err != nil {
				return nil, err
			}
			mode, _ := strconv.ParseUint(ch.Old.Mode, 8, 32)
			w := &desired{Content: b, Mode: fs.FileMode(mode), Owner: fmt.Sprintf("%d:%d", ch.Old.UID, ch.Old.GID), UID: -1, GID: -1}
			if r.chown && ch.Old.UID >= 0 {
				w.UID, w.GID = ch.Old.UID, ch.Old.GID
			}
			pp.Want = w
		}
		pps = append(pps, pp)
	}
	slices.SortFunc(pps, func(a, b pathPlan) int { return strings.Compare(a.Path, b.Path) })
	return pps, nil
}

func (r *hostRun) readBackup(gen int, ch Change) ([]byte, error) {
	p := r.root(genDir(r.o.Stack, gen) + "/" + ch.Backup)
	b, err := r.c.readFile(p)
	if err != nil {
		return nil, fmt.Errorf("backup of %s in generation %d: %w", ch.Path, gen, err)
	}
	if sha(b) != ch.Old.SHA256 {
		return nil, fmt.Errorf("backup %s does not match its record (sha256 %.12s, want %.12s)", p, sha(b), ch.Old.SHA256)
	}
	return b, nil
}

// findStale lists temp files an interrupted push left in the
// directories push writes to.
func (r *hostRun) findStale(pps []pathPlan) ([]string, error) {
	dirs := []string{StateDir, backupsDir(r.o.Stack)}
	for _, pp := range pps {
		dirs = append(dirs, path.Dir(pp.Path))
	}
	for _, n := range r.gens {
		dirs = append(dirs, genDir(r.o.Stack, n))
	}
	slices.Sort(dirs)
	var stale []string
	for _, d := range slices.Compact(dirs) {
		ents, err := r.c.readDir(r.root(d))
		if notExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), TempPrefix) && e.Mode().IsRegular() {
				stale = append(stale, path.Join(d, e.Name()))
			}
		}
	}
	return stale, nil
}

// resolveOwner maps "user:group" to numeric ids through the passwd and
// group files of the root (a chroot has its own), else of the system.
func (r *hostRun) resolveOwner(owner string) (uid, gid int, err error) {
	if r.users == nil {
		r.users, r.groups = map[string][2]int{}, map[string]int{}
		passwd, err := r.readFirst("/etc/passwd")
		if err != nil {
			return 0, 0, err
		}
		group, err := r.readFirst("/etc/group")
		if err != nil {
			return 0, 0, err
		}
		eachEntry(passwd, func(f []string) {
			if len(f) >= 4 {
				u, e1 := strconv.Atoi(f[2])
				g, e2 := strconv.Atoi(f[3])
				if e1 == nil && e2 == nil {
					r.users[f[0]] = [2]int{u, g}
				}
			}
		})
		eachEntry(group, func(f []string) {
			if len(f) >= 3 {
				if g, err := strconv.Atoi(f[2]); err == nil {
					r.groups[f[0]] = g
				}
			}
		})
	}
	user, group, hasGroup := strings.Cut(owner, ":")
	u, ok := r.users[user]
	if !ok {
		return 0, 0, fmt.Errorf("owner %s: no user %q in /etc/passwd", owner, user)
	}
	uid, gid = u[0], u[1]
	if hasGroup {
		g, ok := r.groups[group]
		if !ok {
			return 0, 0, fmt.Errorf("owner %s: no group %q in /etc/group", owner, group)
		}
		gid = g
	}
	return uid, gid, nil
}

func (r *hostRun) readFirst(p string) ([]byte, error) {
	if r.h.Root != "/" {
		b, err := r.c.readFile(r.root(p))
		if err == nil {
			return b, nil
		}
		if !notExist(err) {
			return nil, err
		}
	}
	return r.c.readFile(p)
}

func eachEntry(b []byte, fn func([]string)) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			fn(strings.Split(line, ":"))
		}
	}
}

// apply makes the planned changes: backups and the generation record
// first, then each file atomically, then validation (restoring the
// backups if it fails), the host's record, reloads and the health
// check.
func (r *hostRun) apply(ctx context.Context) error {
	r.lk.refresh(r.o.clock())
	// Plan again: the host may have been edited since the preflight of
	// a long rollout.
	if !r.fresh {
		if err := r.makePlan(); err != nil {
			return err
		}
	}
	r.fresh = false
	p := r.plan
	if len(p.Drift) > 0 && !r.o.Force {
		return fmt.Errorf("%s: %w", strings.Join(p.Drift, "; "), ErrDrift)
	}
	timers, err := r.pendingTimers()
	if err != nil {
		return err
	}
	for _, dm := range timers {
		// This push reached the host: the change that timer guards did
		// not lock push out.
		if err := claim(r.c, dm, "confirm"); err != nil {
			return fmt.Errorf("an earlier push's dead-man timer: %w; push again", err)
		}
		r.note(fmt.Sprintf("confirmed the dead-man timer an earlier, cut-off push armed (%s): this push reached the host", path.Base(dm.decided)))
	}
	for _, t := range r.stale {
		if err := r.c.remove(r.root(t)); err != nil && !notExist(err) {
			return err
		}
	}
	if len(r.stale) > 0 {
		r.note(fmt.Sprintf("removed %d temp file(s) left by an interrupted push", len(r.stale)))
	}
	if r.orphan > 0 && !r.o.DryRun {
		if err := r.c.removeAll(r.root(genDir(r.o.Stack, r.orphan))); err != nil {
			return err
		}
		r.note(fmt.Sprintf("removed %s, left without a record by an interrupted push", genDir(r.o.Stack, r.orphan)))
		r.gens = slices.DeleteFunc(r.gens, func(n int) bool { return n == r.orphan })
		r.orphan = 0
	}
	r.res.Created, r.res.Updated, r.res.Removed = p.Counts()
	r.res.Unchanged = p.Unchanged
	if p.rootSkipped != "" && (len(p.Changes) > 0 || p.Resume) {
		r.note(p.rootSkipped)
	}
	if len(p.Changes) == 0 && !p.Resume {
		if err := r.recordUnchanged(); err != nil {
			return err
		}
		if len(p.Reload) > 0 {
			// Only reloads left pending by an earlier push.
			if err := r.reload(ctx); err != nil {
				return fmt.Errorf("%w (the next push runs the reload again)", err)
			}
			r.res.Status = StatusDone
			r.progress(PhaseHealthy, "(pending reloads done)")
			return nil
		}
		r.res.Status = StatusUnchanged
		r.progress(PhaseUnchanged, fmt.Sprintf("(%d files)", p.Unchanged))
		return nil
	}

	g := r.generation()
	r.res.Generation = g.Number
	dir := genDir(r.o.Stack, g.Number)
	for i := range g.Changes {
		ch := &g.Changes[i]
		if ch.Old == nil || ch.Backup != "" {
			continue
		}
		old, ok := p.olds[ch.Path]
		if !ok {
			continue
		}
		ch.Backup = "files" + ch.Path
		b := r.root(dir + "/" + ch.Backup)
		if err := r.c.mkdirAll(path.Dir(b)); err != nil {
			return err
		}
		spec := writeSpec{Content: old.Content, Mode: old.Mode.Perm(), UID: -1, GID: -1}
		if r.chown && old.UID >= 0 {
			spec.UID, spec.GID = old.UID, old.GID
		}
		if err := r.c.writeAtomic(b, spec, nil); err != nil {
			return fmt.Errorf("back up %s: %w", ch.Path, err)
		}
	}
	// The record goes down before any target changes, so a push cut off
	// from here on is resumed (or rolled back) by the next run.
	if err := r.writeRecord(r.root(dir+"/generation.json"), g); err != nil {
		return err
	}

	r.progress(PhaseUploading, fmt.Sprintf("0/%d", len(p.Changes)))
	for i, ch := range p.Changes {
		target := r.root(ch.Path)
		if ch.Action == "remove" {
			if err := r.c.remove(target); err != nil && !notExist(err) {
				return err
			}
		} else {
			w := p.wants[ch.Path]
			if err := r.c.mkdirAll(path.Dir(target)); err != nil {
				return err
			}
			var hook func(string)
			if r.o.beforeRename != nil {
				hook = func(tmp string) { r.o.beforeRename(r.h.Name, ch.Path, tmp) }
			}
			if err := r.c.writeAtomic(target, writeSpec{Content: w.Content, Mode: w.Mode, UID: w.UID, GID: w.GID}, hook); err != nil {
				return err
			}
		}
		r.progress(PhaseUploading, fmt.Sprintf("%d/%d", i+1, len(p.Changes)))
	}

	r.lk.refresh(r.o.clock())
	if len(p.Validate) > 0 {
		r.progress(PhaseValidating, strings.Join(p.Validate, "; "))
	}
	// undo puts the previous files back before anything was reloaded.
	undo := func(kind, err error) error {
		verr := fmt.Errorf("%w, so the previous files were restored and nothing was reloaded: %w", kind, err)
		if rerr := r.restore(g); rerr != nil {
			return errors.Join(fmt.Errorf("%w: %w", kind, err), fmt.Errorf("%w: %w; the host may hold a mix of old and new files: run hacompile rollback or inspect %s", ErrRestore, rerr, dir))
		}
		g.Status = genReverted
		if werr := r.writeRecord(r.root(dir+"/generation.json"), g); werr != nil {
			return errors.Join(verr, werr)
		}
		r.res.Status = StatusReverted
		r.progress(PhaseRestored, "the previous files; nothing was reloaded")
		return verr
	}
	for _, cmd := range p.Validate {
		_, err := r.c.run(ctx, r.h.Root, cmd, r.o.CommandTimeout)
		if err != nil {
			return undo(ErrValidate, err)
		}
		r.res.Validated = append(r.res.Validated, cmd)
	}
	var dm *deadman
	if r.needsDeadman(g) {
		var err error
		if dm, err = r.armDeadman(ctx, g); err != nil {
			return undo(ErrNotConfirmed, err)
		}
	}

	if err := r.record(g); err != nil {
		return err
	}
	r.prune()

	err = r.reload(ctx)
	if err == nil && r.h.HealthURL != "" && !r.noHealth {
		r.lk.refresh(r.o.clock())
		r.progress(PhaseChecking, secret.RedactURL(r.h.HealthURL))
		r.res.Health = secret.RedactURL(r.h.HealthURL)
		if herr := r.healthy(ctx); herr != nil {
			err = fmt.Errorf("%w: %w", ErrHealth, herr)
		}
	}
	if err != nil {
		if dm != nil && r.c.failure() != nil {
			return fmt.Errorf("%w; the connection to the host is lost (%v): its dead-man timer %s restores the previous files within %s of the reload", err, r.c.failure(), dm.unit, dm.window)
		}
		if r.o.NoAutoRevert || ctx.Err() != nil {
			if dm != nil && ctx.Err() == nil {
				// Asked to keep the new files: the host is reachable,
				// so the timer's guard is not needed.
				if cerr := claim(r.c, dm, "confirm"); cerr != nil {
					return errors.Join(err, cerr)
				}
			}
			if errors.Is(err, ErrReload) {
				err = fmt.Errorf("%w (the new files are in place; the next push runs the reload again; hacompile rollback restores the previous files)", err)
			}
			return err
		}
		return r.revert(ctx, g, err, dm)
	}
	if dm != nil {
		r.progress(PhaseChecking, "connecting again to confirm the change")
		if err := r.confirm(ctx, dm); err != nil {
			if errors.Is(err, errTimerFired) {
				r.res.Status = StatusReverted
			}
			return err
		}
		r.note(fmt.Sprintf("confirmed over a new connection: the dead-man timer %s will not restore anything", dm.unit))
	}
	r.res.Status = StatusDone
	r.progress(PhaseHealthy, fmt.Sprintf("(generation %d)", g.Number))
	return nil
}

// revert undoes generation g after its reload or health check failed
// (cause): the previous files go back byte for byte, the host's records
// say so (the generation reverted, the state as before it, with the
// reloads owed until they succeed), and the same reload steps run again
// to make the previous files live; then the health check, whose outcome
// is reported but changes nothing more.
func (r *hostRun) revert(ctx context.Context, g *Generation, cause error, dm *deadman) error {
	if dm != nil {
		// Decide before the timer does, so only one restores.
		if err := claim(r.c, dm, "revert"); err != nil {
			if errors.Is(err, errTimerFired) {
				r.res.Status = StatusReverted
				return errors.Join(cause, err)
			}
			return fmt.Errorf("%w; the connection to the host is lost (%v): its dead-man timer %s restores the previous files within %s of the reload", cause, err, dm.unit, dm.window)
		}
	}
	r.progress(PhaseRestored, "the previous files after: "+cause.Error())
	fail := func(err error) error {
		return errors.Join(cause, fmt.Errorf("%w: %w; run hacompile rollback or inspect %s", ErrRestore, err, genDir(r.o.Stack, g.Number)))
	}
	if err := r.restore(g); err != nil {
		return fail(err)
	}
	sp := r.root(statePath(r.o.Stack))
	if r.state == nil {
		if err := r.c.remove(sp); err != nil && !notExist(err) {
			return fail(err)
		}
		r.written = nil
	} else {
		st := *r.state
		st.PendingReload = nil
		r.written = &st
	}
	g.Status = genReverted
	if err := r.writeRecord(r.root(genDir(r.o.Stack, g.Number)+"/generation.json"), g); err != nil {
		return fail(err)
	}
	if r.rollback {
		// The generation the rollback undid is in effect again.
		if err := r.writeRecord(r.root(genDir(r.o.Stack, r.target.Number)+"/generation.json"), r.target); err != nil {
			return fail(err)
		}
	}
	r.res.Status = StatusReverted
	// setPending writes the state back with the steps owed.
	if err := r.reload(ctx); err != nil {
		return fail(fmt.Errorf("the previous files are back but reloading them failed (the next push runs the reload again): %w", err))
	}
	if r.written != nil && len(r.plan.Reload) == 0 {
		if err := r.writeRecord(sp, r.written); err != nil {
			return fail(err)
		}
	}
	msg := fmt.Sprintf("; generation %d was reverted: the previous files are back and reloaded", g.Number)
	if r.h.HealthURL != "" && !r.noHealth {
		if herr := r.healthy(ctx); herr != nil {
			msg += " (and the host is still unhealthy: " + herr.Error() + ")"
		} else {
			msg += " (and healthy)"
		}
	}
	return fmt.Errorf("%w%s", cause, msg)
}

// healthy checks the host's health URLs in turn (one per app the host
// runs), and reports the first that fails.
func (r *hostRun) healthy(ctx context.Context) error {
	for _, u := range append([]string{r.h.HealthURL}, r.h.MoreHealthURLs...) {
		if err := checkHealth(ctx, u, r.h.HealthRedirectOK, r.h.HealthPROXY, r.o.HealthTimeout, r.o.Dial); err != nil {
			return err
		}
	}
	return nil
}

// reload runs the plan's reload steps. Before the first it records
// them all as pending in the host's state, and after each success the
// rest: a push cut off or failing here leaves the steps still owed, and
// the next push runs them even when no file differs.
func (r *hostRun) reload(ctx context.Context) error {
	p := r.plan
	if len(p.Reload) == 0 {
		return nil
	}
	r.progress(PhaseReloading, strings.Join(p.Reload, "; "))
	if err := r.setPending(p.Reload); err != nil {
		return err
	}
	for i, step := range p.Reload {
		if _, err := r.c.run(ctx, r.h.Root, step, r.o.CommandTimeout); err != nil {
			return fmt.Errorf("%w: %w", ErrReload, err)
		}
		r.res.Reloaded = append(r.res.Reloaded, step)
		if err := r.setPending(p.Reload[i+1:]); err != nil {
			return err
		}
	}
	return nil
}

// setPending records steps as the host's pending reloads.
func (r *hostRun) setPending(steps []string) error {
	if r.written == nil || slices.Equal(r.written.PendingReload, steps) {
		return nil
	}
	r.written.PendingReload = slices.Clone(steps)
	return r.writeRecord(r.root(statePath(r.o.Stack)), r.written)
}

// generation starts the record of this run, or continues the one a
// cut-off push left: its backups hold the files as they were before it
// began, which is what undoing it must restore.
func (r *hostRun) generation() *Generation {
	p := r.plan
	if p.Resume {
		g := *r.latest
		g.Changes = mergeChanges(g.Changes, p.Changes)
		return &g
	}
	kind := "push"
	if r.rollback {
		kind = "rollback"
	}
	return &Generation{
		Stack: r.o.Stack, Host: r.h.Name, Number: p.Generation, Kind: kind, Status: genApplying,
		Started: r.o.clock().UTC(), By: r.o.By, Reverts: p.Reverts, Previous: r.state,
		Changes: slices.Clone(p.Changes),
	}
}

// mergeChanges adds changes to those of a cut-off generation. A path in
// both keeps its first Old and backup (the file before the generation
// began) and takes the new target; a file the generation created that
// is now to be absent again drops out.
func mergeChanges(base, changes []Change) []Change {
	out := slices.Clone(base)
	for _, ch := range changes {
		i := slices.IndexFunc(out, func(c Change) bool { return c.Path == ch.Path })
		if i < 0 {
			out = append(out, ch)
			continue
		}
		prev := &out[i]
		prev.New, prev.Reason = ch.New, ch.Reason
		prev.Validate = appendActions(prev.Validate, ch.Validate...)
		prev.Reload = appendActions(prev.Reload, ch.Reload...)
		switch {
		case prev.Old == nil && ch.New == nil:
			out = slices.Delete(out, i, i+1)
		case prev.Old == nil:
			prev.Action = "create"
		case ch.New == nil:
			prev.Action = "remove"
		default:
			prev.Action = "update"
		}
	}
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// restore puts a generation's backups back, newest change last undone
// first, and removes the files it created.
func (r *hostRun) restore(g *Generation) error {
	var errs []error
	for i := len(g.Changes) - 1; i >= 0; i-- {
		ch := g.Changes[i]
		target := r.root(ch.Path)
		if ch.Old == nil {
			if err := r.c.remove(target); err != nil && !notExist(err) {
				errs = append(errs, err)
			}
			continue
		}
		b, err := r.readBackup(g.Number, ch)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		mode, _ := strconv.ParseUint(ch.Old.Mode, 8, 32)
		spec := writeSpec{Content: b, Mode: fs.FileMode(mode), UID: -1, GID: -1}
		if r.chown && ch.Old.UID >= 0 {
			spec.UID, spec.GID = ch.Old.UID, ch.Old.GID
		}
		if err := r.c.mkdirAll(path.Dir(target)); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := r.c.writeAtomic(target, spec, nil); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// newState is the host's record after a successful push.
func (r *hostRun) newState(gen int) *State {
	st := &State{Stack: r.o.Stack, Host: r.h.Name, Generation: gen, SourceSHA256: r.o.SourceSHA256, Files: []compile.ManifestEntry{}}
	for _, f := range r.h.Files {
		st.Files = append(st.Files, compile.ManifestEntry{
			Host: r.h.Name, Path: f.Path, Kind: f.Kind, SHA256: sha(f.Content), Size: len(f.Content),
			Mode: modeString(f.Mode), Owner: f.Owner, Validate: f.Validate, Reload: f.Reload,
		})
	}
	return st
}

// recordUnchanged writes the host's record when nothing needed writing
// but the record is missing or stale (files adopted as they were).
// A rollback finding the files already as they were still marks the
// generation undone, so the next rollback steps further back.
func (r *hostRun) recordUnchanged() error {
	if r.rollback {
		return r.record(nil)
	}
	gen := 0
	if r.state != nil {
		gen = r.state.Generation
	}
	st := r.newState(gen)
	if r.state != nil && r.state.SourceSHA256 == st.SourceSHA256 && slices.EqualFunc(r.state.Files, st.Files, compile.ManifestEntry.Equal) {
		r.written = r.state
		return nil
	}
	if r.state != nil {
		st.PendingReload = r.state.PendingReload
	}
	r.written = st
	return r.writeRecord(r.root(statePath(r.o.Stack)), st)
}

// record writes the host's new State and marks the generation applied;
// a rollback also marks the generation it undid. g is nil for a
// rollback that had nothing to change.
func (r *hostRun) record(g *Generation) error {
	sp := r.root(statePath(r.o.Stack))
	if r.rollback {
		if prev := r.target.Previous; prev != nil {
			st := *prev
			if g != nil {
				st.Generation = g.Number
			}
			st.PendingReload = nil
			if err := r.writeRecord(sp, &st); err != nil {
				return err
			}
			r.written = &st
		} else if err := r.c.remove(sp); err != nil && !notExist(err) {
			return err
		}
	} else {
		st := r.newState(g.Number)
		if err := r.writeRecord(sp, st); err != nil {
			return err
		}
		r.written = st
	}
	if g != nil {
		g.Status = genApplied
		if err := r.writeRecord(r.root(genDir(r.o.Stack, g.Number)+"/generation.json"), g); err != nil {
			return err
		}
	}
	if r.rollback {
		t := *r.target
		t.Status = genRolledBack
		return r.writeRecord(r.root(genDir(r.o.Stack, t.Number)+"/generation.json"), &t)
	}
	return nil
}

// prune removes generations beyond the newest Keep. A failure only
// leaves extra backups behind, so it is a note, not an error.
func (r *hostRun) prune() {
	if r.o.Keep <= 0 {
		return
	}
	gens, err := r.c.generations(r.h.Root, r.o.Stack)
	if err != nil {
		r.note("pruning old generations: " + err.Error())
		return
	}
	for len(gens) > r.o.Keep {
		if err := r.c.removeAll(r.root(genDir(r.o.Stack, gens[0]))); err != nil {
			r.note("pruning old generations: " + err.Error())
			return
		}
		gens = gens[1:]
	}
}
