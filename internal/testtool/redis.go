package testtool

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// StartRedis starts Debian's redis-server on 127.0.0.1:port with data in
// dir and the default user's password in an ACL file, as a self-hosted
// cache host has it, and returns the process, which the test's cleanup
// kills (only this process).
func StartRedis(t testing.TB, dir string, port int, password string) *exec.Cmd {
	t.Helper()
	bin := Require(t, "redis-server", "redis-server")
	sum := sha256.Sum256([]byte(password))
	acl := filepath.Join(dir, "users.acl")
	conf := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(acl, []byte("user default on #"+hex.EncodeToString(sum[:])+" ~* &* +@all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := fmt.Sprintf("bind 127.0.0.1\nport %d\naclfile %s\nsave \"\"\nmaxmemory 10mb\nmaxmemory-policy noeviction\ndir %s\n", port, acl, dir)
	if err := os.WriteFile(conf, []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}
