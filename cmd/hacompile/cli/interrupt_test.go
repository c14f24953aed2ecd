package cli

import (
	"context"
	"testing"
)

// After end, an interrupt is no longer this command's: end cancels the
// context and leaves stop open (nothing was interrupted).
func TestInterruptibleEnds(t *testing.T) {
	ctx, stop, end := interruptible(context.Background(), func(string) {}, true)
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
