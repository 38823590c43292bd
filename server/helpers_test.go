package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/testhub"
	"github.com/ssekit/sse/jwtauth"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/ssetest"
)

// testHub is a hub with a memory store behind a real HTTP server.
type testHub struct {
	t      testing.TB
	hub    *hub.Hub
	server *server.Server
	http   *httptest.Server
	key    *jwtauth.Key
	url    string // the hub endpoint
}

func newTestHub(t testing.TB, proto string, configure func(*hub.Config, *server.Config)) *testHub {
	t.Helper()
	tb := testhub.New(t, configure)
	var hs *httptest.Server
	if proto == ssetest.HTTP1 {
		// As ssekit serve does: through the server's listener, so that
		// publishers' connections are taken over (pubconn.go).
		hs = httptest.NewUnstartedServer(tb.Server)
		hs.Listener = tb.Server.Listener(hs.Listener, nil, nil)
		hs.Start()
		t.Cleanup(hs.Close)
	} else {
		hs = ssetest.NewServer(t, proto, tb.Server)
	}
	t.Cleanup(tb.Close) // before hs closes: the streams end first
	return &testHub{t: t, hub: tb.Hub, server: tb.Server, http: hs, key: tb.Key, url: hs.URL + "/.well-known/mercure"}
}

func (th *testHub) token(c hub.Claims) string {
	th.t.Helper()
	tok, err := jwtauth.Sign(th.key, c)
	if err != nil {
		th.t.Fatal(err)
	}
	return tok
}

// publisher returns a token that may publish anywhere.
func (th *testHub) publisher() string { return th.token(hub.Claims{Publish: []string{"*"}}) }

// publish posts form with token and returns the status and the body.
func (th *testHub) publish(token string, form url.Values) (int, string) {
	th.t.Helper()
	req, _ := http.NewRequest("POST", th.url, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return th.do(req)
}

func (th *testHub) do(req *http.Request) (int, string) {
	th.t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
	defer cancel()
	resp, err := th.http.Client().Do(req.WithContext(ctx))
	if err != nil {
		th.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// mustPublish publishes data to topics and returns the update's id.
func (th *testHub) mustPublish(data string, topics ...string) string {
	th.t.Helper()
	status, body := th.publish(th.publisher(), url.Values{"topic": topics, "data": {data}})
	if status != http.StatusOK {
		th.t.Fatalf("publish: %d %s", status, body)
	}
	return body
}

// subscription is an open subscriber stream.
type subscription struct {
	t      testing.TB
	resp   *http.Response
	events chan sse.Event
	done   chan error
}

// subscribe opens a stream for the selectors; header may carry a token
// or Last-Event-ID.
func (th *testHub) subscribe(query url.Values, header http.Header) *subscription {
	th.t.Helper()
	s := th.open(query, header)
	go func() {
		for ev, err := range sse.NewDecoder(s.resp.Body).Events() {
			if err != nil {
				s.done <- err
				return
			}
			s.events <- ev
		}
		s.done <- io.EOF
	}()
	return s
}

// open opens a stream without reading it: a stalled client.
func (th *testHub) open(query url.Values, header http.Header) *subscription {
	th.t.Helper()
	req, _ := http.NewRequest("GET", th.url+"?"+query.Encode(), nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := th.head(req)
	if err != nil {
		th.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		th.t.Fatalf("subscribe: %d %s", resp.StatusCode, body)
	}
	s := &subscription{t: th.t, resp: resp, events: make(chan sse.Event, 1024), done: make(chan error, 1)}
	th.t.Cleanup(func() { resp.Body.Close() })
	return s
}

// head sends req and returns its response once the head has come, within
// 10 s; the body (a stream, maybe) may be read until the test ends.
func (th *testHub) head(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	th.t.Cleanup(cancel)
	headTimeout := time.AfterFunc(10*time.Second, cancel)
	defer headTimeout.Stop()
	return th.http.Client().Do(req.WithContext(ctx))
}

func topics(ts ...string) url.Values { return url.Values{"topic": ts} }

// next waits for the next event.
func (s *subscription) next() sse.Event {
	s.t.Helper()
	select {
	case ev := <-s.events:
		return ev
	case err := <-s.done:
		s.t.Fatalf("stream ended (%v) while waiting for an event", err)
	case <-time.After(10 * time.Second):
		s.t.Fatal("no event within 10s")
	}
	return sse.Event{}
}

// nextData waits for the next event and returns its data.
func (s *subscription) nextData() string { s.t.Helper(); return s.next().Data }

// ended waits for the stream to end and returns why.
func (s *subscription) ended() error {
	s.t.Helper()
	select {
	case err := <-s.done:
		return err
	case <-time.After(10 * time.Second):
		s.t.Fatal("stream did not end within 10s")
		return nil
	}
}

// endedWithin waits up to d for the end of a stalled stream: a read that
// fails once the server has closed the connection. It returns nil if the
// stream was still open at the deadline (the body is then closed, which
// also ends a read that was blocked).
func (s *subscription) endedWithin(d time.Duration) error {
	var timedOut atomic.Bool
	stop := time.AfterFunc(d, func() { timedOut.Store(true); s.resp.Body.Close() })
	defer stop.Stop()
	buf := make([]byte, 1<<20)
	for {
		if _, err := s.resp.Body.Read(buf); err != nil {
			if timedOut.Load() {
				return nil
			}
			return err
		}
	}
}

// within waits for ch to be closed or to yield, failing the test after
// timeout.
func within[T any](t testing.TB, timeout time.Duration, what string, ch <-chan T) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("not within %v: %s", timeout, what)
	}
}
