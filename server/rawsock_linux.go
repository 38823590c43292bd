//go:build linux

package server

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/ssekit/sse/internal/sockwrite"
	"github.com/ssekit/sse/internal/tlsrecord"
)

// rawSock is a taken-over plain-TCP subscriber connection held as nothing
// but its socket's file descriptor. net's TCPConn keeps, per connection, a
// netFD, two TCPAddrs and their Sockaddrs and a runtime poll descriptor
// with its timers (about 650 bytes, most of an idle subscriber's cost
// beyond its subscription); none of it is used once the writer pool owns
// the connection: nobody reads it, the departure watcher's epoll set
// notices the client leaving, and writes are non-blocking.
//
// Write never waits: what the socket buffer does not take is reported as
// os.ErrDeadlineExceeded, as a net.Conn write past its deadline is, so the
// pool keeps it pending, and the departure watcher wakes the pool when the
// socket can take more (writable). mu makes the descriptor's close wait
// for a write in progress, so a write never reaches a descriptor number
// the kernel has since given to another connection.
type rawSock struct {
	mu sync.Mutex
	fd int32 // -1 once closed
}

// takeSocket takes a plain TCP connection's socket out of net's hands: it
// duplicates the descriptor and closes nc (the socket stays open, held by
// the copy). ok is false, and nc untouched, for anything else (TLS: the
// records need crypto/tls's state) and when no descriptor is left for the
// copy.
func takeSocket(nc net.Conn) (fd int32, ok bool) {
	if lc, isLean := nc.(*tlsrecord.Conn); isLean {
		// TLS 1.3 on the hub's record layer: its keys are all the
		// connection needs; the socket is taken from beneath it and its
		// writes go there (see addSock). Nothing reads it any more.
		tc, isTCP := lc.NetConn().(*net.TCPConn)
		if !isTCP {
			return 0, false
		}
		return dupSocket(tc, tc)
	}
	inner := nc
	for {
		if _, isTLS := inner.(interface{ ConnectionState() tls.ConnectionState }); isTLS {
			return 0, false
		}
		w, wraps := inner.(interface{ NetConn() net.Conn })
		if !wraps {
			break
		}
		inner = w.NetConn()
	}
	tc, isTCP := inner.(*net.TCPConn)
	if !isTCP {
		return 0, false
	}
	// Under the wrapper (h2serve's peekedConn) a TLS connection is a
	// *tls.Conn, caught above by its ConnectionState; anything else that
	// wraps a TCP connection passes its writes through.
	return dupSocket(tc, nc)
}

// dupSocket duplicates tc's descriptor and, once it has, closes nc.
func dupSocket(tc *net.TCPConn, nc net.Conn) (int32, bool) {
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0, false
	}
	dup := -1
	_ = rc.Control(func(f uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, f, syscall.F_DUPFD_CLOEXEC, 0)
		if errno == 0 {
			dup = int(r)
		}
	})
	if dup < 0 {
		return 0, false
	}
	nc.Close() // the socket stays open: dup holds it
	return int32(dup), true
}

// Write writes p without waiting; n < len(p) comes with
// os.ErrDeadlineExceeded when the socket buffer is full.
func (s *rawSock) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return 0, net.ErrClosed
	}
	n, errno := sockwrite.Write(uintptr(s.fd), p)
	switch errno {
	case 0:
		return n, nil
	case syscall.EAGAIN:
		return n, os.ErrDeadlineExceeded
	default:
		return n, errno
	}
}

// Read reads without waiting: os.ErrDeadlineExceeded when nothing has
// come, io.EOF at the client's FIN.
func (s *rawSock) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return 0, net.ErrClosed
	}
	for {
		n, err := syscall.Read(int(s.fd), p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, os.ErrDeadlineExceeded
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// SetWriteDeadline is a no-op: writes never wait.
func (s *rawSock) SetWriteDeadline(time.Time) error { return nil }

// SetLinger sets SO_LINGER as net.TCPConn's SetLinger does.
func (s *rawSock) SetLinger(sec int) error {
	return s.do(func(fd int) error {
		l := syscall.Linger{}
		if sec >= 0 {
			l.Onoff, l.Linger = 1, int32(sec)
		}
		return syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &l)
	})
}

// do runs f on the descriptor while it is open.
func (s *rawSock) do(f func(fd int) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return net.ErrClosed
	}
	return f(int(s.fd))
}

func (s *rawSock) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return net.ErrClosed
	}
	err := syscall.Close(int(s.fd))
	s.fd = -1
	return err
}

// bare reports whether c is written through its rawSock (plain TCP, or
// TLS records sealed by internal/tlsrecord onto it).
func (c *subConn) bare() bool { return c.isBare }
