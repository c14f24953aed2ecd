// Package celery renders the systemd units of the Celery workers on the
// hosts with the worker role, and of Celery beat on exactly one of them.
// The workers run the app's code as the app's user, with its secrets
// (app.environment_file) and the stack's settings (appenv), so a task
// sees what a request does.
//
// Decisions, and why:
//
//   - Foreground, no pidfile: "celery -A app worker" under Type=exec, not
//     the Type=forking "celery multi" of Celery's own example unit. systemd
//     supervises the main process directly, restarts it when it dies and
//     collects its output in the journal; a pidfile would only add a stale
//     file to go wrong. Celery has no readiness protocol; exec at least
//     fails the start when the binary cannot run.
//   - Stop is a warm shutdown: SIGTERM makes the worker stop taking tasks
//     and finish the ones it runs; the hard time limit bounds those, so
//     TimeoutStopSec is time_limit + 30 s before systemd kills what is
//     left. KillMode=mixed signals the main process only: a prefork child
//     that got SIGTERM itself would die mid-task.
//   - No ExecReload: Celery 5 answers SIGHUP by a warm shutdown followed by
//     re-executing itself (celery/apps/worker.py, _reload_current_worker),
//     and its documentation calls that prone to problems and not for
//     production. It saves nothing over a restart systemd supervises, so
//     a changed unit or setting restarts the worker.
//   - Beat runs on one host only (two would send every periodic task
//     twice): workers.beat.host, or the first worker host by name. Its
//     schedule database lives in StateDirectory=, the one place the
//     sandbox lets it write. If that host is lost, periodic tasks stop
//     until beat is moved: the runbook says how.
//   - The sandbox is the app unit's (generators/systemd): read-only
//     system, private /tmp and devices, no capabilities, the
//     @system-service call set; uploads under /media/ stay writable.
package celery

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/appenv"
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/systemd"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the Celery generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "celery" }

// WorkerUnit and BeatUnit are the units' names.
func WorkerUnit(app *schema.App) string { return app.Name + "-celery-worker.service" }

// BeatUnit is the beat unit's name.
func BeatUnit(app *schema.App) string { return app.Name + "-celery-beat.service" }

// UnitPath is a unit's path on the host, without the leading slash.
func UnitPath(unit string) string { return "etc/systemd/system/" + unit }

// BeatStateDir is beat's StateDirectory=, under /var/lib.
func BeatStateDir(app *schema.App) string { return app.Name + "-celery-beat" }

// stopMargin is what a warm shutdown gets beyond the hard time limit:
// acknowledging, closing the pool and the broker connection.
const stopMargin = 30

// Binary is the celery executable: the virtualenv's, or Debian's
// (package celery). Like gunicorn's, only the virtualenv moves with the
// sandbox root.
func Binary(app *schema.App, opt artifact.Options) string {
	if app.Virtualenv != "" {
		return opt.P(strings.TrimRight(app.Virtualenv, "/") + "/bin/celery")
	}
	return "/usr/bin/celery"
}

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	w := s.Workers
	if w == nil {
		return nil, nil
	}
	if s.App.Runtime != "python" {
		return nil, artifact.Errorf("workers", "Celery runs Python code, but app.runtime is %q", s.App.Runtime)
	}
	beat := s.BeatHost()
	if beat != "" && (s.Hosts[beat] == nil || !s.Hosts[beat].Has("worker")) {
		return nil, artifact.Errorf("workers.beat.host", "%q is not a host with the worker role", beat)
	}
	var files []artifact.File
	for _, h := range s.HostsWithRole("worker") {
		if !opt.Renders(h.Name) {
			continue
		}
		content, err := workerUnit(s, h, opt)
		if err != nil {
			return nil, artifact.InHost(h.Name, err)
		}
		files = append(files, unitFile(h.Name, WorkerUnit(&s.App), content, opt))
		if h.Name == beat {
			content, err := beatUnit(s, opt)
			if err != nil {
				return nil, artifact.InHost(h.Name, err)
			}
			files = append(files, unitFile(h.Name, BeatUnit(&s.App), content, opt))
		}
	}
	return files, nil
}

func unitFile(host, unit string, content []byte, opt artifact.Options) artifact.File {
	return artifact.File{
		Host: host, Path: UnitPath(unit), Content: content, Mode: 0o644, Owner: "root:root",
		Validate: artifact.Run("systemd-analyze", "verify", "--man=no", opt.P("/"+UnitPath(unit))),
		Reload:   artifact.DaemonReload().Then(artifact.Enable(unit), artifact.Restart(unit)),
	}
}

// WorkerArgv is the worker's command line on host h.
func WorkerArgv(s *schema.Stack, h *schema.Host, opt artifact.Options) []string {
	w := s.Workers
	argv := []string{Binary(&s.App, opt), "-A", w.App, "worker",
		"--loglevel", "INFO",
		"--pool", w.Pool,
		"--concurrency", strconv.Itoa(w.ConcurrencyFor(h)),
		"--queues", strings.Join(w.QueueNames(), ","),
	}
	// Only prefork children can be recycled; a gevent worker is one process.
	if w.Pool == "prefork" && w.MaxTasksPerChild > 0 {
		argv = append(argv, "--max-tasks-per-child", strconv.Itoa(w.MaxTasksPerChild))
	}
	argv = append(argv, "--time-limit", strconv.Itoa(w.TimeLimit))
	if w.SoftTimeLimit > 0 {
		argv = append(argv, "--soft-time-limit", strconv.Itoa(w.SoftTimeLimit))
	}
	return argv
}

// BeatArgv is beat's command line.
func BeatArgv(s *schema.Stack, opt artifact.Options) []string {
	return []string{Binary(&s.App, opt), "-A", s.Workers.App, "beat",
		"--loglevel", "INFO",
		"--schedule", opt.P("/var/lib/" + BeatStateDir(&s.App) + "/schedule"),
	}
}

func workerUnit(s *schema.Stack, h *schema.Host, opt artifact.Options) ([]byte, error) {
	w := s.Workers
	var u systemd.Unit
	u.Raw(artifact.Header("#", s))
	u.Section("Unit")
	u.Set("Description", systemd.SpecEscape(fmt.Sprintf("%s Celery worker (%s, queues %s)", s.App.Name, w.App, strings.Join(w.QueueNames(), ","))))
	u.Comment("The worker connects to its broker and database as it starts.")
	u.Set("Wants", "network-online.target")
	u.Set("After", "network-online.target")
	u.Section("Service")
	u.Comment("Celery runs in the foreground and cannot report readiness; exec at least",
		"fails the start if it cannot run.")
	u.Set("Type", "exec")
	if err := common(&u, s, opt); err != nil {
		return nil, err
	}
	exec, err := systemd.ExecLine(WorkerArgv(s, h, opt)...)
	if err != nil {
		return nil, err
	}
	u.Set("ExecStart", exec)
	u.Comment("No ExecReload: Celery 5 answers HUP by re-executing itself, which its",
		"documentation advises against. Changes restart the worker.",
		"TERM is the warm shutdown: no new tasks, running ones finish within the hard",
		fmt.Sprintf("time limit (%d s); systemd kills what is left %d s later. Only the main", w.TimeLimit, stopMargin),
		"process gets TERM: it stops the pool's children itself.")
	u.Set("KillSignal", "SIGTERM")
	u.Set("KillMode", "mixed")
	u.Set("TimeoutStopSec", fmt.Sprintf("%ds", w.TimeLimit+stopMargin))
	if err := sandbox(&u, s, opt); err != nil {
		return nil, err
	}
	u.Section("Install")
	u.Set("WantedBy", "multi-user.target")
	return u.Bytes(), nil
}

func beatUnit(s *schema.Stack, opt artifact.Options) ([]byte, error) {
	var u systemd.Unit
	u.Raw(artifact.Header("#", s))
	u.Section("Unit")
	u.Set("Description", systemd.SpecEscape(fmt.Sprintf("%s Celery beat (%s): periodic tasks, on this host only", s.App.Name, s.Workers.App)))
	u.Set("Wants", "network-online.target")
	u.Set("After", "network-online.target")
	u.Section("Service")
	u.Set("Type", "exec")
	if err := common(&u, s, opt); err != nil {
		return nil, err
	}
	exec, err := systemd.ExecLine(BeatArgv(s, opt)...)
	if err != nil {
		return nil, err
	}
	u.Set("ExecStart", exec)
	u.Comment("TERM: beat saves its schedule and exits.")
	u.Set("KillSignal", "SIGTERM")
	u.Set("TimeoutStopSec", "30s")
	u.Comment(fmt.Sprintf("/var/lib/%s holds the schedule database: created before start,", BeatStateDir(&s.App)),
		"owned by the app user, and the one place beat writes.")
	u.Set("StateDirectory", BeatStateDir(&s.App))
	u.Set("StateDirectoryMode", "0750")
	if err := sandbox(&u, s, opt); err != nil {
		return nil, err
	}
	u.Section("Install")
	u.Set("WantedBy", "multi-user.target")
	return u.Bytes(), nil
}

// common writes what both units share: who runs, where, with which
// environment, and restarts.
func common(u *systemd.Unit, s *schema.Stack, opt artifact.Options) error {
	app := &s.App
	workDir, err := systemd.PlainPath("app.working_dir", opt.P(app.WorkingDir))
	if err != nil {
		return err
	}
	envFile, err := systemd.PlainPath("app.environment_file", opt.P(app.EnvironmentFile))
	if err != nil {
		return err
	}
	u.Set("User", app.User)
	u.Set("Group", app.Group)
	u.Set("WorkingDirectory", workDir)
	u.Comment("The app's secrets (no \"-\": a host without them must fail to start), then",
		"the stack's settings, which win where both set a name.")
	u.Set("EnvironmentFile", envFile)
	if appenv.Needed(s) {
		settings, err := systemd.PlainPath("app.name", opt.P("/"+appenv.Path(app)))
		if err != nil {
			return err
		}
		u.Set("EnvironmentFile", settings)
	}
	u.Set("Restart", "always")
	u.Set("RestartSec", "5s")
	u.Set("LimitNOFILE", strconv.Itoa(s.Tuning.Nofile))
	u.Set("UMask", "0027")
	return nil
}

// sandbox writes the app unit's sandbox.
func sandbox(u *systemd.Unit, s *schema.Stack, opt artifact.Options) error {
	app := &s.App
	var writable []string
	home := false
	for _, p := range []string{app.WorkingDir, app.Virtualenv, app.EnvironmentFile} {
		home = home || underHome(p)
	}
	for i, st := range app.Static {
		home = home || underHome(st.Dir)
		if st.URL == "/media/" {
			p, err := systemd.PlainPath(schema.IndexPath("app.static", i)+".dir", opt.P(st.Dir))
			if err != nil {
				return err
			}
			writable = append(writable, p)
		}
	}
	slices.Sort(writable)
	writable = slices.Compact(writable)
	u.Comment("Sandbox: as the app's unit. Tasks read the code, write uploads and private /tmp.")
	u.Sandbox(writable, home, s.App.User, s.App.Group)
	u.Set("CapabilityBoundingSet", "")
	return nil
}

// underHome reports whether p is under a directory ProtectHome=yes hides.
func underHome(p string) bool {
	for _, d := range []string{"/home", "/root", "/run/user"} {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// Reads implements artifact.Scoper: which worker runs beat is the first
// worker's, unless the stack names one.
func (Gen) Reads(s *schema.Stack, h *schema.Host) []string {
	if h.Has("worker") {
		return workerOnly
	}
	return nil
}

var workerOnly = []string{"worker"}

// ReadsSettings implements artifact.SettingsReader: the stack settings its
// files are made from (TestRenderChangedSettingsMatchesRender checks them).
func (Gen) ReadsSettings() []string { return []string{"app", "tuning", "workers"} }
