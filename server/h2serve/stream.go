package h2serve

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// stream is one HTTP/2 stream; its fields are guarded by its conn's mu.
type stream struct {
	// The stream once taken over, in the same object: a write finds it
	// and the stream's state in one cache line.
	pub Stream
	c   *conn
	id  uint32

	sendWindow int32
	recvWindow int32
	declared   int64 // the request's Content-Length; -1: none
	received   int64

	remoteClosed bool // the client sent END_STREAM
	localClosed  bool // we sent END_STREAM or RST_STREAM
	gone         bool // removed from the connection
	answered     bool // response headers framed
	takenOver    bool
	blocked      bool // a write was refused bytes: wake it on progress
	resetOnClose bool // Close resets instead of ending the stream
	awaitBody    bool // the handler starts once the body is in

	// While a handler runs.
	req    *http.Request
	body   *requestBody
	cancel context.CancelFunc
	ch     chan struct{} // signalled on window, data and reset

	// Once taken over.
	wake   func() // more window or socket room
	onGone func() // the client reset the stream or the connection ended
}

func (st *stream) signal() {
	if st.ch != nil {
		select {
		case st.ch <- struct{}{}:
		default:
		}
	}
}

type requestBody struct {
	st       *stream
	buf      []byte
	eof      bool
	deadline time.Time
}

// headers opens a stream (or takes a request's trailers).
func (c *conn) headers(f *http2.MetaHeadersFrame, now time.Time) error {
	id := f.StreamID
	if f.HasPriority() && f.Priority.StreamDep == id {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	c.mu.Lock()
	if id%2 == 0 {
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if st := c.streams[id]; st != nil { // trailers
		defer c.mu.Unlock()
		if st.remoteClosed {
			return http2.ConnectionError(http2.ErrCodeStreamClosed)
		}
		if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
		}
		if st.declared >= 0 && st.received != st.declared {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
		}
		st.remoteClosed = true
		c.closedRemoteLocked(st)
		st.signal()
		return nil
	}
	if id <= c.lastStream {
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeStreamClosed)
	}
	c.lastStream = id
	if c.goingAway {
		c.mu.Unlock()
		return nil // after our GOAWAY: ignored
	}
	if uint32(len(c.streams)) >= c.srv.cfg.MaxConcurrentStreams {
		c.mu.Unlock()
		if !c.resets.take(resetBurst, resetsPerSec, now) {
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	}
	st := &stream{c: c, id: id, sendWindow: c.peerWindow, recvWindow: initialWindow, declared: -1,
		remoteClosed: f.StreamEnded()}
	c.streams[id] = st
	c.mu.Unlock()

	req, status, err := c.newRequest(st, f)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.gone {
		return nil
	}
	if status != 0 { // answered without a handler
		c.answerLocked(st, status)
		return nil
	}
	st.req = req
	st.ch = make(chan struct{}, 1)
	if !st.remoteClosed {
		st.body = &requestBody{st: st}
	}
	if st.body != nil && st.declared > 0 && st.declared <= initialWindow {
		// A small body the window lets in whole is awaited before the
		// handler starts: a body that does not match its Content-Length
		// is refused before any answer, and a client that never sends
		// it holds no goroutine.
		st.awaitBody = true
		return nil
	}
	c.startLocked(st)
	return nil
}

// startLocked runs st's handler, or queues it while MaxHandlers run.
func (c *conn) startLocked(st *stream) {
	st.awaitBody = false
	if c.handlers < c.srv.cfg.MaxHandlers {
		c.handlers++
		go c.run(st)
	} else {
		c.queue = append(c.queue, st)
	}
}

// answerLocked ends st with a bodiless status.
func (c *conn) answerLocked(st *stream, status int) {
	block := encodeHeaders(status, nil, -1)
	c.headersLocked(st, block, true)
	st.localClosed = true
	if !st.remoteClosed {
		c.rstLocked(st.id, http2.ErrCodeNo)
		st.remoteClosed = true
	}
	c.closedRemoteLocked(st)
	c.kickLocked()
}

// headersLocked frames a header block for st, split into CONTINUATION
// frames as the client's frame size requires.
func (c *conn) headersLocked(st *stream, block []byte, endStream bool) {
	st.answered = true
	max := int(c.peerFrame)
	c.frameLocked(func(fr *http2.Framer) error {
		first := block
		if len(first) > max {
			first = block[:max]
		}
		rest := block[len(first):]
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: st.id, BlockFragment: first,
			EndStream: endStream, EndHeaders: len(rest) == 0}); err != nil {
			return err
		}
		for len(rest) > 0 {
			n := min(len(rest), max)
			if err := fr.WriteContinuation(st.id, n == len(rest), rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return nil
	})
}

// creditLocked records a DATA frame sent: the client may answer it with
// two WINDOW_UPDATEs without drawing on the flood bucket.
func (c *conn) creditLocked() {
	c.updateCredit = min(c.updateCredit+2, 1<<16)
}

// Connection-specific header fields, which HTTP/2 forbids.
var connectionHeaders = []string{"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}

// newRequest builds st's request; a status instead means the request is
// answered with it and no handler runs.
func (c *conn) newRequest(st *stream, f *http2.MetaHeadersFrame) (*http.Request, int, error) {
	protoErr := http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	if f.Truncated {
		return nil, http.StatusRequestHeaderFieldsTooLarge, nil
	}
	var method, scheme, authority, path string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":authority":
			authority = hf.Value
		case ":path":
			path = hf.Value
		default:
			return nil, 0, protoErr
		}
	}
	if method == "" || (method != http.MethodConnect && (scheme == "" || path == "")) {
		return nil, 0, protoErr
	}
	if method == http.MethodConnect {
		return nil, http.StatusMethodNotAllowed, nil
	}
	header := make(http.Header, len(f.RegularFields()))
	var cookies []string
	for _, hf := range f.RegularFields() {
		for _, bad := range connectionHeaders {
			if hf.Name == bad {
				return nil, 0, protoErr
			}
		}
		switch hf.Name {
		case "te":
			if hf.Value != "trailers" {
				return nil, 0, protoErr
			}
		case "cookie":
			cookies = append(cookies, hf.Value)
			continue
		case "content-length":
			n, err := strconv.ParseInt(hf.Value, 10, 64)
			if err != nil || n < 0 || (st.declared >= 0 && st.declared != n) {
				return nil, 0, protoErr
			}
			st.declared = n
		}
		key := http.CanonicalHeaderKey(hf.Name)
		header[key] = append(header[key], hf.Value)
	}
	if len(cookies) > 0 {
		header.Set("Cookie", strings.Join(cookies, "; "))
	}
	if st.remoteClosed && st.declared > 0 {
		return nil, 0, protoErr
	}
	u, err := url.ParseRequestURI(path)
	if err != nil || !httpguts.ValidHostHeader(authority) {
		return nil, http.StatusBadRequest, nil
	}
	if authority == "" {
		authority = header.Get("Host")
	}
	ctx, cancel := context.WithCancel(context.Background())
	st.cancel = cancel
	req := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     header,
		Host:       authority,
		RemoteAddr: c.remote,
		RequestURI: path,
		TLS:        c.tls,
		Body:       http.NoBody,
	}
	req.ContentLength = 0
	if !st.remoteClosed {
		req.Body = bodyReader{st}
		req.ContentLength = st.declared
	}
	return req.WithContext(ctx), 0, nil
}

// run runs st's handler, then the next queued one.
func (c *conn) run(st *stream) {
	for st != nil {
		c.serveStream(st)
		c.mu.Lock()
		st = nil
		for len(c.queue) > 0 && st == nil {
			st = c.queue[0]
			c.queue = c.queue[1:]
			if st.gone {
				st = nil
			}
		}
		if st == nil {
			c.handlers--
		}
		c.mu.Unlock()
	}
}

func (c *conn) serveStream(st *stream) {
	rw := &responseWriter{st: st, header: make(http.Header)}
	defer func() {
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			c.srv.log.Error("h2serve: handler panicked", "panic", v)
			c.streamError(st.id, http2.ErrCodeInternal)
		}
		rw.finish()
	}()
	c.handler.ServeHTTP(rw, st.req)
}

// bodyReader is a request's Body.
type bodyReader struct{ st *stream }

func (b bodyReader) Read(p []byte) (int, error) {
	st := b.st
	c := st.c
	for {
		c.mu.Lock()
		rb := st.body
		if rb == nil || st.takenOver {
			c.mu.Unlock()
			return 0, io.EOF
		}
		if len(rb.buf) > 0 {
			n := copy(p, rb.buf)
			rb.buf = rb.buf[n:]
			if len(rb.buf) == 0 {
				rb.buf = nil
			}
			if !st.remoteClosed && !st.gone && n > 0 {
				st.recvWindow += int32(n)
				c.frameLocked(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(st.id, uint32(n)) })
				c.kickLocked()
			}
			c.mu.Unlock()
			return n, nil
		}
		if rb.eof {
			c.mu.Unlock()
			return 0, io.EOF
		}
		if st.gone {
			c.mu.Unlock()
			return 0, ErrStreamGone
		}
		deadline := rb.deadline
		c.mu.Unlock()
		if err := st.wait(deadline); err != nil {
			return 0, err
		}
	}
}

func (b bodyReader) Close() error { return nil }

// wait waits for st's signal until deadline (zero: WriteTimeout).
func (st *stream) wait(deadline time.Time) error {
	if deadline.IsZero() {
		deadline = time.Now().Add(st.c.srv.cfg.WriteTimeout)
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-st.ch:
		return nil
	case <-t.C:
		return os.ErrDeadlineExceeded
	}
}

// responseWriter is a handler's http.ResponseWriter.
type responseWriter struct {
	st          *stream
	header      http.Header
	status      int
	wroteHeader bool
	sentHeader  bool
	buf         []byte
	takenOver   bool
	failed      error
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader || w.takenOver {
		return
	}
	if code >= 100 && code < 200 { // informational answers are not sent
		return
	}
	w.wroteHeader, w.status = true, code
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.takenOver {
		return 0, ErrTakenOver
	}
	if w.failed != nil {
		return 0, w.failed
	}
	w.WriteHeader(http.StatusOK)
	if w.st.req.Method == http.MethodHead {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= maxFrameSize {
		if err := w.flush(false); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush implements http.Flusher.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError is what http.ResponseController's Flush calls.
func (w *responseWriter) FlushError() error {
	if w.takenOver {
		return ErrTakenOver
	}
	w.WriteHeader(http.StatusOK)
	return w.flush(false)
}

// SetReadDeadline bounds waiting for the request's body.
func (w *responseWriter) SetReadDeadline(t time.Time) error {
	c := w.st.c
	c.mu.Lock()
	if w.st.body != nil {
		w.st.body.deadline = t
	}
	c.mu.Unlock()
	return nil
}

// SetWriteDeadline is accepted; writes are bounded by WriteTimeout.
func (w *responseWriter) SetWriteDeadline(time.Time) error { return nil }

func (w *responseWriter) finish() {
	st, c := w.st, w.st.c
	defer func() {
		if st.cancel != nil {
			st.cancel()
		}
	}()
	if w.takenOver {
		return
	}
	if w.failed == nil {
		w.WriteHeader(http.StatusOK)
		_ = w.flush(true)
	}
	c.mu.Lock()
	if !st.gone && !st.remoteClosed {
		// The answer is complete; the rest of the body is not wanted.
		c.rstLocked(st.id, http2.ErrCodeNo)
		st.remoteClosed = true
		c.closedRemoteLocked(st)
		c.kickLocked()
	}
	if !st.gone && !st.localClosed { // a failed write: reset it
		c.rstLocked(st.id, http2.ErrCodeCancel)
		c.dropLocked(st)
		c.kickLocked()
	}
	st.req, st.body = nil, nil
	c.mu.Unlock()
}

// flush sends the headers (once) and what is buffered, waiting for flow
// control; end ends the stream.
func (w *responseWriter) flush(end bool) error {
	st, c := w.st, w.st.c
	if !w.sentHeader {
		w.sentHeader = true
		length := -1
		if end {
			length = len(w.buf)
		}
		if len(w.buf) > 0 && w.header.Get("Content-Type") == "" {
			if _, ok := w.header["Content-Type"]; !ok {
				w.header.Set("Content-Type", http.DetectContentType(w.buf))
			}
		}
		block := encodeHeaders(w.status, w.header, length)
		c.mu.Lock()
		if st.gone {
			c.mu.Unlock()
			w.failed = ErrStreamGone
			return w.failed
		}
		c.headersLocked(st, block, end && len(w.buf) == 0)
		if end && len(w.buf) == 0 {
			st.localClosed = true
			c.closedRemoteLocked(st)
		}
		c.kickLocked()
		c.mu.Unlock()
		if end && len(w.buf) == 0 {
			return nil
		}
	}
	deadline := time.Now().Add(c.srv.cfg.WriteTimeout)
	for len(w.buf) > 0 || end {
		c.mu.Lock()
		if st.gone || c.closed {
			c.mu.Unlock()
			w.failed = ErrStreamGone
			return w.failed
		}
		n := min(len(w.buf), int(max(st.sendWindow, 0)), int(max(c.sendWindow, 0)), int(c.peerFrame))
		if len(c.out) >= outSoftLimit {
			n = -1
		}
		if n > 0 || (n == 0 && len(w.buf) == 0) {
			last := end && n == len(w.buf)
			chunk := w.buf[:n]
			c.frameLocked(func(fr *http2.Framer) error { return fr.WriteData(st.id, last, chunk) })
			st.sendWindow -= int32(n)
			c.sendWindow -= int32(n)
			c.creditLocked()
			w.buf = w.buf[n:]
			if last {
				st.localClosed = true
				c.closedRemoteLocked(st)
			}
			c.kickLocked()
			c.mu.Unlock()
			if last {
				w.buf = nil
				return nil
			}
			continue
		}
		st.blocked = true
		st.wake = st.signal
		c.mu.Unlock()
		if time.Now().After(deadline) {
			w.failed = os.ErrDeadlineExceeded
			return w.failed
		}
		_ = st.wait(deadline)
	}
	w.buf = w.buf[:0]
	return nil
}

// hpack encoding: every field is written never-indexed, so an encoder
// keeps no state between header blocks and one pool serves every
// connection.
type headerEncoder struct {
	buf bytes.Buffer
	enc *hpack.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := &headerEncoder{}
	e.enc = hpack.NewEncoder(&e.buf)
	return e
}}

func encodeHeaders(status int, h http.Header, length int) []byte {
	e := encoders.Get().(*headerEncoder)
	e.buf.Reset()
	write := func(name, value string) {
		_ = e.enc.WriteField(hpack.HeaderField{Name: name, Value: value, Sensitive: true})
	}
	write(":status", strconv.Itoa(status))
	for k, vs := range h {
		lk := strings.ToLower(k)
		if !httpguts.ValidHeaderFieldName(k) || lk == "content-length" && length >= 0 {
			continue
		}
		skip := false
		for _, bad := range connectionHeaders {
			if lk == bad {
				skip = true
			}
		}
		if skip {
			continue
		}
		for _, v := range vs {
			if httpguts.ValidHeaderFieldValue(v) {
				write(lk, v)
			}
		}
	}
	if length >= 0 && status != http.StatusNoContent && status != http.StatusNotModified {
		write("content-length", strconv.Itoa(length))
	}
	out := bytes.Clone(e.buf.Bytes())
	if e.buf.Cap() > 64<<10 {
		e.buf = bytes.Buffer{}
	}
	encoders.Put(e)
	return out
}

// Stream is a response stream taken over from its handler: a connection
// of its own to the caller (Write, SetWriteDeadline, Close), whose writes
// never wait. See ResponseWriter's TakeOver.
type Stream struct{ st *stream }

// TakeOver is implemented by this package's ResponseWriters.
type TakeOver interface {
	// TakeOver sends a 200 response head with the writer's headers and
	// hands the stream to the caller; the handler must return without
	// writing. The returned Stream's Write sends what the client's
	// flow-control window and the socket take at once.
	TakeOver() (*Stream, error)
}

// TakeOver implements TakeOver.
func (w *responseWriter) TakeOver() (*Stream, error) {
	if w.sentHeader || w.takenOver {
		return nil, errors.New("h2serve: response already started")
	}
	st, c := w.st, w.st.c
	block := encodeHeaders(http.StatusOK, w.header, -1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.gone || c.closed {
		return nil, ErrStreamGone
	}
	w.takenOver, w.sentHeader = true, true
	st.takenOver = true
	c.headersLocked(st, block, false)
	c.forgetHeaderTableLocked()
	c.kickLocked()
	// What the handler phase needed goes: the stream keeps only its state.
	st.ch, st.req = nil, nil
	if st.body != nil {
		st.body = nil
	}
	st.pub.st = st
	return &st.pub, nil
}

// Watch sets what is called when a write may make progress again (more
// window or socket room) and when the stream is gone (reset by the client
// or its connection ended). gone is called at once if it is gone already.
func (s *Stream) Watch(writable, gone func()) {
	c := s.st.c
	c.mu.Lock()
	s.st.wake, s.st.onGone = writable, gone
	already := s.st.gone && !s.st.localClosed
	c.mu.Unlock()
	if already {
		gone()
	}
}

// Write sends what of p the flow-control windows and the connection's
// buffer take now, in DATA frames; a shorter write returns
// os.ErrDeadlineExceeded (retry later: Watch's writable tells when).
func (s *Stream) Write(p []byte) (int, error) {
	st, c := s.st, s.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.gone || st.localClosed || c.closed {
		return 0, ErrStreamGone
	}
	written := 0
	for {
		for written < len(p) && len(c.out) < outSoftLimit {
			n := min(len(p)-written, int(max(st.sendWindow, 0)), int(max(c.sendWindow, 0)), int(c.peerFrame))
			if n <= 0 {
				break
			}
			chunk := p[written : written+n]
			c.frameLocked(func(fr *http2.Framer) error { return fr.WriteData(st.id, false, chunk) })
			st.sendWindow -= int32(n)
			c.sendWindow -= int32(n)
			c.creditLocked()
			written += n
		}
		c.kickLocked()
		if c.closed {
			return written, ErrStreamGone
		}
		if written == len(p) {
			return written, nil
		}
		// A kick that wrote the buffer out at once leaves nothing to wake
		// a blocked stream (only a flusher's end and a WINDOW_UPDATE do):
		// go on while there is room and window.
		if len(c.out) >= outSoftLimit || st.sendWindow <= 0 || c.sendWindow <= 0 {
			st.blocked = true
			return written, os.ErrDeadlineExceeded
		}
	}
}

// SetWriteDeadline is accepted for the writer pool; Write never waits.
func (s *Stream) SetWriteDeadline(time.Time) error { return nil }

// SetLinger(0) makes Close reset the stream (RST_STREAM) instead of
// ending it, as a slow client's TCP connection is reset.
func (s *Stream) SetLinger(sec int) error {
	c := s.st.c
	c.mu.Lock()
	s.st.resetOnClose = sec == 0
	c.mu.Unlock()
	return nil
}

// Close ends the stream (END_STREAM) so the client reconnects; the
// connection stays.
func (s *Stream) Close() error {
	st, c := s.st, s.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.gone || st.localClosed {
		return nil
	}
	st.localClosed = true
	if st.resetOnClose || len(c.out) > outHardLimit {
		c.rstLocked(st.id, http2.ErrCodeCancel)
	} else {
		c.frameLocked(func(fr *http2.Framer) error { return fr.WriteData(st.id, true, nil) })
	}
	st.gone = true
	delete(c.streams, st.id)
	st.wake, st.onGone = nil, nil
	c.kickLocked()
	c.streamEndedLocked()
	return nil
}
