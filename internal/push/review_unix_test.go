//go:build unix

package push

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A file whose owner was changed on the host since the last push is
// drift, like a changed content or mode: the push stops and names it.
func TestOwnerChangeIsDrift(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 161, "app1")
	h := e.f.Hosts["app1"]
	run1(t, e.opts(1))
	conf := filepath.Join(h.Root, "etc/app/gunicorn.conf.py")
	if err := os.Lchown(conf, 4321, 4321); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), e.opts(1))
	if !errors.Is(err, ErrDrift) {
		t.Fatalf("err = %v, want drift", err)
	}
	if want := "app1: /etc/app/gunicorn.conf.py was changed on the host since the last push (now sha256 "; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "owner 4321:4321; pushed ") {
		t.Errorf("error does not name the host, file and owner: %v", err)
	}
	if fi, err := os.Stat(conf); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 4321 {
		t.Errorf("owner overwritten without --force: %v", err)
	}
}
