//go:build !unix

package e2etest

import "os/exec"

// killGroup does nothing where there are no process groups.
func killGroup(*exec.Cmd) bool { return false }
