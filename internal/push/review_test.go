package push

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Regression tests for the findings of the security review.

// A directory on the host replaced by a symlink since (or before) the
// first push is not followed: push refuses with a drift error naming
// the host and the directory, and nothing lands outside the root.
func TestSymlinkedDirectoryRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 101, "app1")
	h := e.f.Hosts["app1"]
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(h.Root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(h.Root, "etc/nginx")); err != nil {
		t.Fatal(err)
	}
	for _, force := range []bool{false, true} {
		o := e.opts(1)
		o.Force = force
		_, err := Run(context.Background(), o)
		if !errors.Is(err, ErrDrift) {
			t.Fatalf("force=%v: err = %v, want drift", force, err)
		}
		if want := "app1: /etc/nginx is a symlink (to " + outside + ") on the host, expected a directory"; !strings.Contains(err.Error(), want) {
			t.Errorf("force=%v: error %q does not contain %q", force, err, want)
		}
		ents, _ := os.ReadDir(outside)
		if len(ents) != 0 {
			t.Fatalf("force=%v: push wrote outside the root: %v", force, ents)
		}
	}
}
