//go:build !linux

package systest

import "errors"

// errNotLinux is what the system test says on any other kernel: it
// boots hosts with systemd-nspawn in network namespaces, which only
// Linux has.
var errNotLinux = errors.New("hacompile test boots hosts as systemd-nspawn containers in network namespaces: it runs on Linux only")

func osPreflight() error { return errNotLinux }

func mountOverlay(root, opts string) error { return errNotLinux }

func inNS[T any](ns string, fn func() (T, error)) (T, error) {
	var zero T
	return zero, errNotLinux
}

func openFilesMax() (uint64, error) { return 0, errNotLinux }
