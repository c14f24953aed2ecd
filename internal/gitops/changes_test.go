package gitops_test

import (
	"html"
	"regexp"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/gitops"
	"github.com/hacompile/hacompile/site"
)

// publishSite publishes what the CLI does: out/ with the runbook, and
// the stacks rendered, so that each stack's "what changed" page is
// written against the branch's tip.
func publishSite(t *testing.T, r *testRepo) *gitops.Published {
	t.Helper()
	repo := r.open()
	head, err := repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	res, err := repo.RenderWorktree(r.stacks(), today, false)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := site.OutTree(res)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := repo.Publish(head, tree, gitops.PublishOptions{Branch: "rendered", Author: publisher, Committer: publisher, Rendered: res.Rendered})
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// pageText is a page's text, tags stripped.
func pageText(s string) string {
	return html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(s, ""))
}

// TestChangesPage: on the published branch each stack's "what changed"
// page compares its files with the revision published before, names
// that revision and its source, groups the hosts whose change is the
// same and shows the diff; publishing the same tree again commits
// nothing; out/ (build) has the page saying publish fills it in.
func TestChangesPage(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": webStack})
	src1 := r.commit("web")
	first := publishSite(t, r)
	const page = "site/stacks/web/changes.html"
	p1 := pageText(runGit(t, r.dir, "show", "rendered:"+page))
	if !strings.Contains(p1, "This is the first published revision; this one renders source "+src1.String()) ||
		!strings.Contains(p1, "app1 added") || !strings.Contains(p1, "app2 added") {
		t.Errorf("first page:\n%s", p1)
	}

	r.write(map[string]string{"stacks/web.cue": strings.Replace(webStack, `working_dir: "/srv/app"`, `working_dir: "/srv/app", timeout: 45`, 1)})
	src2 := r.commit("timeout")
	second := publishSite(t, r)
	if !second.Committed || second.Parent != first.Tip {
		t.Fatalf("second publish %+v", second)
	}
	p2 := pageText(runGit(t, r.dir, "show", "rendered:"+page))
	for _, want := range []string{
		"Since the last published revision " + first.Tip.String() + " (source " + src1.String() + "); this one renders source " + src2.String() + ".",
		"app1, app2 (2 hosts) changed",
		"web/hosts/app1/etc/app/gunicorn.conf.py changed, +1 −1",
		"-timeout = 30\n+timeout = 45",
	} {
		if !strings.Contains(p2, want) {
			t.Errorf("second page lacks %q:\n%s", want, p2)
		}
	}
	if strings.Contains(p2, "app2/etc/app/gunicorn.conf.py changed") {
		t.Error("the group's second host's files are shown too")
	}

	// The same source again: the tree, pages included, is the tip's.
	if again := publishSite(t, r); again.Committed {
		t.Errorf("published again with nothing changed: %+v", again)
	}

	// build's page says what fills it in.
	res, err := r.open().RenderWorktree(r.stacks(), today, false)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := site.OutTree(res)
	if err != nil {
		t.Fatal(err)
	}
	if b := pageText(string(tree[page])); !strings.Contains(b, "hacompile publish fills this page in") {
		t.Errorf("build's page:\n%s", b)
	}
}
