package artifact

import (
	"errors"
	"testing"
)

func TestFieldError(t *testing.T) {
	t.Parallel()
	err := Errorf("tls.profile", "unknown profile %q", "old")
	if err.Error() != `tls.profile: unknown profile "old"` {
		t.Errorf("Error() = %q", err)
	}
	// A host's context wraps a stack-level field error and keeps its path.
	wrapped := InHost("app1", err)
	fe, ok := AsFieldError(wrapped)
	if !ok || fe.Path != "tls.profile" || wrapped.Error() != `hosts.app1: tls.profile: unknown profile "old"` {
		t.Errorf("InHost(stack field) = %q (%v)", wrapped, fe)
	}
	// An error about the host's own field needs no second prefix.
	own := Errorf("hosts.app1.roles", "no role")
	if got := InHost("app1", own); got != own {
		t.Errorf("InHost(own field) = %q", got)
	}
	if got := InHost("app1", errors.New("plain")); got.Error() != "hosts.app1: plain" {
		t.Errorf("InHost(plain) = %q", got)
	}
	if _, ok := AsFieldError(errors.New("plain")); ok {
		t.Error("a plain error read as a field error")
	}
}
