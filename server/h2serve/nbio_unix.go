//go:build unix

package h2serve

import (
	"io"
	"sync"
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
	o := rawIOs.Get().(*rawIO)
	o.p = p
	cerr := r.rc.Read(o.read)
	n, err := o.done()
	if cerr != nil {
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

// rawIO carries one read's or write's buffer and results through a
// RawConn's callback. They are pooled with their callbacks bound once, so
// a socket operation allocates nothing; a closure capturing them escaped
// to the heap, one allocation per read or write.
type rawIO struct {
	p     []byte
	n     int
	err   error
	read  func(fd uintptr) bool
	write func(fd uintptr)
}

var rawIOs = sync.Pool{New: func() any {
	o := new(rawIO)
	o.read, o.write = o.readFD, o.writeFD
	return o
}}

func (o *rawIO) readFD(fd uintptr) bool {
	for {
		o.n, o.err = syscall.Read(int(fd), o.p)
		if o.err != syscall.EINTR {
			return true // never wait: readiness is the poller's
		}
	}
}

func (o *rawIO) writeFD(fd uintptr) { o.n, o.err = nbWrite(int(fd), o.p) }

// done returns the results and gives o back to the pool.
func (o *rawIO) done() (int, error) {
	n, err := o.n, o.err
	o.p, o.n, o.err = nil, 0, nil
	rawIOs.Put(o)
	return n, err
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
	o := rawIOs.Get().(*rawIO)
	o.p = p
	cerr := rc.Control(o.write)
	n, err := o.done()
	if cerr != nil {
		return 0, cerr
	}
	return n, err
}

// socketFD is rc's descriptor.
func socketFD(rc syscall.RawConn) (int, bool) {
	fd := -1
	if err := rc.Control(func(d uintptr) { fd = int(d) }); err != nil {
		return -1, false
	}
	return fd, true
}
