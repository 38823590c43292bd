package server_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/jwtauth"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/ssetest"
)

// TestBadRequests sends requests a hub must refuse: each gets the right
// status and a one-line reason, and the hub goes on serving everyone else.
func TestBadRequests(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, func(_ *hub.Config, s *server.Config) {
			s.AllowAnonymous = false
			s.MaxTopics = 3
			s.MaxBodyBytes = 1024
			s.MaxUpdateTopics = 3
			s.MaxBatchUpdates = 3
			s.MaxBatchBytes = 2048
			s.CORSOrigins = []string{"https://app.example"}
		})
		// A subscriber that must keep receiving while the bad requests come.
		watcher := th.subscribe(topics("health"), http.Header{"Authorization": {"Bearer " + th.token(hub.Claims{Subscribe: []string{"*"}})}})
		// A single publish may reuse it (draft-08); a batch may not.
		taken := th.mustPublish("taken", "t")

		otherKey, err := jwtauth.NewKey("HS256", []byte("another-secret-another-secret-another"))
		if err != nil {
			t.Fatal(err)
		}
		wrongKey, _ := jwtauth.Sign(otherKey, hub.Claims{Publish: []string{"*"}, Subscribe: []string{"*"}})
		expired := th.token(hub.Claims{Publish: []string{"*"}, Subscribe: []string{"*"}, ExpiresAt: time.Now().Add(-time.Hour)})
		b64 := base64.RawURLEncoding.EncodeToString
		algNone := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64([]byte(`{"mercure":{"publish":["*"],"subscribe":["*"]}}`)) + "."
		subscriberOnly := th.token(hub.Claims{Subscribe: []string{"*"}})
		booksOnly := th.token(hub.Claims{Publish: []string{"https://example.com/books/{id}"}})
		pub := th.publisher()

		sub := func(query string, header ...string) *http.Request {
			req, _ := http.NewRequest("GET", th.url+"?"+query, nil)
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			return req
		}
		bearer := func(token string) []string { return []string{"Authorization", "Bearer " + token} }
		subAs := func(query, token string) *http.Request { return sub(query, bearer(token)...) }
		post := func(body, contentType string, header ...string) *http.Request {
			req, _ := http.NewRequest("POST", th.url, strings.NewReader(body))
			if contentType != "" {
				req.Header.Set("Content-Type", contentType)
			}
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			return req
		}
		const form = "application/x-www-form-urlencoded"
		postAs := func(token, body string) *http.Request { return post(body, form, bearer(token)...) }
		// batch posts NDJSON lines to the batch route; every line that
		// is fine publishes to "health", so a refused batch that stored
		// anything would reach the watcher.
		batch := func(token, query string, lines ...string) *http.Request {
			req, _ := http.NewRequest("POST", th.http.URL+hub.BatchPath+query, strings.NewReader(strings.Join(lines, "\n")))
			req.Header.Set("Content-Type", "application/x-ndjson")
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			return req
		}
		const ok = `{"topic":"health","data":"leaked"}`
		withType := func(req *http.Request, contentType string) *http.Request {
			req.Header.Set("Content-Type", contentType)
			return req
		}
		method := func(m, path string) *http.Request {
			req, _ := http.NewRequest(m, th.http.URL+path, nil)
			return req
		}
		preflight := func(origin string) *http.Request {
			req := method("OPTIONS", "/.well-known/mercure")
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			return req
		}

		tests := []struct {
			name   string
			req    *http.Request
			status int
			reason string // a part of the one-line reason
		}{
			{"subscribe without topic", subAs("", subscriberOnly), 400, "missing topic"},
			{"subscribe with empty topic", subAs("topic=", subscriberOnly), 400, "empty topic"},
			{"subscribe to too many topics", subAs("topic=a&topic=b&topic=c&topic=d", subscriberOnly), 400, "too many topics"},
			{"subscribe anonymously when not allowed", sub("topic=a"), 401, "needs a token"},
			{"subscribe with Basic auth", sub("topic=a", "Authorization", "Basic dTpw"), 401, "Bearer"},
			{"subscribe with a garbage token", subAs("topic=a", "not.a.jwt"), 401, "invalid token"},
			{"subscribe with a token of another key", subAs("topic=a", wrongKey), 401, "invalid token"},
			{"subscribe with an expired token", subAs("topic=a", expired), 401, "expired"},
			{"subscribe with alg none", subAs("topic=a", algNone), 401, "not accepted"},
			{"subscribe with empty authorization query", sub("topic=a&authorization="), 401, "empty authorization"},
			{"subscribe with a cookie from a foreign origin", sub("topic=a", "Cookie", "mercureAuthorization="+subscriberOnly, "Origin", "https://evil.example"), 403, "may not use the authorization cookie"},
			{"publish without token", post("topic=a&data=x", form), 401, "needs a token"},
			{"publish with a token of another key", postAs(wrongKey, "topic=a"), 401, "invalid token"},
			{"publish with an expired token", postAs(expired, "topic=a"), 401, "expired"},
			{"publish with alg none", postAs(algNone, "topic=a"), 401, "not accepted"},
			{"publish with a subscriber-only token", postAs(subscriberOnly, "topic=a"), 403, "may not publish"},
			{"publish outside the token's topics", postAs(booksOnly, "topic=https://example.com/authors/1"), 403, "may not publish"},
			{"publish to one allowed and one forbidden topic", postAs(booksOnly, "topic=https://example.com/books/1&topic=secret"), 403, "may not publish"},
			{"publish with a cookie from a foreign origin", post("topic=a", form, "Cookie", "mercureAuthorization="+pub, "Origin", "https://evil.example"), 403, "may not use the authorization cookie"},
			{"publish JSON", post(`{"topic":"a"}`, "application/json", bearer(pub)...), 415, "x-www-form-urlencoded"},
			{"publish without Content-Type", post("topic=a", "", bearer(pub)...), 415, "x-www-form-urlencoded"},
			{"publish without topic", postAs(pub, "data=x"), 400, "missing topic"},
			{"publish with empty topic", postAs(pub, "topic=&data=x"), 400, "empty topic"},
			{"publish with LF in id", postAs(pub, "topic=a&id="+url.QueryEscape("1\nevent: x")), 400, "id"},
			{"publish with CR in id", postAs(pub, "topic=a&id="+url.QueryEscape("1\rdata: x")), 400, "id"},
			{"publish with NUL in id", postAs(pub, "topic=a&id=1%00"), 400, "id"},
			{"publish with id earliest", postAs(pub, "topic=a&id=earliest"), 400, "reserved"},
			{"publish with NUL in type", postAs(pub, "topic=a&type=x%00y"), 400, "type"},
			{"publish with a bidi override in id", postAs(pub, "topic=a&id="+url.QueryEscape("a\u202eb")), 400, "id"},
			{"publish with id starting with #", postAs(pub, "topic=a&id=%23frag"), 400, "#"},
			{"publish with LF in type", postAs(pub, "topic=a&type="+url.QueryEscape("x\ndata: injected")), 400, "type"},
			{"publish with non-digit retry", postAs(pub, "topic=a&retry=12a"), 400, "retry"},
			{"publish with negative retry", postAs(pub, "topic=a&retry=-5"), 400, "retry"},
			{"publish with spaced retry", postAs(pub, "topic=a&retry=+5"), 400, "retry"},
			{"publish with huge retry", postAs(pub, "topic=a&retry=99999999999999999999"), 400, "retry"},
			{"publish a body over the limit", postAs(pub, "topic=a&data="+strings.Repeat("x", 2000)), 413, "larger than"},
			{"publish to too many topics", postAs(pub, "topic=a&topic=b&topic=c&topic=d&data=x"), 413, "too many topics in one update (4; max 3)"},
			{"publish too many form fields", postAs(pub, strings.Repeat("x=1&", 40)+"topic=a"), 413, "too many form fields"},
			{"publish too many empty fields", postAs(pub, "topic=a"+strings.Repeat("&", 200)), 413, "too many form fields"},
			{"publish a malformed form", postAs(pub, "topic=a&data=%zz"), 400, "malformed form"},
			{"batch without token", batch("", "", ok), 401, "needs a token"},
			{"batch with a subscriber-only token", batch(subscriberOnly, "", ok), 403, "may not publish"},
			{"batch as a form", withType(batch(pub, "", "topic=a"), form), 415, "x-ndjson"},
			{"batch as JSON", withType(batch(pub, "", ok), "application/json"), 415, "x-ndjson"},
			{"batch with a malformed line", batch(pub, "", ok, `{"topic":"health","data":`), 400, "update 1: malformed line"},
			{"batch with a line that is no object", batch(pub, "", ok, `["health"]`), 400, "update 1: malformed line"},
			{"batch with two values on a line", batch(pub, "", ok, `{"topic":"health"} {"topic":"health"}`), 400, "update 1: malformed line: more than one"},
			{"batch with an unknown field", batch(pub, "", ok, `{"topic":"health","date":"x"}`), 400, "update 1: malformed line: json: unknown field"},
			{"batch with one forbidden topic", batch(booksOnly, "", `{"topic":"https://example.com/books/1"}`, `{"topic":["https://example.com/books/2","secret"]}`), 403, "update 1: token may not publish"},
			{"batch with a line without topic", batch(pub, "", ok, `{"data":"x"}`), 400, "update 1: missing topic"},
			{"batch with LF in an id", batch(pub, "", ok, `{"topic":"health","id":"1\nevent: x"}`), 400, "update 1: hub: invalid update: id"},
			{"batch with a reserved type", batch(pub, "", ok, `{"topic":"health","type":"mercure"}`), 400, "update 1: type \"mercure\" is reserved"},
			{"batch with a negative retry", batch(pub, "", ok, `{"topic":"health","retry":-1}`), 400, "update 1: retry"},
			{"batch with a fractional retry", batch(pub, "", ok, `{"topic":"health","retry":1.5}`), 400, "update 1: retry"},
			{"batch with too many topics in a line", batch(pub, "", ok, `{"topic":["a","b","c","d"]}`), 413, "update 1: too many topics"},
			{"batch naming an id twice", batch(pub, "", `{"topic":"health","id":"twice"}`, `{"topic":"health","id":"twice"}`), 409, "update 1: hub: duplicate update id"},
			{"batch with a retained id", batch(pub, "", ok, `{"topic":"t","id":`+strconv.Quote(taken)+`}`), 409, "update 1: hub: duplicate"},
			{"batch of too many updates", batch(pub, "", ok, ok, ok, ok), 413, "more than 3 updates in one batch"},
			{"batch over the byte limit", batch(pub, "", ok, `{"topic":"health","data":"`+strings.Repeat("x", 1000)+`"}`, `{"topic":"health","data":"`+strings.Repeat("x", 1000)+`"}`), 413, "larger than 2048 bytes"},
			{"batch with a line over the body limit", batch(pub, "", ok, `{"topic":"health","data":"`+strings.Repeat("x", 1100)+`"}`), 413, "line longer than 1024 bytes"},
			{"batch with a bad stream parameter", batch(pub, "?stream=maybe", ok), 400, "stream must be"},
			{"PUT the hub", method("PUT", "/.well-known/mercure"), 405, "Method Not Allowed"},
			{"DELETE the hub", method("DELETE", "/.well-known/mercure"), 405, "Method Not Allowed"},
			{"preflight from a foreign origin", preflight("https://evil.example"), 403, "origin not allowed"},
			{"subscriptions API when disabled", method("GET", "/.well-known/mercure/subscriptions"), 404, "not enabled"},
			{"unknown path", method("GET", "/nope"), 404, "not found"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, body := th.do(tt.req)
				if status != tt.status {
					t.Errorf("status = %d (%q); want %d", status, body, tt.status)
				}
				reason := strings.TrimSuffix(body, "\n")
				if reason == "" || strings.ContainsAny(reason, "\r\n") {
					t.Errorf("reason %q is not one line", body)
				}
				if !strings.Contains(strings.ToLower(reason), strings.ToLower(tt.reason)) {
					t.Errorf("reason %q does not say %q", reason, tt.reason)
				}
			})
		}
		if len(tests) < 25 {
			t.Fatalf("only %d bad requests", len(tests))
		}
		// Nothing refused reached the store or a subscriber, and the hub
		// still serves.
		th.mustPublish("still serving", "health")
		if got := watcher.nextData(); got != "still serving" {
			t.Fatalf("watcher got %q; want the update published after the bad requests", got)
		}
	})
}

func TestHeadSubscribeOpensNoStream(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, nil)
		req, _ := http.NewRequest("HEAD", th.url+"?topic=a", nil)
		status, body := th.do(req)
		if status != 200 || body != "" {
			t.Fatalf("HEAD: %d %q; want 200 and no body", status, body)
		}
		if n := len(th.hub.Subscriptions()); n != 0 {
			t.Fatalf("HEAD registered %d subscriptions; want none", n)
		}
	})
}

func TestLimits(t *testing.T) {
	t.Run("subscribers in total", func(t *testing.T) {
		th := newTestHub(t, ssetest.HTTP1, func(_ *hub.Config, s *server.Config) { s.MaxSubscribers = 2 })
		th.subscribe(topics("a"), nil)
		th.subscribe(topics("a"), nil)
		req, _ := http.NewRequest("GET", th.url+"?topic=a", nil)
		resp, err := th.head(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("third subscriber: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	})
	t.Run("subscribers per client", func(t *testing.T) {
		th := newTestHub(t, ssetest.HTTP1, func(_ *hub.Config, s *server.Config) { s.MaxSubscribersPerClient = 1 })
		first := th.subscribe(topics("a"), nil)
		req, _ := http.NewRequest("GET", th.url+"?topic=a", nil)
		resp, err := th.head(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("second subscriber: %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		// The slot is freed when the first one leaves (noticed by the
		// departure watcher, or where there is none by a write).
		first.resp.Body.Close()
		poll.Until(t, "the departed subscriber's slot freed", 10*time.Second, func() bool {
			th.mustPublish("x", "a")
			return th.subscribeStatus(topics("a")) == http.StatusOK
		})
	})
	t.Run("publish rate per token", func(t *testing.T) {
		th := newTestHub(t, ssetest.HTTP1, func(_ *hub.Config, s *server.Config) {
			s.PublishRate = 0.001
			s.PublishBurst = 3
		})
		tok := th.publisher()
		for i := range 3 {
			if status, body := th.publish(tok, url.Values{"topic": {"a"}}); status != 200 {
				t.Fatalf("publish %d: %d %s", i, status, body)
			}
		}
		req, _ := http.NewRequest("POST", th.url, strings.NewReader("topic=a"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := th.head(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("fourth publish: %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		other := th.token(hub.Claims{Publish: []string{"a"}})
		if status, body := th.publish(other, url.Values{"topic": {"a"}}); status != 200 {
			t.Fatalf("another token is limited too: %d %s", status, body)
		}
	})
}

func TestCORS(t *testing.T) {
	th := newTestHub(t, ssetest.HTTP1, func(_ *hub.Config, s *server.Config) {
		s.CORSOrigins = []string{"https://app.example"}
	})
	req, _ := http.NewRequest("OPTIONS", th.url, nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := th.head(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		h.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, h)
	}
	// A cookie-authenticated publish from the allowed origin works.
	preq, _ := http.NewRequest("POST", th.url, strings.NewReader("topic=a&data=x"))
	preq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	preq.Header.Set("Origin", "https://app.example")
	preq.Header.Set("Cookie", "mercureAuthorization="+th.publisher())
	if status, body := th.do(preq); status != 200 {
		t.Fatalf("cookie publish from an allowed origin: %d %s", status, body)
	}
	if _, err := server.New(server.Config{Hub: th.hub, CORSOrigins: []string{"app.example"}}); err == nil {
		t.Error("an origin without scheme was accepted")
	}
}

func TestSubscriptionsAPI(t *testing.T) {
	th := newTestHub(t, ssetest.HTTP1, func(h *hub.Config, s *server.Config) {
		h.SubscriptionEvents = true
		s.Subscriptions = true
	})
	reader := http.Header{"Authorization": {"Bearer " + th.token(hub.Claims{Subscribe: []string{"/.well-known/mercure/subscriptions{/topic}{/subscriber}"}})}}
	events := th.subscribe(topics("/.well-known/mercure/subscriptions{/topic}{/subscriber}"), reader)
	th.subscribe(topics("https://example.com/books/1"), http.Header{"Authorization": {"Bearer " + th.token(hub.Claims{Payload: []byte(`{"user":"ann"}`)})}})
	ev := events.next() // the reader's own subscription comes first
	for range 3 {
		if strings.Contains(ev.Data, "books/1") {
			break
		}
		ev = events.next()
	}
	for _, want := range []string{`"type":"Subscription"`, `"topic":"https://example.com/books/1"`, `"active":true`, `"payload":{"user":"ann"}`} {
		if !strings.Contains(ev.Data, want) {
			t.Errorf("subscription event %s lacks %s", ev.Data, want)
		}
	}
	req, _ := http.NewRequest("GET", th.url+"/subscriptions", nil)
	req.Header = reader
	status, body := th.do(req)
	if status != 200 || !strings.Contains(body, `"type":"Subscriptions"`) || !strings.Contains(body, "https://example.com/books/1") {
		t.Fatalf("list: %d %s", status, body)
	}
	req, _ = http.NewRequest("GET", th.url+"/subscriptions", nil)
	req.Header.Set("Authorization", "Bearer "+th.token(hub.Claims{Subscribe: []string{"https://example.com/books/{id}"}}))
	if status, _ := th.do(req); status != 403 {
		t.Errorf("list with a token for other topics: %d; want 403", status)
	}
}

func TestPerClientLimitBehindTrustedProxy(t *testing.T) {
	subscribeFrom := func(th *testHub, forwardedFor string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", th.url+"?topic=a", nil)
		req.Header.Set("X-Forwarded-For", forwardedFor)
		resp, err := th.head(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			resp.Body.Close()
		} else {
			t.Cleanup(func() { resp.Body.Close() })
		}
		return resp.StatusCode
	}
	t.Run("trusted", func(t *testing.T) {
		th := newTestHub(t, ssetest.HTTP1, func(_ *hub.Config, s *server.Config) {
			s.MaxSubscribersPerClient = 1
			s.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		})
		if got := subscribeFrom(th, "203.0.113.5"); got != 200 {
			t.Fatalf("first client: %d", got)
		}
		if got := subscribeFrom(th, "203.0.113.6, 127.0.0.9"); got != 200 {
			t.Fatalf("second client behind two proxies: %d; want 200 (a client of its own)", got)
		}
		if got := subscribeFrom(th, "198.51.100.1, 203.0.113.5"); got != 429 {
			t.Fatalf("first client again, with a forged entry on the left: %d; want 429", got)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		th := newTestHub(t, ssetest.HTTP1, func(_ *hub.Config, s *server.Config) { s.MaxSubscribersPerClient = 1 })
		if got := subscribeFrom(th, "203.0.113.5"); got != 200 {
			t.Fatalf("first: %d", got)
		}
		if got := subscribeFrom(th, "203.0.113.6"); got != 429 {
			t.Fatalf("a forged X-Forwarded-For from an untrusted peer: %d; want 429 (counted as the peer)", got)
		}
	})
}

// TestSlowPublishBodyTimesOut: a publisher that sends its body a byte at
// a time gets 408 after BodyTimeout instead of holding the request, and
// the hub keeps serving.
func TestSlowPublishBodyTimesOut(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, func(_ *hub.Config, s *server.Config) { s.BodyTimeout = 300 * time.Millisecond })
		pr, pw := io.Pipe()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			defer pw.Close()
			pw.Write([]byte("topic=slow&data="))
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
					if _, err := pw.Write([]byte("x")); err != nil {
						return
					}
				}
			}
		}()
		req, _ := http.NewRequest("POST", th.url, pr)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+th.publisher())
		status, body := th.do(req)
		if status != http.StatusRequestTimeout || !strings.Contains(body, "not received within") {
			t.Errorf("slow body: %d %q; want 408 saying the body was not received in time", status, body)
		}
		th.mustPublish("still serving", "other")
	})
}
