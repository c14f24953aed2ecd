package gitops_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/gitops"
	"github.com/hacompile/hacompile/schema"
)

const today = "2026-06-01"

func diff(t *testing.T, r *testRepo, base string, args ...string) *gitops.Report {
	t.Helper()
	repo := r.open()
	rev, err := repo.Resolve(base)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := repo.Diff(rev, r.stacks(args...), today)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// hostRow is a host's line of the summary, for compact comparisons.
func hostRows(rep *gitops.Report) []string {
	var out []string
	for _, h := range rep.Hosts {
		out = append(out, fmt.Sprintf("%s/%s %s +%d ~%d -%d %s", h.Stack, h.Host, h.Status, h.FilesAdded, h.FilesChanged, h.FilesRemoved, strings.Join(h.Impact, ",")))
	}
	return out
}

// shape counts a test stack's rendered files per host (every host of
// the test stacks has the same roles) and at stack level, so the tests
// follow the generators instead of pinning their file counts.
func shape(t *testing.T, src string) (perHost, stackLevel int) {
	t.Helper()
	res, err := compile.CompileInputs([]compile.Input{{Name: "stacks/x.cue", Data: []byte(src)}}, today)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := compile.TreeOf(res.Rendered)
	if err != nil {
		t.Fatal(err)
	}
	s := res.Rendered[0].Stack
	for p := range tree {
		switch {
		case strings.HasPrefix(p, s.Name+"/hosts/"+s.HostNames()[0]+"/"):
			perHost++
		case !strings.HasPrefix(p, s.Name+"/hosts/"):
			stackLevel++
		}
	}
	return perHost, stackLevel
}

// rowOf is the row of one group as the report has it, for groups whose
// exact counts the test does not pin.
func rowOf(rep *gitops.Report, stack, host string) string {
	for i, h := range rep.Hosts {
		if h.Stack == stack && h.Host == host {
			return hostRows(rep)[i]
		}
	}
	return stack + "/" + host + " missing"
}

func checkRows(t *testing.T, rep *gitops.Report, want ...string) {
	t.Helper()
	if got := hostRows(rep); !slices.Equal(got, want) {
		t.Errorf("hosts:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestDiffUnchanged: the working tree as committed renders the same
// files, so nothing differs and the report says so.
func TestDiffUnchanged(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": webStack, "stacks/api.cue": apiStack})
	r.commit("stacks")
	rep := diff(t, r, "HEAD")
	if rep.Changed || len(rep.Hosts) != 0 || rep.Summary.HostsUnchanged != 4 {
		t.Errorf("report = %+v, want no changes and 4 unchanged hosts", rep)
	}
}

// TestDiffHostRenamedAndDeleted: a renamed host is the old one removed
// and the new one added, a deleted host is removed, and a host whose
// settings change shows its changed files with their impact.
func TestDiffHostRenamedAndDeleted(t *testing.T) {
	r := newRepo(t)
	three := strings.Replace(webStack, "\tapp2:", "\tapp3: {address: \"10.0.0.13\", roles: [\"app\"], cores: 2, memory_mb: 2048}\n\tapp2:", 1)
	r.write(map[string]string{"stacks/web.cue": three, "stacks/api.cue": apiStack})
	r.commit("three app hosts")

	// app2 becomes app9 (renamed), app3 is deleted, app1 grows.
	edited := strings.Replace(webStack, "app2: {address: \"10.0.0.12\"", "app9: {address: \"10.0.0.12\"", 1)
	edited = strings.Replace(edited, "app1: {address: \"10.0.0.11\", roles: [\"app\"], cores: 2", "app1: {address: \"10.0.0.11\", roles: [\"app\"], cores: 4", 1)
	r.write(map[string]string{"stacks/web.cue": edited})

	rep := diff(t, r, "HEAD")
	n, _ := shape(t, webStack)
	checkRows(t, rep,
		"web/app1 changed +0 ~1 -0 reload app",
		fmt.Sprintf("web/app2 removed +0 ~0 -%d decommission", n),
		fmt.Sprintf("web/app3 removed +0 ~0 -%d decommission", n),
		fmt.Sprintf("web/app9 added +%d ~0 -0 provision", n),
		rowOf(rep, "web", ""),
	)
	// The stack's own files: app9's cloud-init document is added, app2's
	// and app3's are removed.
	stackFiles := map[string]gitops.Status{}
	for _, f := range rep.Hosts[4].Files {
		stackFiles[f.Path] = f.Status
	}
	if stackFiles["web/cloud-init/app9.yaml"] != gitops.Added || stackFiles["web/cloud-init/app2.yaml"] != gitops.Removed ||
		stackFiles["web/cloud-init/app3.yaml"] != gitops.Removed || stackFiles["web/manifest.json"] != gitops.Changed {
		t.Errorf("stack files: %v", stackFiles)
	}
	s := rep.Summary
	if s.StacksChanged != 1 || s.HostsChanged != 4 || s.HostsUnchanged != 2 || s.FilesAdded != n+1 || s.FilesRemoved != 2*n+2 {
		t.Errorf("summary = %+v", s)
	}
	app1 := rep.Hosts[0].Files[0]
	if app1.Path != "web/hosts/app1/etc/app/gunicorn.conf.py" || app1.Noise != "" ||
		!strings.Contains(app1.Diff, "\n-workers = 5\n") || !strings.Contains(app1.Diff, "\n+workers = 9\n") || app1.LinesAdded != 2 || app1.LinesRemoved != 2 {
		t.Errorf("app1's change = %+v", app1)
	}
	for _, f := range rep.Hosts[1].Files {
		if f.Status != gitops.Removed || f.Noise != gitops.NoiseRemoved || f.Diff != "" || f.LinesRemoved == 0 {
			t.Errorf("removed host's file %+v: want removed, summarised, lines counted", f)
		}
	}
	for _, f := range rep.Hosts[3].Files {
		if f.Status != gitops.Added || !strings.HasPrefix(f.Diff, "--- /dev/null\n+++ b/web/hosts/app9/") {
			t.Errorf("added host's file %s: status %s, diff starts %.40q", f.Path, f.Status, f.Diff)
		}
	}
}

// TestDiffStackNotInBase: at a revision before the stacks existed (no
// stacks directory at all, then a directory without this stack), every
// file of the new stack is added.
func TestDiffStackNotInBase(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"README.md": "ops\n"})
	r.commit("no stacks yet")
	r.write(map[string]string{"stacks/api.cue": apiStack})
	r.commit("api")
	r.write(map[string]string{"stacks/web.cue": webStack})

	rep := diff(t, r, "HEAD~1")
	n, m := shape(t, webStack)
	added := func(stack, host string) string {
		if host == "" {
			return fmt.Sprintf("%s/ added +%d ~0 -0 reload prometheus,reload prometheus-alertmanager,new instances only", stack, m)
		}
		return fmt.Sprintf("%s/%s added +%d ~0 -0 provision", stack, host, n)
	}
	checkRows(t, rep, added("api", "api1"), added("api", "api2"), added("api", ""), added("web", "app1"), added("web", "app2"), added("web", ""))
	if rep.Summary.FilesRemoved != 0 || rep.Summary.LinesRemoved != 0 || rep.Summary.FilesAdded != 4*n+2*m {
		t.Errorf("summary = %+v, want %d files added, nothing removed", rep.Summary, 4*n+2*m)
	}

	rep = diff(t, r, "HEAD")
	checkRows(t, rep, added("web", "app1"), added("web", "app2"), added("web", ""))
	if rep.Summary.HostsUnchanged != 2 {
		t.Errorf("api's hosts should be unchanged: %+v", rep.Summary)
	}

	// And the other way: every stack deleted from the working tree.
	r.remove("stacks")
	rep = diff(t, r, "HEAD")
	checkRows(t, rep,
		fmt.Sprintf("api/api1 removed +0 ~0 -%d decommission", n),
		fmt.Sprintf("api/api2 removed +0 ~0 -%d decommission", n),
		fmt.Sprintf("api/ removed +0 ~0 -%d reload prometheus,reload prometheus-alertmanager,new instances only", m),
	)
}

// TestDiffHeaderOnly: moving the stack file changes only the banner
// naming it (and the manifest's source), which is summarised, not
// shown line by line.
func TestDiffHeaderOnly(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": webStack})
	r.commit("web")
	r.remove("stacks/web.cue")
	r.write(map[string]string{"stacks/web-prod.cue": webStack})

	rep := diff(t, r, "HEAD")
	n, m := shape(t, webStack)
	if !rep.Changed || rep.Summary.FilesChanged != 2*n+m || rep.Summary.FilesAdded+rep.Summary.FilesRemoved != 0 {
		t.Fatalf("summary = %+v, want every one of the %d files changed", rep.Summary, 2*n+m)
	}
	for _, h := range rep.Hosts {
		for _, f := range h.Files {
			want := gitops.NoiseHeader
			if strings.HasSuffix(f.Path, "/manifest.json") {
				want = gitops.NoiseManifest
			}
			if f.Noise != want || f.Diff != "" {
				t.Errorf("%s: noise %q with %d bytes of diff, want %q and none", f.Path, f.Noise, len(f.Diff), want)
			}
		}
	}
	var b strings.Builder
	if err := gitops.WriteText(&b, rep, gitops.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# web/hosts/app1/etc/nginx/nginx.conf: only the generated header changed (+1 -1)\n",
		"# web/manifest.json: only checksums, sizes and the source name changed (",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "\n--- ") {
		t.Errorf("text report shows a line diff:\n%s", b.String())
	}
}

// TestDiffBaseDoesNotCompile: a base whose stacks fail says which
// revision and carries every diagnostic, positioned in the file as it
// was at that revision.
func TestDiffBaseDoesNotCompile(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": strings.Replace(webStack, `"cloud"`, `"cloudy"`, 1)})
	h := r.commit("broken")
	r.write(map[string]string{"stacks/web.cue": webStack})

	repo := r.open()
	rev, err := repo.Resolve("HEAD")
	if err != nil {
		t.Fatal(err)
	}
	_, err = repo.Diff(rev, r.stacks(), today)
	var re *gitops.RenderError
	var se *schema.Error
	if !errors.As(err, &re) || !errors.As(err, &se) {
		t.Fatalf("err = %v, want a RenderError carrying a schema.Error", err)
	}
	if want := "revision HEAD (" + h.String()[:12] + ")"; re.Where != want {
		t.Errorf("Where = %q, want %q", re.Where, want)
	}
	if len(se.Diags) == 0 || se.Diags[0].File != "stacks/web.cue" || se.Diags[0].Line != 8 || !strings.Contains(se.Diags[0].Path, "balancer.kind") {
		t.Errorf("diagnostics = %v, want stacks/web.cue:8 at balancer.kind", se.Diags)
	}
}

// TestDefaultBase: the merge base with the default branch (origin/HEAD's
// target first, else main), so commits on main after the branch point
// do not show up as changes of the branch; else HEAD.
func TestDefaultBase(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": webStack})
	fork := r.commit("web")
	r.checkout("feature", true)
	r.write(map[string]string{"stacks/api.cue": apiStack})
	r.commit("api on the branch")
	r.checkout("main", false)
	r.write(map[string]string{"README": "later on main\n"})
	r.commit("main moves on")
	r.checkout("feature", false)

	base, err := r.open().DefaultBase()
	if err != nil {
		t.Fatal(err)
	}
	if base.Commit.Hash != fork || base.Name != "merge base of HEAD and main" {
		t.Errorf("base = %s, want the fork point %s", base, fork)
	}

	// origin/HEAD names the default branch when there is one.
	r.addRemote("origin", "/nonexistent")
	if err := r.git.Storer.SetReference(plumbing.NewHashReference("refs/remotes/origin/trunk", fork)); err != nil {
		t.Fatal(err)
	}
	if err := r.git.Storer.SetReference(plumbing.NewSymbolicReference("refs/remotes/origin/HEAD", "refs/remotes/origin/trunk")); err != nil {
		t.Fatal(err)
	}
	if base, err = r.open().DefaultBase(); err != nil || base.Name != "merge base of HEAD and origin/trunk" {
		t.Errorf("base = %v, %v; want the merge base with origin/trunk", base, err)
	}

	// No default branch: HEAD.
	solo := newRepo(t)
	solo.write(map[string]string{"stacks/web.cue": webStack})
	solo.commit("web")
	solo.checkout("ops", true)
	if err := solo.git.Storer.RemoveReference("refs/heads/main"); err != nil {
		t.Fatal(err)
	}
	if base, err = solo.open().DefaultBase(); err != nil || base.Name != "HEAD" {
		t.Errorf("base = %v, %v; want HEAD", base, err)
	}

	if _, err := newRepo(t).open().DefaultBase(); !errors.Is(err, gitops.ErrNoCommits) {
		t.Errorf("empty repository: err = %v, want ErrNoCommits", err)
	}
}

// TestRenderMatchesBuild: rendering the working tree from a project in a
// subdirectory of the repository gives the bytes `hacompile build` run
// there writes (stack names in headers are relative to the working
// directory), and the same stacks read from a commit render the same.
func TestRenderMatchesBuild(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"ops/stacks/web.cue": webStack, "ops/stacks/api.cue": apiStack})
	r.commit("stacks in ops/")
	wd := filepath.Join(r.dir, "ops")
	repo := r.open()
	st, err := repo.StacksFor(wd, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Dir != "ops" || !slices.Equal(st.Args, []string{"ops/stacks"}) {
		t.Fatalf("StacksFor = %+v", st)
	}
	t.Chdir(wd)
	want, err := compile.Compile([]string{"stacks"}, wd, today)
	if err != nil {
		t.Fatal(err)
	}
	wantTree, _ := compile.TreeOf(want.Rendered)
	if !strings.Contains(string(wantTree["web/hosts/app1/etc/nginx/nginx.conf"]), "Generated by hacompile from stacks/web.cue.") {
		t.Fatal("build's header does not name stacks/web.cue; the test's premise is wrong")
	}
	cur, err := repo.RenderWorktree(st, today, false)
	if err != nil {
		t.Fatal(err)
	}
	head, err := repo.Resolve("HEAD")
	if err != nil {
		t.Fatal(err)
	}
	old, err := repo.RenderAt(head, st)
	if err != nil {
		t.Fatal(err)
	}
	for name, res := range map[string]*compile.Result{"working tree": cur, "HEAD": old} {
		got, _ := compile.TreeOf(res.Rendered)
		if len(got) != len(wantTree) {
			t.Errorf("%s: %d files, build has %d", name, len(got), len(wantTree))
		}
		for p, b := range wantTree {
			if string(got[p]) != string(b) {
				t.Errorf("%s: %s differs from what build renders", name, p)
			}
		}
	}

	// A path outside the repository is refused with both paths named.
	if _, err := repo.StacksFor(wd, []string{os.TempDir()}); err == nil || !strings.Contains(err.Error(), "is outside the repository at "+repo.Root) {
		t.Errorf("outside path: err = %v", err)
	}
}

// TestChanges lists tracked files changed anywhere and untracked files
// only where stacks are read, as git status --short prints them.
func TestChanges(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": webStack, "README": "x\n", "docs/a.md": "a\n"})
	r.commit("init")
	repo := r.open()
	if c, err := repo.Changes([]string{"stacks"}); err != nil || len(c) != 0 {
		t.Fatalf("clean tree: %q, %v", c, err)
	}
	r.write(map[string]string{"stacks/web.cue": webStack + "// edited\n", "stacks/new.cue": apiStack, "notes.txt": "untracked elsewhere\n", ".gitignore": "*.log\n", "stacks/debug.log": "ignored\n"})
	r.remove("docs/a.md")
	got, err := repo.Changes([]string{"stacks"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"?? .gitignore", " D docs/a.md", "?? stacks/new.cue", " M stacks/web.cue"}
	// .gitignore is untracked outside the stacks: not listed.
	want = slices.DeleteFunc(want, func(s string) bool { return strings.HasSuffix(s, ".gitignore") })
	if !slices.Equal(got, want) {
		t.Errorf("Changes = %q, want %q", got, want)
	}
	// Cross-check with git itself.
	short := runGit(t, r.dir, "status", "--short", "--untracked-files=all")
	for _, c := range want {
		if !strings.Contains(short, c+"\n") {
			t.Errorf("git status --short lacks %q:\n%s", c, short)
		}
	}
}
