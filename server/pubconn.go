package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssekit/sse/hub"
)

// A publisher's keep-alive HTTP/1.1 connection is taken over from
// net/http at its first single publish (POST /.well-known/mercure with a
// Content-Length), like a subscriber's, and its next publishes are read
// and answered here: one request, header map and response per
// connection, reused; no background read goroutine per request; the
// answer written in one write. Each request still goes through the
// http.Server's Handler (so every wrapper, the CORS and Link headers and
// the mux see it) and the same publish handler, so refusals and answers
// are net/http's byte for byte but for header order. Anything else that
// arrives on such a connection (another method or path, a query string,
// chunked bodies, Expect, Upgrade, a head larger than the read buffer, a
// malformed head) is handed back to net/http as a new connection through
// the listener it came from, starting with that request, so net/http
// answers it as before. Only plain (not TLS) connections served through
// Server.Listener are taken over: handing a connection back needs that
// listener, and net/http must see TLS connections as *tls.Conn.

// pubListener is the listener Server.Listener returns: the HTTP/2
// wrapper's, plus the connections handed back to net/http.
type pubListener struct {
	net.Listener
	back     chan net.Conn
	accepted chan net.Conn
	failed   chan struct{} // closed when the inner Accept failed; err says why
	err      error
	done     chan struct{}
	once     sync.Once
}

func newPubListener(inner net.Listener) *pubListener {
	l := &pubListener{Listener: inner, back: make(chan net.Conn), accepted: make(chan net.Conn),
		failed: make(chan struct{}), done: make(chan struct{})}
	go l.pump()
	return l
}

func (l *pubListener) pump() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			l.err = err
			close(l.failed)
			return
		}
		select {
		case l.accepted <- c:
		case <-l.done:
			c.Close()
			return
		}
	}
}

func (l *pubListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.back:
		return c, nil
	case c := <-l.accepted:
		return c, nil
	case <-l.failed:
		return nil, l.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pubListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// handBack gives nc to net/http's Accept as a new connection, or closes
// it when the listener is closed.
func (l *pubListener) handBack(nc net.Conn) {
	select {
	case l.back <- nc:
	case <-l.done:
		nc.Close()
	case <-l.failed:
		nc.Close()
	}
}

// listen wraps the HTTP/2 wrapper's listener and remembers it, so that
// taken-over connections can be handed back.
func (s *Server) listen(ln net.Listener) net.Listener {
	pl := newPubListener(ln)
	s.pubConns.mu.Lock()
	s.pubConns.listeners = append(s.pubConns.listeners, pl)
	s.pubConns.mu.Unlock()
	return pl
}

// pubConns is the server's taken-over publisher connections, so that
// Shutdown ends them.
type pubConns struct {
	mu        sync.Mutex // guards the fields below
	listeners []*pubListener
	conns     map[*pubConn]struct{}
	closed    bool
}

// listenerFor is the listener a connection with local address local was
// accepted on, or nil.
func (p *pubConns) listenerFor(local net.Addr) *pubListener {
	la, ok := local.(*net.TCPAddr)
	if !ok {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.listeners {
		if a, ok := l.Addr().(*net.TCPAddr); ok && a.Port == la.Port && (a.IP.IsUnspecified() || a.IP.Equal(la.IP)) {
			return l
		}
	}
	return nil
}

func (p *pubConns) add(c *pubConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if p.conns == nil {
		p.conns = make(map[*pubConn]struct{})
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *pubConns) remove(c *pubConn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// shutdown wakes every taken-over connection waiting for a request, so
// it closes; one serving a request closes after its answer.
func (p *pubConns) shutdown() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for c := range p.conns {
		if c.idle.Load() {
			_ = c.nc.SetReadDeadline(time.Now())
		}
	}
}

// maxTakeOverHead is the largest first request head (by its header
// sizes) whose connection is taken over: a head must fit net/http's read
// buffer (4 KiB) to be read here, and a publisher whose heads do not is
// better left to net/http than handed back on every request.
const maxTakeOverHead = 3 << 10

// maxDiscardBody is how much of a body a handler left unread is skipped
// to keep the connection (net/http's figure); past it the connection
// closes after the answer.
const maxDiscardBody = 256 << 10

// takeOverPublisher takes r's connection over and serves it from here
// when it is a publisher's keep-alive plain HTTP/1.1 connection served
// through Server.Listener; it reports whether it did (then r is answered
// and the connection ended when it returns).
func (s *Server) takeOverPublisher(w http.ResponseWriter, r *http.Request) bool {
	if _, lean := w.(*pubResponse); lean {
		return false // already taken over
	}
	if r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.Close || r.TLS != nil || r.ContentLength < 0 ||
		len(r.TransferEncoding) > 0 || r.Header["Expect"] != nil || s.shuttingDown.Load() {
		return false
	}
	hs, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if hs == nil || hs.Handler == nil || local == nil {
		return false
	}
	size := len(r.RequestURI)
	for k, vs := range r.Header {
		for _, v := range vs {
			size += len(k) + len(v) + 4
		}
	}
	if size > maxTakeOverHead {
		return false
	}
	ln := s.pubConns.listenerFor(local)
	if ln == nil {
		return false
	}
	header := w.Header().Clone() // what the wrappers and ServeHTTP set
	nc, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false // a ResponseWriter that is not net/http's connection: nothing happened
	}
	c := &pubConn{s: s, hs: hs, ln: ln, nc: nc, br: rw.Reader, bw: rw.Writer, remote: r.RemoteAddr, ctx: r.Context()}
	c.resp.c = c
	c.req = *(&http.Request{}).WithContext(c.ctx) // the one context of the connection's requests
	if !s.pubConns.add(c) {
		nc.Close()
		return true
	}
	defer s.pubConns.remove(c)
	c.serve(r, header)
	return true
}

// pubConn is one taken-over publisher connection; its goroutine is the
// one net/http ran the first request's handler on.
type pubConn struct {
	s      *Server
	hs     *http.Server
	ln     *pubListener
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	remote string
	ctx    context.Context
	idle   atomic.Bool // waiting for a request: Shutdown may wake it

	req  http.Request
	url  url.URL
	hdr  http.Header
	vals []string // backing of hdr's one-value slices
	body pubBody
	resp pubResponse
	keys []string // response header names, sorted
}

func (c *pubConn) serve(first *http.Request, header http.Header) {
	defer func() {
		if c.nc != nil {
			c.nc.Close()
		}
	}()
	// The first request: net/http read its head, the body is here now.
	c.body = pubBody{br: c.br, n: first.ContentLength}
	r := first.WithContext(c.ctx)
	r.Body = &c.body
	c.resp.reset(header)
	if !c.run(func() { c.s.publishOne(&c.resp, r) }) || !c.finish() {
		return
	}
	for {
		if c.s.shuttingDown.Load() {
			return
		}
		ok, reinject := c.readRequest()
		if reinject {
			c.handBack()
			return
		}
		if !ok {
			return
		}
		c.resp.reset(nil)
		if !c.run(func() { c.hs.Handler.ServeHTTP(&c.resp, &c.req) }) || !c.finish() {
			return
		}
	}
}

// run calls serve as net/http calls a handler: a panic ends the
// connection (logged unless it is http.ErrAbortHandler).
func (c *pubConn) run(serve func()) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				c.s.log.Error("panic serving a publish", slog.String("remote", c.remote), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			}
			ok = false
		}
	}()
	serve()
	return true
}

// handBack gives the connection, with the bytes read of its next
// request, back to net/http.
func (c *pubConn) handBack() {
	if c.bw.Flush() != nil { // answers to the requests before it
		return
	}
	_ = c.nc.SetDeadline(time.Time{})
	peeked, _ := c.br.Peek(c.br.Buffered())
	nc := &prefixConn{Conn: c.nc, prefix: bytes.Clone(peeked)}
	c.nc = nil
	c.ln.handBack(nc)
}

// readRequest reads the next request head into c.req. ok: a publish to
// serve here; reinject: a request for net/http; neither: the connection
// ends (closed, idle or header timeout: net/http too closes silently).
func (c *pubConn) readRequest() (ok, reinject bool) {
	idle := c.hs.IdleTimeout
	if idle == 0 {
		idle = c.hs.ReadTimeout
	}
	if c.br.Buffered() == 0 && c.bw.Flush() != nil {
		return false, false
	}
	c.idle.Store(true)
	if idle > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(idle))
	} else {
		_ = c.nc.SetReadDeadline(time.Time{})
	}
	if c.s.pubConns.isClosed() { // Shutdown may have passed before idle was set
		c.idle.Store(false)
		return false, false
	}
	_, err := c.br.Peek(1)
	c.idle.Store(false)
	if err != nil {
		return false, false
	}
	// The whole head in the buffer, or it is net/http's.
	var head []byte
	for timed := false; ; timed = true {
		b, _ := c.br.Peek(c.br.Buffered())
		if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
			head = b[:i+4]
			break
		}
		if c.br.Buffered() == c.br.Size() {
			return false, true
		}
		if c.bw.Flush() != nil {
			return false, false
		}
		if !timed { // the head did not come whole: the rest within the header timeout
			if d := c.hs.ReadHeaderTimeout; d > 0 {
				_ = c.nc.SetReadDeadline(time.Now().Add(d))
			} else if d := c.hs.ReadTimeout; d > 0 {
				_ = c.nc.SetReadDeadline(time.Now().Add(d))
			}
		}
		if _, err := c.br.Peek(c.br.Buffered() + 1); err != nil {
			if c.br.Buffered() > 0 && !isTimeout(err) {
				return false, true // net/http answers a truncated head as it does
			}
			return false, false
		}
	}
	// The read deadline stays: the handler sets the body's (BodyTimeout),
	// finish the discarding's, the next request the idle one.
	if !c.parseHead(head) {
		return false, true
	}
	return true, false
}

func (p *pubConns) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// isTimeout reports whether err is a deadline's expiry.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

const publishRequestLine = "POST " + hub.Path + " HTTP/1.1\r\n"

// parseHead fills c.req from head (which ends with the blank line) when
// it is a plain single publish, and consumes it from the reader; any
// other request, and anything unusual in one, is for net/http.
func (c *pubConn) parseHead(head []byte) bool {
	if !bytes.HasPrefix(head, []byte(publishRequestLine)) {
		return false
	}
	if c.hdr == nil {
		c.hdr = make(http.Header, 8)
	} else {
		clear(c.hdr)
	}
	c.vals = c.vals[:0]
	text := string(head[len(publishRequestLine) : len(head)-2]) // the header lines; their one copy
	var host string
	contentLength := int64(-1)
	nvals := 0
	for text != "" {
		i := indexCRLF(text)
		if i < 0 {
			return false
		}
		line := text[:i]
		text = text[i+2:]
		colon := -1
		for j := 0; j < len(line); j++ {
			if line[j] == ':' {
				colon = j
				break
			}
			if !isTokenChar(line[j]) {
				return false // obs-fold, spaces before the colon, bad names: net/http's
			}
		}
		if colon <= 0 {
			return false
		}
		value := trimOWS(line[colon+1:])
		for j := 0; j < len(value); j++ {
			if b := value[j]; b < ' ' && b != '\t' || b == 0x7f {
				return false
			}
		}
		key := textproto.CanonicalMIMEHeaderKey(line[:colon]) // no copy when already canonical
		switch key {
		case "Host":
			if c.hdr["Host"] != nil || !validHost(value) {
				return false
			}
			host = value
			c.hdr["Host"] = nil // seen; net/http keeps Host out of Header
			continue
		case "Content-Length":
			if contentLength >= 0 || value == "" || len(value) > 18 {
				return false
			}
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || value[0] == '+' || value[0] == '-' {
				return false
			}
			contentLength = n
		case "Transfer-Encoding", "Expect", "Upgrade", "Http2-Settings":
			return false
		case "Connection":
			if !equalFoldASCII(value, "keep-alive") && !equalFoldASCII(value, "close") {
				return false
			}
		}
		if nvals == len(c.vals) {
			c.vals = append(c.vals, "")
		}
		c.vals[nvals] = value
		v := c.vals[nvals : nvals+1 : nvals+1]
		nvals++
		if old := c.hdr[key]; old != nil {
			v = append(old, value)
		}
		c.hdr[key] = v
	}
	delete(c.hdr, "Host")
	if host == "" || contentLength < 0 {
		return false
	}
	if _, err := c.br.Discard(len(head)); err != nil {
		return false
	}
	closing := false
	for _, v := range c.hdr["Connection"] {
		closing = closing || equalFoldASCII(v, "close")
	}
	c.url = url.URL{Path: hub.Path}
	c.body = pubBody{br: c.br, n: contentLength}
	// Field by field: the request's context (unexported) stays the
	// connection's, set once.
	r := &c.req
	r.Method, r.URL, r.RequestURI, r.Host, r.RemoteAddr = http.MethodPost, &c.url, hub.Path, host, c.remote
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	r.Header, r.Body, r.ContentLength, r.Close = c.hdr, &c.body, contentLength, closing
	r.GetBody, r.TransferEncoding, r.Form, r.PostForm, r.MultipartForm, r.Trailer = nil, nil, nil, nil, nil, nil
	r.TLS, r.Response, r.Pattern = nil, nil, ""
	return true
}

func indexCRLF(s string) int {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '\r' {
			if s[i+1] != '\n' {
				return -1 // a bare CR: net/http's
			}
			return i
		}
		if s[i] == '\n' {
			return -1 // a bare LF: net/http's
		}
	}
	return -1
}

func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isTokenChar: RFC 9110's tchar.
func isTokenChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// validHost accepts the usual host[:port] spellings; anything else (and
// an empty Host) is left to net/http's own check.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		b := h[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '-' || b == ':' || b == '[' || b == ']' || b == '_') {
			return false
		}
	}
	return true
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// finish skips what the handler left of the body and writes the answer;
// it reports whether the connection stays open.
func (c *pubConn) finish() bool {
	keep := !c.req.Close && !c.s.shuttingDown.Load()
	if c.body.err != nil {
		keep = false // a body cut or timed out: the stream cannot be resynchronised
	} else if c.body.n > 0 {
		if c.body.n > maxDiscardBody {
			keep = false
		} else {
			_ = c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.BodyTimeout))
			if _, err := c.br.Discard(int(c.body.n)); err != nil {
				keep = false
			}
			c.body.n = 0
		}
	}
	c.writeResponse(keep)
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	// Answers to pipelined requests go out together.
	if !keep || c.br.Buffered() == 0 {
		if err := c.bw.Flush(); err != nil {
			return false
		}
	}
	return keep
}

// writeResponse writes the answer into c.bw as net/http does: the
// status line, the handler's headers sorted, then the ones net/http adds
// (Date, Content-Length, a sniffed Content-Type, Connection: close), the
// body.
func (c *pubConn) writeResponse(keep bool) {
	w := &c.resp
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	h := w.header
	body := w.body.Bytes()
	bodyAllowed := status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
	var date, clen, ctype, conn string
	if h["Date"] == nil {
		date = httpDate()
	}
	if !bodyAllowed {
		delete(h, "Content-Length")
		body = nil
	} else {
		if h["Content-Length"] == nil {
			clen = strconv.Itoa(len(body))
		}
		if h["Content-Type"] == nil && len(body) > 0 {
			ctype = http.DetectContentType(body)
		}
	}
	if !keep {
		delete(h, "Connection")
		conn = "close"
	}
	bw := c.bw
	bw.WriteString("HTTP/1.1 ")
	var num [20]byte
	bw.Write(strconv.AppendInt(num[:0], int64(status), 10))
	bw.WriteByte(' ')
	if text := http.StatusText(status); text != "" {
		bw.WriteString(text)
	} else {
		bw.WriteString("status code ")
		bw.Write(strconv.AppendInt(num[:0], int64(status), 10))
	}
	bw.WriteString("\r\n")
	c.keys = c.keys[:0]
	for k := range h {
		c.keys = append(c.keys, k)
	}
	slices.Sort(c.keys)
	for _, k := range c.keys {
		for _, v := range h[k] {
			writeHeaderLine(bw, k, v)
		}
	}
	for _, kv := range [...][2]string{{"Date", date}, {"Content-Length", clen}, {"Content-Type", ctype}, {"Connection", conn}} {
		if kv[1] != "" {
			writeHeaderLine(bw, kv[0], kv[1])
		}
	}
	bw.WriteString("\r\n")
	bw.Write(body)
}

// writeHeaderLine writes one header line as net/http does: in the value
// CR and LF become spaces, then surrounding ASCII white space is trimmed.
func writeHeaderLine(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	for v != "" && isASCIISpace(v[0]) {
		v = v[1:]
	}
	for v != "" && isASCIISpace(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	for i := 0; i < len(v); i++ {
		if b := v[i]; b == '\r' || b == '\n' {
			bw.WriteByte(' ')
		} else {
			bw.WriteByte(b)
		}
	}
	bw.WriteString("\r\n")
}

func isASCIISpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

// httpDate is the Date header value, formatted once per second.
func httpDate() string {
	now := time.Now().Unix()
	if d := dateCache.Load(); d != nil && d.sec == now {
		return d.value
	}
	d := &cachedDate{sec: now, value: time.Unix(now, 0).UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.value
}

type cachedDate struct {
	sec   int64
	value string
}

var dateCache atomic.Pointer[cachedDate]

// pubBody is a taken-over request's body: Content-Length bytes of the
// connection.
type pubBody struct {
	br  *bufio.Reader
	n   int64 // left to read
	err error // a read error: the connection ends after the answer
}

func (b *pubBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	if err == io.EOF && b.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *pubBody) Close() error { return nil }

// pubResponse is a taken-over request's ResponseWriter: the answer is
// kept whole (a publish answer is an id or a one-line reason) and
// written by finish.
type pubResponse struct {
	c      *pubConn
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *pubResponse) reset(h http.Header) {
	if h == nil {
		if w.header == nil {
			w.header = make(http.Header, 8)
		} else {
			clear(w.header)
		}
	} else {
		w.header = h
	}
	w.status = 0
	w.body.Reset()
}

func (w *pubResponse) Header() http.Header { return w.header }

func (w *pubResponse) WriteHeader(status int) {
	if w.status == 0 && status >= 200 {
		w.status = status
	}
}

func (w *pubResponse) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}

func (w *pubResponse) WriteString(s string) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.WriteString(s)
}

// SetReadDeadline bounds the body's reading (http.ResponseController).
func (w *pubResponse) SetReadDeadline(t time.Time) error { return w.c.nc.SetReadDeadline(t) }

// SetWriteDeadline is http.ResponseController's; the answer is written
// after the handler, with its own deadline.
func (w *pubResponse) SetWriteDeadline(time.Time) error { return nil }

// Flush is a no-op: the answer goes out whole when the handler returns.
func (w *pubResponse) Flush() {}

// prefixConn is a connection handed back to net/http: the bytes already
// read of its next request first. It passes on what the subscriber
// take-over uses from the socket beneath (NetConn, SetLinger).
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		if len(c.prefix) == 0 {
			c.prefix = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// NetConn returns the socket beneath.
func (c *prefixConn) NetConn() net.Conn {
	if nc, ok := c.Conn.(interface{ NetConn() net.Conn }); ok {
		return nc.NetConn()
	}
	return c.Conn
}

// SetLinger passes on to a TCP connection beneath.
func (c *prefixConn) SetLinger(sec int) error {
	if l, ok := c.Conn.(interface{ SetLinger(int) error }); ok {
		return l.SetLinger(sec)
	}
	return nil
}
