// Package proc holds what hacompile asks of the kernel for the
// processes it starts, where kernels differ.
package proc

import (
	"os/exec"
	"syscall"
)

// DieWithParent has the kernel kill cmd's process (SIGKILL) when the
// thread that started it ends, so that a killed hacompile leaves no
// child behind. Call it before cmd.Start.
func DieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
