package sse

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Defaults for StreamConfig.
const (
	DefaultHeartbeat    = 15 * time.Second
	DefaultWriteTimeout = 10 * time.Second
)

// ErrStreamClosed is returned by a Stream's methods after Close.
var ErrStreamClosed = errors.New("sse: stream closed")

// StreamConfig configures a Stream. The zero value is ready to use.
type StreamConfig struct {
	// Heartbeat is how long the stream may be idle before a comment line is
	// sent, so proxies and load balancers keep it open and a departed client
	// is noticed. Zero means DefaultHeartbeat; negative disables heartbeats.
	Heartbeat time.Duration

	// WriteTimeout bounds every write and flush: a client that stops
	// reading for that long is dropped instead of holding the handler. Zero
	// means DefaultWriteTimeout; negative disables it.
	WriteTimeout time.Duration

	// Compress gzips the stream when the request's Accept-Encoding allows
	// it. Every send still flushes the compressor, so compression never
	// delays an event.
	Compress bool
}

// Stream turns an http.ResponseWriter into an event stream. Its methods are
// safe for concurrent use.
type Stream struct {
	ctx    context.Context
	cancel context.CancelCauseFunc

	heartbeat    time.Duration
	writeTimeout time.Duration

	mu     sync.Mutex // guards everything below
	rc     *http.ResponseController
	out    io.Writer    // the response, or gz over it
	gz     *gzip.Writer // nil when not compressing
	buf    []byte
	timer  *time.Timer // fires a heartbeat after an idle period
	err    error       // the first write error, or ErrStreamClosed
	closed bool
}

// NewStream starts an event stream on w: it sends the status and headers
// (Content-Type: text/event-stream, Cache-Control: no-cache,
// X-Accel-Buffering: no for nginx) and flushes them at once, so the client
// sees the stream open before the first event. It fails when w cannot flush.
//
// The stream's Context is done when the client goes away, a write fails or
// Close is called; a handler typically selects on it and returns.
func NewStream(w http.ResponseWriter, r *http.Request, cfg StreamConfig) (*Stream, error) {
	s := &Stream{
		heartbeat:    orDefault(cfg.Heartbeat, DefaultHeartbeat),
		writeTimeout: orDefault(cfg.WriteTimeout, DefaultWriteTimeout),
		rc:           http.NewResponseController(w),
		out:          w,
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if cfg.Compress && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
		h.Del("Content-Length")
		s.gz = gzip.NewWriter(w)
		s.out = s.gz
	}
	w.WriteHeader(http.StatusOK)
	s.ctx, s.cancel = context.WithCancelCause(r.Context())
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.flushLocked(); err != nil {
		s.cancel(err)
		return nil, fmt.Errorf("sse: cannot stream on this ResponseWriter: %w", err)
	}
	if s.heartbeat > 0 {
		s.timer = time.AfterFunc(s.heartbeat, s.beat)
	}
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// acceptsGzip reports whether an Accept-Encoding value allows gzip (q > 0).
func acceptsGzip(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// Context returns a context that is done when the client goes away, a
// write fails or the stream is closed; context.Cause tells which.
func (s *Stream) Context() context.Context { return s.ctx }

// Send writes the events and flushes once, so several queued events cost one
// write and one flush. It writes nothing when any event is invalid (see
// Event.Validate).
func (s *Stream) Send(events ...Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	buf := s.buf[:0]
	for i := range events {
		var err error
		if buf, err = events[i].AppendTo(buf); err != nil {
			return err
		}
	}
	s.buf = buf[:0]
	return s.writeLocked(buf)
}

// Comment writes a comment line (ignored by EventSource; shown by debuggers)
// and flushes.
func (s *Stream) Comment(text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	buf := AppendComment(s.buf[:0], text)
	s.buf = buf[:0]
	return s.writeLocked(buf)
}

// Close ends the stream: heartbeats stop, a compressed stream writes its
// trailer, and the Context is cancelled. The handler should return after it.
func (s *Stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	var err error
	if s.gz != nil && s.err == nil {
		s.setDeadlineLocked()
		if err = s.gz.Close(); err == nil {
			err = s.rc.Flush()
		}
	}
	if s.err == nil {
		s.err = ErrStreamClosed
	}
	s.cancel(ErrStreamClosed)
	return err
}

// beat sends a heartbeat comment; the timer was not reset by a send within
// the heartbeat period.
func (s *Stream) beat() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.writeLocked([]byte(":\n")) // resets the timer
}

func (s *Stream) writeLocked(p []byte) error {
	s.setDeadlineLocked()
	_, err := s.out.Write(p)
	if err == nil {
		err = s.flushLocked()
	}
	if err != nil {
		s.err = err
		s.cancel(err)
		if s.timer != nil {
			s.timer.Stop()
		}
		return err
	}
	if s.timer != nil {
		s.timer.Reset(s.heartbeat)
	}
	return nil
}

func (s *Stream) setDeadlineLocked() {
	if s.writeTimeout > 0 {
		// ErrNotSupported only means the writer has no deadlines: go on.
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	}
}

func (s *Stream) flushLocked() error {
	if s.gz != nil {
		if err := s.gz.Flush(); err != nil {
			return err
		}
	}
	return s.rc.Flush()
}
