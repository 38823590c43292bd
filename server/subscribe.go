package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/server/h2serve"
)

// subscribe handles GET (and QUERY, HEAD) /.well-known/mercure?topic=…
// or ?match…= (draft-08; see subscribeParams): it checks the
// request, registers the subscriber with the hub (which reads the history
// to replay), sends the headers, and hands the stream over: HTTP/1.1
// connections are taken over from net/http and written by the writer pool
// (no goroutine per idle subscriber), HTTP/2 streams keep their handler.
func (s *Server) subscribe(w http.ResponseWriter, r *http.Request) {
	if s.shuttingDown.Load() {
		s.fail(w, r, tooBusy(http.StatusServiceUnavailable, "shutting down", retryAfterShuttingDown))
		return
	}
	params, err := s.subscribeParams(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	claims, err := s.subscriberClaims(r, params)
	if err == nil {
		err = s.checkPolicy(r, params)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if r.Method == http.MethodHead { // the answer a GET would get, without a stream
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		return
	}
	lastEventID := params.lastEventID
	if !params.cursorAsked && s.cfg.LatestState != nil {
		lastEventID = s.latestCursor(params)
	}
	client := s.clientAddr(r)
	if err := s.limits.acquire(client); err != nil {
		s.fail(w, r, err)
		return
	}

	c := &subConn{}
	if claims != nil && !claims.ExpiresAt.IsZero() {
		c.expires = claims.ExpiresAt.UnixNano()
	}
	sub, info, err := s.hub.Subscribe(r.Context(), hub.SubscribeRequest{
		Selectors: params.selectors,
		Matchers:  params.matchers,
		// Payloads per matcher for subscription events and the API.
		MatcherPayloads: s.matcherPayloads(claims, params.matchers),
		Claims:          claims,
		ClaimMatchers:   s.subscribeGrants(claims),
		LastEventID:     lastEventID,
		RemoteAddr:      client,
		Notify:          c.notify,
	})
	if err != nil {
		s.limits.release(client)
		s.fail(w, r, err)
		return
	}
	c.sub = sub

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	// The cursor is answered only to a subscriber that asked with one
	// (draft-08: even an empty one), under both drafts' names, and is then
	// its own id, "earliest" or, for an empty cursor, the last public
	// update: the hub's newest id may be a private update it could not
	// receive, and naming it would tell that such an update exists. A
	// subscriber that sent no cursor gets none.
	if params.cursorAsked && info.ResumedAfter != "" {
		h.Set("Last-Event-ID", info.ResumedAfter)
		h.Set("Mercure-Last-Event-ID", info.ResumedAfter)
	}
	preamble := sse.AppendComment(nil, "") // makes the stream visibly open at once
	if lastEventID != "" && lastEventID != hub.EarliestID && !info.Found {
		preamble = appendHistoryGap(preamble, lastEventID)
	}

	if t, ok := w.(h2serve.TakeOver); ok { // HTTP/2 served by server/h2serve
		st, err := t.TakeOver()
		if err != nil {
			s.endConn(c, reasonGone)
			return
		}
		s.pool.addStream(c, st, preamble)
		return
	}
	if r.ProtoMajor == 1 {
		nc, err := hijack(w, preamble, s.cfg.WriteTimeout)
		switch {
		case err == nil:
			s.pool.add(c, nc)
			return
		case !errors.Is(err, errNotHijackable):
			s.endConn(c, reasonGone) // taken over, but the client is gone
			return
		}
		// A wrapped ResponseWriter that cannot be taken over: serve it
		// from this goroutine, as HTTP/2.
	}
	s.serveStream(w, r, c, preamble)
}

// subscriberClaims verifies the subscriber's token, if any. Without one the
// subscriber is anonymous, which only AllowAnonymous permits.
func (s *Server) subscriberClaims(r *http.Request, params *subscribeParams) (*hub.Claims, error) {
	token, src, err := s.requestToken(r, true)
	if err != nil {
		return nil, err
	}
	if token == "" && s.cfg.SubscribeHook != nil {
		return s.hookClaims(r, s.cfg.SubscribeHook, &HookRequest{Topics: params.selectors, Matchers: selectorStrings(params.matchers)})
	}
	if token == "" {
		if !s.cfg.AllowAnonymous {
			return nil, tokenRequired("subscribing needs a token (Authorization: Bearer, or the " + s.cfg.CookieName + " cookie)")
		}
		return nil, nil
	}
	if err := s.checkCookieOrigin(r, src); err != nil {
		return nil, err
	}
	claims, err := s.verify(token, false)
	if err != nil {
		return nil, err
	}
	return claims, checkTokenSource(claims, src)
}

// historyGap is the data of the event that tells a subscriber its
// Last-Event-ID is not in the retained history, so what follows is the
// whole retained history and updates in between may be missing.
type historyGap struct {
	LastEventID  string `json:"lastEventID"`
	ResumedAfter string `json:"resumedAfter"`
}

func appendHistoryGap(dst []byte, lastEventID string) []byte {
	data, _ := json.Marshal(historyGap{LastEventID: lastEventID, ResumedAfter: hub.EarliestID})
	ev := sse.Event{Type: hub.HistoryGapEvent, Data: string(data)}
	dst, _ = ev.AppendTo(dst)
	return dst
}

// serveStream writes a subscriber's stream from its handler goroutine: for
// HTTP/2, where a connection carries many streams and cannot be taken over.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, c *subConn, preamble []byte) {
	s.streams.Add(1)
	defer s.streams.Done()
	wake := make(chan struct{}, 1)
	c.wake = func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	c.started.Store(true)
	rc := http.NewResponseController(w)
	// A write that had to wait for the client (longer than writeSlice)
	// counts as time behind: as for taken-over connections, a client
	// behind for a WriteTimeout must have read MinWriteRate bytes per
	// second of it, or it is ended as slow.
	var behind time.Duration
	var behindBytes int
	write := func(p []byte) error {
		start := time.Now()
		_ = rc.SetWriteDeadline(start.Add(s.cfg.WriteTimeout))
		if _, err := w.Write(p); err != nil {
			return err
		}
		if err := rc.Flush(); err != nil {
			return err
		}
		if d := time.Since(start); d > writeSlice {
			behind += d
			behindBytes += len(p)
			if behind >= s.cfg.WriteTimeout {
				if float64(behindBytes) < float64(s.pool.minRate)*behind.Seconds() {
					return errTooSlow
				}
				behind, behindBytes = 0, 0
			}
		}
		return nil
	}
	// gone is the reason a failed write ends the stream with.
	gone := func(err error) string {
		if errors.Is(err, errTooSlow) || errors.Is(err, os.ErrDeadlineExceeded) {
			return reasonSlow
		}
		return reasonGone
	}
	w.WriteHeader(http.StatusOK)
	if err := write(preamble); err != nil {
		s.endConn(c, gone(err))
		return
	}

	var heartbeat <-chan time.Time
	if s.cfg.Heartbeat > 0 {
		t := time.NewTicker(s.cfg.Heartbeat)
		defer t.Stop()
		heartbeat = t.C
	}
	var expiry <-chan time.Time
	if c.expires != 0 {
		t := time.NewTimer(time.Until(time.Unix(0, c.expires)))
		defer t.Stop()
		expiry = t.C
	}
	var buf []byte
	wrote := true // nothing to heartbeat for before the first tick
	for first := true; ; first = false {
		if !first {
			select {
			case <-wake:
			case <-heartbeat:
				if !wrote {
					if err := write([]byte(":\n")); err != nil {
						s.endConn(c, gone(err))
						return
					}
				}
				wrote = false
				continue
			case <-expiry:
				s.endConn(c, reasonAuth)
				return
			case <-r.Context().Done():
				s.endConn(c, reasonGone)
				return
			}
		}
		var err error
		buf, err = c.sub.Drain(buf[:0])
		if len(buf) > 0 {
			if werr := write(buf); werr != nil {
				s.endConn(c, gone(werr))
				return
			}
			wrote = true
			buf = shrink(buf)
		}
		if err != nil {
			s.endConn(c, reasonOf(err))
			return
		}
	}
}

// Disconnect reasons, as counted in metrics and logs.
const (
	reasonGone     = hub.DisconnectGone
	reasonSlow     = hub.DisconnectSlow
	reasonAuth     = hub.DisconnectAuth
	reasonShutdown = hub.DisconnectShutdown
)

// errTooSlow ends an HTTP/2 stream whose client reads under MinWriteRate.
var errTooSlow = errors.New("server: subscriber reads under the minimum rate")

func reasonOf(err error) string {
	switch {
	case errors.Is(err, hub.ErrSlowSubscriber):
		return reasonSlow
	case errors.Is(err, hub.ErrHubClosed):
		return reasonShutdown
	default:
		return reasonGone
	}
}

// endConn ends a subscriber once: its connection is closed, the hub
// forgets it, and its limit slot is freed.
func (s *Server) endConn(c *subConn, reason string) {
	if !c.ended.CompareAndSwap(false, true) {
		return
	}
	if c.nc != nil {
		s.pool.remove(c)
		if l, ok := c.nc.(interface{ SetLinger(int) error }); ok && reason == reasonSlow {
			// Reset, not close: what the kernel still buffers for a
			// client too slow to take it (megabytes) is dropped at once.
			_ = l.SetLinger(0)
		}
		c.nc.Close()
	}
	switch reason { // each a no-op for a subscriber the hub ended itself
	case reasonAuth:
		c.sub.EndExpired()
	case reasonSlow:
		c.sub.EndSlow()
	default:
		c.sub.Close()
	}
	s.limits.release(c.sub.RemoteAddr()) // the client's address, as acquired
}

// subConn is one subscriber's connection.
type subConn struct {
	sub     *hub.Subscriber // its RemoteAddr is the limiter's key for the client
	expires int64           // unix nanoseconds; 0: the token never expires (or no token)

	pool    *writerPool // set before started when the writer pool serves it
	wake    func()      // else set before started; wakes serveStream
	started atomic.Bool // notify may act
	ended   atomic.Bool

	pooled // the writer pool's state; unused for HTTP/2 streams
}

// notify is the hub's Notify callback: it must not block.
func (c *subConn) notify() {
	if c.started.Load() {
		if c.pool != nil {
			c.pool.schedule(c)
		} else {
			c.wake()
		}
	}
}

// shrink drops a write buffer that grew for one large batch, so an idle
// subscriber does not keep it.
func shrink(buf []byte) []byte {
	if cap(buf) > 64<<10 {
		return nil
	}
	return buf[:0]
}
