package cli_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/cmd/hacompile/cli"
	"github.com/hacompile/hacompile/internal/testtool"
)

// testtool.SyncBuffer is a bytes.Buffer safe for the server's goroutines.

const serveStack = `name:        "web"
description: "DESCRIPTION"
domain:      "example.com"
tls: mode: "none"
hosts: {
	app1: {address: "10.0.0.11", roles: ["app"], cores: 2, memory_mb: 2048}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 2, memory_mb: 2048}
}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app"}
`

// eventually polls cond for up to 15 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestServe: serve builds out/ (site included), serves out/site/ on
// loopback, rebuilds when a stack file changes, keeps the last good
// build when a change does not compile, and stops when its context
// ends.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	stack := filepath.Join(dir, "stacks", "web.cue")
	if err := os.MkdirAll(filepath.Dir(stack), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		if err := os.WriteFile(stack, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(strings.Replace(serveStack, "DESCRIPTION", "first version", 1))

	var stdout, stderr testtool.SyncBuffer
	cmd := cli.New(&stdout, &stderr)
	cmd.SetArgs([]string{"serve", "--addr", "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	re := regexp.MustCompile(`serving out/site on (http://127\.0\.0\.1:\d+/)`)
	var base string
	eventually(t, "the serving line", func() bool {
		m := re.FindStringSubmatch(stdout.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	})
	if _, err := os.Stat(filepath.Join(dir, "out", "web", "manifest.json")); err != nil {
		t.Fatalf("serve did not build out/: %v", err)
	}
	if code, body := get(t, base); code != 200 || !strings.Contains(body, "Runbook") {
		t.Fatalf("GET /: %d", code)
	}
	if code, body := get(t, base+"stacks/web/index.html"); code != 200 || !strings.Contains(body, "first version") {
		t.Fatalf("GET stack page: %d %q", code, body)
	}
	// DNS rebinding: a page of another site reaches the server under
	// that site's name; only localhost and IP addresses are answered.
	for host, want := range map[string]int{"evil.example:80": 403, "evil.example": 403, "localhost:8080": 200, "127.0.0.1": 200, "[::1]:8080": 200} {
		req, err := http.NewRequest("GET", base, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET / with Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
	resp, err := http.Post(base, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
	// Paths no page has: a name too long for the file system, a path
	// deeper than it goes, a NUL byte, .. climbing out of the site. Each
	// is not found, never the server's failure, and nothing is logged.
	before := stderr.String()
	for _, p := range []string{
		strings.Repeat("a", 10000),
		strings.Repeat("a", 300) + ".html",
		"stacks/" + strings.Repeat("a/", 3000) + "index.html",
		"a%00b.html",
		"stacks/%00/index.html",
		"../../../../etc/passwd",
		"%2e%2e/%2e%2e/etc/passwd",
		"stacks/../../../etc/passwd",
	} {
		if code, _ := get(t, base+p); code != http.StatusNotFound {
			t.Errorf("GET /%.40s (%d bytes): %d, want 404", p, len(p), code)
		}
	}
	if got := stderr.String(); got != before {
		t.Errorf("odd paths logged %q", strings.TrimPrefix(got, before))
	}

	write(strings.Replace(serveStack, "DESCRIPTION", "second version", 1))
	eventually(t, "the rebuilt page", func() bool {
		_, body := get(t, base+"stacks/web/index.html")
		return strings.Contains(body, "second version")
	})

	write(strings.Replace(serveStack, `domain:      "example.com"`, `domain:      "Not A Domain"`, 1))
	eventually(t, "the rebuild error", func() bool {
		return strings.Contains(stderr.String(), "kept the last good build")
	})
	if !strings.Contains(stderr.String(), "stacks/web.cue:3:") {
		t.Errorf("the error does not name the stack file's line: %s", stderr.String())
	}
	if _, body := get(t, base+"stacks/web/index.html"); !strings.Contains(body, "second version") {
		t.Error("a failed rebuild replaced the last good site")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}
