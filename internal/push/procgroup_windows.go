package push

import "os/exec"

// ownGroup does nothing on Windows: killGroup kills the command alone.
func ownGroup(*exec.Cmd) {}

// killGroup kills cmd's process.
func killGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
