//go:build unix

package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/push"
)

// Ctrl-C during a push, for real: the first SIGINT, sent while app1 (batch
// 1) is health-checked, lets app1 finish and release its lock and starts
// no other host; app2 (batch 2) is skipped, and the exit code is 1.
func TestPushInterrupted(t *testing.T) {
	f, health, _ := pushFleet(t, 123)
	reached, release := health.Hold("app1")
	go func() {
		select {
		case <-reached:
		case <-time.After(time.Minute):
			release()
			return
		}
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		// The signal is handled while the check waits.
		time.Sleep(300 * time.Millisecond)
		release()
	}()
	code, stdout, stderr := hc(t, "push", "fleet", "--batch", "1", "--known-hosts", f.KnownHosts(true), "-i", f.ClientKey,
		"--confirm-timeout", "15s", "--root", f.Dir+"/{host}/root", "--health-url", health.URL)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "hacompile: interrupted: no other host starts") || !strings.Contains(stderr, "1 host(s) skipped") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if !regexp.MustCompile(`(?m)^app1 +1 +done `).MatchString(stdout) || !regexp.MustCompile(`(?m)^app2 +2 +skipped `).MatchString(stdout) {
		t.Errorf("summary:\n%s", stdout)
	}
	for _, n := range f.Names {
		if _, err := os.Stat(filepath.Join(f.Hosts[n].Root, push.StateDir, "fleet.lock")); !os.IsNotExist(err) {
			t.Errorf("%s's lock: %v, want released", n, err)
		}
	}
	if _, err := os.Stat(filepath.Join(f.Hosts["app2"].Root, "etc/app/gunicorn.conf.py")); !os.IsNotExist(err) {
		t.Errorf("app2 was written: %v", err)
	}
}
