package sse_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/ssetest"
)

// testDeadline bounds every client test: a test that would hang fails
// instead.
const testDeadline = 20 * time.Second

// proto is one HTTP version a client test runs over.
type proto struct {
	name  string // ssetest.HTTP1 or ssetest.HTTP2
	major int
}

// eachProto runs f over HTTP/1.1 and over HTTP/2 (TLS).
func eachProto(t *testing.T, f func(t *testing.T, p proto)) {
	for _, p := range []proto{{ssetest.HTTP1, 1}, {ssetest.HTTP2, 2}} {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			f(t, p)
		})
	}
}

// serve starts h on a server speaking p and returns its URL and an HTTP
// client for it. A request arriving over another protocol fails the test.
func (p proto) serve(t *testing.T, h http.Handler) (string, *http.Client) {
	t.Helper()
	srv := ssetest.NewServer(t, p.name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != p.major {
			t.Errorf("request over %s; want HTTP/%d", r.Proto, p.major)
		}
		h.ServeHTTP(w, r)
	}))
	return srv.URL, srv.Client()
}

// request is what a test server saw of one request.
type request struct {
	Method string
	Path   string
	Header http.Header
	Body   string
}

// lastEventID returns the Last-Event-ID header, or "<none>" when the
// request had none (an empty header must not be sent).
func (r request) lastEventID() string {
	v := r.Header.Values("Last-Event-Id")
	if len(v) == 0 {
		return "<none>"
	}
	return strings.Join(v, ",")
}

// step serves one request of a script.
type step func(w http.ResponseWriter, r *http.Request)

// script is a test server that serves its i-th request with steps[i]
// (a 204, which stops a client, once the steps run out) and records every
// request.
type script struct {
	steps []step

	mu   sync.Mutex
	reqs []request // guarded by mu
}

func newScript(steps ...step) *script {
	return &script{steps: steps}
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(body)}
	s.mu.Lock()
	n := len(s.reqs)
	s.reqs = append(s.reqs, req)
	s.mu.Unlock()
	if n < len(s.steps) {
		s.steps[n](w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// requests returns the requests seen so far.
func (s *script) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

func streamHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
}

// send writes body as an event stream and ends the response.
func send(body string) step {
	return func(w http.ResponseWriter, r *http.Request) {
		streamHeaders(w)
		io.WriteString(w, body)
	}
}

// hold writes body, flushes, signals sent (when not nil), and keeps the
// response open until the client goes away.
func hold(body string, sent chan<- struct{}) step {
	return func(w http.ResponseWriter, r *http.Request) {
		streamHeaders(w)
		io.WriteString(w, body)
		http.NewResponseController(w).Flush()
		if sent != nil {
			sent <- struct{}{}
		}
		<-r.Context().Done()
	}
}

// status answers with code and a short body.
func status(code int, header ...string) step {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		if code != http.StatusNoContent && code != http.StatusNotModified {
			io.WriteString(w, `{"error":"nope"}`)
		}
	}
}

// withType writes body as a response with the given Content-Type header
// ("" sends none, with no sniffing).
func withType(contentType, body string) step {
	return func(w http.ResponseWriter, r *http.Request) {
		if contentType == "" {
			w.Header()["Content-Type"] = nil
		} else {
			w.Header().Set("Content-Type", contentType)
		}
		io.WriteString(w, body)
	}
}

// abort writes body, flushes and breaks the connection (an HTTP/2 stream
// reset), so the client sees a network error rather than a clean end.
func abort(body string) step {
	return func(w http.ResponseWriter, r *http.Request) {
		streamHeaders(w)
		io.WriteString(w, body)
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}
}

// fastClient returns a Client over hc with millisecond reconnection times.
func fastClient(hc *http.Client) *sse.Client {
	return &sse.Client{HTTPClient: hc, Retry: time.Millisecond, MaxRetry: 4 * time.Millisecond}
}

// connect connects c to url with a GET bounded by testDeadline and closes
// the EventSource at the end of the test.
func connect(t *testing.T, c *sse.Client, url string, header ...string) *sse.EventSource {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	es := c.Connect(req)
	t.Cleanup(func() { es.Close() })
	return es
}

// ev is the part of an Event the tests compare.
type ev struct{ Type, Data, ID string }

func (e ev) String() string { return fmt.Sprintf("{%q %q id=%q}", e.Type, e.Data, e.ID) }

// collect reads n events, failing on an error.
func collect(t *testing.T, es *sse.EventSource, n int) []ev {
	t.Helper()
	var got []ev
	for len(got) < n {
		e, err := es.Next()
		if err != nil {
			t.Fatalf("after %d events %v: Next: %v", len(got), got, err)
		}
		got = append(got, ev{e.Type, e.Data, e.ID})
	}
	return got
}

func wantEvents(t *testing.T, got, want []ev) {
	t.Helper()
	if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("events:\n got %v\nwant %v", got, want)
	}
}

// wantStatus checks that Next ends the stream with a StatusError of code.
func wantStatus(t *testing.T, es *sse.EventSource, code int) *sse.StatusError {
	t.Helper()
	_, err := es.Next()
	var se *sse.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("Next: got %v; want a *StatusError %d", err, code)
	}
	if se.StatusCode != code {
		t.Fatalf("StatusError.StatusCode: got %d; want %d", se.StatusCode, code)
	}
	if _, again := es.Next(); again != err {
		t.Errorf("Next after the end: got %v; want %v again", again, err)
	}
	return se
}

func wantRequests(t *testing.T, s *script, n int) []request {
	t.Helper()
	reqs := s.requests()
	if len(reqs) != n {
		t.Fatalf("requests: got %d; want %d", len(reqs), n)
	}
	return reqs
}

func TestClientR14LastEventIDAcrossReconnects(t *testing.T) {
	eachProto(t, func(t *testing.T, p proto) {
		s := newScript(
			send("id: 1\ndata: a\n\n"),
			send("data: b\n\nid: 2\n\n"),     // an id-only block still sets it
			send("id\ndata: c\n\n"),          // reset to ""
			send("id: 9\ndata: lost\n"),      // unterminated: the id does not count
			send("data: d\n\nid: x\x00\n\n"), // an id with NUL is ignored
		)
		url, hc := p.serve(t, s)
		es := connect(t, fastClient(hc), url)
		got := collect(t, es, 4)
		wantEvents(t, got, []ev{{"message", "a", "1"}, {"message", "b", "1"}, {"message", "c", ""}, {"message", "d", ""}})
		wantStatus(t, es, http.StatusNoContent)
		reqs := wantRequests(t, s, 6)
		var ids []string
		for _, r := range reqs {
			ids = append(ids, r.lastEventID())
		}
		want := []string{"<none>", "1", "2", "<none>", "<none>", "<none>"}
		if !reflect.DeepEqual(ids, want) {
			t.Errorf("Last-Event-ID sent: got %q; want %q", ids, want)
		}
		if id := es.LastEventID(); id != "" {
			t.Errorf("LastEventID: got %q; want \"\"", id)
		}
	})
}

func TestClientR14InitialLastEventID(t *testing.T) {
	eachProto(t, func(t *testing.T, p proto) {
		s := newScript(send("data: a\n\n"), send("id: 5\ndata: b\n\n"))
		url, hc := p.serve(t, s)
		es := connect(t, fastClient(hc), url, "Last-Event-ID", "abc")
		got := collect(t, es, 2)
		wantEvents(t, got, []ev{{"message", "a", "abc"}, {"message", "b", "5"}})
		wantStatus(t, es, http.StatusNoContent)
		reqs := wantRequests(t, s, 3)
		for i, want := range []string{"abc", "abc", "5"} {
			if got := reqs[i].lastEventID(); got != want {
				t.Errorf("request %d: Last-Event-ID: got %q; want %q", i, got, want)
			}
		}
	})
}

func TestClientR15AcceptAndCacheControl(t *testing.T) {
	eachProto(t, func(t *testing.T, p proto) {
		s := newScript(send("data: a\n\n"))
		url, hc := p.serve(t, s)
		es := connect(t, fastClient(hc), url)
		collect(t, es, 1)
		wantStatus(t, es, http.StatusNoContent)
		for i, r := range wantRequests(t, s, 2) {
			if r.Method != http.MethodGet {
				t.Errorf("request %d: method: got %s; want GET", i, r.Method)
			}
			if got := r.Header.Get("Accept"); got != "text/event-stream" {
				t.Errorf("request %d: Accept: got %q; want text/event-stream", i, got)
			}
			if got := r.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("request %d: Cache-Control: got %q; want no-cache", i, got)
			}
		}
	})
}

func TestClientR16FollowsRedirects(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			eachProto(t, func(t *testing.T, p proto) {
				s := newScript(
					status(code, "Location", "/stream"),
					send("id: 1\ndata: a\n\n"),
					status(code, "Location", "/stream"),
				)
				url, hc := p.serve(t, s)
				es := connect(t, fastClient(hc), url+"/start")
				wantEvents(t, collect(t, es, 1), []ev{{"message", "a", "1"}})
				wantStatus(t, es, http.StatusNoContent)
				reqs := wantRequests(t, s, 4)
				for i, want := range []string{"/start", "/stream", "/start", "/stream"} {
					if reqs[i].Path != want {
						t.Errorf("request %d: path: got %s; want %s", i, reqs[i].Path, want)
					}
				}
				if got := reqs[3].lastEventID(); got != "1" {
					t.Errorf("redirected reconnection: Last-Event-ID: got %q; want 1", got)
				}
			})
		})
	}
}

func TestClientR16RedirectWithoutLocationIsAnError(t *testing.T) {
	for _, code := range []int{301, 302, 307, 308} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			eachProto(t, func(t *testing.T, p proto) {
				s := newScript(status(code))
				url, hc := p.serve(t, s)
				es := connect(t, fastClient(hc), url)
				se := wantStatus(t, es, code)
				if !strings.Contains(se.Error(), "without a Location") {
					t.Errorf("error: got %q; want it to say the Location is missing", se)
				}
				wantRequests(t, s, 1)
			})
		})
	}
}

func TestClientR17StatusOtherThan200EndsForGood(t *testing.T) {
	for _, code := range []int{204, 201, 400, 401, 404, 500, 502, 503} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			eachProto(t, func(t *testing.T, p proto) {
				s := newScript(status(code))
				url, hc := p.serve(t, s)
				es := connect(t, fastClient(hc), url)
				se := wantStatus(t, es, code)
				if code != 204 && string(se.Body) != `{"error":"nope"}` {
					t.Errorf("StatusError.Body: got %q; want the response body", se.Body)
				}
				wantRequests(t, s, 1)
			})
		})
	}
}

func TestClientR17ServerSends204AfterEventsToStop(t *testing.T) {
	eachProto(t, func(t *testing.T, p proto) {
		s := newScript(send("data: a\n\n"), status(http.StatusNoContent))
		url, hc := p.serve(t, s)
		es := connect(t, fastClient(hc), url)
		collect(t, es, 1)
		wantStatus(t, es, http.StatusNoContent)
		wantRequests(t, s, 2)
	})
}

func TestClientR18ContentType(t *testing.T) {
	tests := []struct {
		contentType string
		ok          bool
	}{
		{"text/event-stream", true},
		{"text/event-stream; charset=utf-8", true},
		{"text/event-stream;charset=ISO-8859-1", true}, // still read as UTF-8
		{"Text/Event-Stream", true},
		{"", false},
		{"text/plain", false},
		{"application/json", false},
		{"text/event-streams", false},
		{"text/html; x=text/event-stream", false},
	}
	for _, tt := range tests {
		t.Run(tt.contentType, func(t *testing.T) {
			eachProto(t, func(t *testing.T, p proto) {
				s := newScript(withType(tt.contentType, "data: é\n\n"))
				url, hc := p.serve(t, s)
				es := connect(t, fastClient(hc), url)
				if tt.ok {
					wantEvents(t, collect(t, es, 1), []ev{{"message", "é", ""}})
					wantStatus(t, es, http.StatusNoContent)
					return
				}
				_, err := es.Next()
				var ce *sse.ContentTypeError
				if !errors.As(err, &ce) || ce.ContentType != tt.contentType {
					t.Fatalf("Next: got %v; want a *ContentTypeError for %q", err, tt.contentType)
				}
				wantRequests(t, s, 1)
			})
		})
	}
}

// retryLog records the OnRetry calls of a client.
type retryLog struct {
	mu    sync.Mutex
	errs  []error
	delay []time.Duration
}

func (l *retryLog) hook(err error, delay time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
	l.delay = append(l.delay, delay)
}

func (l *retryLog) get() ([]error, []time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...), append([]time.Duration(nil), l.delay...)
}

func TestClientR19ReconnectsAfterTheEnd(t *testing.T) {
	t.Run("clean end", func(t *testing.T) {
		eachProto(t, func(t *testing.T, p proto) {
			s := newScript(send("data: a\n\n"), send("data: b\n\n"))
			url, hc := p.serve(t, s)
			var log retryLog
			c := fastClient(hc)
			c.OnRetry = log.hook
			es := connect(t, c, url)
			wantEvents(t, collect(t, es, 2), []ev{{"message", "a", ""}, {"message", "b", ""}})
			wantStatus(t, es, http.StatusNoContent)
			errs, delays := log.get()
			if len(errs) != 2 || errs[0] != io.EOF || errs[1] != io.EOF {
				t.Errorf("OnRetry reasons: got %v; want [EOF EOF]", errs)
			}
			for i, d := range delays {
				if d != time.Millisecond {
					t.Errorf("OnRetry delay %d: got %v; want the reconnection time 1ms", i, d)
				}
			}
		})
	})
	t.Run("network error", func(t *testing.T) {
		eachProto(t, func(t *testing.T, p proto) {
			s := newScript(abort("id: 1\ndata: a\n\nid: 2\ndata: partial\n"), send("data: b\n\n"))
			url, hc := p.serve(t, s)
			var log retryLog
			c := fastClient(hc)
			c.OnRetry = log.hook
			es := connect(t, c, url)
			wantEvents(t, collect(t, es, 2), []ev{{"message", "a", "1"}, {"message", "b", "1"}})
			wantStatus(t, es, http.StatusNoContent)
			if got := wantRequests(t, s, 3)[1].lastEventID(); got != "1" {
				t.Errorf("Last-Event-ID after a broken connection: got %q; want 1", got)
			}
			if errs, _ := log.get(); len(errs) < 1 || errs[0] == io.EOF || errs[0] == nil {
				t.Errorf("OnRetry reasons: got %v; want a network error first", errs)
			}
		})
	})
	t.Run("retry field", func(t *testing.T) {
		eachProto(t, func(t *testing.T, p proto) {
			s := newScript(send("retry: 7\ndata: a\n\n"), send("retry: 2\n"))
			url, hc := p.serve(t, s)
			var log retryLog
			c := fastClient(hc)
			c.OnRetry = log.hook
			es := connect(t, c, url)
			e, err := es.Next()
			if err != nil || !e.HasRetry || e.Retry != 7*time.Millisecond {
				t.Fatalf("Next: got %+v, %v; want an event with retry 7ms", e, err)
			}
			if got := es.Retry(); got != 7*time.Millisecond {
				t.Errorf("Retry: got %v; want 7ms", got)
			}
			wantStatus(t, es, http.StatusNoContent)
			// The second connection delivered nothing: its wait may grow, but
			// never below what the server asked.
			_, delays := log.get()
			if len(delays) != 2 || delays[0] != 7*time.Millisecond || delays[1] < 2*time.Millisecond || delays[1] > 4*time.Millisecond {
				t.Errorf("OnRetry delays: got %v; want [7ms, 2ms..4ms]", delays)
			}
			if got := es.Retry(); got != 2*time.Millisecond {
				t.Errorf("Retry after a retry-only block: got %v; want 2ms", got)
			}
		})
	})
	t.Run("backoff", func(t *testing.T) {
		eachProto(t, func(t *testing.T, p proto) {
			empty := send("")
			s := newScript(empty, empty, empty, empty, send("data: a\n\n"), empty)
			url, hc := p.serve(t, s)
			var log retryLog
			c := &sse.Client{HTTPClient: hc, Retry: time.Millisecond, MaxRetry: 4 * time.Millisecond, OnRetry: log.hook}
			es := connect(t, c, url)
			collect(t, es, 1)
			wantStatus(t, es, http.StatusNoContent)
			_, delays := log.get()
			ms := time.Millisecond
			bounds := [][2]time.Duration{{ms, ms}, {ms, 2 * ms}, {2 * ms, 4 * ms}, {2 * ms, 4 * ms}, {ms, ms}, {ms, 2 * ms}}
			if len(delays) != len(bounds) {
				t.Fatalf("OnRetry delays: got %v; want %d", delays, len(bounds))
			}
			for i, b := range bounds {
				if delays[i] < b[0] || delays[i] > b[1] {
					t.Errorf("delay %d: got %v; want within [%v, %v] (all: %v)", i, delays[i], b[0], b[1], delays)
				}
			}
		})
	})
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		var es *sse.EventSource
		var log retryLog
		c := &sse.Client{Retry: time.Millisecond, OnRetry: func(err error, d time.Duration) {
			log.hook(err, d)
			if errs, _ := log.get(); len(errs) == 3 {
				es.Close()
			}
		}}
		es = connect(t, c, url)
		if _, err := es.Next(); !errors.Is(err, sse.ErrSourceClosed) {
			t.Errorf("Next: got %v; want ErrSourceClosed", err)
		}
		if errs, _ := log.get(); len(errs) != 3 || errs[0] == nil {
			t.Errorf("OnRetry reasons: got %v; want 3 network errors", errs)
		}
	})
}

func TestClientVectors(t *testing.T) {
	vectors := loadVectors(t)
	chunkings := []int{0, 1, 2, 3} // 0: the input in one write
	eachProto(t, func(t *testing.T, p proto) {
		var mu sync.Mutex
		seen := map[string]int{} // requests per path; guarded by mu
		url, hc := p.serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var i, chunk int
			fmt.Sscanf(r.URL.Path, "/%d/%d", &i, &chunk)
			mu.Lock()
			seen[r.URL.Path]++
			n := seen[r.URL.Path]
			mu.Unlock()
			if n > 1 { // the reconnection: report its Last-Event-ID, then stop
				w.Header().Set("X-Last-Event-ID", r.Header.Get("Last-Event-ID"))
				w.Header().Set("X-Has-Last-Event-ID", fmt.Sprint(len(r.Header.Values("Last-Event-ID")) > 0))
				w.WriteHeader(http.StatusNoContent)
				return
			}
			streamHeaders(w)
			in := []byte(vectors[i].Input)
			if chunk == 0 {
				w.Write(in)
				return
			}
			rc := http.NewResponseController(w)
			for len(in) > 0 {
				k := min(chunk, len(in))
				w.Write(in[:k])
				rc.Flush()
				in = in[k:]
			}
		}))
		for i, v := range vectors {
			for _, chunk := range chunkings {
				t.Run(fmt.Sprintf("%s/chunk%d", v.Name, chunk), func(t *testing.T) {
					if chunk > 0 && len(v.Input) > 8<<10 && testing.Short() {
						t.Skip("large input in small writes: skipped in -short")
					}
					var delays []time.Duration
					var es *sse.EventSource
					c := &sse.Client{HTTPClient: hc, Retry: time.Millisecond, OnRetry: func(err error, d time.Duration) {
						delays = append(delays, d)
						es.Restart() // skip the wait a retry field asked for
					}}
					es = connect(t, c, fmt.Sprintf("%s/%d/%d", url, i, chunk))
					var want []ev
					for _, e := range v.Events {
						want = append(want, ev(e))
					}
					wantEvents(t, collect(t, es, len(want)), want)
					se := wantStatus(t, es, http.StatusNoContent)
					sent, has := se.Header.Get("X-Last-Event-ID"), se.Header.Get("X-Has-Last-Event-ID") == "true"
					if sent != v.LastEventID || has != (v.LastEventID != "") {
						t.Errorf("Last-Event-ID on reconnection: got %q (sent: %v); want %q", sent, has, v.LastEventID)
					}
					if got := es.LastEventID(); got != v.LastEventID {
						t.Errorf("LastEventID: got %q; want %q", got, v.LastEventID)
					}
					wantDelay := time.Millisecond
					if v.Retry != nil {
						wantDelay = time.Duration(*v.Retry) * time.Millisecond
					}
					if len(delays) != 1 || delays[0] != wantDelay {
						t.Errorf("OnRetry delays: got %v; want [%v]", delays, wantDelay)
					}
				})
			}
		}
	})
}

func TestClientPostBodyResentOnReconnect(t *testing.T) {
	const body = `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	readers := []struct {
		name string
		new  func() io.Reader
	}{
		{"GetBody", func() io.Reader { return strings.NewReader(body) }},
		{"no GetBody", func() io.Reader { return iotest.OneByteReader(strings.NewReader(body)) }},
	}
	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			eachProto(t, func(t *testing.T, p proto) {
				s := newScript(send("id: 1\ndata: a\n\n"), send("data: b\n\n"))
				url, hc := p.serve(t, s)
				ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
				defer cancel()
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, rd.new())
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				es := fastClient(hc).Connect(req)
				defer es.Close()
				collect(t, es, 2)
				wantStatus(t, es, http.StatusNoContent)
				for i, r := range wantRequests(t, s, 3) {
					if r.Method != http.MethodPost || r.Body != body || r.Header.Get("Content-Type") != "application/json" {
						t.Errorf("request %d: got %s %q (%s); want POST with the JSON body", i, r.Method, r.Body, r.Header.Get("Content-Type"))
					}
				}
			})
		})
	}
}

func TestClientCustomHeaders(t *testing.T) {
	eachProto(t, func(t *testing.T, p proto) {
		s := newScript(send("data: a\n\n"))
		url, hc := p.serve(t, s)
		es := connect(t, fastClient(hc), url,
			"Authorization", "Bearer sk-test",
			"X-Trace", "1", "X-Trace", "2",
			"Accept", "text/event-stream, application/json")
		collect(t, es, 1)
		wantStatus(t, es, http.StatusNoContent)
		for i, r := range wantRequests(t, s, 2) {
			if got := r.Header.Get("Authorization"); got != "Bearer sk-test" {
				t.Errorf("request %d: Authorization: got %q", i, got)
			}
			if got := r.Header.Values("X-Trace"); !reflect.DeepEqual(got, []string{"1", "2"}) {
				t.Errorf("request %d: X-Trace: got %q; want [1 2]", i, got)
			}
			if got := r.Header.Get("Accept"); got != "text/event-stream, application/json" {
				t.Errorf("request %d: Accept: got %q; want the caller's", i, got)
			}
		}
	})
}

func TestClientReadTimeout(t *testing.T) {
	eachProto(t, func(t *testing.T, p proto) {
		s := newScript(hold("id: 1\ndata: a\n\n", nil), send("data: b\n\n"))
		url, hc := p.serve(t, s)
		var log retryLog
		c := fastClient(hc)
		c.ReadTimeout = 100 * time.Millisecond
		c.OnRetry = log.hook
		es := connect(t, c, url)
		wantEvents(t, collect(t, es, 2), []ev{{"message", "a", "1"}, {"message", "b", "1"}})
		wantStatus(t, es, http.StatusNoContent)
		if got := wantRequests(t, s, 3)[1].lastEventID(); got != "1" {
			t.Errorf("Last-Event-ID after the read timeout: got %q; want 1", got)
		}
		if errs, _ := log.get(); len(errs) == 0 || !errors.Is(errs[0], sse.ErrReadTimeout) {
			t.Errorf("OnRetry reasons: got %v; want ErrReadTimeout first", errs)
		}
	})
}

func TestClientReadTimeoutNoReconnect(t *testing.T) {
	eachProto(t, func(t *testing.T, p proto) {
		s := newScript(hold("data: a\n\n", nil))
		url, hc := p.serve(t, s)
		c := fastClient(hc)
		c.ReadTimeout = 50 * time.Millisecond
		c.NoReconnect = true
		es := connect(t, c, url)
		collect(t, es, 1)
		if _, err := es.Next(); !errors.Is(err, sse.ErrReadTimeout) {
			t.Errorf("Next: got %v; want ErrReadTimeout", err)
		}
		wantRequests(t, s, 1)
	})
}

func TestClientRestart(t *testing.T) {
	eachProto(t, func(t *testing.T, p proto) {
		sent := make(chan struct{}, 1)
		s := newScript(hold("id: 1\ndata: a\n\n", nil), hold("data: b\n\n", sent), send("data: c\n\n"))
		url, hc := p.serve(t, s)
		var log retryLog
		c := fastClient(hc)
		c.Retry = time.Hour // a restart does not wait
		c.OnRetry = log.hook
		es := connect(t, c, url)
		wantEvents(t, collect(t, es, 1), []ev{{"message", "a", "1"}})
		es.Restart() // between two Next calls
		wantEvents(t, collect(t, es, 1), []ev{{"message", "b", "1"}})
		go func() {
			<-sent
			es.Restart() // while Next is blocked reading
		}()
		wantEvents(t, collect(t, es, 1), []ev{{"message", "c", "1"}})
		reqs := s.requests()
		if len(reqs) != 3 || reqs[1].lastEventID() != "1" || reqs[2].lastEventID() != "1" {
			t.Errorf("requests: got %d, Last-Event-ID %v; want 3 sending 1", len(reqs), reqs)
		}
		errs, delays := log.get()
		if len(errs) < 2 || errs[0] != sse.ErrRestart || errs[1] != sse.ErrRestart || delays[0] != 0 || delays[1] != 0 {
			t.Errorf("OnRetry: got %v %v; want ErrRestart twice with no wait", errs, delays)
		}
	})
}

func TestClientRestartDuringWait(t *testing.T) {
	eachProto(t, func(t *testing.T, p proto) {
		s := newScript(send("data: a\n\n"), send("data: b\n\n"))
		url, hc := p.serve(t, s)
		waiting := make(chan struct{}, 1)
		c := fastClient(hc)
		c.Retry = time.Hour
		c.OnRetry = func(error, time.Duration) { waiting <- struct{}{} }
		es := connect(t, c, url)
		collect(t, es, 1)
		go func() {
			<-waiting // OnRetry runs just before the wait: Restart ends it either way
			es.Restart()
		}()
		wantEvents(t, collect(t, es, 1), []ev{{"message", "b", ""}})
	})
}

func TestClientContextCancel(t *testing.T) {
	t.Run("while reading", func(t *testing.T) {
		eachProto(t, func(t *testing.T, p proto) {
			sent := make(chan struct{}, 1)
			s := newScript(hold("data: a\n\n", sent))
			url, hc := p.serve(t, s)
			ctx, cancel := context.WithCancel(t.Context())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			es := fastClient(hc).Connect(req)
			collect(t, es, 1)
			go func() {
				<-sent
				cancel()
			}()
			if _, err := es.Next(); !errors.Is(err, context.Canceled) {
				t.Errorf("Next: got %v; want context.Canceled", err)
			}
			wantRequests(t, s, 1)
		})
	})
	t.Run("while waiting", func(t *testing.T) {
		eachProto(t, func(t *testing.T, p proto) {
			s := newScript(send("data: a\n\n"))
			url, hc := p.serve(t, s)
			ctx, cancel := context.WithCancel(t.Context())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			c := fastClient(hc)
			c.Retry = time.Hour
			c.OnRetry = func(error, time.Duration) { cancel() }
			es := c.Connect(req)
			collect(t, es, 1)
			if _, err := es.Next(); !errors.Is(err, context.Canceled) {
				t.Errorf("Next: got %v; want context.Canceled", err)
			}
			wantRequests(t, s, 1)
		})
	})
	t.Run("before the first request", func(t *testing.T) {
		s := newScript()
		url, hc := proto{ssetest.HTTP1, 1}.serve(t, s)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if _, err := fastClient(hc).Connect(req).Next(); !errors.Is(err, context.Canceled) {
			t.Errorf("Next: got %v; want context.Canceled", err)
		}
		wantRequests(t, s, 0)
	})
}

func TestClientClose(t *testing.T) {
	eachProto(t, func(t *testing.T, p proto) {
		sent := make(chan struct{}, 1)
		s := newScript(hold("data: a\n\n", sent))
		url, hc := p.serve(t, s)
		es := connect(t, fastClient(hc), url)
		collect(t, es, 1)
		go func() {
			<-sent
			es.Close()
		}()
		for range 2 {
			if _, err := es.Next(); !errors.Is(err, sse.ErrSourceClosed) {
				t.Errorf("Next: got %v; want ErrSourceClosed", err)
			}
		}
		wantRequests(t, s, 1)
	})
}

func TestClientNoReconnect(t *testing.T) {
	eachProto(t, func(t *testing.T, p proto) {
		s := newScript(send("data: a\n\ndata: b\n\n"))
		url, hc := p.serve(t, s)
		c := fastClient(hc)
		c.NoReconnect = true
		es := connect(t, c, url)
		var got []ev
		for e, err := range es.Events() {
			if err != nil {
				t.Fatalf("Events: %v", err)
			}
			got = append(got, ev{e.Type, e.Data, e.ID})
		}
		wantEvents(t, got, []ev{{"message", "a", ""}, {"message", "b", ""}})
		if _, err := es.Next(); err != io.EOF {
			t.Errorf("Next after the end: got %v; want io.EOF", err)
		}
		wantRequests(t, s, 1)
	})
}

func TestClientNoReconnectNetworkError(t *testing.T) {
	eachProto(t, func(t *testing.T, p proto) {
		s := newScript(abort("data: a\n\ndata: partial"))
		url, hc := p.serve(t, s)
		c := fastClient(hc)
		c.NoReconnect = true
		es := connect(t, c, url)
		collect(t, es, 1)
		if _, err := es.Next(); err == nil || err == io.EOF {
			t.Errorf("Next: got %v; want the network error", err)
		}
		wantRequests(t, s, 1)
	})
}

func TestClientHooks(t *testing.T) {
	eachProto(t, func(t *testing.T, p proto) {
		const body = ": hi\n:\ndata: a\n\n:bye\n"
		s := newScript(send(body))
		url, hc := p.serve(t, s)
		var (
			connects int
			comments []string
			raw      []byte
		)
		c := fastClient(hc)
		c.NoReconnect = true
		c.OnConnect = func(resp *http.Response) {
			connects++
			if resp.StatusCode != http.StatusOK {
				t.Errorf("OnConnect: status %d", resp.StatusCode)
			}
		}
		c.OnComment = func(text string) { comments = append(comments, text) }
		c.OnRead = func(chunk []byte) { raw = append(raw, chunk...) }
		es := connect(t, c, url)
		collect(t, es, 1)
		if _, err := es.Next(); err != io.EOF {
			t.Fatalf("Next: got %v; want io.EOF", err)
		}
		if connects != 1 {
			t.Errorf("OnConnect calls: got %d; want 1", connects)
		}
		if want := []string{" hi", "", "bye"}; !reflect.DeepEqual(comments, want) {
			t.Errorf("comments: got %q; want %q", comments, want)
		}
		if string(raw) != body {
			t.Errorf("OnRead bytes: got %q; want %q", raw, body)
		}
	})
}

func TestClientEventTooLarge(t *testing.T) {
	eachProto(t, func(t *testing.T, p proto) {
		s := newScript(send("data: small\n\ndata: " + strings.Repeat("x", 100) + "\n\n"))
		url, hc := p.serve(t, s)
		c := fastClient(hc)
		c.MaxEventSize = 50
		es := connect(t, c, url)
		collect(t, es, 1)
		if _, err := es.Next(); !errors.Is(err, sse.ErrEventTooLarge) {
			t.Errorf("Next: got %v; want ErrEventTooLarge", err)
		}
		wantRequests(t, s, 1)
	})
}

func TestClientNilClient(t *testing.T) {
	s := newScript(send("data: a\n\n"))
	url, _ := proto{ssetest.HTTP1, 1}.serve(t, s)
	var c *sse.Client
	es := connect(t, c, url)
	wantEvents(t, collect(t, es, 1), []ev{{"message", "a", ""}})
}
