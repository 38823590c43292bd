package authhook_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ssekit/sse/authhook"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/internal/testhub"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/ssetest"
)

// app is the application the hub asks: a real HTTP server deciding by
// the session cookie, as a web application does.
type app struct {
	srv   *httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	last  authhook.Request // guarded by mu
	ttl   float64
	down  atomic.Bool
	grant []string // private topics alice gets
}

func newApp(t *testing.T) *app {
	a := &app{grant: []string{"https://example.com/users/alice"}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		if a.down.Load() {
			http.Error(w, "maintenance", http.StatusBadGateway)
			return
		}
		var req authhook.Request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.last = req
		a.mu.Unlock()
		var ans authhook.Answer
		switch req.Cookies["session"] {
		case "alice":
			ans = authhook.Answer{Allow: true, PrivateTopics: a.grant, Payload: json.RawMessage(`{"user":"alice"}`), CacheTTL: a.ttl}
		case "publisher":
			ans = authhook.Answer{Allow: true, PublishTopics: []string{"https://example.com/news", "https://other.example/x"}}
		case "nobody":
			w.WriteHeader(http.StatusForbidden)
			return
		default:
			ans = authhook.Answer{Reason: "who are you?", CacheTTL: a.ttl}
		}
		json.NewEncoder(w).Encode(ans)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *app) lastRequest() authhook.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// hubWithHook serves a test hub whose subscribes and publishes without a
// token are decided by the hook.
func hubWithHook(t *testing.T, proto string, cfg authhook.Config) (*httptest.Server, *testhub.Hub, *authhook.Hook) {
	t.Helper()
	h, err := authhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	th := testhub.New(t, func(_ *hub.Config, s *server.Config) {
		s.SubscribeHook, s.PublishHook = h, h
		s.Subscriptions = true
	})
	srv := ssetest.NewServer(t, proto, th.Server)
	t.Cleanup(th.Close)
	return srv, th, h
}

// withCookie returns a client of srv sending session=value to it.
func withCookie(t *testing.T, srv *httptest.Server, value string) *http.Client {
	c := *srv.Client()
	jar := &jarOf{cookie: &http.Cookie{Name: "session", Value: value}}
	c.Jar = jar
	return &c
}

type jarOf struct{ cookie *http.Cookie }

func (j *jarOf) SetCookies(*url.URL, []*http.Cookie) {}
func (j *jarOf) Cookies(*url.URL) []*http.Cookie     { return []*http.Cookie{j.cookie} }
func status(t *testing.T, c *http.Client, u string) (int, http.Header, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, resp.Header, ""
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func publish(t *testing.T, th *testhub.Hub, topic, id string, private bool) {
	t.Helper()
	u := &hub.Update{ID: id, Topics: []string{topic}, Data: id, Private: private}
	if _, err := th.Hub.Publish(t.Context(), u); err != nil {
		t.Fatal(err)
	}
}

// TestSubscribe: the application's answer decides who subscribes and
// which private topics they get, over HTTP/1.1 and HTTP/2.
func TestSubscribe(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		a := newApp(t)
		srv, th, _ := hubWithHook(t, proto, authhook.Config{URL: a.srv.URL, PrivateTopics: []string{"https://example.com/users/"}, ForwardHeaders: []string{"X-Request-Id"}})
		hubURL := srv.URL + "/.well-known/mercure"

		q := "topic=" + url.QueryEscape("https://example.com/users/{name}")
		alice := e2etest.OpenStream(t, withCookie(t, srv, "alice"), hubURL, q, "", 10*time.Second)
		if req := a.lastRequest(); req.Action != "subscribe" || req.Topics[0] != "https://example.com/users/{name}" || req.Client == "" || req.Cookies["session"] != "alice" {
			t.Errorf("the application was asked %+v", req)
		}
		publish(t, th, "https://example.com/users/bob", "bob-private", true)
		publish(t, th, "https://example.com/users/alice", "alice-private", true)
		publish(t, th, "https://example.com/users/bob", "bob-public", false)
		got := alice.Until(t, "bob-public")
		var ids []string
		for _, ev := range got {
			if ev.ID != "" {
				ids = append(ids, ev.ID)
			}
		}
		if strings.Join(ids, ",") != "alice-private,bob-public" {
			t.Errorf("alice got %v; want alice-private (granted) and bob-public, never bob-private", ids)
		}

		code, _, body := status(t, withCookie(t, srv, "mallory"), hubURL+"?"+q)
		if code != http.StatusForbidden || !strings.Contains(body, "who are you?") {
			t.Errorf("refused subscriber: %d %q; want 403 with the application's reason", code, body)
		}
		if code, _, _ := status(t, withCookie(t, srv, "nobody"), hubURL+"?"+q); code != http.StatusForbidden {
			t.Errorf("application answering 403: %d; want 403", code)
		}
		// A token is still decided by the keys, not the hook.
		calls := a.calls.Load()
		tok := th.Token(t, hub.Claims{Subscribe: []string{"*"}})
		e2etest.OpenStream(t, srv.Client(), hubURL, q+"&authorization="+tok, "", 10*time.Second).Close()
		if a.calls.Load() != calls {
			t.Error("a subscriber with a token was sent to the hook")
		}
	})
}

// TestAnswerNeverTrustedBeyondConfig: grants outside the configured
// prefixes, "*", oversized payloads are dropped; headers and cookies not
// configured never reach the application.
func TestAnswerNeverTrustedBeyondConfig(t *testing.T) {
	a := newApp(t)
	a.grant = []string{"*", "https://example.com/admin", "https://example.com/users/alice"}
	reg := prometheus.NewRegistry()
	srv, th, _ := hubWithHook(t, ssetest.HTTP1, authhook.Config{URL: a.srv.URL, PrivateTopics: []string{"https://example.com/users/"}, ForwardCookies: []string{"session"}, MaxPayloadBytes: 8, Registerer: reg})
	hubURL := srv.URL + "/.well-known/mercure"
	c := withCookie(t, srv, "alice")
	c.Jar = &multiJar{[]*http.Cookie{{Name: "session", Value: "alice"}, {Name: "other", Value: "secret"}, {Name: hub.AuthCookie, Value: "not-a-token"}}}
	// The auth cookie makes it a token request: the hook is not asked.
	if code, _, _ := status(t, c, hubURL+"?topic=x"); code != http.StatusUnauthorized {
		t.Errorf("invalid auth cookie: %d; want 401", code)
	}
	c.Jar = &multiJar{[]*http.Cookie{{Name: "session", Value: "alice"}, {Name: "other", Value: "secret"}}}
	s := e2etest.OpenStream(t, c, hubURL, "topic=*", "", 10*time.Second)
	if req := a.lastRequest(); len(req.Cookies) != 1 || req.Headers != nil {
		t.Errorf("the application got cookies %v headers %v; want only session", req.Cookies, req.Headers)
	}
	publish(t, th, "https://example.com/admin", "admin", true)
	publish(t, th, "https://elsewhere/x", "elsewhere", true)
	publish(t, th, "https://example.com/users/alice", "mine", true)
	if got := s.Next(t); got.ID != "mine" {
		t.Errorf("first event %q; want mine (the grants of * and /admin dropped)", got.ID)
	}
	if got := testutil.ToFloat64(counter(t, reg, "ssekit_auth_hook_grants_dropped_total")); got != 3 {
		t.Errorf("dropped grants %v; want 3 (*, /admin, the 16-byte payload)", got)
	}
	subs := status200Body(t, srv.Client(), srv.URL+"/.well-known/mercure/subscriptions", th.Token(t, hub.Claims{Subscribe: []string{"*"}}))
	if strings.Contains(subs, "alice\"}") {
		t.Errorf("oversized payload kept: %s", subs)
	}
}

type multiJar struct{ cookies []*http.Cookie }

func (j *multiJar) SetCookies(*url.URL, []*http.Cookie) {}
func (j *multiJar) Cookies(*url.URL) []*http.Cookie     { return j.cookies }

func status200Body(t *testing.T, c *http.Client, u, tok string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", u, resp.Status, b)
	}
	return string(b)
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) prometheus.Collector {
	t.Helper()
	return collectorFunc(func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		sum := 0.0
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		metric:
			for _, m := range mf.GetMetric() {
				for i := 0; i+1 < len(labels); i += 2 {
					found := false
					for _, lp := range m.GetLabel() {
						if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
							found = true
						}
					}
					if !found {
						continue metric
					}
				}
				sum += m.GetCounter().GetValue()
			}
		}
		return sum
	})
}

// collectorFunc is a gauge whose value is computed when collected.
func collectorFunc(f func() float64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "value", Help: "value"}, f)
}

// TestApplicationDown: a hook that cannot answer (down, 5xx, slow,
// nonsense, busy) fails closed, 503 with Retry-After, and nothing leaks.
func TestApplicationDown(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"5xx", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", 500) }},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://example.com/", http.StatusFound)
		}},
		{"not json", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>allow</html>") }},
		{"huge", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"allow":true,"reason":"`+strings.Repeat("x", authhook.DefaultMaxResponseBytes)+`"}`)
		}},
		{"slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}},
		{"gone", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			appURL := "http://" + e2etest.FreeAddr(t) + "/auth" // nothing listens
			if tc.handler != nil {
				s := httptest.NewServer(tc.handler)
				t.Cleanup(s.Close)
				appURL = s.URL
			}
			reg := prometheus.NewRegistry()
			srv, _, _ := hubWithHook(t, ssetest.HTTP1, authhook.Config{URL: appURL, Timeout: 200 * time.Millisecond, RetryAfter: 7 * time.Second, Registerer: reg, PrivateTopics: []string{"*"}})
			code, h, body := status(t, withCookie(t, srv, "alice"), srv.URL+"/.well-known/mercure?topic=*")
			if code != http.StatusServiceUnavailable || h.Get("Retry-After") != "7" || strings.Contains(body, "oops") || strings.Contains(body, "127.0.0.1") {
				t.Errorf("%d Retry-After %q %q; want 503, Retry-After 7 and no detail", code, h.Get("Retry-After"), body)
			}
			want := "error"
			if tc.name == "slow" {
				want = "timeout"
			}
			if got := testutil.ToFloat64(counter(t, reg, "ssekit_auth_hook_requests_total", "outcome", want)); got != 1 {
				t.Errorf("outcome %s counted %v times; want 1", want, got)
			}
		})
	}
}

// TestConcurrencyBound: the application never sees more than
// Concurrency calls at once; a call that finds no slot within the
// timeout is a 503.
func TestConcurrencyBound(t *testing.T) {
	release := make(chan struct{})
	var inFlight, most atomic.Int64
	appSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, `{"allow":false}`)
	}))
	t.Cleanup(appSrv.Close)
	srv, _, _ := hubWithHook(t, ssetest.HTTP1, authhook.Config{URL: appSrv.URL, Concurrency: 2, Timeout: 20 * time.Second})
	var wg sync.WaitGroup
	codes := make([]int, 6)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := srv.Client().Get(srv.URL + "/.well-known/mercure?topic=" + strconv.Itoa(i))
			if err == nil {
				codes[i] = resp.StatusCode
				resp.Body.Close()
			}
		}()
	}
	poll.Until(t, "two calls reach the application", 10*time.Second, func() bool { return inFlight.Load() == 2 })
	time.Sleep(100 * time.Millisecond) // let the other four queue for a slot
	close(release)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusForbidden {
			t.Errorf("request %d: %d; want 403 (refused, after waiting its turn)", i, c)
		}
	}
	if most.Load() > 2 {
		t.Errorf("%d calls in flight at once; want at most 2", most.Load())
	}

	// One slot, held: the next request waits its timeout, then 503.
	hold := make(chan struct{})
	held := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(held.Close)
	t.Cleanup(func() { close(hold) })
	reg := prometheus.NewRegistry()
	srv2, _, _ := hubWithHook(t, ssetest.HTTP1, authhook.Config{URL: held.URL, Concurrency: 1, Timeout: 300 * time.Millisecond, Registerer: reg})
	var wg2 sync.WaitGroup
	for range 3 {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			if resp, err := srv2.Client().Get(srv2.URL + "/.well-known/mercure?topic=x"); err == nil {
				if resp.StatusCode != http.StatusServiceUnavailable {
					t.Errorf("with the slot held: %d; want 503", resp.StatusCode)
				}
				resp.Body.Close()
			}
		}()
	}
	wg2.Wait()
	busy := testutil.ToFloat64(counter(t, reg, "ssekit_auth_hook_requests_total", "outcome", "busy"))
	timeout := testutil.ToFloat64(counter(t, reg, "ssekit_auth_hook_requests_total", "outcome", "timeout"))
	if busy+timeout != 3 || timeout < 1 {
		t.Errorf("busy %v, timeout %v; want 3 in all, the first timed out", busy, timeout)
	}
}

// TestCache: a decision is reused for its cache_ttl (capped by
// MaxCacheTTL), refusals too, then asked again.
func TestCache(t *testing.T) {
	a := newApp(t)
	a.ttl = 3600 // capped at 10 s below
	var mu sync.Mutex
	now := time.Unix(1e9, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	reg := prometheus.NewRegistry()
	srv, _, _ := hubWithHook(t, ssetest.HTTP1, authhook.Config{URL: a.srv.URL, MaxCacheTTL: 10 * time.Second, Now: clock, Registerer: reg})
	hubURL := srv.URL + "/.well-known/mercure"
	for range 3 {
		e2etest.OpenStream(t, withCookie(t, srv, "alice"), hubURL, "topic=a", "", 10*time.Second).Close()
		status(t, withCookie(t, srv, "mallory"), hubURL+"?topic=a")
	}
	if got := a.calls.Load(); got != 2 {
		t.Errorf("the application was asked %d times; want 2 (one grant, one refusal, then cached)", got)
	}
	e2etest.OpenStream(t, withCookie(t, srv, "alice"), hubURL, "topic=b", "", 10*time.Second).Close()
	if got := a.calls.Load(); got != 3 {
		t.Errorf("other topics: asked %d times; want 3 (the decision is per request)", got)
	}
	mu.Lock()
	now = now.Add(11 * time.Second)
	mu.Unlock()
	a.down.Store(true)
	if code, _, _ := status(t, withCookie(t, srv, "alice"), hubURL+"?topic=a"); code != http.StatusServiceUnavailable {
		t.Errorf("after the TTL, with the application down: %d; want 503 (asked again, failing closed)", code)
	}
	if got := testutil.ToFloat64(counter(t, reg, "ssekit_auth_hook_requests_total", "outcome", "cached_granted")); got != 2 {
		t.Errorf("cached grants counted %v; want 2", got)
	}
}

// TestPublish: a publish without a token is decided by the hook, for
// the topics the configuration lets it grant.
func TestPublish(t *testing.T) {
	a := newApp(t)
	srv, _, _ := hubWithHook(t, ssetest.HTTP1, authhook.Config{URL: a.srv.URL, PublishTopics: []string{"https://example.com/"}})
	post := func(c *http.Client, topic string) (int, string) {
		resp, err := c.PostForm(srv.URL+"/.well-known/mercure", url.Values{"topic": {topic}, "data": {"x"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(withCookie(t, srv, "publisher"), "https://example.com/news"); code != http.StatusOK {
		t.Errorf("granted publish: %d %s", code, body)
	}
	if req := a.lastRequest(); req.Action != "publish" || len(req.Topics) != 1 || req.Topics[0] != "https://example.com/news" {
		t.Errorf("the application was asked %+v", req)
	}
	if code, _ := post(withCookie(t, srv, "publisher"), "https://other.example/x"); code != http.StatusForbidden {
		t.Errorf("publish to a topic the answer grants beyond the configuration: %d; want 403", code)
	}
	if code, body := post(withCookie(t, srv, "mallory"), "https://example.com/news"); code != http.StatusForbidden || !strings.Contains(body, "who are you?") {
		t.Errorf("refused publish: %d %q; want 403 with the reason", code, body)
	}
	// From another site's page, the visitor's cookie never reaches the
	// application: no cross-site publish (nor subscribe) on its behalf.
	calls := a.calls.Load()
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		req, _ := http.NewRequest(method, srv.URL+"/.well-known/mercure?topic=x", strings.NewReader("topic=https%3A%2F%2Fexample.com%2Fnews&data=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		req.AddCookie(&http.Cookie{Name: "session", Value: "publisher"})
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site %s with the session cookie: %d; want 403", method, resp.StatusCode)
		}
	}
	if a.calls.Load() != calls {
		t.Error("a cross-site request was sent to the application")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []authhook.Config{{}, {URL: "ftp://x/"}, {URL: "http://"}, {URL: "http://a/", Timeout: -1}, {URL: "http://a/", Concurrency: -1}} {
		if _, err := authhook.New(cfg); !errors.Is(err, authhook.ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v; want ErrInvalidConfig", cfg, err)
		}
	}
}
