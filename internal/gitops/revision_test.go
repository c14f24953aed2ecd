package gitops_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/gitops"
	"github.com/hacompile/hacompile/internal/testtool"
)

// gitAt runs git in dir with a fixed identity and date (so the hashes
// are the same every run) and returns its trimmed output; ok is false
// when git fails.
func gitAt(t *testing.T, dir string, args ...string) (out string, ok bool) {
	t.Helper()
	testtool.Require(t, "git", "git")
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir, "LC_ALL=C",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com", "GIT_AUTHOR_DATE=2026-01-02T03:04:05Z",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z")
	b, err := cmd.Output()
	return strings.TrimSpace(string(b)), err == nil
}

func mustGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, ok := gitAt(t, dir, args...)
	if !ok {
		t.Fatalf("git %s failed", strings.Join(args, " "))
	}
	return out
}

// historyRepo makes, with the git command, a history with a merge, an
// octopus merge, tags (annotated, lightweight, nested, of a tree),
// remote-tracking refs, packed and loose refs, and a branch whose name
// is an abbreviation of another commit's hash.
func historyRepo(t *testing.T) (dir string, commits map[string]string) {
	t.Helper()
	dir = t.TempDir()
	g := func(args ...string) string { return mustGit(t, dir, args...) }
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(file, msg string) string {
		write(file, msg)
		g("add", file)
		g("commit", "-q", "-m", msg)
		return g("rev-parse", "HEAD")
	}
	g("init", "-q", "-b", "main")
	c := map[string]string{}
	c["one"] = commit("a", "one")
	c["two"] = commit("a", "two")
	g("checkout", "-q", "-b", "side", c["one"])
	c["side"] = commit("b", "side")
	g("checkout", "-q", "main")
	g("merge", "-q", "--no-ff", "-m", "merge side", "side")
	c["merge"] = g("rev-parse", "HEAD")
	g("checkout", "-q", "-b", "o1", c["merge"])
	c["o1"] = commit("o1", "o1")
	g("checkout", "-q", "-b", "o2", c["merge"])
	c["o2"] = commit("o2", "o2")
	g("checkout", "-q", "main")
	g("merge", "-q", "--no-ff", "-m", "octopus", "o1", "o2")
	c["octopus"] = g("rev-parse", "HEAD")

	g("tag", "light", "HEAD~1")
	g("tag", "-a", "-m", "v1", "v1", c["one"])
	g("tag", "-a", "-m", "nested", "nested", "v1")
	g("tag", "treetag", "HEAD^{tree}")
	g("update-ref", "refs/remotes/origin/main", c["two"])
	g("symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")
	g("pack-refs", "--all")
	// Loose, after the packing: a branch named like the abbreviation of
	// "one"'s hash, pointing elsewhere (git takes the ref).
	g("branch", c["one"][:4], c["side"])
	return dir, c
}

// TestResolveAsGit resolves every supported form the way git rev-parse
// does, and fails where git fails.
func TestResolveAsGit(t *testing.T) {
	dir, c := historyRepo(t)
	repo, err := gitops.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	revs := []string{
		"HEAD", "@", "main", "side", "o1", "refs/heads/side", "heads/side", "light", "v1", "refs/tags/v1", "tags/v1",
		"nested", "origin/main", "origin", "remotes/origin/main", "refs/remotes/origin/HEAD",
		"HEAD~1", "HEAD~2", "HEAD~3", "HEAD~4", "HEAD^", "HEAD^1", "HEAD^2", "HEAD^3", "HEAD^0", "HEAD~0", "HEAD~",
		"HEAD~~", "HEAD^^", "HEAD^^2", "HEAD~1^2", "HEAD~1^2~1", "HEAD^2~2", "@~2", "main~1^{commit}", "v1^{}", "nested^{commit}",
		"light~1^2", c["one"], strings.ToUpper(c["two"]), c["two"][:7], strings.ToUpper(c["side"][:10]), c["merge"][:12] + "~1",
		c["one"][:4], c["one"][:5], c["octopus"] + "^3",
		// git fails on these: past the root, a missing parent, a tree, no such ref.
		"HEAD~5", "HEAD~40", "HEAD^4", "HEAD~1^3", "side^2", "v1~1", "treetag", "nope", "refs/heads/nope", "origin/nope",
		strings.Repeat("0", 40), c["two"][:3],
	}
	for _, rev := range revs {
		want, gitOK := gitAt(t, dir, "rev-parse", "--verify", "-q", rev+"^{commit}")
		got, err := repo.Resolve(rev)
		switch {
		case gitOK && err != nil:
			t.Errorf("Resolve(%q): %v; git rev-parse gives %s", rev, err, want)
		case !gitOK && err == nil:
			t.Errorf("Resolve(%q) = %s; git rev-parse fails", rev, got.Commit.Hash)
		case gitOK && got.Commit.Hash.String() != want:
			t.Errorf("Resolve(%q) = %s, git rev-parse gives %s", rev, got.Commit.Hash, want)
		}
	}
}

// TestResolveRefusesWhatItCannotRead: forms go-git's resolver reads in
// part (HEAD@{1} as HEAD, HEAD~1:path as HEAD~1) are refused, whether
// git resolves them or not.
func TestResolveRefusesWhatItCannotRead(t *testing.T) {
	dir, c := historyRepo(t)
	// A reflog with entries, so HEAD@{1} is something to git.
	mustGit(t, dir, "reset", "-q", "--hard", c["two"])
	mustGit(t, dir, "reset", "-q", "--hard", c["octopus"])
	repo, err := gitops.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, rev := range []string{
		"HEAD@{1}", "HEAD@{7}", "main@{1}", "@{1}", "@{-1}", "main@{upstream}", "HEAD@{2026-01-01}",
		"HEAD~1:a", "HEAD~1:no/such/path", ":a", "HEAD~1^{tree}", "v1^{tag}", "HEAD^{/one}", ":/one",
		"HEAD..main", "HEAD...main", "^HEAD", "HEAD^!", "HEAD^@", "HEAD^-1", "HEAD~x", "HEAD~1x", "HEAD^{",
		"", "a b", "~1", "-x", "main.lock", "HEAD~99999999999999999999",
	} {
		got, err := repo.Resolve(rev)
		if err == nil {
			t.Errorf("Resolve(%q) = %s, want an error", rev, got.Commit.Hash)
		}
	}
}

// TestResolveMessages: a revision naming no commit says why, in words
// a reader can act on (not go-git's "EOF").
func TestResolveMessages(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": webStack})
	one := r.commit("one")
	r.write(map[string]string{"stacks/web.cue": webStack + "// two\n"})
	two := r.commit("two")
	repo := r.open()
	for rev, want := range map[string]string{
		"HEAD~3":   `unknown revision "HEAD~3": no such commit: the first-parent history of HEAD has 2 commits (HEAD~1 is its root)`,
		"HEAD~2":   `unknown revision "HEAD~2": no such commit: the first-parent history of HEAD has 2 commits (HEAD~1 is its root)`,
		"HEAD~1~1": `unknown revision "HEAD~1~1": no such commit: the first-parent history of HEAD~1 has 1 commit (HEAD~1 is its root)`,
		"HEAD^2":   `unknown revision "HEAD^2": no such commit: HEAD (` + two.String()[:12] + `) has only 1 parent`,
		"HEAD^^":   `unknown revision "HEAD^^": no such commit: HEAD^ (` + one.String()[:12] + `) has no parent (it is a root commit)`,
		"nope":     `unknown revision "nope": reference not found`,
		// go-git reads 1 to 3 hex digits as an abbreviation; git wants 4.
		two.String()[:3]: `unknown revision "` + two.String()[:3] + `": reference not found (an abbreviated commit hash needs at least 4 hex digits)`,
	} {
		_, err := repo.Resolve(rev)
		if err == nil || err.Error() != want {
			t.Errorf("Resolve(%q): %v\nwant %s", rev, err, want)
		}
	}
	for _, rev := range []string{"HEAD~1", "HEAD^", "@~1", one.String()[:4], strings.ToUpper(one.String()[:8])} {
		got, err := repo.Resolve(rev)
		if err != nil || got.Commit.Hash != one {
			t.Errorf("Resolve(%q) = %v, %v; want %s", rev, got.Commit, err, one)
		}
	}
}

// TestResolveAmbiguousAbbreviation: an abbreviation matching two commits
// is refused, as git refuses it, instead of taking either.
func TestResolveAmbiguousAbbreviation(t *testing.T) {
	r := newRepo(t)
	seen := map[string]string{}
	var prefix string
	for i := 0; prefix == ""; i++ {
		if i > 5000 {
			t.Fatal("no two commits share 4 hex digits")
		}
		h := r.commit("commit " + itoa(i)).String()
		if _, dup := seen[h[:4]]; dup {
			prefix = h[:4]
		}
		seen[h[:4]] = h
	}
	_, err := r.open().Resolve(prefix)
	if err == nil || !strings.Contains(err.Error(), `ambiguous revision "`+prefix+`": the abbreviated hash matches 2 commits`) {
		t.Errorf("Resolve(%q): %v, want it ambiguous", prefix, err)
	}
	if _, ok := gitAt(t, r.dir, "rev-parse", "--verify", "-q", prefix+"^{commit}"); ok {
		t.Errorf("git rev-parse %s succeeds", prefix)
	}
}

// TestResolveShallow: in a shallow clone (CI's usual checkout) a
// revision past the history fetched says so.
func TestResolveShallow(t *testing.T) {
	dir, _ := historyRepo(t)
	clone := filepath.Join(t.TempDir(), "clone")
	mustGit(t, dir, "clone", "-q", "--depth", "1", "--no-local", "file://"+dir, clone)
	repo, err := gitops.Open(clone)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Resolve("HEAD"); err != nil {
		t.Fatal(err)
	}
	_, err = repo.Resolve("HEAD~1")
	if err == nil || !strings.Contains(err.Error(), "shallow clone") || !strings.Contains(err.Error(), "git fetch --deepen") {
		t.Errorf("Resolve(HEAD~1) in a shallow clone: %v", err)
	}
}
