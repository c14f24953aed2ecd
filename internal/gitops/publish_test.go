package gitops_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/gitops"
)

var publisher = object.Signature{Name: "Publisher", Email: "publish@example.com", When: time.Unix(1767225600, 0).UTC()}

// render is what the CLI publishes: the working tree's out/ tree.
func render(t *testing.T, r *testRepo) compile.Tree {
	t.Helper()
	res, err := r.open().RenderWorktree(r.stacks(), today, false)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := compile.TreeOf(res.Rendered)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func publish(t *testing.T, r *testRepo, opt gitops.PublishOptions) *gitops.Published {
	t.Helper()
	repo := r.open()
	head, err := repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	opt.Author, opt.Committer = publisher, publisher
	if opt.Branch == "" {
		opt.Branch = "rendered"
	}
	pub, err := repo.Publish(head, render(t, r), opt)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// lsTree lists a branch's files with git itself.
func lsTree(t *testing.T, dir, rev string) []string {
	t.Helper()
	return strings.Fields(runGit(t, dir, "ls-tree", "-r", "--name-only", rev))
}

// TestPublishToBareRemote publishes to a branch of the source repository
// and pushes it to a file:// bare remote; git itself checks the result:
// fsck --strict, the tree is exactly the rendered out/, the message
// names stacks and hosts, and the trailers record the source.
func TestPublishToBareRemote(t *testing.T) {
	remote := bare(t)
	r := newRepo(t)
	r.addRemote("origin", "file://"+remote)
	r.write(map[string]string{"stacks/web.cue": webStack})
	src := r.commit("web")

	pub := publish(t, r, gitops.PublishOptions{Push: true, Remote: "origin"})
	if !pub.Committed || !pub.Pushed || !pub.Parent.IsZero() {
		t.Fatalf("first publish = %+v, want a root commit, pushed", pub)
	}
	if got := strings.TrimSpace(runGit(t, remote, "rev-parse", "rendered")); got != pub.Tip.String() {
		t.Fatalf("remote rendered = %s, want %s", got, pub.Tip)
	}
	runGit(t, remote, "fsck", "--strict", "--no-dangling")
	tree := render(t, r)
	if got, want := lsTree(t, remote, "rendered"), slices.Sorted(maps.Keys(tree)); !slices.Equal(got, want) {
		t.Errorf("published files:\n%v\nwant:\n%v", got, want)
	}
	if got := runGit(t, remote, "show", "rendered:web/hosts/app1/etc/nginx/nginx.conf"); got != string(tree["web/hosts/app1/etc/nginx/nginx.conf"]) {
		t.Error("published nginx.conf differs from the rendered one")
	}
	wantMsg := "Render web from " + src.String()[:12] + "\n\nweb: added, hosts app1, app2\n\nSource-Commit: " + src.String() + "\nHacompile-Version: " + gitops.Version() + "\n"
	if got := runGit(t, remote, "log", "-1", "--format=%B", "rendered"); strings.TrimSpace(got) != strings.TrimSpace(wantMsg) || pub.Message != wantMsg {
		t.Errorf("message:\n%s\nwant:\n%s", got, wantMsg)
	}
	if got := runGit(t, remote, "log", "-1", "--format=%(trailers:key=Source-Commit,valueonly)", "rendered"); strings.TrimSpace(got) != src.String() {
		t.Errorf("Source-Commit trailer = %q", got)
	}
	if got := runGit(t, remote, "log", "-1", "--format=%an <%ae> %at|%cn <%ce> %ct", "rendered"); strings.TrimSpace(got) != "Publisher <publish@example.com> 1767225600|Publisher <publish@example.com> 1767225600" {
		t.Errorf("signatures = %q", got)
	}
	if stat := runGit(t, remote, "show", "--stat", "--format=", "rendered"); !strings.Contains(stat, fmt.Sprintf(" %d files changed, ", len(tree))) {
		t.Errorf("git show --stat:\n%s", stat)
	}

	// Nothing changed: no commit, nothing pushed.
	again := publish(t, r, gitops.PublishOptions{Push: true, Remote: "origin"})
	if again.Committed || again.Pushed || again.Tip != pub.Tip {
		t.Errorf("second publish = %+v, want no commit at %s", again, pub.Tip)
	}

	// A change: one commit on top, naming what changed.
	r.write(map[string]string{"stacks/web.cue": strings.Replace(strings.Replace(webStack, "app2:", "app3:", 1), "cores: 2", "cores: 4", 1)})
	src2 := r.commit("rename app2, grow app1")
	next := publish(t, r, gitops.PublishOptions{Push: true, Remote: "origin"})
	if !next.Committed || next.Parent != pub.Tip {
		t.Fatalf("third publish = %+v, want a commit on %s", next, pub.Tip)
	}
	if want := "Render web from " + src2.String()[:12] + "\n\nweb: changed app1; added app3; removed app2; stack files changed\n\n"; !strings.HasPrefix(next.Message, want) {
		t.Errorf("message:\n%s\nwant prefix:\n%s", next.Message, want)
	}
	if log := runGit(t, remote, "log", "--format=%H %P", "rendered"); log != next.Tip.String()+" "+pub.Tip.String()+"\n"+pub.Tip.String()+" \n" {
		t.Errorf("remote history:\n%s", log)
	}
	runGit(t, remote, "fsck", "--strict", "--no-dangling")
	// The source repository's branch moved too, and its objects are sound.
	if got := strings.TrimSpace(runGit(t, r.dir, "rev-parse", "rendered")); got != next.Tip.String() {
		t.Errorf("local rendered = %s", got)
	}
	runGit(t, r.dir, "fsck", "--strict", "--no-dangling")

	// A fresh clone (CI) has no local branch: it fetches the remote's
	// tip and extends it, and a second clone with nothing new to say
	// commits nothing but learns the tip.
	ci := newRepo(t)
	ci.addRemote("origin", "file://"+remote)
	ci.write(map[string]string{"stacks/web.cue": webStack})
	ci.commit("back to two hosts")
	fromCI := publish(t, ci, gitops.PublishOptions{Push: true, Remote: "origin"})
	if !fromCI.Committed || !fromCI.Pushed || fromCI.Parent != next.Tip {
		t.Fatalf("publish from a fresh clone = %+v, want a commit on %s", fromCI, next.Tip)
	}
	idle := newRepo(t)
	idle.addRemote("origin", "file://"+remote)
	idle.write(map[string]string{"stacks/web.cue": webStack})
	idle.commit("same stacks")
	if got := publish(t, idle, gitops.PublishOptions{Push: true, Remote: "origin"}); got.Committed || got.Pushed || got.Tip != fromCI.Tip {
		t.Errorf("idle publish = %+v", got)
	}
	if got := strings.TrimSpace(runGit(t, idle.dir, "rev-parse", "rendered")); got != fromCI.Tip.String() {
		t.Errorf("idle clone's rendered = %s, want the remote's %s", got, fromCI.Tip)
	}
}

// TestPublishReproducible: two publishes of the same source with the
// same signatures give the same commit hash, wherever they land; a
// different date gives another.
func TestPublishReproducible(t *testing.T) {
	var tips []plumbing.Hash
	for range 2 {
		r := newRepo(t)
		r.write(map[string]string{"stacks/web.cue": webStack, "stacks/api.cue": apiStack})
		r.commit("stacks")
		remote := bare(t)
		tips = append(tips, publish(t, r, gitops.PublishOptions{Repo: "file://" + remote}).Tip)
		if got := strings.TrimSpace(runGit(t, remote, "rev-parse", "rendered")); got != tips[len(tips)-1].String() {
			t.Errorf("remote has %s", got)
		}
		tips = append(tips, publish(t, r, gitops.PublishOptions{}).Tip)
	}
	for _, h := range tips[1:] {
		if h != tips[0] {
			t.Fatalf("tips differ: %v", tips)
		}
	}
	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": webStack, "stacks/api.cue": apiStack})
	r.commit("stacks")
	repo := r.open()
	head, _ := repo.Head()
	later := publisher
	later.When = later.When.Add(time.Second)
	pub, err := repo.Publish(head, render(t, r), gitops.PublishOptions{Branch: "rendered", Author: later, Committer: later})
	if err != nil {
		t.Fatal(err)
	}
	if pub.Tip == tips[0] {
		t.Error("a different date gave the same commit")
	}
}

// TestPublishPrefix publishes into another repository's branch under a
// directory, keeping the rest of the branch, and refuses the branch
// that repository has checked out.
func TestPublishPrefix(t *testing.T) {
	dst := newRepo(t)
	dst.write(map[string]string{"README.md": "deploy repo\n", "rendered/prod/stale.txt": "old\n"})
	base := dst.commit("readme")
	if err := dst.git.Storer.SetReference(plumbing.NewHashReference("refs/heads/deploy", base)); err != nil {
		t.Fatal(err)
	}

	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": webStack})
	r.commit("web")
	pub := publish(t, r, gitops.PublishOptions{Repo: dst.dir, Branch: "deploy", Prefix: "rendered/prod"})
	if !pub.Committed || pub.Parent != base || pub.Where != "branch deploy of "+dst.dir {
		t.Fatalf("publish = %+v", pub)
	}
	files := lsTree(t, dst.dir, "deploy")
	if !slices.Contains(files, "README.md") || !slices.Contains(files, "rendered/prod/web/manifest.json") || slices.Contains(files, "rendered/prod/stale.txt") {
		t.Errorf("deploy branch files: %v", files)
	}
	if want := 1 + len(render(t, r)); len(files) != want {
		t.Errorf("%d files, want README.md and the %d rendered ones", len(files), want-1)
	}
	runGit(t, dst.dir, "fsck", "--strict", "--no-dangling")
	if again := publish(t, r, gitops.PublishOptions{Repo: dst.dir, Branch: "deploy", Prefix: "rendered/prod"}); again.Committed {
		t.Error("unchanged tree under a prefix was committed again")
	}

	repo := r.open()
	head, _ := repo.Head()
	_, err := repo.Publish(head, render(t, r), gitops.PublishOptions{Repo: dst.dir, Branch: "main", Author: publisher, Committer: publisher})
	if want := "branch main is checked out in " + dst.dir + "; publish to a branch no working tree has checked out"; err == nil || err.Error() != want {
		t.Errorf("checked-out branch: err = %v, want %q", err, want)
	}
	_, err = repo.Publish(head, compile.Tree{}, gitops.PublishOptions{Branch: "x", Author: publisher, Committer: publisher})
	if err == nil || err.Error() != "nothing to publish: the rendered tree is empty" {
		t.Errorf("empty tree: err = %v", err)
	}
}

// TestPublishRecordsDirtySource: --allow-dirty commits say so in a
// Source-Dirty trailer, since Source-Commit alone would not tell all.
func TestPublishRecordsDirtySource(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": webStack})
	r.commit("web")
	pub := publish(t, r, gitops.PublishOptions{SourceDirty: true})
	if !strings.Contains(pub.Message, "\nSource-Dirty: true\n") {
		t.Errorf("message lacks Source-Dirty:\n%s", pub.Message)
	}
}

// TestPublishRemoteErrors names the remote and what is wrong with it.
func TestPublishRemoteErrors(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": webStack})
	r.commit("web")
	repo := r.open()
	head, _ := repo.Head()
	tree := render(t, r)
	for _, tc := range []struct {
		opt  gitops.PublishOptions
		want string
	}{
		{gitops.PublishOptions{Push: true, Remote: "origin"}, `remote "origin": remote not found`},
		{gitops.PublishOptions{Repo: "https://example.com/x.git"}, `remote https://example.com/x.git: unsupported protocol "https" (hacompile pushes to file:// and ssh:// remotes)`},
		{gitops.PublishOptions{Repo: t.TempDir()}, "opening repository "},
	} {
		tc.opt.Branch, tc.opt.Author, tc.opt.Committer = "rendered", publisher, publisher
		_, err := repo.Publish(head, tree, tc.opt)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.opt, err, tc.want)
		}
	}
}
