//go:build unix

// Package sockwrite writes to a non-blocking socket's descriptor without
// waiting: the hub's writers own their sockets and never park on one.
package sockwrite

import "syscall"

// Write writes as much of p as the socket takes now: it returns what was
// written and, when that is not all of p, why (EAGAIN: the socket's buffer
// is full; anything else: the connection failed). Interrupted calls are
// retried.
func Write(fd uintptr, p []byte) (int, syscall.Errno) {
	n := 0
	for n < len(p) {
		r, errno := send(fd, p[n:])
		switch errno {
		case 0:
			n += r
		case syscall.EINTR:
		default:
			return n, errno
		}
	}
	return n, 0
}
