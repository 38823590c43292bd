package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/ssetest"
)

func TestPublishSubscribe(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, nil)
		sub := th.subscribe(topics("https://example.com/books/1"), nil)
		status, id := th.publish(th.publisher(), url.Values{
			"topic": {"https://example.com/books/1"},
			"data":  {"line one\nline two"},
			"type":  {"book"},
			"retry": {"1500"},
			"id":    {"book-1"},
		})
		if status != http.StatusOK || id != "book-1" {
			t.Fatalf("publish = %d %q; want 200 book-1", status, id)
		}
		if got := sub.resp.Header.Get("Link"); got != `</.well-known/mercure>; rel="mercure"` {
			t.Errorf("Link = %q; want the hub's discovery link", got)
		}
		ev := sub.next()
		if ev.ID != "book-1" || ev.Type != "book" || ev.Data != "line one\nline two" || !ev.HasRetry || ev.Retry != 1500*time.Millisecond {
			t.Errorf("got %+v", ev)
		}
		generated := th.mustPublish("no id given", "https://example.com/books/1")
		if ev := sub.next(); !strings.HasPrefix(generated, "urn:uuid:") || ev.ID != generated {
			t.Errorf("generated id %q, event id %q; want the same urn:uuid", generated, ev.ID)
		}
	})
}

func TestSelectors(t *testing.T) {
	tests := []struct {
		name      string
		selectors []string
		matching  []string // each published and expected, in order
		other     []string // each published before the marker, never expected
	}{
		{"exact", []string{"https://example.com/books/1"}, []string{"https://example.com/books/1"}, []string{"https://example.com/books/2", "https://example.com/books/1/reviews"}},
		{"template", []string{"https://example.com/books/{id}"}, []string{"https://example.com/books/1", "https://example.com/books/abc"}, []string{"https://example.com/books/1/reviews", "https://example.com/authors/1"}},
		{"reserved template", []string{"https://example.com/{+path}"}, []string{"https://example.com/a/b/c"}, []string{"https://other.example/a"}},
		{"star", []string{"*"}, []string{"a", "https://example.com/x"}, nil},
		{"several selectors", []string{"a", "b/{x}"}, []string{"a", "b/1"}, []string{"c", "b/1/2"}},
	}
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, nil)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				sub := th.subscribe(topics(append(tt.selectors, "marker:"+tt.name)...), nil)
				for _, topic := range tt.other {
					th.mustPublish("other "+topic, topic)
				}
				for _, topic := range tt.matching {
					th.mustPublish("match "+topic, topic)
				}
				th.mustPublish("marker", "marker:"+tt.name)
				for _, topic := range tt.matching {
					if got := sub.nextData(); got != "match "+topic {
						t.Fatalf("got %q; want %q (a non-matching update leaked, or order broke)", got, "match "+topic)
					}
				}
				if got := sub.nextData(); got != "marker" {
					t.Fatalf("got %q; want the marker", got)
				}
			})
		}
	})
}

func TestAlternateTopicsMatch(t *testing.T) {
	th := newTestHub(t, ssetest.HTTP1, nil)
	sub := th.subscribe(topics("https://example.com/users/42"), nil)
	th.mustPublish("via alternate", "https://example.com/books/1", "https://example.com/users/42")
	if got := sub.nextData(); got != "via alternate" {
		t.Fatalf("got %q", got)
	}
}

func TestPrivateUpdates(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, nil)
		bearer := func(c hub.Claims) http.Header {
			return http.Header{"Authorization": {"Bearer " + th.token(c)}}
		}
		anonymous := th.subscribe(topics("*"), nil)
		wrongTopic := th.subscribe(topics("*"), bearer(hub.Claims{Subscribe: []string{"https://example.com/other/{id}"}}))
		noClaim := th.subscribe(topics("*"), bearer(hub.Claims{}))
		allowed := th.subscribe(topics("*"), bearer(hub.Claims{Subscribe: []string{"https://example.com/secret/{id}"}}))
		viaQuery := th.subscribe(url.Values{"topic": {"*"}, "authorization": {th.token(hub.Claims{Subscribe: []string{"*"}})}}, nil)
		viaCookie := th.subscribe(topics("*"), http.Header{"Cookie": {"mercureAuthorization=" + th.token(hub.Claims{Subscribe: []string{"*"}})}})

		status, body := th.publish(th.publisher(), url.Values{"topic": {"https://example.com/secret/1"}, "data": {"private"}, "private": {"on"}})
		if status != http.StatusOK {
			t.Fatalf("publish private: %d %s", status, body)
		}
		th.mustPublish("public", "https://example.com/public")
		for name, s := range map[string]*subscription{"anonymous": anonymous, "wrong topic": wrongTopic, "no claim": noClaim} {
			if got := s.nextData(); got != "public" {
				t.Errorf("%s subscriber got %q first; want the public update (never the private one)", name, got)
			}
		}
		for name, s := range map[string]*subscription{"allowed": allowed, "query token": viaQuery, "cookie token": viaCookie} {
			if got := s.nextData(); got != "private" {
				t.Errorf("%s subscriber got %q; want the private update", name, got)
			}
		}
	})
}

func TestReplay(t *testing.T) {
	cases := []struct {
		name   string
		query  func(ids []string) url.Values
		header func(ids []string) http.Header
	}{
		{"Last-Event-ID header",
			func([]string) url.Values { return topics("t") },
			func(ids []string) http.Header { return http.Header{"Last-Event-Id": {ids[1]}} }},
		{"lastEventID query",
			func(ids []string) url.Values { return url.Values{"topic": {"t"}, "lastEventID": {ids[1]}} },
			func([]string) http.Header { return nil }},
		{"last_event_id query",
			func(ids []string) url.Values { return url.Values{"topic": {"t"}, "last_event_id": {ids[1]}} },
			func([]string) http.Header { return nil }},
		{"header wins over query",
			func(ids []string) url.Values { return url.Values{"topic": {"t"}, "lastEventID": {ids[3]}} },
			func(ids []string) http.Header { return http.Header{"Last-Event-Id": {ids[1]}} }},
	}
	ssetest.Run(t, func(t *testing.T, proto string) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				th := newTestHub(t, proto, nil)
				var ids []string
				for i := range 5 {
					ids = append(ids, th.mustPublish(fmt.Sprint("u", i), "t"))
				}
				th.mustPublish("elsewhere", "other")
				sub := th.subscribe(c.query(ids), c.header(ids))
				if got := sub.resp.Header.Get("Last-Event-ID"); got != ids[1] {
					t.Errorf("Last-Event-ID header = %q; want %q", got, ids[1])
				}
				if got := sub.resp.Header.Get("Mercure-Last-Event-ID"); got != ids[1] {
					t.Errorf("Mercure-Last-Event-ID header = %q; want %q", got, ids[1])
				}
				for i := 2; i < 5; i++ {
					if ev := sub.next(); ev.ID != ids[i] {
						t.Fatalf("replayed %q; want %q", ev.ID, ids[i])
					}
				}
				live := th.mustPublish("live", "t")
				if ev := sub.next(); ev.ID != live {
					t.Fatalf("after replay got %q; want the live update %q once", ev.ID, live)
				}
			})
		}
		t.Run("earliest", func(t *testing.T) {
			th := newTestHub(t, proto, nil)
			var ids []string
			for i := range 5 {
				ids = append(ids, th.mustPublish(fmt.Sprint("u", i), "t"))
			}
			sub := th.subscribe(url.Values{"topic": {"t"}, "lastEventID": {"earliest"}}, nil)
			for i := range 5 {
				if ev := sub.next(); ev.ID != ids[i] {
					t.Fatalf("got %q; want %q", ev.ID, ids[i])
				}
			}
		})
	})
}

func TestUnknownLastEventIDIsSignalled(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, nil)
		first := th.mustPublish("kept", "t")
		sub := th.subscribe(topics("t"), http.Header{"Last-Event-Id": {"no-such-id"}})
		if got := sub.resp.Header.Get("Last-Event-ID"); got != "earliest" {
			t.Errorf("Last-Event-ID header = %q; want earliest", got)
		}
		gap := sub.next()
		if gap.Type != "ssekit-history-gap" || !strings.Contains(gap.Data, `"lastEventID":"no-such-id"`) {
			t.Errorf("first event = %+v; want the history-gap event", gap)
		}
		if ev := sub.next(); ev.ID != first {
			t.Errorf("then %q; want the retained history (%q)", ev.ID, first)
		}
	})
}

// TestReplayThenLiveUnderLoad publishes continuously while subscribers
// join with a Last-Event-ID: each must see every update after it once, in
// order, across the join of replay and live delivery.
func TestReplayThenLiveUnderLoad(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, nil)
		const total = 300
		ids := make([]string, 0, total)
		var mu sync.Mutex
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range total {
				id := th.mustPublish(fmt.Sprint(i), "load")
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		}()
		var subs []*subscription
		var from []int
		for len(subs) < 5 {
			mu.Lock()
			n := len(ids)
			var last string
			if n > 0 {
				last = ids[n-1]
			}
			mu.Unlock()
			if n == 0 || (len(from) > 0 && n == from[len(from)-1]) {
				select {
				case <-done:
					t.Fatalf("publishing ended with %d subscribers joined; want 5 joining during it", len(subs))
				case <-time.After(time.Millisecond):
				}
				continue
			}
			subs = append(subs, th.subscribe(topics("load"), http.Header{"Last-Event-Id": {last}}))
			from = append(from, n)
		}
		within(t, 30*time.Second, "the publisher finishing", done)
		for i, s := range subs {
			for want := from[i]; want < total; want++ {
				if got := s.nextData(); got != fmt.Sprint(want) {
					t.Fatalf("subscriber %d: got %q; want %d (gap or duplicate)", i, got, want)
				}
			}
		}
	})
}

func TestSlowSubscriberIsDisconnectedOthersStayFast(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, func(h *hub.Config, s *server.Config) {
			h.QueueSize = 4 // what ends the stalled one: its queue overflows
			// Long enough that a loaded machine does not time out the fast
			// subscriber's writes (over HTTP/2 a timed-out write resets its
			// stream).
			s.WriteTimeout = 5 * time.Second
		})
		stalled := th.open(topics("fast"), nil)
		fast := th.subscribe(topics("fast"), nil)
		big := strings.Repeat("x", 64<<10)
		const n = 200 // 12.5 MiB: far beyond what socket buffers hold
		// Publish in step with the fast subscriber: it never has more than
		// one update queued, while the stalled one's pile up.
		for i := range n {
			th.mustPublish(fmt.Sprint(i, big), "fast")
			if got := fast.nextData(); got != fmt.Sprint(i, big) {
				t.Fatalf("fast subscriber: update %d corrupted or out of order", i)
			}
		}
		if err := stalled.endedWithin(30 * time.Second); err == nil {
			t.Fatal("the stalled subscriber was never disconnected")
		}
	})
}

func TestTokenExpiryClosesStream(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, func(_ *hub.Config, s *server.Config) { s.AllowAnonymous = false })
		exp := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second).Add(time.Second)
		sub := th.subscribe(topics("t"), http.Header{"Authorization": {"Bearer " + th.token(hub.Claims{Subscribe: []string{"*"}, ExpiresAt: exp})}})
		th.mustPublish("before expiry", "t")
		if got := sub.nextData(); got != "before expiry" {
			t.Fatalf("got %q", got)
		}
		if err := sub.ended(); err != io.EOF {
			t.Fatalf("stream ended with %v; want the hub closing it (io.EOF)", err)
		}
		if now := time.Now(); now.Before(exp) {
			t.Fatalf("stream closed at %v, before the token's expiry %v", now, exp)
		}
	})
}

func TestShutdownEndsStreams(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, nil)
		sub := th.subscribe(topics("t"), nil)
		th.mustPublish("before", "t")
		sub.next()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := th.server.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if err := sub.ended(); err != io.EOF {
			t.Errorf("stream ended with %v; want the hub closing it (io.EOF)", err)
		}
		req, _ := http.NewRequest("GET", th.http.URL+"/readyz", nil)
		if status, _ := th.do(req); status != http.StatusServiceUnavailable {
			t.Errorf("/readyz after shutdown = %d; want 503", status)
		}
	})
}

func TestHealthAndReadiness(t *testing.T) {
	notReady := fmt.Errorf("store unreachable")
	var ready error
	th := newTestHub(t, ssetest.HTTP1, func(_ *hub.Config, s *server.Config) {
		s.Ready = func(context.Context) error { return ready }
	})
	check := func(path string, want int) {
		t.Helper()
		req, _ := http.NewRequest("GET", th.http.URL+path, nil)
		if status, body := th.do(req); status != want {
			t.Errorf("%s = %d %q; want %d", path, status, body, want)
		}
	}
	check("/healthz", 200)
	check("/readyz", 200)
	ready = notReady
	check("/readyz", 503)
	check("/healthz", 200)
}

// flushOnly hides Hijack, as a middleware's ResponseWriter wrapper does.
type flushOnly struct{ http.ResponseWriter }

func (w flushOnly) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

func TestWrappedResponseWriterIsServedFromTheHandler(t *testing.T) {
	th := newTestHub(t, ssetest.HTTP1, nil)
	wrapped := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		th.server.ServeHTTP(flushOnly{w}, r)
	}))
	defer wrapped.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // bounds the read below too
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", wrapped.URL+"/.well-known/mercure?topic=w", nil)
	resp, err := wrapped.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	th.mustPublish("through a wrapper", "w")
	ev, err := sse.NewDecoder(resp.Body).Next()
	if err != nil || ev.Data != "through a wrapper" {
		t.Fatalf("got %+v, %v", ev, err)
	}
}

// reasons records disconnect reasons.
type reasons struct {
	hub.NopMetrics
	mu  sync.Mutex
	got map[string]int
}

func (r *reasons) SubscriberDisconnected(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[reason]++
}

func (r *reasons) count(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[reason]
}

// TestStalledClientIsEndedAsSlow has a client that stops reading while its
// queue in the hub stays far from full: the connection's full socket
// buffer is what ends it, after the write timeout, counted as slow, and no
// writer is held meanwhile (a second subscriber keeps receiving).
func TestStalledClientIsEndedAsSlow(t *testing.T) {
	metrics := &reasons{got: map[string]int{}}
	th := newTestHub(t, ssetest.HTTP1, func(h *hub.Config, s *server.Config) {
		h.Metrics = metrics
		h.QueueSize = 100000
		s.WriteTimeout = 300 * time.Millisecond
		s.Writers = 1 // a stalled write holding the only writer would starve the other subscriber
	})
	stalled := th.open(topics("s"), nil)
	fast := th.subscribe(topics("s"), nil)
	big := strings.Repeat("y", 256<<10)
	// Up to 100 MiB, far more than any socket buffer; the verdict comes
	// a write timeout after the buffers fill, which a fast machine may not
	// have reached by the last publish.
	for i := 0; i < 400 && metrics.count(hub.DisconnectSlow) == 0; i++ {
		th.mustPublish(fmt.Sprint(i, big), "s")
		if got := fast.nextData(); got != fmt.Sprint(i, big) {
			t.Fatalf("fast subscriber: update %d wrong", i)
		}
	}
	poll.Until(t, "the stalled client ended as slow", 30*time.Second, func() bool { return metrics.count(hub.DisconnectSlow) > 0 })
	if err := stalled.endedWithin(30 * time.Second); err == nil {
		t.Fatal("the stalled client's connection stayed open")
	}
}

// levelCounter is a slog handler that counts records at or above Error.
type levelCounter struct{ errors atomic.Int64 }

func (h *levelCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *levelCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.errors.Add(1)
	}
	return nil
}
func (h *levelCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *levelCounter) WithGroup(string) slog.Handler      { return h }

// TestShutdownRefusalsAreNotErrors: the 503s a shutting-down hub answers
// are what it means to say, not failures worth an error in the log.
func TestShutdownRefusalsAreNotErrors(t *testing.T) {
	logs := &levelCounter{}
	th := newTestHub(t, ssetest.HTTP1, func(_ *hub.Config, s *server.Config) { s.Logger = slog.New(logs) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := th.server.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	req, _ := http.NewRequest("GET", th.url+"?topic=t", nil)
	if status, _ := th.do(req); status != http.StatusServiceUnavailable {
		t.Errorf("subscribe after shutdown = %d; want 503", status)
	}
	if status, _ := th.publish(th.publisher(), url.Values{"topic": {"t"}, "data": {"x"}}); status != http.StatusServiceUnavailable {
		t.Errorf("publish after shutdown = %d; want 503", status)
	}
	if n := logs.errors.Load(); n != 0 {
		t.Errorf("%d error records logged for shutdown refusals; want none", n)
	}
}

// TestTrickleReaderIsEndedAsSlow has a client that keeps reading, but
// slower than MinWriteRate while it is behind: progress now and then no
// longer keeps its slot. It reads 1 KiB every 50 ms (20 KiB/s), often
// enough that "any progress within the write timeout" would keep it
// forever (with a write timeout of 3 s), against a minimum of 64 KiB/s; a
// fast subscriber meanwhile receives everything. The trickle reader is
// reset, not left to drain what the kernel buffered for it.
func TestTrickleReaderIsEndedAsSlow(t *testing.T) {
	metrics := &reasons{got: map[string]int{}}
	th := newTestHub(t, ssetest.HTTP1, func(h *hub.Config, s *server.Config) {
		h.Metrics = metrics
		h.QueueSize = 100000 // the hub's queue bound is not what ends it
		s.WriteTimeout = 3 * time.Second
		s.MinWriteRate = 64 << 10
	})
	nc, br := th.rawSubscribe(topics("s"))
	nc.(*net.TCPConn).SetReadBuffer(16 << 10)
	trickleDone := make(chan error, 1)
	go func() {
		buf := make([]byte, 1<<10)
		for {
			time.Sleep(50 * time.Millisecond)
			if _, err := io.ReadFull(br, buf); err != nil {
				trickleDone <- err
				return
			}
		}
	}()
	fast := th.subscribe(topics("s"), nil)
	big := strings.Repeat("z", 64<<10)
	for i := 0; metrics.count(hub.DisconnectSlow) == 0; i++ {
		if i == 1000 { // 64 MiB: far more than the socket buffers and 30 s of trickling
			t.Fatal("the trickle reader was never ended")
		}
		th.mustPublish(fmt.Sprint(i, big), "s")
		if got := fast.nextData(); got != fmt.Sprint(i, big) {
			t.Fatalf("fast subscriber: update %d wrong", i)
		}
		time.Sleep(10 * time.Millisecond)
	}
	within(t, 10*time.Second, "the trickle reader's connection closed", trickleDone)
	if got := metrics.count(hub.DisconnectGone); got != 0 {
		t.Errorf("%d disconnects counted as gone; want the trickle reader counted as slow only", got)
	}
}

// TestLiveOnlySubscriberLearnsNoCursor: a subscriber that sent no
// Last-Event-ID gets no cursor header, so it never learns the id of the
// hub's newest update, which may be private; one that sent a cursor gets
// its own id back, or earliest.
func TestLiveOnlySubscriberLearnsNoCursor(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, nil)
		public := th.mustPublish("public", "t")
		status, secret := th.publish(th.publisher(), url.Values{"topic": {"t"}, "data": {"secret"}, "private": {"on"}, "id": {"private-1"}})
		if status != http.StatusOK {
			t.Fatalf("publish private: %d %s", status, secret)
		}
		live := th.subscribe(topics("t"), nil)
		for _, h := range []string{"Last-Event-ID", "Mercure-Last-Event-ID"} {
			if got, ok := live.resp.Header[http.CanonicalHeaderKey(h)]; ok {
				t.Errorf("live-only subscriber got %s: %q; want no cursor (the newest id is private)", h, got)
			}
		}
		resumed := th.subscribe(topics("t"), http.Header{"Last-Event-Id": {public}})
		if got := resumed.resp.Header.Get("Last-Event-ID"); got != public {
			t.Errorf("resuming subscriber got Last-Event-ID %q; want its own %q", got, public)
		}
		th.mustPublish("after", "t")
		if got := resumed.nextData(); got != "after" {
			t.Errorf("anonymous resumer got %q; want the public update after its cursor, never the private one", got)
		}
	})
}

// TestTrickleReaderIsEndedAsSlowHTTP2 is TestTrickleReaderIsEndedAsSlow
// over HTTP/2, where the stream keeps its handler: a write that waits for
// the client counts as time behind, judged against MinWriteRate, and one
// that times out is the client's slowness too, counted as slow (it was
// counted as gone).
func TestTrickleReaderIsEndedAsSlowHTTP2(t *testing.T) {
	metrics := &reasons{got: map[string]int{}}
	th := newTestHub(t, ssetest.HTTP2, func(h *hub.Config, s *server.Config) {
		h.Metrics = metrics
		h.QueueSize = 100000
		s.WriteTimeout = 3 * time.Second
		s.MinWriteRate = 64 << 10
	})
	trickle := th.open(topics("s"), nil)
	go func() {
		buf := make([]byte, 1<<10)
		for {
			time.Sleep(50 * time.Millisecond)
			if _, err := io.ReadFull(trickle.resp.Body, buf); err != nil {
				return
			}
		}
	}()
	big := strings.Repeat("z", 64<<10)
	for i := 0; metrics.count(hub.DisconnectSlow) == 0; i++ {
		if i == 1000 {
			t.Fatal("the trickle reader was never ended")
		}
		th.mustPublish(fmt.Sprint(i, big), "s")
		time.Sleep(10 * time.Millisecond)
	}
	poll.Until(t, "the trickle reader's subscription gone", 5*time.Second, func() bool { return len(th.hub.Subscriptions()) == 0 })
	if got := metrics.count(hub.DisconnectGone); got != 0 {
		t.Errorf("%d disconnects counted as gone; want the trickle reader counted as slow only", got)
	}
}
