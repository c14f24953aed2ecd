//go:build !linux

// Package proc holds what hacompile asks of the kernel for the
// processes it starts, where kernels differ.
package proc

import "os/exec"

// DieWithParent does nothing on a kernel that cannot kill a child with
// its parent: a child reading its input from hacompile (sftp-server)
// ends when that input closes with the process.
func DieWithParent(*exec.Cmd) {}
