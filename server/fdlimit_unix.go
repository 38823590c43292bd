//go:build unix

package server

import "syscall"

// openFileLimit is the process's limit on open files (the soft
// RLIMIT_NOFILE, which the Go runtime raises to the hard one at start),
// or 0 when it cannot be read or is unlimited.
func openFileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	cur := uint64(rl.Cur) // int64 on some systems
	if cur >= 1<<62 {     // RLIM_INFINITY
		return 0
	}
	return cur
}
