package h2serve

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/ssekit/sse/internal/readbudget"
)

// Poller tells connections that their socket is readable, so that an idle
// connection needs no goroutine blocked in Read (package server's is the
// departure watcher's epoll set, shared with taken-over HTTP/1.1
// connections). WatchReadable adds rc, not armed; after each Rearm, ready
// runs once, on a goroutine of the poller's that it must not hold long,
// for bytes or a hang-up. Unwatch ends it (closing the socket
// does too); a ready already under way may still run.
type Poller interface {
	WatchReadable(rc syscall.RawConn, ready func()) (id uint64, err error)
	Rearm(rc syscall.RawConn, id uint64) error
	Unwatch(rc syscall.RawConn, id uint64)
}

// wouldBlock is what a non-blocking read returns when nothing has come: a
// timeout to internal/tlsrecord, which then keeps a partial record for the
// next Read.
type wouldBlock struct{}

func (wouldBlock) Error() string   { return "h2serve: nothing to read now" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

var errWouldBlock net.Error = wouldBlock{}

// Polled connections: reading is driven by readiness. After the client's
// first SETTINGS (read by the connection's first goroutine, under the
// handshake timeout), the connection's bytes are read without waiting
// into rem, a remainder buffer taken from a pool while it holds something,
// and only frames that are there whole are given to the Framer. When the
// socket has nothing more, what is left of a partial frame is kept (in a
// small slice of its own when it is small), the buffer goes back, and the
// socket is rearmed: an idle connection has no goroutine and no buffer.
//
// Who reads: c.running (under c.mu) is true while one goroutine — the
// first one, a poller's worker, or the one that ends the connection —
// owns the reading side. failLocked on a connection nobody reads starts
// its end.

const (
	remPoolSize = maxFrameSize + 9 + 1024 // a full frame and some more
	remSmall    = 512                     // a partial frame kept without the pooled buffer
	remRoom     = 1024                    // read only into at least this much
)

var remBufs = sync.Pool{New: func() any { b := make([]byte, remPoolSize); return &b }}

// pollState is what a polled connection keeps for its reads.
type pollState struct {
	running   bool            // (c.mu) a goroutine owns the reading side
	rc        syscall.RawConn // the socket beneath
	pollID    uint64          // the poller's
	src       io.Reader       // non-blocking: the socket, or the TLS records over it
	rem       []byte          // read, not yet framed: rem[remOff:]
	remOff    int
	remPooled *[]byte // rem's pooled buffer, if it is one
	idleTimer *time.Timer
	dec       *hpack.Decoder // the connection's; the Framer is a pooled one
	rf        *readFramer    // while reading
}

// readFramer is a Framer for reading frames out of a connection's rem,
// pooled: a polled connection holds one only while it reads, so an idle
// one keeps neither the Framer nor its read buffer (which has the size
// of the largest frame read). Only its hpack decoder is the connection's.
// It goes back to the pool only between whole frames and header blocks
// (rem holds a header block whole before it is read), so none carries a
// connection's unfinished CONTINUATION state to another.
type readFramer struct {
	fr *http2.Framer
	lr readbudget.Reader
}

var readFramers = sync.Pool{New: func() any {
	rf := &readFramer{}
	rf.fr = http2.NewFramer(io.Discard, &rf.lr)
	rf.fr.SetMaxReadFrameSize(maxFrameSize)
	return rf
}}

// takeFramer gives c a pooled Framer reading rem.
func (c *conn) takeFramer() {
	rf := readFramers.Get().(*readFramer)
	rf.lr.R, rf.lr.Err = remReader{c}, errTooMuch
	rf.fr.ReadMetaHeaders = c.dec
	rf.fr.MaxHeaderListSize = c.srv.cfg.MaxHeaderListSize
	c.rf, c.fr, c.lr = rf, rf.fr, &rf.lr
}

// giveFramer returns c's Framer to the pool (clean: after whole frames).
func (c *conn) giveFramer(clean bool) {
	rf := c.rf
	if rf == nil {
		return
	}
	c.rf, c.fr, c.lr = nil, nil, nil
	rf.lr.R = nil
	rf.fr.ReadMetaHeaders = nil
	if clean {
		readFramers.Put(rf)
	}
}

// remReader gives the Framer what rem holds.
type remReader struct{ c *conn }

func (r remReader) Read(p []byte) (int, error) {
	c := r.c
	if c.remOff == len(c.rem) {
		return 0, io.ErrUnexpectedEOF // frameReady said the frame was whole
	}
	n := copy(p, c.rem[c.remOff:])
	c.remOff += n
	return n, nil
}

// pollable prepares c for readiness-driven reads, if its Poller can watch
// its socket (h2c on a TCP socket, or internal/tlsrecord's records over
// one; not crypto/tls's, which cannot resume a read that found nothing).
func (c *conn) pollable() bool {
	p := c.srv.cfg.Poller
	if p == nil {
		return false
	}
	nc := c.nc
	tr, lean := nc.(interface {
		SetReadSource(io.Reader)
		NetConn() net.Conn
	})
	if lean {
		nc = tr.NetConn()
	} else if c.isTLS {
		return false
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	nb := newNBReader(rc)
	fd, ok := socketFD(rc)
	if nb == nil || !ok {
		return false
	}
	id, err := p.WatchReadable(rc, c.onReady)
	if err != nil {
		return false // not watchable: the reader goroutine stays
	}
	c.rc, c.fd, c.pollID = rc, int32(fd), id
	if lean {
		tr.SetReadSource(nb)
		c.src = c.nc
	} else {
		c.src = nb
	}
	return true
}

// toPoll moves a connection from its first goroutine to readiness: true
// when the caller's goroutine has handed the connection over (and must
// not touch it again).
func (c *conn) toPoll() bool {
	if !c.pollable() {
		return false
	}
	c.mu.Lock()
	c.polled = true
	c.running = true
	c.mu.Unlock()
	c.dec = c.fr.ReadMetaHeaders
	c.fr, c.lr = nil, nil // the first goroutine's: garbage now
	c.readable()
	return true
}

// onReady is the Poller's call: the socket has bytes or hung up.
func (c *conn) onReady() {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return
	}
	c.running = true
	closed := c.closed
	c.mu.Unlock()
	if closed {
		c.end()
		return
	}
	c.readable()
}

// readable reads what the socket has, handles every whole frame, then
// gives the connection back to the poller. Its goroutine owns the reading
// side (c.running).
func (c *conn) readable() {
	budget := 2*int(c.srv.cfg.MaxHeaderListSize) + readSlack
	c.takeFramer()
	for {
		for {
			ready, over := frameReady(c.rem[c.remOff:], budget)
			if over {
				c.connError(http2.ErrCodeEnhanceYourCalm)
				c.end()
				return
			}
			if !ready {
				break
			}
			c.lr.Left = budget
			f, err := c.fr.ReadFrame()
			if err != nil {
				if !c.readError(err) {
					c.end()
					return
				}
				continue
			}
			if !c.handle(f) {
				c.end()
				return
			}
		}
		c.roomRem(budget)
		n, err := c.src.Read(c.rem[len(c.rem):cap(c.rem)])
		c.rem = c.rem[:len(c.rem)+n]
		if err != nil {
			if errors.Is(err, errWouldBlock) {
				break
			}
			c.end()
			return
		}
	}
	c.giveFramer(true)
	c.shrinkRem()
	c.setIdleDeadline()
	c.park()
}

// handle processes a frame read whole; false ends the connection.
func (c *conn) handle(f http2.Frame) bool {
	if err := c.process(f); err != nil {
		var se http2.StreamError
		var ce http2.ConnectionError
		switch {
		case errors.As(err, &se):
			c.streamError(se.StreamID, se.Code)
		case errors.As(err, &ce):
			c.connError(http2.ErrCode(ce))
			return false
		default:
			return false
		}
	}
	return true
}

// park gives the reading side back and arms the socket.
func (c *conn) park() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.end()
		return
	}
	c.running = false
	c.mu.Unlock()
	if err := c.srv.cfg.Poller.Rearm(c.rc, c.pollID); err != nil { // the poller stopped, or the socket closed
		c.mu.Lock()
		if c.running {
			c.mu.Unlock() // someone else ends it
			return
		}
		c.running = true
		c.mu.Unlock()
		c.end()
	}
}

// frameReady reports whether b starts with a whole frame (a HEADERS or
// PUSH_PROMISE frame with all its CONTINUATION frames), or with one the
// Framer refuses from its header alone; over when an unfinished one
// already holds budget bytes (the goroutine path's readbudget bound).
func frameReady(b []byte, budget int) (ready, over bool) {
	off, first := 0, true
	for {
		if len(b)-off < 9 {
			break
		}
		length := int(b[off])<<16 | int(b[off+1])<<8 | int(b[off+2])
		typ, flags := http2.FrameType(b[off+3]), http2.Flags(b[off+4])
		if length > maxFrameSize {
			return true, false // ErrFrameTooLarge after the header
		}
		if len(b)-off < 9+length {
			break
		}
		if first && typ != http2.FrameHeaders && typ != http2.FramePushPromise {
			return true, false
		}
		if !first && typ != http2.FrameContinuation {
			return true, false // the Framer's protocol error
		}
		if flags&http2.FlagHeadersEndHeaders != 0 {
			return true, false
		}
		off += 9 + length
		first = false
	}
	return false, len(b) >= budget
}

// roomRem makes room in rem for a read.
func (c *conn) roomRem(budget int) {
	live := c.rem[c.remOff:]
	if c.remPooled == nil && cap(c.rem)-len(live) < remPoolSize/2 {
		bp := remBufs.Get().(*[]byte)
		c.rem = append((*bp)[:0], live...)
		c.remOff, c.remPooled = 0, bp
		return
	}
	if c.remOff > 0 {
		c.rem = c.rem[:copy(c.rem, live)]
		c.remOff = 0
	}
	if cap(c.rem)-len(c.rem) >= remRoom {
		return
	}
	// A header block longer than the buffer: grow, up to the budget.
	nb := make([]byte, len(c.rem), min(2*cap(c.rem), budget+remPoolSize))
	copy(nb, c.rem)
	if c.remPooled != nil {
		remBufs.Put(c.remPooled)
		c.remPooled = nil
	}
	c.rem = nb
}

// shrinkRem gives the pooled buffer back before the connection idles,
// keeping a small partial frame in a slice of its own.
func (c *conn) shrinkRem() {
	live := c.rem[c.remOff:]
	switch {
	case len(live) == 0:
		c.rem = nil
	case len(live) <= remSmall:
		c.rem = append([]byte(nil), live...)
	default:
		return // a large partial frame: it keeps its buffer
	}
	c.remOff = 0
	if c.remPooled != nil {
		remBufs.Put(c.remPooled)
		c.remPooled = nil
	}
}

// releaseRem is shrinkRem at the connection's end.
func (c *conn) releaseRem() {
	if c.remPooled != nil {
		remBufs.Put(c.remPooled)
		c.remPooled = nil
	}
	c.rem, c.remOff = nil, 0
}

// idleTimerFired closes a polled connection that has had no stream for
// IdleTimeout.
func (c *conn) idleTimerFired() {
	c.mu.Lock()
	if len(c.streams) == 0 {
		c.failLocked()
	}
	c.mu.Unlock()
}
