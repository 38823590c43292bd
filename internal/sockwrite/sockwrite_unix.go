//go:build unix && !linux

package sockwrite

import "syscall"

// send is write(2) on the non-blocking socket fd.
func send(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	if errno, ok := err.(syscall.Errno); ok {
		return 0, errno
	}
	return n, 0
}
