//go:build unix

package benchload

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system, all threads, the
// garbage collector's included) the process has used so far. On a machine
// shared with other work it measures a benchmark better than wall time,
// which also counts the time spent waiting for a CPU.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
