package systest

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// osPreflight is what Preflight asks of the kernel: nothing more on
// Linux, where the system test runs.
func osPreflight() error { return nil }

// mountOverlay mounts at root an overlay of opts' layers.
func mountOverlay(root, opts string) error {
	return syscall.Mount("overlay", root, "overlay", 0, opts)
}

// openFilesMax is the hard limit of this process's open files.
func openFilesMax() (uint64, error) {
	var lim syscall.Rlimit
	err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return lim.Max, err
}

// inNS runs fn on a thread in the named namespace. The thread is
// returned to the pool only once it is back in its own namespace;
// otherwise it is retired with its goroutine.
func inNS[T any](ns string, fn func() (T, error)) (T, error) {
	var zero T
	runtime.LockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return zero, err
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		return zero, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return zero, fmt.Errorf("entering namespace %s: %w", ns, err)
	}
	v, err := fn()
	if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
		runtime.UnlockOSThread()
	} // else: the locked thread exits with the goroutine.
	return v, err
}
