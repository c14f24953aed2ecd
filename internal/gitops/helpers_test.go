package gitops_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/hacompile/hacompile/internal/gitops"
	"github.com/hacompile/hacompile/internal/testtool"
)

// webStack is a small valid stack: two app hosts behind a cloud balancer.
const webStack = `name:   "web"
domain: "example.com"
tls: mode: "none"
hosts: {
	app1: {address: "10.0.0.11", roles: ["app"], cores: 2, memory_mb: 2048}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 2, memory_mb: 2048}
}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app"}
`

const apiStack = `name:   "api"
domain: "api.example.com"
tls: mode: "none"
hosts: {
	api1: {address: "10.0.1.11", roles: ["app"], cores: 1, memory_mb: 1024}
	api2: {address: "10.0.1.12", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "cloud"
app: {name: "api", runtime: "python", module: "wsgi:app", working_dir: "/srv/api"}
`

// when is every test commit's date, so hashes are the same every run.
var when = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testRepo is a repository in a temp dir, made with go-git.
type testRepo struct {
	t    *testing.T
	dir  string
	git  *git.Repository
	tick int
}

func newRepo(t *testing.T) *testRepo {
	t.Helper()
	dir := t.TempDir()
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &testRepo{t: t, dir: dir, git: r}
}

// write writes files (slash paths relative to the repository).
func (r *testRepo) write(files map[string]string) {
	r.t.Helper()
	for p, s := range files {
		full := filepath.Join(r.dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *testRepo) remove(p string) {
	r.t.Helper()
	if err := os.RemoveAll(filepath.Join(r.dir, filepath.FromSlash(p))); err != nil {
		r.t.Fatal(err)
	}
}

// commit commits every change in the working tree, deletions included.
func (r *testRepo) commit(msg string) plumbing.Hash {
	r.t.Helper()
	wt, err := r.git.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		r.t.Fatal(err)
	}
	r.tick++
	sig := &object.Signature{Name: "Test", Email: "test@example.com", When: when.Add(time.Duration(r.tick) * time.Minute)}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig, AllowEmptyCommits: true})
	if err != nil {
		r.t.Fatal(err)
	}
	return h
}

// branch creates a branch at HEAD and checks it out.
func (r *testRepo) checkout(branch string, create bool) {
	r.t.Helper()
	wt, err := r.git.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(branch), Create: create}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *testRepo) open() *gitops.Repo {
	r.t.Helper()
	repo, err := gitops.Open(r.dir)
	if err != nil {
		r.t.Fatal(err)
	}
	return repo
}

func (r *testRepo) addRemote(name, url string) {
	r.t.Helper()
	if _, err := r.git.CreateRemote(&config.RemoteConfig{Name: name, URLs: []string{url}}); err != nil {
		r.t.Fatal(err)
	}
}

// stacks is the default stacks directory, seen from the root.
func (r *testRepo) stacks(args ...string) gitops.Stacks {
	r.t.Helper()
	st, err := r.open().StacksFor(r.dir, args)
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

// runGit runs the git command in dir, for cross-checks only.
func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	testtool.Require(t, "git", "git")
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// bare makes an empty bare repository for publish to push to.
func bare(t *testing.T) string {
	t.Helper()
	// go-git pushes to file:// remotes through git-receive-pack.
	testtool.Require(t, "git", "git")
	dir := filepath.Join(t.TempDir(), "remote.git")
	if _, err := git.PlainInit(dir, true); err != nil {
		t.Fatal(err)
	}
	return dir
}
