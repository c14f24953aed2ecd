//go:build linux

package debroot

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Ensure returns the root directory of release with pkgs installed,
// building it when it is not cached. Building needs root, debootstrap
// and the network; log receives the build's progress.
// Ensure is Linux only (debootstrap, a private mount namespace, chroot).
func Ensure(release string, pkgs []string, log io.Writer) (string, error) {
	suite, ok := Suites[release]
	if !ok {
		return "", fmt.Errorf("no Debian suite known for os %q", release)
	}
	if m := os.Getenv("HACOMPILE_DEBIAN_MIRROR"); m != "" {
		suite[1] = m
	}
	all := slices.Clone(pkgs)
	slices.Sort(all)
	all = slices.Compact(all)
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, release+"-"+Key(release, suite[0], suite[1], all))
	root := filepath.Join(dir, "root")
	if _, err := os.Stat(filepath.Join(dir, "ok")); err == nil {
		return root, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(filepath.Join(dir, "ok")); err == nil {
		return root, nil // built by another process while this one waited
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("building the %s root needs root (debootstrap and chroot)", release)
	}
	for _, tool := range []string{"debootstrap", "chroot", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("building the %s root needs %s: apt-get install -y debootstrap", release, tool)
		}
	}
	tmp, err := os.MkdirTemp(cache, ".build-"+release+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	troot := filepath.Join(tmp, "root")
	fmt.Fprintf(log, "debroot: debootstrap %s into %s, then apt-get install %s\n", suite[0], dir, strings.Join(all, " "))
	if err := run(log, "debootstrap", "--variant=minbase", suite[0], troot, suite[1]); err != nil {
		return "", fmt.Errorf("debootstrap %s: %w", suite[0], err)
	}
	// debootstrap resolves no alternatives or virtual packages (cloud-init's
	// Python dependencies fail to configure with --include); apt-get in
	// the new root does. Services must not start in it: policy-rc.d says so
	// to invoke-rc.d.
	policy := filepath.Join(troot, "usr/sbin/policy-rc.d")
	if err := os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
		return "", err
	}
	install := "mount -t proc proc /proc && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends " +
		strings.Join(all, " ") + " && apt-get clean; rc=$?; umount /proc; exit $rc"
	if err := run(log, "unshare", "--mount", "--fork", "chroot", troot, "sh", "-c", install); err != nil {
		return "", fmt.Errorf("apt-get install in the %s root: %w", release, err)
	}
	if err := os.Remove(policy); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, "ok"), []byte(strings.Join(all, "\n")+"\n"), 0o644); err != nil {
		return "", err
	}
	os.RemoveAll(dir) // a half-built root from a killed run
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return root, nil
}

func run(log io.Writer, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	return cmd.Run()
}
