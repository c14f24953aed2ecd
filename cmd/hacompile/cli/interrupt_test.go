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

// push, rollback and apply: the first interrupt closes stop and leaves
// the context alone (the hosts under way finish); the second cancels
// it. Real signals, sent to this process (not parallel: no other test's
// handler is listening).
func TestInterruptible(t *testing.T) {
	var w testtool.SyncBuffer
	ctx, stop, end := interruptible(context.Background(), &w)
	defer end()
	wait := func(c <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: not after 10s", what)
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	wait(stop, "stop after the first SIGINT")
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
	wait(ctx.Done(), "the context after the second interrupt (SIGTERM)")
	if got := w.String(); !strings.Contains(got, "stopping at once") {
		t.Errorf("second interrupt said %q", got)
	}
}

// After end, an interrupt is no longer this command's: a second command
// gets its own, and the first's end does not wait on a signal.
func TestInterruptibleEnds(t *testing.T) {
	ctx, stop, end := interruptible(context.Background(), &testtool.SyncBuffer{})
	end()
	if ctx.Err() == nil {
		t.Error("end left the context running")
	}
	select {
	case <-stop:
		t.Error("end closed stop: nothing was interrupted")
	default:
	}
}
