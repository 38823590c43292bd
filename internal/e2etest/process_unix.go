//go:build unix

package e2etest

import (
	"os/exec"
	"syscall"
)

// killGroup sends SIGKILL to the process group cmd leads, if it was
// started as the leader of one, and reports whether it did.
func killGroup(cmd *exec.Cmd) bool {
	a := cmd.SysProcAttr
	if a == nil || !a.Setpgid || a.Pgid != 0 {
		return false
	}
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) == nil
}
