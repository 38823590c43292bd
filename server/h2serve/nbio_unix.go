//go:build unix

package h2serve

import (
	"io"
	"syscall"

	"github.com/ssekit/sse/internal/sockwrite"
)

// nbReader reads a socket without waiting: when nothing has come it
// returns errWouldBlock at once (Go's own Read would park the goroutine).
type nbReader struct{ rc syscall.RawConn }

func newNBReader(rc syscall.RawConn) io.Reader { return nbReader{rc} }

func (r nbReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var err error
	if cerr := r.rc.Read(func(fd uintptr) bool {
		for {
			n, err = syscall.Read(int(fd), p)
			if err != syscall.EINTR {
				return true // never wait: readiness is the poller's
			}
		}
	}); cerr != nil {
		return 0, cerr
	}
	switch {
	case err == syscall.EAGAIN:
		return 0, errWouldBlock
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// nbWrite writes p to the socket fd without waiting: what its buffer does
// not take now is left, with errWouldBlock (Go's own Write would park the
// goroutine, and needs a deadline set and cleared each time to bound
// that). It goes beneath net's descriptor lock, so the caller must hold
// what keeps the socket open: a connection's c.mu with c.closed false
// (failLocked, the one place that closes it, holds c.mu too).
func nbWrite(fd int, p []byte) (int, error) {
	n, errno := sockwrite.Write(uintptr(fd), p)
	switch errno {
	case 0:
		return n, nil
	case syscall.EAGAIN:
		return n, errWouldBlock
	default:
		return n, errno
	}
}

// rcWrite is nbWrite through rc, which holds the descriptor open while it
// writes (without net's write lock or deadline: the caller serialises its
// writes, and none waits), for writers that do not hold c.mu: tlsSink's.
func rcWrite(rc syscall.RawConn, p []byte) (int, error) {
	var n int
	var werr error
	if err := rc.Control(func(fd uintptr) { n, werr = nbWrite(int(fd), p) }); err != nil {
		return 0, err
	}
	return n, werr
}

// socketFD is rc's descriptor.
func socketFD(rc syscall.RawConn) (int, bool) {
	fd := -1
	if err := rc.Control(func(d uintptr) { fd = int(d) }); err != nil {
		return -1, false
	}
	return fd, true
}
