//go:build unix

package outdir

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// writable reports, as one error naming dir, why files cannot be made in
// the directory dir (access(2): its permissions, an immutable flag, a
// read-only file system), before a build writes there: otherwise every
// file of the build would fail on its own, with the same error.
func writable(dir string) error {
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("cannot write in %s: %w", dir, err)
	}
	return nil
}
