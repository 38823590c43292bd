//go:build unix

package h2serve

import (
	"io"
	"syscall"
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
