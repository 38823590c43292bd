package sse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Defaults of a zero Client.
const (
	// DefaultRetry is the reconnection time before a server sets one with
	// a retry field.
	DefaultRetry = 3 * time.Second
	// DefaultMaxRetry caps the exponential backoff between failed attempts.
	DefaultMaxRetry = 30 * time.Second
	// HealthyConnection is how long a connection must stay up, when it
	// delivers no event, for the backoff to start over at the reconnection
	// time.
	HealthyConnection = time.Minute
)

// errorBodyLimit bounds the part of a non-200 response body kept in a
// StatusError.
const errorBodyLimit = 4 << 10

// Errors an EventSource reports. Next returns ErrSourceClosed; the others are reasons
// passed to Client.OnRetry (and returned by Next when the Client does not
// reconnect).
var (
	// ErrSourceClosed is returned by Next after Close.
	ErrSourceClosed = errors.New("sse: event source closed")
	// ErrReadTimeout means a connection was dropped because no byte arrived
	// for Client.ReadTimeout.
	ErrReadTimeout = errors.New("sse: read timeout")
	// ErrRestart means a connection was dropped by EventSource.Restart.
	ErrRestart = errors.New("sse: restart requested")
)

// StatusError is returned by Next when a response had a status other than
// 200 OK; the stream is then over for good, as in a browser. HTTP 204 No
// Content is how a server tells a client to stop, and a 3xx status means a
// redirect without a Location header.
type StatusError struct {
	StatusCode int
	Status     string // as in http.Response, e.g. "404 Not Found"
	Header     http.Header
	// Body holds the start (up to 4 KiB) of the response body: APIs explain
	// a refusal there ({"error":"invalid API key"}).
	Body []byte
}

func (e *StatusError) Error() string {
	switch {
	case e.StatusCode == http.StatusNoContent:
		return "sse: server ended the stream for good (204 No Content)"
	case e.StatusCode >= 300 && e.StatusCode < 400:
		return fmt.Sprintf("sse: redirect %s without a Location", e.Status)
	default:
		return "sse: unexpected status " + e.Status
	}
}

// ContentTypeError is returned by Next when a 200 response's Content-Type is
// not text/event-stream (parameters such as charset are ignored); the stream
// is then over for good.
type ContentTypeError struct {
	ContentType string // the header as received; "" when missing
}

func (e *ContentTypeError) Error() string {
	if e.ContentType == "" {
		return "sse: response has no Content-Type; want text/event-stream"
	}
	return fmt.Sprintf("sse: Content-Type %q is not text/event-stream", e.ContentType)
}

// A Client consumes event streams with the browser's EventSource semantics:
// it sends Accept: text/event-stream and Cache-Control: no-cache, follows
// redirects, keeps the last event ID across reconnections (sent as
// Last-Event-ID when not empty), honours the server's retry field, and ends
// for good on a status other than 200 or a Content-Type other than
// text/event-stream. Unlike a browser it can send any method with a body
// (re-sent on every reconnection) and any header, which is what LLM
// streaming APIs need.
//
// Between attempts an EventSource waits the reconnection time (Retry, then what
// the server's retry field says). After a connection fails without having
// been healthy the wait doubles, with jitter, up to MaxRetry (or the
// server's retry, when larger: a client never comes back sooner than the
// server asked). A connection is healthy once it delivered an event or
// stayed up for HealthyConnection; the next wait is then the reconnection
// time again.
//
// The zero Client is ready to use; a Client's fields are read by Connect,
// so changing them later does not affect streams already connected.
type Client struct {
	// HTTPClient sends the requests. Nil means a client with no overall
	// timeout (http.Client.Timeout would cut every long stream).
	HTTPClient *http.Client

	// Retry is the reconnection time until the server sets one with a
	// retry field. Zero means DefaultRetry; negative means no wait (as a
	// server's "retry: 0"), for tests and local tools.
	Retry time.Duration
	// MaxRetry caps the backoff after consecutive failures. Zero means
	// DefaultMaxRetry.
	MaxRetry time.Duration
	// ReadTimeout drops a connection, and reconnects, when no byte arrives
	// for that long (including while waiting for the response). Zero means
	// no read timeout. Set it above the server's heartbeat interval.
	ReadTimeout time.Duration
	// MaxEventSize bounds one event; see Decoder.MaxEventSize. A larger
	// event ends the stream with ErrEventTooLarge.
	MaxEventSize int
	// NoReconnect makes the first end of a connection the end of the
	// stream: Next returns io.EOF when the server ends the body cleanly, or
	// the network error. EventSource.Restart still reconnects.
	NoReconnect bool

	// Hooks for tools such as debuggers, all optional. They are called from
	// the goroutine calling Next, in stream order, and must not block long.

	// OnConnect is called with each accepted response (200,
	// text/event-stream) before its body is read.
	OnConnect func(resp *http.Response)
	// OnComment is called with each comment line's text, without the
	// colon (": hi" gives " hi").
	OnComment func(text string)
	// OnRetry is called when a connection ended and the stream will
	// reconnect, with the reason (io.EOF when the server ended the body,
	// ErrReadTimeout, ErrRestart, or a network error) and the wait before
	// the next attempt. It may call EventSource.Restart to skip that wait.
	OnRetry func(err error, delay time.Duration)
	// OnRead is called with the body bytes as they are received, before
	// decoding (after any Content-Encoding was removed by net/http). The
	// slice is only valid during the call.
	OnRead func(chunk []byte)
}

// An EventSource is one event stream consumed by a Client, as the browser's
// EventSource object: the connection of the moment and the state kept across
// reconnections. Next (or Events) must be called from one goroutine at a
// time; Restart, Close, LastEventID and Retry may be called from any
// goroutine.
type EventSource struct {
	c   Client
	req *http.Request
	// ctx is the stream's life: the request's context, also canceled by
	// Close. An EventSource is bound to its request, as an http.Request is.
	ctx       context.Context
	cancel    context.CancelCauseFunc
	restartCh chan struct{} // a pending Restart; buffered, 1

	// Owned by the goroutine calling Next.
	bodyReady bool // getBody was set up, by the first attempt
	getBody   func() (io.ReadCloser, error)
	dec       *Decoder
	body      io.ReadCloser
	connCtx   context.Context
	connStart time.Time // when the accepted connection started; zero if none
	delivered bool      // the current connection dispatched an event
	attempt   int       // failed attempts since the last healthy connection
	started   bool
	delay     time.Duration // the wait before the next attempt
	err       error         // the end of the stream, once reached

	mu         sync.Mutex
	connCancel context.CancelCauseFunc // guarded by mu
	lastID     string                  // guarded by mu
	retry      time.Duration           // guarded by mu
}

// Connect returns an EventSource reading the event stream that req asks
// for. The first connection is made by the first Next. The stream lives
// until Close, the end of req's context, or a failure that ends it for good.
//
// A Last-Event-ID header in req sets the initial last event ID, sent on the
// first request and carried by events until an id field changes it. A
// request body is sent again on every reconnection: through req.GetBody
// when set (http.NewRequest sets it for the usual in-memory readers),
// otherwise it is read into memory by the first attempt. Each attempt sends
// a clone of req; req itself is not modified. A nil Client is a zero
// Client.
func (c *Client) Connect(req *http.Request) *EventSource {
	var cfg Client
	if c != nil {
		cfg = *c
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	switch {
	case cfg.Retry == 0:
		cfg.Retry = DefaultRetry
	case cfg.Retry < 0:
		cfg.Retry = 0
	}
	if cfg.MaxRetry <= 0 {
		cfg.MaxRetry = DefaultMaxRetry
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	return &EventSource{
		c:         cfg,
		req:       req,
		ctx:       ctx,
		cancel:    cancel,
		restartCh: make(chan struct{}, 1),
		lastID:    req.Header.Get("Last-Event-ID"),
		retry:     cfg.Retry,
	}
}

// LastEventID returns the last event ID string: what the next reconnection
// sends as Last-Event-ID. It is updated with each event and when a
// connection ends (an id in a block that no blank line ended does not
// count).
func (es *EventSource) LastEventID() string {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.lastID
}

// Retry returns the reconnection time: Client.Retry until a retry field
// changed it. It is updated with each event and when a connection ends.
func (es *EventSource) Retry() time.Duration {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.retry
}

// Restart drops the current connection and reconnects at once, keeping
// the last event ID; during a wait between attempts it ends the wait. The
// reason passed to OnRetry is ErrRestart.
func (es *EventSource) Restart() {
	es.mu.Lock()
	defer es.mu.Unlock()
	select {
	case es.restartCh <- struct{}{}:
	default:
	}
	if es.connCancel != nil {
		es.connCancel(ErrRestart)
	}
}

// Close ends the stream: a blocked Next returns ErrSourceClosed, and so
// does every later one. It always returns nil.
func (es *EventSource) Close() error {
	es.cancel(ErrSourceClosed)
	return nil
}

// Events returns an iterator over the stream's events. It stops quietly
// when Next returns io.EOF (only with NoReconnect); any other end is yielded
// once, last.
func (es *EventSource) Events() iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for {
			ev, err := es.Next()
			if err == io.EOF {
				return
			}
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

// Next returns the next event, connecting and reconnecting as needed: it
// blocks through reconnections. It returns an error only when the stream is
// over for good, and then again on every call: a *StatusError, a
// *ContentTypeError, ErrEventTooLarge, ErrSourceClosed, the context's error
// (context.Cause of the request's context), or, with NoReconnect, io.EOF
// at a clean end of the body or the error that ended the connection.
func (es *EventSource) Next() (Event, error) {
	for es.err == nil {
		if es.dec == nil {
			es.connect()
			continue
		}
		ev, err := es.dec.Next()
		if err == nil {
			es.delivered = true
			es.mu.Lock()
			es.lastID = ev.ID
			if ev.HasRetry {
				es.retry = ev.Retry
			}
			es.mu.Unlock()
			return ev, nil
		}
		es.connEnded(err)
	}
	return Event{}, es.err
}

// connect waits before a reconnection, then makes one attempt. On success
// es.dec is set; otherwise es.err or the next delay is.
func (es *EventSource) connect() {
	if es.started && !es.wait() {
		return
	}
	es.started = true
	if err := es.open(); err != nil {
		es.connEnded(err)
	}
}

// wait sleeps es.delay, cut short by Restart. It reports false, with es.err
// set, when the stream ended meanwhile.
func (es *EventSource) wait() bool {
	if err := es.ctx.Err(); err != nil {
		es.err = context.Cause(es.ctx)
		return false
	}
	if es.delay <= 0 {
		return true
	}
	t := time.NewTimer(es.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-es.restartCh:
	case <-es.ctx.Done():
		es.err = context.Cause(es.ctx)
		return false
	}
	return true
}

// open sends one request and, when the response is accepted, sets up the
// decoder on its body.
func (es *EventSource) open() error {
	cctx, ccancel := context.WithCancelCause(es.ctx)
	es.mu.Lock()
	es.connCancel = ccancel
	select { // this connection satisfies a Restart asked before it existed
	case <-es.restartCh:
	default:
	}
	lastID := es.lastID
	es.mu.Unlock()
	es.connCtx = cctx
	es.connStart = time.Time{}
	es.delivered = false

	var timer *time.Timer
	if es.c.ReadTimeout > 0 {
		timer = time.AfterFunc(es.c.ReadTimeout, func() { ccancel(ErrReadTimeout) })
		context.AfterFunc(cctx, func() { timer.Stop() })
	}

	req, err := es.newRequest(cctx, lastID)
	if err != nil {
		return err
	}
	resp, err := es.c.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
		resp.Body.Close()
		return &StatusError{StatusCode: resp.StatusCode, Status: resp.Status, Header: resp.Header, Body: body}
	}
	if ct := resp.Header.Get("Content-Type"); !isEventStream(ct) {
		resp.Body.Close()
		return &ContentTypeError{ContentType: ct}
	}
	es.connStart = time.Now()
	if es.c.OnConnect != nil {
		es.c.OnConnect(resp)
	}
	es.body = resp.Body
	r := &connReader{r: resp.Body, timer: timer, timeout: es.c.ReadTimeout, onRead: es.c.OnRead}
	es.dec = NewDecoder(r)
	es.dec.MaxEventSize = es.c.MaxEventSize
	es.dec.OnComment = es.c.OnComment
	es.dec.SetLastEventID(lastID)
	return nil
}

// newRequest builds one attempt's request from the caller's.
func (es *EventSource) newRequest(ctx context.Context, lastID string) (*http.Request, error) {
	if !es.bodyReady {
		if err := es.prepareBody(); err != nil {
			return nil, err
		}
		es.bodyReady = true
	}
	req := es.req.Clone(ctx)
	if es.getBody != nil {
		body, err := es.getBody()
		if err != nil {
			return nil, &bodyError{err}
		}
		req.Body, req.GetBody = body, es.getBody
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/event-stream")
	}
	if req.Header.Get("Cache-Control") == "" {
		req.Header.Set("Cache-Control", "no-cache")
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	} else {
		req.Header.Del("Last-Event-ID")
	}
	return req, nil
}

// prepareBody makes the request body replayable, reading it into memory
// when the request cannot produce it again.
func (es *EventSource) prepareBody() error {
	if es.req.Body == nil || es.req.Body == http.NoBody {
		return nil
	}
	if es.req.GetBody != nil {
		es.getBody = es.req.GetBody
		return nil
	}
	payload, err := io.ReadAll(es.req.Body)
	es.req.Body.Close()
	if err != nil {
		return &bodyError{err}
	}
	es.getBody = func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(payload)), nil
	}
	return nil
}

// bodyError is a failure to produce the request body: no reconnection can
// fix it.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "sse: request body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// connEnded handles the end of a connection or a failed attempt: it
// decides between the end of the stream (es.err) and a reconnection after
// es.delay.
func (es *EventSource) connEnded(err error) {
	cause := context.Cause(es.connCtx)
	healthy := es.delivered || (!es.connStart.IsZero() && time.Since(es.connStart) >= HealthyConnection)
	if es.dec != nil {
		es.mu.Lock()
		es.lastID = es.dec.LastEventID()
		if r, ok := es.dec.Retry(); ok {
			es.retry = r
		}
		es.mu.Unlock()
		es.body.Close()
		es.dec, es.body = nil, nil
	}
	es.mu.Lock()
	es.connCancel(nil)
	es.connCancel = nil
	retry := es.retry
	es.mu.Unlock()

	var (
		statusErr *StatusError
		typeErr   *ContentTypeError
		bodyErr   *bodyError
	)
	switch {
	case es.ctx.Err() != nil:
		es.err = context.Cause(es.ctx)
		return
	case errors.As(err, &statusErr), errors.As(err, &typeErr), errors.As(err, &bodyErr),
		errors.Is(err, ErrEventTooLarge):
		es.err = err
		return
	case errors.Is(cause, ErrRestart):
		err = ErrRestart
	case errors.Is(cause, ErrReadTimeout):
		err = ErrReadTimeout
	}
	if es.c.NoReconnect && err != ErrRestart {
		es.err = err
		return
	}
	if healthy {
		es.attempt = 0
	}
	if err == ErrRestart {
		es.delay = 0
	} else {
		es.delay = backoff(retry, es.c.MaxRetry, es.attempt, rand.Int64N)
		es.attempt++
	}
	if es.c.OnRetry != nil {
		es.c.OnRetry(err, es.delay)
	}
}

// backoff returns the wait before a reconnection: the reconnection time
// retry after a healthy connection (attempt 0); then, for each further
// failed attempt, double that with jitter: a uniform wait in [d/2, d] where
// d = retry·2^attempt, capped at the larger of maxDelay and retry, and never
// below retry. jitter(n) returns a number in [0, n).
func backoff(retry, maxDelay time.Duration, attempt int, jitter func(n int64) int64) time.Duration {
	if retry <= 0 {
		return 0
	}
	limit := max(maxDelay, retry)
	if attempt == 0 {
		return retry
	}
	d := retry
	for range attempt {
		if d >= limit/2 {
			d = limit
			break
		}
		d *= 2
	}
	half := d / 2
	return max(retry, d-half+time.Duration(jitter(int64(half)+1)))
}

// isEventStream reports whether a Content-Type's essence is
// text/event-stream, ignoring parameters and case.
func isEventStream(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mediaType, _, _ = strings.Cut(contentType, ";")
		mediaType = strings.ToLower(strings.TrimSpace(mediaType))
	}
	return mediaType == "text/event-stream"
}

// connReader passes a response body through, restarting the read timeout
// and calling the OnRead hook on every read that returned bytes.
type connReader struct {
	r       io.Reader
	timer   *time.Timer // nil without a read timeout
	timeout time.Duration
	onRead  func([]byte)
}

func (r *connReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		if r.timer != nil {
			r.timer.Reset(r.timeout)
		}
		if r.onRead != nil {
			r.onRead(p[:n])
		}
	}
	return n, err
}
