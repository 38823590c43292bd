// Package h2serve serves HTTP/2 connections the way the hub serves
// taken-over HTTP/1.1 ones: a stream a handler hands over (TakeOver) keeps
// no goroutine and no buffer while it is idle, and is written by the
// caller's own writers; every other request runs an ordinary http.Handler.
//
// It is built on golang.org/x/net/http2's Framer and hpack. With a
// Config.Poller (package server gives its epoll watcher), a connection's
// reads are driven by its socket's readiness once the client's first
// SETTINGS has come: a worker of the poller reads what came, handles the
// whole frames (noticing a client's RST_STREAM and departure at once) and
// gives the connection back, so an idle connection has no goroutine, no
// read buffer and no Framer of its own. Without one (or for a socket it
// cannot watch, or crypto/tls's records) a connection has one reader
// goroutine. Only while the socket does not take what was framed for it
// does a connection have a flusher goroutine. Frames are built in buffers
// shared by all connections; an idle connection holds its hpack
// decoder's table and a map of its streams.
package h2serve

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/ssekit/sse/internal/readbudget"
	"github.com/ssekit/sse/internal/tlsrecord"
)

// Defaults for Config.
const (
	DefaultMaxConcurrentStreams = 250
	DefaultMaxHandlers          = 32
	DefaultMaxHeaderListSize    = 64 << 10
	DefaultWriteTimeout         = 10 * time.Second
	DefaultIdleTimeout          = 2 * time.Minute
	DefaultHandshakeTimeout     = 10 * time.Second
)

// Errors.
var (
	// ErrStreamGone is returned by writes to a stream the client reset or
	// whose connection ended.
	ErrStreamGone = errors.New("h2serve: stream gone")
	// ErrTakenOver is returned by a ResponseWriter whose stream was taken
	// over.
	ErrTakenOver = errors.New("h2serve: stream taken over")
)

// Config configures a Server. Only Handler is required.
type Config struct {
	Handler http.Handler
	// MaxConcurrentStreams is the SETTINGS_MAX_CONCURRENT_STREAMS the
	// server announces: streams open at once on a connection, taken-over
	// ones included.
	MaxConcurrentStreams uint32
	// MaxHandlers bounds the handlers running at once for one connection;
	// further requests wait (without a goroutine) for one to return. A
	// stream the client resets keeps its place until its handler returns:
	// resetting streams does not make the server run more handlers.
	MaxHandlers int
	// MaxHeaderListSize bounds a request's header list (431 above it;
	// the connection is closed when a client goes on sending).
	MaxHeaderListSize uint32
	// WriteTimeout bounds a handler's wait for the client's flow-control
	// window and a socket write the client does not take.
	WriteTimeout time.Duration
	// IdleTimeout closes a connection without streams after it.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake and the preface.
	HandshakeTimeout time.Duration
	// Logger receives connection errors at debug level. Nil: discarded.
	Logger *slog.Logger
	// Poller, when set, drives the reads of the connections whose socket
	// it can watch (h2c, and TLS on internal/tlsrecord), so that an idle
	// connection has no goroutine. Nil, or a connection it cannot watch:
	// one reader goroutine per connection.
	Poller Poller
}

// Server serves HTTP/2 connections. Create it with New.
type Server struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	conns    map[*conn]struct{}
	goneAway bool
	allGone  chan struct{} // closed when goneAway and conns is empty
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Handler == nil {
		return nil, errors.New("h2serve: Config.Handler is required")
	}
	if cfg.MaxConcurrentStreams == 0 {
		cfg.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if cfg.MaxHandlers <= 0 {
		cfg.MaxHandlers = DefaultMaxHandlers
	}
	if cfg.MaxHeaderListSize == 0 {
		cfg.MaxHeaderListSize = DefaultMaxHeaderListSize
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log, conns: make(map[*conn]struct{}), allGone: make(chan struct{})}, nil
}

// Flow-control and framing constants.
const (
	initialWindow = 65535
	maxWindow     = 1<<31 - 1
	maxFrameSize  = 16384 // what we accept: the protocol's default
	refundAt      = 16384 // connection-level window refunded in steps of it
	outSoftLimit  = 64 << 10
	outHardLimit  = 512 << 10 // unsent frames a client may make us hold
	writeSlice    = 5 * time.Millisecond
	frameBurst    = 2000 // frames that cost work without a request…
	framesPerSec  = 500  // …refilled at this rate
	resetBurst    = 200  // streams a client may reset before their answer…
	resetsPerSec  = 20   // …refilled at this rate
	readSlack     = 64 << 10
)

// bucket is a token bucket; callers hold the conn's lock or are its reader.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) take(burst, rate float64, now time.Time) bool {
	if b.last.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// conn is one HTTP/2 connection.
type conn struct {
	// What every DATA frame written touches, in the first cache line:
	// with thousands of connections a delivery finds them cold, and each
	// line more is a miss more.
	mu           sync.Mutex
	peerFrame    uint32 // the client's SETTINGS_MAX_FRAME_SIZE
	updateCredit int32  // WINDOW_UPDATEs the client may send for DATA we sent (two each)
	fd           int32  // the socket's descriptor, once polled: written by nbWrite under mu
	sendWindow   int32  // connection-level, what we may still send (never over maxWindow)
	closed       bool
	flushing     bool
	closeWhenIn  bool // close once out is flushed (after a GOAWAY)
	isTLS        bool
	polled       bool     // reads driven by Config.Poller (and writes by nbWrite)
	out          []byte   // framed, not yet taken by the socket
	outBox       *[]byte  // out's pooled box, put back with it
	sink         *tlsSink // lean TLS on a socket: kicks write its records at once

	srv     *Server
	handler http.Handler // Config.Handler, or the listener's
	nc      net.Conn
	tls     *tls.ConnectionState
	remote  string

	// The reader goroutine's own.
	fr       *http2.Framer
	lr       *readbudget.Reader
	frames   bucket
	resets   bucket
	refund   uint32 // connection window received and not yet refunded
	idleSet  bool   // the read deadline is set for idleness
	sawFirst bool   // the client's SETTINGS came first
	pollState

	// Under mu too.
	streams    map[uint32]*stream
	lastStream uint32 // highest stream the client opened
	peerWindow int32  // the client's SETTINGS_INITIAL_WINDOW_SIZE
	recvWindow int64  // what the client may still send on the connection
	handlers   int
	queue      []*stream // requests waiting for a handler slot
	goingAway  bool
	recent     [4]closedStream
	recentNext uint8
	// Our SETTINGS frames, sent and acknowledged, and the one after whose
	// acknowledgement the client no longer uses the header table
	// (forgetHeaderTableLocked).
	settingsSent, settingsAcked, tableGoneAt uint32
	tableAsked                               bool
}

// closedStream is a stream that ended lately, with its send window.
type closedStream struct {
	id     uint32
	window int32
}

// ServeConn serves nc, which has already sent the client preface's first
// prefaceRead bytes, until it ends. It returns at once if the server has
// gone away.
func (s *Server) ServeConn(nc net.Conn, prefaceRead int) {
	s.serveConn(nc, prefaceRead, s.cfg.Handler)
}

// serveConn is ServeConn with the handler of nc's listener.
func (s *Server) serveConn(nc net.Conn, prefaceRead int, h http.Handler) {
	c := &conn{
		srv:        s,
		handler:    h,
		nc:         nc,
		remote:     nc.RemoteAddr().String(),
		streams:    make(map[uint32]*stream),
		sendWindow: initialWindow,
		peerWindow: initialWindow,
		peerFrame:  16384,
		recvWindow: initialWindow,
	}
	if tc, ok := nc.(interface{ State() *tls.ConnectionState }); ok { // internal/tlsrecord's, shared
		c.isTLS = true
		c.tls = tc.State()
		c.takeWrites()
	} else if tc, ok := nc.(*tls.Conn); ok {
		c.isTLS = true
		st := tc.ConnectionState()
		c.tls = &st
	}
	s.mu.Lock()
	if s.goneAway {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.serve(prefaceRead)
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if s.goneAway && len(s.conns) == 0 {
		select {
		case <-s.allGone:
		default:
			close(s.allGone)
		}
	}
	s.mu.Unlock()
}

// GoAway tells every connection's client, with a GOAWAY, that no new
// stream will be served; connections close once their streams have ended.
func (s *Server) GoAway() {
	s.mu.Lock()
	s.goneAway = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	if len(s.conns) == 0 {
		select {
		case <-s.allGone:
		default:
			close(s.allGone)
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		c.goAwayLocked(http2.ErrCodeNo, false)
		c.mu.Unlock()
	}
}

// Close sends GOAWAY (if GoAway was not called), waits until every
// connection has ended or ctx is done, then closes what remains.
func (s *Server) Close(ctx context.Context) error {
	s.GoAway()
	select {
	case <-s.allGone:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		c.failLocked()
		c.mu.Unlock()
	}
	return ctx.Err()
}

// errTooMuch ends a connection whose frame (a header block with its
// CONTINUATION frames) took more than its budget: the Framer reads all of
// a header block in one ReadFrame, so its reader (a readbudget.Reader,
// set again for each frame) is what ends a flood of empty CONTINUATION
// frames.
var errTooMuch = errors.New("h2serve: frame larger than allowed")

// Writing: frames are built by a pooled Framer into the connection's out
// buffer (taken from a shared pool while it holds something).

type writeFramer struct {
	fr  *http2.Framer
	dst *[]byte
}

var framers = sync.Pool{New: func() any {
	wf := &writeFramer{}
	wf.fr = http2.NewFramer(writerFunc(func(p []byte) (int, error) {
		*wf.dst = append(*wf.dst, p...)
		return len(p), nil
	}), nil)
	return wf
}}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

var outBufs = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

// frameLocked builds frames with fn into c.out. Called with c.mu held.
func (c *conn) frameLocked(fn func(fr *http2.Framer) error) {
	if c.out == nil {
		c.takeOutLocked()
	}
	wf := framers.Get().(*writeFramer)
	wf.dst = &c.out
	_ = fn(wf.fr) // appending cannot fail
	wf.dst = nil
	framers.Put(wf)
}

// takeWrites puts a lean TLS connection's records on a tlsSink, before
// anything is written, where its socket can be written without waiting.
func (c *conn) takeWrites() {
	ws, ok := c.nc.(interface {
		SetWriteSink(tlsrecord.Sink)
		NetConn() net.Conn
	})
	if !ok {
		return
	}
	raw := ws.NetConn()
	sc, ok := raw.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil || newNBReader(rc) == nil { // not a socket read(2) and write(2) can take
		return
	}
	c.sink = &tlsSink{raw: raw, rc: rc}
	ws.SetWriteSink(c.sink)
}

// kickLocked sends what is framed: on a plain connection, and a lean TLS
// one (its records on tlsSink), the caller writes at once (without
// waiting, or for at most writeSlice), and a flusher goroutine takes over
// what the socket did not take. crypto/tls cannot resume a write that
// timed out, so its connections' writes are always the flusher's.
func (c *conn) kickLocked() {
	if c.flushing || c.closed || len(c.out) == 0 {
		return
	}
	if !c.isTLS || c.sink != nil {
		var n int
		var err error
		switch {
		case c.sink != nil: // records sealed now, their bytes written without waiting
			n, err = c.nc.Write(c.out)
		case c.polled: // its socket at hand: one write that never waits
			n, err = nbWrite(int(c.fd), c.out)
		default:
			_ = c.nc.SetWriteDeadline(time.Now().Add(writeSlice))
			n, err = c.nc.Write(c.out)
		}
		if err == nil {
			c.releaseOutLocked()
			c.afterFlushLocked()
			return
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) && err != errWouldBlock {
			c.failLocked()
			return
		}
		c.out = c.out[:copy(c.out, c.out[n:])]
	}
	c.flushing = true
	go c.flush()
}

// takeOutLocked gives c an empty out buffer from the pool.
func (c *conn) takeOutLocked() {
	box := outBufs.Get().(*[]byte)
	c.out, c.outBox = (*box)[:0], box
}

// releaseOutLocked puts c's out buffer back in the pool.
func (c *conn) releaseOutLocked() {
	putOut(c.out, c.outBox)
	c.out, c.outBox = nil, nil
}

// putOut puts b back in the pool in box, the box it came in (no new one
// is made for it); one grown past 256 KiB is left to the collector.
func putOut(b []byte, box *[]byte) {
	if box != nil && cap(b) <= 256<<10 {
		*box = b[:0]
		outBufs.Put(box)
	}
}

// flush writes out until it is empty, each write bounded by WriteTimeout:
// a client that takes less than what one out buffer holds in that time is
// too slow and its connection ends.
func (c *conn) flush() {
	var spare []byte
	var spareBox *[]byte
	for {
		c.mu.Lock()
		if c.closed || len(c.out) == 0 {
			c.flushing = false
			if !c.closed {
				c.releaseOutLocked()
				c.afterFlushLocked()
			}
			wake := c.writableLocked()
			c.mu.Unlock()
			putOut(spare, spareBox)
			runAll(wake)
			return
		}
		buf, bufBox := c.out, c.outBox
		if spareBox != nil {
			c.out, c.outBox = spare, spareBox
		} else {
			c.takeOutLocked()
		}
		sink := c.sink
		c.mu.Unlock()
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
		if sink != nil {
			sink.blocking.Store(true)
		}
		_, err := c.nc.Write(buf)
		if sink != nil {
			sink.blocking.Store(false)
		}
		spare, spareBox = buf[:0], bufBox
		if err != nil {
			c.mu.Lock()
			c.flushing = false
			c.failLocked()
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		wake := c.writableLocked()
		c.mu.Unlock()
		runAll(wake)
	}
}

// afterFlushLocked closes a connection that went away once its GOAWAY left.
func (c *conn) afterFlushLocked() {
	if c.closeWhenIn {
		c.failLocked()
	}
}

// failLocked closes the socket; the reader then ends every stream (on a
// polled connection nobody reads, a goroutine started here).
func (c *conn) failLocked() {
	if c.closed {
		return
	}
	c.closed = true
	c.releaseOutLocked()
	c.nc.Close() // on a tlsSink, close_notify does not wait either
	if c.polled && !c.running {
		c.running = true
		go c.end()
	}
}

// writableLocked collects the wake-ups of streams that were refused bytes
// and may now make progress.
func (c *conn) writableLocked() []func() {
	if len(c.out) >= outSoftLimit || c.sendWindow <= 0 {
		return nil
	}
	var wake []func()
	for _, st := range c.streams {
		if st.blocked && st.sendWindow > 0 {
			st.blocked = false
			if st.wake != nil {
				wake = append(wake, st.wake)
			}
		}
	}
	return wake
}

func runAll(fns []func()) {
	for _, fn := range fns {
		fn()
	}
}

// goAwayLocked sends GOAWAY with code; with closeNow the connection closes
// once it has left (a connection error), else when the last stream ends.
func (c *conn) goAwayLocked(code http2.ErrCode, closeNow bool) {
	if c.closed {
		return
	}
	if !c.goingAway || closeNow {
		last := c.lastStream
		c.frameLocked(func(fr *http2.Framer) error { return fr.WriteGoAway(last, code, nil) })
	}
	c.goingAway = true
	if closeNow || len(c.streams) == 0 {
		c.closeWhenIn = true
	}
	c.kickLocked()
	if c.closeWhenIn && !c.flushing && !c.closed {
		c.failLocked()
	}
}

// serve is the reader goroutine.
func (c *conn) serve(prefaceRead int) {
	if !c.start(prefaceRead) {
		c.end()
		return
	}
	c.loop()
}

// start reads the rest of the preface and sends the server's SETTINGS.
func (c *conn) start(prefaceRead int) bool {
	cfg := &c.srv.cfg
	_ = c.nc.SetReadDeadline(time.Now().Add(cfg.HandshakeTimeout))
	if prefaceRead < len(http2.ClientPreface) {
		rest := make([]byte, len(http2.ClientPreface)-prefaceRead)
		if _, err := io.ReadFull(c.nc, rest); err != nil || string(rest) != http2.ClientPreface[prefaceRead:] {
			c.connError(http2.ErrCodeProtocol)
			return false
		}
	}
	c.lr = &readbudget.Reader{R: c.nc, Err: errTooMuch}
	c.fr = http2.NewFramer(io.Discard, c.lr)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = cfg.MaxHeaderListSize
	c.fr.SetMaxReadFrameSize(maxFrameSize)
	c.mu.Lock()
	c.frameLocked(func(fr *http2.Framer) error {
		return fr.WriteSettings(
			http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: cfg.MaxConcurrentStreams},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: cfg.MaxHeaderListSize},
			http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		)
	})
	c.settingsSent++
	c.kickLocked()
	c.mu.Unlock()
	return true
}

// loop reads and handles frames until the connection ends. After a
// request's HEADERS it goes on in a fresh goroutine: decoding and
// dispatching a request grows a goroutine's stack, which a blocked reader
// would keep for as long as the connection is idle.
func (c *conn) loop() {
	moved := false
	defer func() {
		if !moved {
			c.end()
		}
	}()
	budget := 2*int(c.srv.cfg.MaxHeaderListSize) + readSlack
	for {
		c.lr.Left = budget
		f, err := c.fr.ReadFrame()
		if err != nil {
			if !c.readError(err) {
				return
			}
			continue
		}
		first := !c.sawFirst
		if first {
			if _, ok := f.(*http2.SettingsFrame); !ok {
				c.connError(http2.ErrCodeProtocol)
				return
			}
			c.sawFirst = true
			_ = c.nc.SetReadDeadline(time.Time{})
		}
		if !c.handle(f) {
			return
		}
		if first && c.toPoll() {
			moved = true // readiness reads it from now on
			return
		}
		c.setIdleDeadline()
		if _, ok := f.(*http2.MetaHeadersFrame); ok {
			moved = true
			go c.loop()
			return
		}
	}
}

// readError handles a ReadFrame error; false ends the connection.
func (c *conn) readError(err error) bool {
	var se http2.StreamError
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &se):
		c.streamError(se.StreamID, se.Code)
		return true
	case errors.As(err, &ce):
		c.connError(http2.ErrCode(ce))
	case errors.Is(err, http2.ErrFrameTooLarge):
		c.connError(http2.ErrCodeFrameSize)
	case errors.Is(err, errTooMuch):
		c.connError(http2.ErrCodeEnhanceYourCalm)
	}
	return false
}

// setIdleDeadline lets a connection without streams be read for at most
// IdleTimeout (a polled one: a timer, as its reads ignore deadlines).
func (c *conn) setIdleDeadline() {
	c.mu.Lock()
	idle := len(c.streams) == 0
	c.mu.Unlock()
	if c.polled {
		switch {
		case idle && c.idleTimer == nil:
			c.idleTimer = time.AfterFunc(c.srv.cfg.IdleTimeout, c.idleTimerFired)
		case idle:
			c.idleTimer.Reset(c.srv.cfg.IdleTimeout)
		case c.idleTimer != nil:
			c.idleTimer.Stop()
			c.idleTimer = nil
		}
		return
	}
	if idle {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.cfg.IdleTimeout))
		c.idleSet = true
	} else if c.idleSet {
		_ = c.nc.SetReadDeadline(time.Time{})
		c.idleSet = false
	}
}

func (c *conn) connError(code http2.ErrCode) {
	c.mu.Lock()
	c.goAwayLocked(code, true)
	c.mu.Unlock()
	// Give the GOAWAY a moment to leave before the reader ends the streams
	// (kickLocked wrote it already on a plain connection).
	if c.isTLS {
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			c.mu.Lock()
			done := c.closed
			c.mu.Unlock()
			if done {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// streamError resets stream id with code.
func (c *conn) streamError(id uint32, code http2.ErrCode) {
	c.mu.Lock()
	c.rstLocked(id, code)
	var gone func()
	if st := c.streams[id]; st != nil {
		gone = c.dropLocked(st)
	}
	c.kickLocked()
	c.mu.Unlock()
	if gone != nil {
		gone()
	}
}

func (c *conn) rstLocked(id uint32, code http2.ErrCode) {
	c.frameLocked(func(fr *http2.Framer) error { return fr.WriteRSTStream(id, code) })
}

// end runs when the reader stops: the socket closes and every stream ends.
func (c *conn) end() {
	defer c.srv.forget(c)
	if c.polled {
		c.srv.cfg.Poller.Unwatch(c.rc, c.pollID)
		c.giveFramer(false)
		c.releaseRem()
		if c.idleTimer != nil {
			c.idleTimer.Stop()
		}
	}
	c.mu.Lock()
	c.failLocked()
	var gone []func()
	for _, st := range c.streams {
		if fn := c.dropLocked(st); fn != nil {
			gone = append(gone, fn)
		}
	}
	c.queue = nil
	c.mu.Unlock()
	runAll(gone)
}

// dropLocked removes st as reset (by the client, an error or the
// connection's end) and returns what tells its owner.
func (c *conn) dropLocked(st *stream) func() {
	if st.gone {
		return nil
	}
	st.gone = true
	delete(c.streams, st.id)
	if st.cancel != nil {
		st.cancel()
	}
	st.signal()
	c.streamEndedLocked()
	if st.takenOver {
		return st.onGone
	}
	return nil
}

// streamEndedLocked closes a connection that went away once its last
// stream ended.
func (c *conn) streamEndedLocked() {
	if c.goingAway && len(c.streams) == 0 && !c.closed {
		c.closeWhenIn = true
		c.kickLocked()
		if !c.flushing {
			c.failLocked()
		}
	}
}

// forgetHeaderTableLocked asks the client, once per connection, to stop
// indexing its request headers (SETTINGS_HEADER_TABLE_SIZE 0). A
// connection whose streams are taken over is idle for as long as it is
// open, and it kept the decoder's table, the header fields of its first
// requests (about 0.5 KB), only for requests that may never come. Once the
// client has acknowledged, every header block it sends begins by emptying
// the table (RFC 7541, 4.2), so settingsAck drops it. Later requests on
// the connection cost a few more bytes on the wire.
func (c *conn) forgetHeaderTableLocked() {
	if c.tableAsked || c.closed {
		return
	}
	c.tableAsked = true
	c.frameLocked(func(fr *http2.Framer) error {
		return fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
	})
	c.settingsSent++
	c.tableGoneAt = c.settingsSent
}

// settingsAck counts the client's acknowledgement of our SETTINGS (they
// come in order) and, at forgetHeaderTableLocked's, gives the header table
// up: a decoder of size 0 replaces the connection's. It reports whether
// the ACK was for SETTINGS we sent. Called by the reader, between frames.
func (c *conn) settingsAck() (asked bool) {
	c.mu.Lock()
	drop := false
	if c.settingsAcked < c.settingsSent {
		asked = true
		c.settingsAcked++
		drop = c.settingsAcked == c.tableGoneAt
	}
	c.mu.Unlock()
	if !drop {
		return asked
	}
	dec := hpack.NewDecoder(0, nil)
	c.fr.ReadMetaHeaders = dec
	if c.dec != nil { // polled: each pooled Framer is given c.dec
		c.dec = dec
	}
	return true
}

// process handles one frame from the client.
func (c *conn) process(f http2.Frame) error {
	now := time.Now()
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			if !c.settingsAck() && !c.frames.take(frameBurst, framesPerSec, now) {
				return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm) // unasked-for ACKs, a flood like any other
			}
			return nil
		}
		if !c.frames.take(frameBurst, framesPerSec, now) {
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
		return c.settings(f)
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		if !c.frames.take(frameBurst, framesPerSec, now) {
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
		return c.send(func(fr *http2.Framer) error { return fr.WritePing(true, f.Data) })
	case *http2.WindowUpdateFrame:
		return c.windowUpdate(f, now)
	case *http2.PriorityFrame:
		if !c.frames.take(frameBurst, framesPerSec, now) {
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
		if f.StreamDep == f.StreamID {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
		return nil // priorities are ignored
	case *http2.RSTStreamFrame:
		return c.rstStream(f, now)
	case *http2.GoAwayFrame:
		c.mu.Lock()
		c.goAwayLocked(http2.ErrCodeNo, false)
		c.mu.Unlock()
		return nil
	case *http2.MetaHeadersFrame:
		return c.headers(f, now)
	case *http2.DataFrame:
		return c.data(f, now)
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	default: // unknown frame types are ignored, and counted
		if !c.frames.take(frameBurst, framesPerSec, now) {
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
		return nil
	}
}

// send frames and sends fn's frames, ending a client that makes us hold
// more than outHardLimit of answers it does not read.
func (c *conn) send(fn func(fr *http2.Framer) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.out) > outHardLimit {
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	c.frameLocked(fn)
	c.kickLocked()
	return nil
}

func (c *conn) settings(f *http2.SettingsFrame) error {
	c.mu.Lock()
	var wake []func()
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - int64(c.peerWindow)
			for _, st := range c.streams {
				if int64(st.sendWindow)+delta > maxWindow {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
			}
			for _, st := range c.streams {
				st.sendWindow = int32(int64(st.sendWindow) + delta)
			}
			c.peerWindow = int32(s.Val)
		case http2.SettingMaxFrameSize:
			c.peerFrame = s.Val
		}
		return nil
	})
	if err == nil {
		if len(c.out) > outHardLimit {
			err = http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		} else {
			c.frameLocked(func(fr *http2.Framer) error { return fr.WriteSettingsAck() })
			c.kickLocked()
			wake = c.writableLocked()
		}
	}
	c.mu.Unlock()
	runAll(wake)
	return err
}

// idleLocked reports whether stream id was never opened.
func (c *conn) idleLocked(id uint32) bool {
	return id > c.lastStream || id%2 == 0
}

// windowUpdate applies a WINDOW_UPDATE. A client reading a fan-out sends
// up to two (its stream's and the connection's) for each DATA frame it
// got: each DATA frame sent earns two free ones (updateCredit); others
// draw on the flood bucket.
func (c *conn) windowUpdate(f *http2.WindowUpdateFrame, now time.Time) error {
	c.mu.Lock()
	var wake []func()
	defer func() { c.mu.Unlock(); runAll(wake) }()
	st := c.streams[f.StreamID]
	if c.updateCredit > 0 {
		c.updateCredit--
	} else if !c.frames.take(frameBurst, framesPerSec, now) {
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	if f.StreamID == 0 {
		if int64(c.sendWindow)+int64(f.Increment) > maxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.sendWindow += int32(f.Increment)
		wake = c.writableLocked()
		return nil
	}
	if st == nil {
		if c.idleLocked(f.StreamID) {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		// A stream just closed: its window still cannot overflow (the
		// client may not have seen the end yet).
		for i := range c.recent {
			if r := &c.recent[i]; r.id == f.StreamID {
				if int64(r.window)+int64(f.Increment) > maxWindow {
					return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
				}
				r.window += int32(f.Increment)
			}
		}
		return nil
	}
	if int64(st.sendWindow)+int64(f.Increment) > maxWindow {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
	}
	st.sendWindow += int32(f.Increment)
	wake = c.writableLocked()
	return nil
}

func (c *conn) rstStream(f *http2.RSTStreamFrame, now time.Time) error {
	c.mu.Lock()
	if c.idleLocked(f.StreamID) {
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	st := c.streams[f.StreamID]
	if st == nil {
		c.mu.Unlock()
		if !c.frames.take(frameBurst, framesPerSec, now) {
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
		return nil
	}
	// A reset before the answer is what a rapid-reset attack is made of;
	// a tab closing its EventSource resets a stream long answered.
	early := !st.takenOver && !st.answered
	gone := c.dropLocked(st)
	c.removeQueuedLocked(st)
	c.mu.Unlock()
	if gone != nil {
		gone()
	}
	if early && !c.resets.take(resetBurst, resetsPerSec, now) {
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	return nil
}

func (c *conn) removeQueuedLocked(st *stream) {
	for i, q := range c.queue {
		if q == st {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			return
		}
	}
}

func (c *conn) data(f *http2.DataFrame, now time.Time) error {
	size := f.Length // with padding: all of it counts for flow control
	c.mu.Lock()
	defer c.mu.Unlock()
	if int64(size) > c.recvWindow {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvWindow -= int64(size)
	c.refund += size
	if c.refund >= refundAt || c.recvWindow < initialWindow/2 {
		inc := c.refund
		c.refund = 0
		c.recvWindow += int64(inc)
		c.frameLocked(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, inc) })
		c.kickLocked()
	}
	st := c.streams[f.StreamID]
	if st == nil {
		if c.idleLocked(f.StreamID) {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeStreamClosed}
	}
	if st.remoteClosed {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeStreamClosed}
	}
	if len(f.Data()) == 0 && !f.StreamEnded() && !c.frames.take(frameBurst, framesPerSec, now) {
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	if int64(size) > int64(st.recvWindow) {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
	}
	st.recvWindow -= int32(size)
	st.received += int64(len(f.Data()))
	if st.declared >= 0 && st.received > st.declared {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
	}
	if pad := size - uint32(len(f.Data())); pad > 0 {
		st.recvWindow += int32(pad)
		c.frameLocked(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(st.id, pad) })
		c.kickLocked()
	}
	if st.body != nil && !st.takenOver {
		st.body.buf = append(st.body.buf, f.Data()...)
	} else if n := uint32(len(f.Data())); n > 0 { // nobody reads it
		st.recvWindow += int32(n)
		c.frameLocked(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(st.id, n) })
		c.kickLocked()
	}
	if f.StreamEnded() {
		if st.declared >= 0 && st.received != st.declared {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
		st.remoteClosed = true
		c.closedRemoteLocked(st)
	}
	st.signal()
	return nil
}

// closedRemoteLocked finishes a stream whose both sides are closed.
func (c *conn) closedRemoteLocked(st *stream) {
	if st.body != nil {
		st.body.eof = true
	}
	if st.awaitBody && !st.gone {
		c.startLocked(st)
	}
	if st.localClosed && !st.gone {
		st.gone = true
		delete(c.streams, st.id)
		c.recent[c.recentNext%uint8(len(c.recent))] = closedStream{st.id, st.sendWindow}
		c.recentNext++
		c.streamEndedLocked()
	}
}
