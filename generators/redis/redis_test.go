package redis

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

func exampleStack(t *testing.T) *schema.Stack {
	t.Helper()
	for _, s := range testtool.LoadStacks(t) {
		if s.Name == "python-celery-cache" {
			return s
		}
	}
	t.Fatal("no example stack python-celery-cache")
	return nil
}

// TestExampleStacks: only a self-hosted Redis gets a file, on its cache
// host, with maxmemory from the host's memory (seed 003: 60 % of 4096).
func TestExampleStacks(t *testing.T) {
	for _, s := range testtool.LoadStacks(t) {
		files, err := Gen{}.Generate(s, artifact.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Name != "python-celery-cache" {
			if len(files) != 0 {
				t.Errorf("%s: redis.conf for a stack without a self-hosted Redis", s.Name)
			}
			continue
		}
		if len(files) != 1 || files[0].Host != "cache1" || files[0].Path != ConfPath || files[0].Mode != 0o640 || files[0].Owner != "redis:redis" {
			t.Fatalf("%s: files %+v", s.Name, files)
		}
		c := string(files[0].Content)
		for _, line := range []string{"bind 10.40.0.31 127.0.0.1\n", "protected-mode yes\n", "maxmemory 2457mb\n",
			"maxmemory-policy allkeys-lru\n", "aclfile /etc/redis/users.acl\n", "tcp-backlog 4096\n", "save \"\"\n", "supervised systemd\n"} {
			if !strings.Contains(c, line) {
				t.Errorf("redis.conf lacks %q", line)
			}
		}
		if strings.Contains(c, "requirepass") {
			t.Error("redis.conf holds a password")
		}
	}
}

// TestRedisServerRuns starts the real redis-server on the rendered file,
// in a private network namespace holding the cache host's address: it
// must listen there and on loopback, refuse clients without the password
// from the ACL file, accept them with it, and report the stack's memory
// settings.
func TestRedisServerRuns(t *testing.T) {
	server := testtool.Require(t, "redis-server", "redis-server")
	cli := testtool.Require(t, "redis-cli", "redis-tools")
	unshare := testtool.Require(t, "unshare", "util-linux")
	nsenter := testtool.Require(t, "nsenter", "util-linux")
	testtool.Require(t, "ip", "iproute2")
	if out, err := exec.Command(unshare, "--net", "true").CombinedOutput(); err != nil {
		msg := "a private network namespace is needed to bind the cache host's address (run as root): " + err.Error() + " " + string(out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := exampleStack(t)
	h := s.CacheHosts()[0]
	root := t.TempDir()
	opt := artifact.Options{Root: root}
	files, err := Gen{}.Generate(s, opt)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(root, files[0].Path)
	for _, d := range []string{filepath.Dir(conf), opt.P("/var/lib/redis"), opt.P("/run/redis")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(conf, files[0].Content, 0o640); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("s3cret-for-test"))
	if err := os.WriteFile(opt.P(s.Cache.ACLFile), []byte("user default on #"+hex.EncodeToString(sum[:])+" ~* &* +@all\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(unshare, "--net", "--", "/bin/sh", "-c",
		`ip link set lo up && ip addr add "$0"/32 dev lo && exec "$1" "$2"`, h.Address, server, conf)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})
	redis := func(addr string, auth bool, args ...string) string {
		a := []string{"-t", strconv.Itoa(cmd.Process.Pid), "-n", cli, "-h", addr, "-p", strconv.Itoa(s.Cache.Port)}
		if auth {
			a = append(a, "--no-auth-warning", "-a", "s3cret-for-test")
		}
		out, _ := exec.Command(nsenter, append(a, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	deadline := time.Now().Add(10 * time.Second)
	for redis(h.Address, true, "PING") != "PONG" {
		if time.Now().After(deadline) {
			t.Fatalf("no PONG on %s within 10 s\n%s", h.Address, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := redis("127.0.0.1", true, "PING"); got != "PONG" {
		t.Errorf("loopback PING: %q", got)
	}
	if got := redis(h.Address, false, "PING"); !strings.Contains(got, "NOAUTH") {
		t.Errorf("PING without the password: %q, want NOAUTH", got)
	}
	if got := redis(h.Address, true, "CONFIG", "GET", "maxmemory"); got != "maxmemory\n"+strconv.Itoa(MaxmemoryMB(s.Cache, h)*1024*1024) {
		t.Errorf("CONFIG GET maxmemory: %q", got)
	}
	if got := redis(h.Address, true, "CONFIG", "GET", "maxmemory-policy"); got != "maxmemory-policy\n"+s.Cache.MaxmemoryPolicy {
		t.Errorf("CONFIG GET maxmemory-policy: %q", got)
	}
	redis(h.Address, true, "SHUTDOWN", "NOSAVE")
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("redis-server did not shut down\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "# WARNING") && strings.Contains(logs.String(), "tcp-backlog") {
		t.Logf("Redis warns about the backlog (this machine's somaxconn is lower):\n%s", logs.String())
	}
}
