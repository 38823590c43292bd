//go:build unix && !linux

// Package sockwrite writes to a non-blocking socket's descriptor with one
// system call and no wait: the hub's writers own their sockets and never
// park on one.
package sockwrite

import "syscall"

// Write is write(2) on the non-blocking socket fd: what it took and the
// call's errno (EAGAIN when its buffer is full).
func Write(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	if errno, ok := err.(syscall.Errno); ok {
		return 0, errno
	}
	return n, 0
}
