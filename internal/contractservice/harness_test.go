package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// These helpers play the suite's harness: the service runs in an httptest
// server, a callback server collects what its clients report, and stream
// servers feed the clients.

// awaitTimeout bounds every wait for the service, as the suite does.
const awaitTimeout = 10 * time.Second

// harness is the service under test.
type harness struct {
	svc *service
	url string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	svc := newService(slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	t.Cleanup(svc.Close) // first: the clients stop before the servers do
	return &harness{svc: svc, url: srv.URL}
}

func (h *harness) do(t *testing.T, method, url string, body any) *http.Response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	// Not t.Context: do also runs in cleanups, when that is already done.
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, url, err)
		return &http.Response{StatusCode: 599, Header: http.Header{}}
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// create asks for a client and returns its resource URL.
func (h *harness) create(t *testing.T, p createParams) string {
	t.Helper()
	resp := h.do(t, http.MethodPost, h.url+"/", p)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("create: status %d; want 2xx", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, h.url+"/streams/") {
		t.Fatalf("create: Location %q; want %s/streams/…", loc, h.url)
	}
	t.Cleanup(func() { h.do(t, http.MethodDelete, loc, nil) })
	return loc
}

func (h *harness) command(t *testing.T, loc string, cmd string) {
	t.Helper()
	if resp := h.do(t, http.MethodPost, loc, cmd); resp.StatusCode/100 != 2 {
		t.Fatalf("command %s: status %d; want 2xx", cmd, resp.StatusCode)
	}
}

func (h *harness) restart(t *testing.T, loc string) {
	t.Helper()
	h.command(t, loc, `{"command":"restart"}`)
}

func (h *harness) listen(t *testing.T, loc, eventType string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"command": "listen", "listen": map[string]string{"type": eventType}})
	h.command(t, loc, string(body))
}

// clientDone waits until the client behind loc has stopped for good.
func (h *harness) clientDone(t *testing.T, loc string) {
	t.Helper()
	h.svc.mu.Lock()
	c := h.svc.streams[loc[strings.LastIndexByte(loc, '/')+1:]]
	h.svc.mu.Unlock()
	if c == nil {
		t.Fatalf("no client for %s", loc)
	}
	select {
	case <-c.done:
	case <-time.After(awaitTimeout):
		t.Fatal("client did not stop")
	}
}

// received is one callback, as the harness decodes it.
type received struct {
	Kind    string         `json:"kind"`
	Event   *callbackEvent `json:"event"`
	Comment string         `json:"comment"`
	Error   string         `json:"error"`
}

func (m received) String() string {
	data, _ := json.Marshal(m)
	return string(data)
}

// callbacks is the harness's callback endpoint for one client: it takes
// messages posted to /1, /2, … and hands them out in that order.
type callbacks struct {
	url string

	mu     sync.Mutex
	got    map[int]received // guarded by mu
	bad    []string         // guarded by mu: malformed callbacks
	next   int              // the number of the next message to hand out
	notify chan struct{}
}

func newCallbacks(t *testing.T) *callbacks {
	c := &callbacks{got: map[int]received{}, next: 1, notify: make(chan struct{}, 1)}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.bad) > 0 {
			t.Errorf("malformed callbacks: %q", c.bad)
		}
	})
	c.url = srv.URL + "/endpoints/7"
	return c
}

func (c *callbacks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/endpoints/7/"))
	var m received
	switch {
	case r.Method != http.MethodPost || err != nil || n < 1:
		c.bad = append(c.bad, r.Method+" "+r.URL.Path)
	case json.Unmarshal(body, &m) != nil || m.Kind == "":
		c.bad = append(c.bad, string(body))
	default:
		if _, dup := c.got[n]; dup {
			c.bad = append(c.bad, "duplicate "+r.URL.Path)
		}
		c.got[n] = m
	}
	select {
	case c.notify <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusAccepted)
}

// await returns the next message in callback order.
func (c *callbacks) await(t *testing.T) received {
	t.Helper()
	deadline := time.After(awaitTimeout)
	for {
		c.mu.Lock()
		m, ok := c.got[c.next]
		if ok {
			c.next++
		}
		c.mu.Unlock()
		if ok {
			return m
		}
		select {
		case <-c.notify:
		case <-deadline:
			t.Fatalf("timed out waiting for callback %d", c.next)
		}
	}
}

func (c *callbacks) requireKind(t *testing.T, kind string) received {
	t.Helper()
	m := c.await(t)
	if m.Kind != kind {
		t.Fatalf("callback: got %s; want kind %q", m, kind)
	}
	return m
}

// requireEvents checks the next messages are these events; an empty type
// means "message".
func (c *callbacks) requireEvents(t *testing.T, want ...callbackEvent) {
	t.Helper()
	for _, w := range want {
		if w.Type == "" {
			w.Type = "message"
		}
		m := c.requireKind(t, "event")
		if m.Event == nil || *m.Event != w {
			t.Fatalf("event: got %s; want %+v", m, w)
		}
	}
}

func (c *callbacks) requireComment(t *testing.T, want string) {
	t.Helper()
	if m := c.requireKind(t, "comment"); m.Comment != want {
		t.Fatalf("comment: got %q; want %q", m.Comment, want)
	}
}

func (c *callbacks) requireError(t *testing.T) string {
	t.Helper()
	m := c.requireKind(t, "error")
	if m.Error == "" {
		t.Fatalf("error callback without a message: %s", m)
	}
	return m.Error
}

// requestInfo is what a stream server saw of one request.
type requestInfo struct {
	Method string
	Header http.Header
	Body   string
}

// streamServer is the harness's mock stream: each connection is handed to
// the test, which sends on it.
type streamServer struct {
	url   string
	conns chan *streamConn
	stop  chan struct{}
}

func newStreamServer(t *testing.T) *streamServer {
	s := &streamServer{conns: make(chan *streamConn, 10), stop: make(chan struct{})}
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		close(s.stop) // end open responses, or Close would wait for them
		srv.Close()
	})
	s.url = srv.URL
	return s
}

// streamConn is one open stream response.
type streamConn struct {
	req  requestInfo
	ops  chan func(w http.ResponseWriter) bool
	done chan struct{}
}

func (s *streamServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c := &streamConn{
		req:  requestInfo{Method: r.Method, Header: r.Header.Clone(), Body: string(body)},
		ops:  make(chan func(http.ResponseWriter) bool),
		done: make(chan struct{}),
	}
	defer close(c.done)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	http.NewResponseController(w).Flush()
	// A connection nobody awaits (a reconnection the test does not look
	// at) must not block: httptest's Close waits for every handler.
	select {
	case s.conns <- c:
	case <-r.Context().Done():
		return
	case <-s.stop:
		return
	}
	for {
		select {
		case op := <-c.ops:
			if !op(w) {
				return
			}
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		}
	}
}

// await returns the next connection.
func (s *streamServer) await(t *testing.T) *streamConn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(awaitTimeout):
		t.Fatal("timed out waiting for a connection")
		return nil
	}
}

func (c *streamConn) do(t *testing.T, op func(http.ResponseWriter) bool) {
	t.Helper()
	select {
	case c.ops <- op:
	case <-c.done:
		t.Fatal("stream connection already closed")
	case <-time.After(awaitTimeout):
		t.Fatal("timed out sending on the stream")
	}
}

// send writes text and flushes it.
func (c *streamConn) send(t *testing.T, text string) {
	t.Helper()
	c.do(t, func(w http.ResponseWriter) bool {
		io.WriteString(w, text)
		http.NewResponseController(w).Flush()
		return true
	})
}

// sendInChunks sends text n bytes at a time, each flushed on its own.
func (c *streamConn) sendInChunks(t *testing.T, text string, n int) {
	t.Helper()
	for len(text) > 0 {
		k := min(n, len(text))
		c.send(t, text[:k])
		text = text[k:]
	}
}

// breakConnection ends the response abruptly, as a network failure.
func (c *streamConn) breakConnection(t *testing.T) {
	t.Helper()
	c.do(t, func(http.ResponseWriter) bool { panic(http.ErrAbortHandler) })
}

// startClient starts a client of the service on a new stream server and
// returns all three parts of the test, with the first connection.
func startClient(t *testing.T, h *harness, p createParams) (*streamServer, *streamConn, *callbacks, string) {
	t.Helper()
	s := newStreamServer(t)
	cb := newCallbacks(t)
	p.StreamURL, p.CallbackURL = s.url, cb.url
	if p.Tag == "" {
		p.Tag = t.Name()
	}
	loc := h.create(t, p)
	return s, s.await(t), cb, loc
}

// endpoint is a one-off server answering every request with handler and
// counting the requests.
type endpoint struct {
	url string

	mu       sync.Mutex
	requests int // guarded by mu
}

func newEndpoint(t *testing.T, handler http.HandlerFunc) *endpoint {
	e := &endpoint{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.requests++
		e.mu.Unlock()
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

func (e *endpoint) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.requests
}

func ptr[T any](v T) *T { return &v }

func ms(n int64) *int64 { return ptr(n) }
