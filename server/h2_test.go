package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/h2test"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/internal/testhub"
	"github.com/ssekit/sse/server"
)

// leanHub is a test hub served through server.Listener: HTTP/2 by
// server/h2serve, over h2c or TLS.
type leanHub struct {
	*testhub.Hub
	addr   string
	url    string
	client *http.Client // speaks HTTP/2 only
	tls    *tls.Config  // the client's, with TLS
}

func newLeanHub(t *testing.T, useTLS bool, configure func(*hub.Config, *server.Config)) *leanHub {
	t.Helper()
	tb := testhub.New(t, configure)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lh := &leanHub{Hub: tb, addr: ln.Addr().String()}
	var serverTLS *tls.Config
	scheme := "http"
	if useTLS {
		// httptest's certificate, and a client that trusts it.
		ts := httptest.NewUnstartedServer(http.NotFoundHandler())
		ts.EnableHTTP2 = true
		ts.StartTLS()
		serverTLS = &tls.Config{Certificates: ts.TLS.Certificates}
		lh.tls = ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
		ts.Close()
		scheme = "https"
	}
	hs := &http.Server{Handler: tb.Server}
	go hs.Serve(tb.Server.Listener(ln, serverTLS, nil))
	t.Cleanup(func() { hs.Close() })
	t.Cleanup(tb.Close) // before hs closes: the streams end first
	lh.url = scheme + "://" + lh.addr + hub.Path
	lh.client = h2test.Client(t, lh.tls)
	return lh
}

// raw opens a raw HTTP/2 connection to the hub.
func (lh *leanHub) raw(t *testing.T, settings ...http2.Setting) *h2test.Conn {
	t.Helper()
	if lh.tls == nil {
		return h2test.Dial(t, lh.addr, settings...).Read()
	}
	cfg := lh.tls.Clone()
	cfg.NextProtos = []string{"h2"}
	nc, err := tls.Dial("tcp", lh.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p := nc.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN chose %q; want h2", p)
	}
	return h2test.Start(t, nc, settings...).Read()
}

// unreadSubscriber subscribes to topic on an unread connection (stream 1)
// and waits until the hub has registered it.
func (lh *leanHub) unreadSubscriber(t *testing.T, topic string) *h2test.Conn {
	t.Helper()
	a := lh.unread(t)
	if err := a.Get(1, hub.Path+"?topic="+topic); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the subscriber registered", 2*time.Second, func() bool {
		return len(lh.Hub.Hub.Subscriptions()) == 1
	})
	return a
}

// unread opens a raw HTTP/2 connection that reads nothing until its Read
// is called, with every window at its largest, so that what stops the
// hub's writes is the socket.
func (lh *leanHub) unread(t *testing.T) *h2test.Conn {
	t.Helper()
	tcp, err := net.Dial("tcp", lh.addr)
	if err != nil {
		t.Fatal(err)
	}
	nc := tcp
	if lh.tls != nil {
		cfg := lh.tls.Clone()
		cfg.NextProtos = []string{"h2"}
		cfg.ServerName, _, _ = net.SplitHostPort(lh.addr)
		tc := tls.Client(tcp, cfg)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		nc = tc
	}
	a := h2test.Start(t, nc, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	if err := a.Fr.WriteWindowUpdate(0, 1<<31-1-65535); err != nil {
		t.Fatal(err)
	}
	return a
}

func (lh *leanHub) publish(t *testing.T, data, topic string) {
	t.Helper()
	tok := lh.Token(t, hub.Claims{Publish: []string{"*"}})
	form := url.Values{"topic": {topic}, "data": {data}}
	req, _ := http.NewRequest("POST", lh.url, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := lh.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("publish: %s %d", resp.Proto, resp.StatusCode)
	}
}

// TestLeanHTTP2 subscribes and publishes over HTTP/2 served by
// server/h2serve, h2c and TLS: the subscriber gets the update on a
// stream the writer pool writes, and idle streams hold no goroutine.
func TestLeanHTTP2(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := map[bool]string{false: "h2c", true: "tls"}[useTLS]
		t.Run(name, func(t *testing.T) {
			lh := newLeanHub(t, useTLS, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", lh.url+"?topic=news", nil)
			resp, err := lh.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("subscribe: %s %d %q", resp.Proto, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			events := make(chan sse.Event, 16)
			go func() {
				for ev, err := range sse.NewDecoder(bufio.NewReader(resp.Body)).Events() {
					if err != nil {
						return
					}
					events <- ev
				}
			}()
			lh.publish(t, "hello", "news")
			select {
			case ev := <-events:
				if ev.Data != "hello" {
					t.Fatalf("event %q; want hello", ev.Data)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no event over HTTP/2 within 10 s")
			}

			// 100 more idle streams on one connection: no goroutine each.
			a := lh.raw(t)
			before := runtime.NumGoroutine()
			for i := range uint32(100) {
				if err := a.Get(2*i+1, hub.Path+"?topic=idle"); err != nil {
					t.Fatal(err)
				}
			}
			heads := 0 // they come in any order
			for heads < 100 {
				a.WaitFor("the streams' heads", func(f http2.Frame) bool { _, ok := f.(*http2.MetaHeadersFrame); return ok })
				heads++
			}
			poll.Until(t, "the handlers returned", 5*time.Second, func() bool {
				return runtime.NumGoroutine()-before < 10
			})
			if n := len(lh.Hub.Hub.Subscriptions()); n != 101 {
				t.Fatalf("%d subscriptions; want 101", n)
			}
		})
	}
}

// TestLeanHTTP2ResetEndsTheSubscriberAtOnce: a tab closing its
// EventSource resets its stream; the subscriber is gone at once, with no
// heartbeat to notice it.
func TestLeanHTTP2ResetEndsTheSubscriberAtOnce(t *testing.T) {
	metrics := &reasons{got: map[string]int{}}
	lh := newLeanHub(t, false, func(h *hub.Config, s *server.Config) {
		h.Metrics = metrics
		s.Heartbeat = -1
		s.MaxSubscribersPerClient = 1
	})
	a := lh.raw(t)
	for i := range uint32(3) {
		id := 2*i + 1
		a.Get(id, hub.Path+"?topic=tab")
		h := a.WaitFor("the stream's head", h2test.IsHeaders(id)).(*http2.MetaHeadersFrame)
		if s := h.PseudoValue("status"); s != "200" {
			t.Fatalf("subscribe %d: status %s; want 200 (the slot of the reset stream freed)", i, s)
		}
		a.Fr.WriteRSTStream(id, http2.ErrCodeCancel)
		poll.Until(t, "the reset subscriber gone", 2*time.Second, func() bool {
			return len(lh.Hub.Hub.Subscriptions()) == 0
		})
	}
	if got := metrics.count(hub.DisconnectGone); got != 3 {
		t.Errorf("%d disconnects counted as gone; want 3", got)
	}
	// The connection's end ends its streams too.
	a.Get(7, hub.Path+"?topic=tab")
	a.WaitFor("the stream's head", h2test.IsHeaders(7))
	a.NC.Close()
	poll.Until(t, "the departed connection's subscriber gone", 2*time.Second, func() bool {
		return len(lh.Hub.Hub.Subscriptions()) == 0
	})
}

// TestLeanHTTP2ZeroWindowIsEndedAsSlow: a client that never opens its
// stream's flow-control window is ended like a slow HTTP/1.1 client (its
// stream reset after a WriteTimeout), and its connection serves on.
func TestLeanHTTP2ZeroWindowIsEndedAsSlow(t *testing.T) {
	metrics := &reasons{got: map[string]int{}}
	lh := newLeanHub(t, false, func(h *hub.Config, s *server.Config) {
		h.Metrics = metrics
		s.WriteTimeout = 300 * time.Millisecond
	})
	a := lh.raw(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	a.Get(1, hub.Path+"?topic=stall")
	a.WaitFor("the stream's head", h2test.IsHeaders(1))
	lh.publish(t, strings.Repeat("x", 1000), "stall")
	r := a.WaitFor("the stalled stream's reset", h2test.IsReset(1)).(*http2.RSTStreamFrame)
	if r.ErrCode != http2.ErrCodeCancel {
		t.Fatalf("reset with %v; want CANCEL", r.ErrCode)
	}
	poll.Until(t, "the slow subscriber counted", 2*time.Second, func() bool { return metrics.count(hub.DisconnectSlow) == 1 })
	a.Get(3, "/healthz")
	a.WaitFor("an answer on the same connection", h2test.IsHeaders(3))
}

// TestLeanHTTP2StalledSocketIsEnded: a client that opens every window but
// stops reading its socket, so that the kernel's buffers fill, is ended
// after the WriteTimeout as a stalled HTTP/1.1 client is (writes to a
// polled h2c socket never wait: what it does not take goes to the
// connection's flusher), and the hub serves others meanwhile.
func TestLeanHTTP2StalledSocketIsEnded(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "h2c", true: "TLS"}[useTLS], func(t *testing.T) {
			lh := newLeanHub(t, useTLS, func(h *hub.Config, s *server.Config) {
				s.WriteTimeout = 300 * time.Millisecond
			})
			lh.unreadSubscriber(t, "stall") // and never read
			big := strings.Repeat("x", 60000)
			for range 200 { // 12 MB: more than the sockets' buffers hold
				lh.publish(t, big, "stall")
			}
			poll.Until(t, "the stalled subscriber ended", 5*time.Second, func() bool {
				return len(lh.Hub.Hub.Subscriptions()) == 0
			})
			b := lh.raw(t)
			b.Get(1, "/healthz")
			b.WaitFor("an answer on another connection", h2test.IsHeaders(1))
		})
	}
}

// TestLeanHTTP2StalledCatchesUp: a subscriber whose socket stops taking
// bytes for a while (within WriteTimeout) gets every event in order once
// it reads again, over h2c and TLS: what a kick's write left (over TLS,
// the rest of a record) goes on in the flusher, and a write that finds the
// out buffer full after a kick emptied it goes on at once (it waited for
// the writer pool's next timer: 8 MB took 16-18 s;
// TestTakeOverWriteLargerThanBuffer is its test in h2serve).
func TestLeanHTTP2StalledCatchesUp(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "h2c", true: "TLS"}[useTLS], func(t *testing.T) {
			lh := newLeanHub(t, useTLS, nil)
			a := lh.unreadSubscriber(t, "catch")
			const n = 400
			pad := strings.Repeat("y", 20000)
			for i := range n { // 8 MB while the client reads nothing: more than the sockets hold
				lh.publish(t, fmt.Sprintf("%03d %s", i, pad), "catch")
			}
			a.Read()
			var got []byte
			want := 0
			for want < n {
				d := a.WaitFor("the events", h2test.IsData).(*h2test.Data)
				if d.ID != 1 {
					continue
				}
				got = append(got, d.Data...)
				for {
					i := bytes.Index(got, []byte("\n\n"))
					if i < 0 {
						break
					}
					ev := string(got[:i])
					got = got[i+2:]
					_, data, ok := strings.Cut(ev, "data:")
					if !ok {
						continue // a comment
					}
					if wantData := fmt.Sprintf("%03d %s", want, pad); strings.TrimPrefix(data, " ") != wantData {
						t.Fatalf("event %d: data %.20q…; want %.20q…", want, data, wantData)
					}
					want++
				}
			}
		})
	}
}

// TestLeanHTTP2GoAwayOnShutdown: shutting down sends GOAWAY and ends the
// subscriber's stream (END_STREAM: an EventSource reconnects elsewhere).
func TestLeanHTTP2GoAwayOnShutdown(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		lh := newLeanHub(t, useTLS, nil)
		a := lh.raw(t)
		a.Get(1, hub.Path+"?topic=bye")
		a.WaitFor("the stream's head", h2test.IsHeaders(1))
		go lh.Close()
		a.WaitFor("GOAWAY", func(f http2.Frame) bool {
			g, ok := f.(*http2.GoAwayFrame)
			return ok && g.ErrCode == http2.ErrCodeNo
		})
		a.WaitFor("the stream's end", func(f http2.Frame) bool {
			d, ok := f.(*h2test.Data)
			return ok && d.ID == 1 && d.End
		})
	}
}

// TestLeanHTTP2FanOut: 50 streams on one connection (net/http's client,
// which opens windows as it reads) on one topic get each of 300 updates,
// in order, while writer goroutines share the connection: frames of
// different streams never interleave badly and flow control keeps up,
// over h2c (written by the writers, then a flusher) and TLS (always the
// flusher).
func TestLeanHTTP2FanOut(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "h2c", true: "tls"}[useTLS], func(t *testing.T) { fanOut(t, useTLS) })
	}
}

func fanOut(t *testing.T, useTLS bool) {
	lh := newLeanHub(t, useTLS, nil)
	const streams, updates = 50, 300
	got := make(chan []string, streams)
	for range streams {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, "GET", lh.url+"?topic=fan", nil)
		resp, err := lh.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			var ids []string
			for ev, err := range sse.NewDecoder(resp.Body).Events() {
				if err != nil {
					t.Logf("a stream ended after %d updates: %v", len(ids), err)
					break
				}
				if ids = append(ids, ev.Data); len(ids) == updates {
					break
				}
			}
			got <- ids
		}()
	}
	payload := strings.Repeat("p", 2000) // 300 × 2 KB: past the 64 KiB windows
	for i := range updates {
		lh.publish(t, payload+strconv.Itoa(i), "fan")
	}
	for range streams {
		select {
		case ids := <-got:
			if len(ids) != updates {
				t.Fatalf("a stream got %d updates; want %d", len(ids), updates)
			}
			for i, d := range ids {
				if d != payload+strconv.Itoa(i) {
					t.Fatalf("update %d out of order or damaged", i)
				}
			}
		case <-time.After(60 * time.Second):
			t.Fatal("the streams did not get every update within 60 s")
		}
	}
}

// TestLeanListenerHTTP1: HTTP/1.1 through server.Listener (which read the
// first bytes to tell it from h2c, and TLS ones after the handshake) is
// still taken over, and its departure is still noticed at once.
func TestLeanListenerHTTP1(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("departures are watched with epoll, on Linux only")
	}
	for _, useTLS := range []bool{false, true} {
		lh := newLeanHub(t, useTLS, func(_ *hub.Config, s *server.Config) { s.Heartbeat = -1 })
		var nc net.Conn
		var err error
		if useTLS {
			cfg := lh.tls.Clone()
			cfg.NextProtos = []string{"http/1.1"}
			nc, err = tls.Dial("tcp", lh.addr, cfg)
		} else {
			nc, err = net.Dial("tcp", lh.addr)
		}
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(nc, "GET "+hub.Path+"?topic=h1 HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil || resp.StatusCode != http.StatusOK || resp.ProtoMajor != 1 {
			t.Fatalf("HTTP/1.1 subscribe (TLS %v): %v %v", useTLS, resp, err)
		}
		poll.Until(t, "the subscriber listed", 2*time.Second, func() bool { return len(lh.Hub.Hub.Subscriptions()) == 1 })
		nc.Close()
		poll.Until(t, "its departure noticed", 2*time.Second, func() bool { return len(lh.Hub.Hub.Subscriptions()) == 0 })
	}
}
