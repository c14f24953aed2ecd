//go:build unix

package cli

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/testtool"
)

// waitClosed fails t unless c closes within 10 s.
func waitClosed(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not after 10s", what)
	}
}

// push, rollback and apply: the first interrupt closes stop and leaves
// the context alone (the hosts under way finish); the second cancels
// it. Real signals, sent to this process (not parallel: no other test's
// handler is listening).
func TestInterruptible(t *testing.T) {
	var w testtool.SyncBuffer
	say := func(line string) { w.Write([]byte(line + "\n")) }
	ctx, stop, end := interruptible(context.Background(), say, true)
	defer end()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, stop, "stop after the first SIGINT")
	// The context stays: give a wrongly cancelled one the time to show.
	time.Sleep(100 * time.Millisecond)
	if ctx.Err() != nil {
		t.Fatalf("the first interrupt cancelled the context: %v", ctx.Err())
	}
	if got := w.String(); !strings.Contains(got, "the hosts under way finish") || !strings.Contains(got, "Interrupt again to stop at once") {
		t.Errorf("first interrupt said %q", got)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ctx.Done(), "the context after the second interrupt (SIGTERM)")
	if got := w.String(); !strings.Contains(got, "stopping at once") {
		t.Errorf("second interrupt said %q", got)
	}
}

// apply's SIGTERM (its unit stopped as the machine shuts down) stops at
// once; its SIGINT (Ctrl-C of an operator on the host) is graceful.
func TestInterruptibleTermAtOnce(t *testing.T) {
	var w testtool.SyncBuffer
	ctx, stop, end := interruptible(context.Background(), func(line string) { w.Write([]byte(line + "\n")) }, false)
	defer end()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ctx.Done(), "the context after SIGTERM")
	waitClosed(t, stop, "stop after SIGTERM")
	if got := w.String(); got != "" {
		t.Errorf("SIGTERM said %q; it stops at once, saying nothing of finishing", got)
	}
	ctx2, stop2, end2 := interruptible(context.Background(), func(string) {}, false)
	defer end2()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, stop2, "stop after SIGINT")
	time.Sleep(100 * time.Millisecond)
	if ctx2.Err() != nil {
		t.Error("SIGINT cancelled apply's context at once")
	}
}
