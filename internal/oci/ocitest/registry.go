// Package ocitest runs Debian's docker-registry (the CNCF distribution
// registry) on loopback for tests.
package ocitest

import (
	"fmt"
	"github.com/hacompile/hacompile/internal/proc"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/testtool"
)

// Registry is a running registry.
type Registry struct {
	Addr    string // 127.0.0.1:port
	Storage string // its storage directory
	cmd     *exec.Cmd
	once    sync.Once
}

// Start runs docker-registry on a free loopback port with a config and
// storage of its own, and stops it (by its PID) when the test ends.
func Start(t testing.TB) *Registry {
	t.Helper()
	bin := testtool.Require(t, "docker-registry", "docker-registry")
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	storage := filepath.Join(dir, "storage")
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, storage, addr)
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &Registry{Addr: addr, Storage: storage}
	r.cmd = exec.Command(bin, "serve", cfgFile)
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	proc.DieWithParent(r.cmd)
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(); logf.Close() })
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry did not answer on %s within 15 s: %v\n%s", addr, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r
}

// PID is the registry's process id.
func (r *Registry) PID() int { return r.cmd.Process.Pid }

// Stop kills the registry (its PID) and waits for it.
func (r *Registry) Stop() {
	r.once.Do(func() {
		_ = r.cmd.Process.Kill() // SIGKILL on unix
		_ = r.cmd.Wait()
	})
}

// Counter is an http.RoundTripper that counts requests and response
// body bytes, by method and path kind (blob upload, blob fetch, manifest).
type Counter struct {
	mu      sync.Mutex
	Base    http.RoundTripper
	Counts  map[string]int
	Bytes   int64
	Total   int
	OnBlobs func() // called before each blob GET (tests kill the registry)
}

// Kinds of requests a Counter counts.
const (
	BlobUpload   = "blob-upload"   // POST .../blobs/uploads/
	BlobGet      = "blob-get"      // GET .../blobs/<digest>
	BlobHead     = "blob-head"     // HEAD .../blobs/<digest>
	ManifestGet  = "manifest-get"  // GET .../manifests/<ref>
	ManifestHead = "manifest-head" // HEAD .../manifests/<ref>
	ManifestPut  = "manifest-put"  // PUT .../manifests/<ref>
)

func (c *Counter) RoundTrip(req *http.Request) (*http.Response, error) {
	kind := req.Method + " other"
	p := req.URL.Path
	switch {
	case req.Method == http.MethodPost && strings.Contains(p, "/blobs/uploads/"):
		kind = BlobUpload
	case strings.Contains(p, "/blobs/") && req.Method == http.MethodGet:
		kind = BlobGet
	case strings.Contains(p, "/blobs/") && req.Method == http.MethodHead:
		kind = BlobHead
	case strings.Contains(p, "/manifests/") && req.Method == http.MethodGet:
		kind = ManifestGet
	case strings.Contains(p, "/manifests/") && req.Method == http.MethodHead:
		kind = ManifestHead
	case strings.Contains(p, "/manifests/") && req.Method == http.MethodPut:
		kind = ManifestPut
	}
	if kind == BlobGet && c.OnBlobs != nil {
		c.OnBlobs()
	}
	c.mu.Lock()
	if c.Counts == nil {
		c.Counts = map[string]int{}
	}
	c.Counts[kind]++
	c.Total++
	c.mu.Unlock()
	base := c.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	// A HEAD answer's Content-Length is the size of what a GET would
	// send: no body is transferred.
	if err == nil && resp.ContentLength > 0 && req.Method != http.MethodHead {
		c.mu.Lock()
		c.Bytes += resp.ContentLength
		c.mu.Unlock()
	}
	return resp, err
}

// Count is the number of requests of kind so far.
func (c *Counter) Count(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Counts[kind]
}

// Reset zeroes the counts.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Counts, c.Bytes, c.Total = nil, 0, 0
}
