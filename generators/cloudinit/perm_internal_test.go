package cloudinit

import (
	"fmt"
	"io/fs"
	"testing"
)

// The permissions field is written digit by digit; fmt wrote it before.
func TestAppendPermissions(t *testing.T) {
	for m := fs.FileMode(0); m <= 0o7777; m++ {
		mode := m&0o777 | fs.ModeSetuid*(m>>9&1) | fs.ModeSticky*(m>>10&1)
		want := fmt.Sprintf("    permissions: %q\n", fmt.Sprintf("%#04o", mode.Perm()))
		if got := string(appendPermissions([]byte("x"), mode)); got != "x"+want {
			t.Fatalf("appendPermissions(%v) = %q, want %q", mode, got, "x"+want)
		}
	}
}
