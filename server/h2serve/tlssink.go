package h2serve

import (
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// tlsSink is where a lean TLS connection's records go (internal/
// tlsrecord's write sink), so that its kicks write like a plain
// connection's: a record's bytes go to the socket without waiting, and
// what the socket does not take is a timeout to tlsrecord, which keeps
// the rest of the record for the next Write, the flusher's. Only the
// flusher's writes wait (blocking, set around its Write), bounded by its
// deadline; tlsrecord's own writes (a KeyUpdate answered, an alert) do
// not, or they could hold its write lock while a kick waits for it under
// c.mu. Without it every kick of a TLS connection started a flusher
// goroutine.
type tlsSink struct {
	raw      net.Conn
	rc       syscall.RawConn
	blocking atomic.Bool
}

func (s *tlsSink) Write(p []byte) (int, error) {
	if s.blocking.Load() {
		return s.raw.Write(p)
	}
	return rcWrite(s.rc, p)
}

func (s *tlsSink) SetWriteDeadline(t time.Time) error { return s.raw.SetWriteDeadline(t) }

func (s *tlsSink) Close() error { return s.raw.Close() }

// SetLinger passes on to the TCP socket.
func (s *tlsSink) SetLinger(sec int) error {
	if l, ok := s.raw.(interface{ SetLinger(int) error }); ok {
		return l.SetLinger(sec)
	}
	return nil
}
