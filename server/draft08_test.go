package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/testhub"
	"github.com/ssekit/sse/jwtauth"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/ssetest"
)

// newRequest is a request to the hub endpoint followed by suffix (a path
// under it, a "?query"), with body as a form when not empty; header holds
// name, value pairs ("Host" sets the request's host, "Content-Type"
// overrides the form's).
func (th *testHub) newRequest(method, suffix, body string, header ...string) *http.Request {
	th.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, th.url+suffix, rd)
	if err != nil {
		th.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" { // the client sends req.Host, not a header
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// send does req and returns the response, its body read.
func (th *testHub) send(req *http.Request) (*http.Response, string) {
	th.t.Helper()
	resp, err := th.http.Client().Do(req)
	if err != nil {
		th.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// subscribeRaw opens a subscription with a raw query string and, when
// method is QUERY, a form body; it returns the response (its body is the
// stream when the status is 200).
func (th *testHub) subscribeRaw(method, rawQuery, body string, header ...string) *http.Response {
	th.t.Helper()
	resp, err := th.head(th.newRequest(method, "?"+rawQuery, body, header...))
	if err != nil {
		th.t.Fatal(err)
	}
	th.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// metadataURL is the protected-resource metadata's URL on th's origin.
func (th *testHub) metadataURL() string {
	return strings.TrimSuffix(th.url, hub.Path) + "/.well-known/oauth-protected-resource" + hub.Path
}

// stream reads an open subscription's events.
func (th *testHub) stream(resp *http.Response) *subscription {
	th.t.Helper()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		th.t.Fatalf("subscribe: %d %s", resp.StatusCode, body)
	}
	s := &subscription{t: th.t, resp: resp, events: make(chan sse.Event, 1024), done: make(chan error, 1)}
	go func() {
		for ev, err := range sse.NewDecoder(resp.Body).Events() {
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

// TestDraft08Matchers subscribes with every draft-08 matcher parameter
// (and topic= beside them), by GET and by QUERY, and checks which updates
// each subscriber receives.
func TestDraft08Matchers(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, nil)
		tests := []struct {
			name        string
			method      string
			query, body string
			want        []string // data of the updates received, in order
		}{
			{"Exact", "GET", "match=https://example.com/books/1", "", []string{"1"}},
			{"ExactSpelledOut", "GET", "match_exact=https://example.com/books/1", "", []string{"1"}},
			{"ExactIsNotATemplate", "GET", "match_exact=" + url.QueryEscape("https://example.com/books/{id}"), "", []string{"3"}},
			{"URLPattern", "GET", "match_urlpattern=" + url.QueryEscape("https://example.com/books/:id"), "", []string{"1", "2", "3"}},
			{"URLPatternRelative", "GET", "match_urlpattern=" + url.QueryEscape("/books/:id"), "", []string{"4"}},
			{"WildcardUnderURLPattern", "GET", "match_urlpattern=*", "", []string{"1", "2", "3", "4", "5", "6"}},
			{"WildcardUnderMatch", "GET", "match=*", "", []string{"1", "2", "3", "4", "5", "6"}},
			{"LegacyTemplateBesideMatch", "GET", "topic=" + url.QueryEscape("https://example.com/books/{id}") + "&match=a;b", "", []string{"1", "2", "3", "5"}},
			{"SemicolonIsData", "GET", "match=a;b", "", []string{"5"}},
			{"PlusIsSpace", "GET", "match=a+b", "", nil},
			{"QueryBodyOnly", "QUERY", "", "match=https%3A%2F%2Fexample.com%2Fbooks%2F2", []string{"2"}},
			{"QueryUnion", "QUERY", "match=a;b", "match=https%3A%2F%2Fexample.com%2Fbooks%2F2&match_urlpattern=%2Fbooks%2F%3Aid", []string{"2", "4", "5"}},
			{"DuplicatesOnce", "GET", "match=https://example.com/books/1&match_exact=https://example.com/books/1&topic=https://example.com/books/1", "", []string{"1"}},
		}
		subs := make([]*subscription, len(tests))
		for i, tt := range tests {
			subs[i] = th.stream(th.subscribeRaw(tt.method, tt.query, tt.body))
		}
		th.mustPublish("1", "https://example.com/books/1")
		th.mustPublish("2", "https://example.com/books/2")
		th.mustPublish("3", "https://example.com/books/{id}")
		th.mustPublish("4", "/books/3")
		th.mustPublish("5", "a;b")
		th.mustPublish("6", "https://example.com/books/1/reviews")
		th.mustPublish("end", "a b", "https://example.com/books/1", "https://example.com/books/{id}", "/books/3", "a;b", "https://example.com/books/2")
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var got []string
				for { // every subscriber gets "end"
					d := subs[i].nextData()
					if d == "end" {
						break
					}
					got = append(got, d)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("received %q; want %q", got, tt.want)
				}
			})
		}
	})
}

// TestDraft08SubscribeRefusals sends subscription requests draft-08 says
// to refuse: each gets its status and reason, and a subscriber beside them
// is still served.
func TestDraft08SubscribeRefusals(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, func(_ *hub.Config, s *server.Config) {
			s.MaxTopics = 3
			s.MaxBodyBytes = 1024
		})
		watcher := th.stream(th.subscribeRaw("GET", "match=w", ""))
		long := strings.Repeat("a", hub.MaxSelectorLength+1)
		tests := []struct {
			name        string
			method      string
			query, body string
			contentType string // "" with a body: the form type
			status      int
			reason      string
		}{
			{"NoMatcher", "GET", "last_event_id=x", "", "", 400, "missing topic"},
			{"CapitalMatch", "GET", "Match=x", "", "", 400, `unknown matcher parameter "Match"`},
			{"CapitalType", "GET", "MATCH_exact=x", "", "", 400, "unknown matcher parameter"},
			{"TypeCase", "GET", "match_URLPattern=x", "", "", 400, "unknown matcher parameter"},
			{"UnknownType", "GET", "match_regex=x", "", "", 400, "unknown matcher parameter"},
			{"Matches", "GET", "match=x&matches=x", "", "", 400, "unknown matcher parameter"},
			{"MatchAll", "GET", "matchAll=x", "", "", 400, "unknown matcher parameter"},
			{"UnknownInBody", "QUERY", "match=x", "match_uritemplate=x", "", 400, "unknown matcher parameter"},
			{"Empty", "GET", "match=", "", "", 400, "empty match"},
			{"BareName", "GET", "match_exact", "", "", 400, "empty match_exact"},
			{"TooLong", "GET", "match=" + long, "", "", 400, "too long"},
			{"PatternTooLong", "GET", "match_urlpattern=" + long, "", "", 400, "too long"},
			{"TooMany", "GET", "match=a&match_exact=b&match_urlpattern=c&match=d", "", "", 400, "too many topics"},
			{"TooManyWithTopic", "GET", "topic=a&topic=b&match=c&match=d", "", "", 400, "too many topics"},
			{"TooManyInUnion", "QUERY", "match=a&match=b", "match=c&match=d", "", 400, "too many topics"},
			{"ControlCharacter", "GET", "match=a%00b", "", "", 400, "control or format character"},
			{"TopicSpelledLikeMatcherKey", "GET", "topic=%00urlpattern%00x", "", "", 400, "NUL byte"},
			{"FormatCharacter", "GET", "match=a%E2%80%8Eb", "", "", 400, "control or format character"},
			{"NotUTF8", "GET", "match=a%FFb", "", "", 400, "not valid UTF-8"},
			{"InvalidPattern", "GET", "match_urlpattern=" + url.QueryEscape("https://example.com/(a"), "", "", 400, "invalid match_urlpattern"},
			{"LookAhead", "GET", "match_urlpattern=" + url.QueryEscape("https://example.com/(?=a)x"), "", "", 400, "invalid match_urlpattern"},
			{"CountedRepetition", "GET", "match_urlpattern=" + url.QueryEscape("https://example.com/(a{1000})"), "", "", 400, "counted repetition"},
			{"QueryNotAForm", "QUERY", "", "match=x", "application/json", 415, "Content-Type"},
			{"QueryBodyTooLarge", "QUERY", "", "match=" + strings.Repeat("x", 2000), "", 413, "body larger than"},
			{"QueryTooManyFields", "QUERY", "", strings.Repeat("x=1&", 40) + "match=x", "", 400, "too many form fields"},
			{"TooManyQueryParameters", "GET", strings.Repeat("x=1&", 40) + "match=x", "", "", 400, "too many query parameters"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var header []string
				if tt.contentType != "" {
					header = []string{"Content-Type", tt.contentType}
				}
				resp := th.subscribeRaw(tt.method, tt.query, tt.body, header...)
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.reason) {
					t.Errorf("%d %q; want %d with %q", resp.StatusCode, body, tt.status, tt.reason)
				}
				if n := strings.Count(strings.TrimSpace(string(body)), "\n"); n > 0 {
					t.Errorf("reason of %d lines; want one", n+1)
				}
			})
		}
		th.mustPublish("still served", "w")
		if got := watcher.nextData(); got != "still served" {
			t.Errorf("watcher got %q after the refusals", got)
		}
	})
}

// TestDraft08LastEventID checks the cursor's sources and their precedence
// (header, then last_event_id of the query, of the body, then draft-07's
// lastEventID) and that both response headers name where the stream
// resumed.
func TestDraft08LastEventID(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, nil)
		ids := []string{
			th.mustPublish("0", "t"), th.mustPublish("1", "t"),
			th.mustPublish("2", "t"), th.mustPublish("3", "t"),
		}
		// The newest update is private: an empty cursor must not name it.
		if status, body := th.publish(th.publisher(), url.Values{"topic": {"t"}, "data": {"p"}, "private": {""}}); status != http.StatusOK {
			t.Fatalf("private publish: %d %s", status, body)
		}
		tests := []struct {
			name        string
			method      string
			query, body string
			header      []string
			resumed     string // both response headers
			first       string // data of the first event
		}{
			{"Query", "GET", "match=t&last_event_id=" + ids[0], "", nil, ids[0], "1"},
			{"QueryOverDraft07", "GET", "match=t&lastEventID=" + ids[2] + "&last_event_id=" + ids[0], "", nil, ids[0], "1"},
			{"Draft07", "GET", "match=t&lastEventID=" + ids[1], "", nil, ids[1], "2"},
			{"HeaderOverQuery", "GET", "match=t&last_event_id=" + ids[0], "", []string{"Last-Event-ID", ids[2]}, ids[2], "3"},
			{"Body", "QUERY", "", "match=t&last_event_id=" + url.QueryEscape(ids[1]), nil, ids[1], "2"},
			{"QueryOverBody", "QUERY", "last_event_id=" + ids[2], "match=t&last_event_id=" + url.QueryEscape(ids[0]), nil, ids[2], "3"},
			{"Earliest", "GET", "match=t&last_event_id=earliest", "", nil, "earliest", "0"},
			{"Unknown", "GET", "match=t&last_event_id=nope", "", nil, "earliest", ""},
			{"EmptyAsksToo", "GET", "match=t&last_event_id=", "", nil, ids[3], ""},
			{"EmptyDraft07AsksToo", "GET", "match=t&lastEventID", "", nil, ids[3], ""},
			{"None", "GET", "match=t", "", nil, "", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp := th.subscribeRaw(tt.method, tt.query, tt.body, tt.header...)
				s := th.stream(resp)
				for _, h := range []string{"Mercure-Last-Event-ID", "Last-Event-ID"} {
					if got := resp.Header.Get(h); got != tt.resumed {
						t.Errorf("%s: %q; want %q", h, got, tt.resumed)
					}
				}
				if tt.first == "" {
					return
				}
				if got := s.nextData(); got != tt.first {
					t.Errorf("first event %q; want %q", got, tt.first)
				}
			})
		}
	})
}

// TestDraft08PublishRules publishes what draft-08 refuses (for every
// publisher, whatever its token) and what it accepts: status, reason,
// exact success answer, and that nothing refused reaches a subscriber.
func TestDraft08PublishRules(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, func(_ *hub.Config, s *server.Config) { s.MaxUpdateTopics = 3 })
		watcher := th.stream(th.subscribeRaw("GET", "match=*", ""))
		tests := []struct {
			name   string
			body   string
			status int
			reason string // for refusals
		}{
			{"NoTopic", "data=x", 400, "missing topic"},
			{"Wildcard", "topic=*&data=x", 400, `topic "*" is reserved`},
			{"WildcardAlternate", "topic=a&topic=*&data=x", 400, `topic "*" is reserved`},
			{"HubPath", "topic=%2F.well-known%2Fmercure&data=x", 400, "reserved namespace"},
			{"SubscriptionEvent", "topic=%2F.well-known%2Fmercure%2Fsubscriptions%2Fexact%2Fa%2Fb&data=x", 400, "reserved namespace"},
			{"OtherHostEscaped", "topic=" + url.QueryEscape("https://any.host/.well-known/%6Dercure/x") + "&data=x", 400, "reserved namespace"},
			{"DotSegments", "topic=" + url.QueryEscape("/.well-known/mercure/../mercure/x") + "&data=x", 400, "reserved namespace"},
			{"RelativeAlternate", "topic=a&topic=mercure%2Fx&data=x", 400, "reserved namespace"},
			{"TopicControl", "topic=a%0Ab&data=x", 400, "control or format character"},
			{"TopicFormat", "topic=a%E2%80%AEb&data=x", 400, "control or format character"},
			{"TypeMercure", "topic=a&type=mercure&data=x", 400, `type "mercure" is reserved`},
			{"IDEarliest", "topic=a&id=earliest&data=x", 400, "reserved"},
			{"IDFragment", "topic=a&id=%23x&data=x", 400, "id starts with #"},
			{"IDControl", "topic=a&id=a%0Db&data=x", 400, "control or format character"},
			{"IDFormat", "topic=a&id=a%E2%80%8Bb&data=x", 400, "control or format character"},
			{"RetryNotDigits", "topic=a&retry=1e3&data=x", 400, "retry must be ASCII digits"},
			{"TooManyTopics", "topic=a&topic=b&topic=c&topic=d&data=x", 413, "too many topics in one update"},
			{"Accepted", "topic=a&id=ok-1&data=ok", 200, ""},
			{"AcceptedNearNamespace", "topic=" + url.QueryEscape("https://h/.well-known/mercurex") + "&id=ok-2&data=ok", 200, ""},
			{"PrivateByPresence", "topic=a&id=ok-3&data=private&private=false", 200, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := th.send(th.newRequest("POST", "", tt.body, "Authorization", "Bearer "+th.publisher()))
				if resp.StatusCode != tt.status || !strings.Contains(body, tt.reason) {
					t.Fatalf("%d %q; want %d with %q", resp.StatusCode, body, tt.status, tt.reason)
				}
				if tt.status == 200 {
					if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
						t.Errorf("Content-Type %q; want text/plain; charset=utf-8", ct)
					}
					if !strings.HasPrefix(body, "ok-") {
						t.Errorf("body %q; want the update's id", body)
					}
				}
			})
		}
		// The anonymous watcher gets the public updates, not the private one
		// nor any refused one.
		th.mustPublish("end", "a")
		var got []string
		for d := watcher.nextData(); d != "end"; d = watcher.nextData() {
			got = append(got, d)
		}
		if !slices.Equal(got, []string{"ok", "ok"}) {
			t.Errorf("watcher received %q; want the two public accepted updates", got)
		}
	})
}

// TestDraft08Challenges checks the RFC 6750 answers: a bare Bearer
// challenge when no token was presented, invalid_token for every invalid
// one, insufficient_scope for a valid token without the grant,
// invalid_request for a malformed presentation, and no challenge for a
// request malformed independently of the token.
func TestDraft08Challenges(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, func(_ *hub.Config, s *server.Config) {
			s.AllowAnonymous = false
			s.Subscriptions = true
		})
		otherKey, err := jwtauth.NewKey("HS256", []byte("another-secret-another-secret-another"))
		if err != nil {
			t.Fatal(err)
		}
		wrongKey, _ := jwtauth.Sign(otherKey, hub.Claims{Publish: []string{"*"}, Subscribe: []string{"*"}})
		expired := th.token(hub.Claims{Publish: []string{"*"}, Subscribe: []string{"*"}, ExpiresAt: time.Now().Add(-time.Hour)})
		subscriber := th.token(hub.Claims{Subscribe: []string{"https://example.com/books/1"}})
		req := th.newRequest
		bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
		tests := []struct {
			name      string
			req       *http.Request
			status    int
			challenge string // "": none
		}{
			{"SubscribeNoToken", req("GET", "?match=a", ""), 401, "Bearer"},
			{"SubscribeOtherScheme", req("GET", "?match=a", "", "Authorization", "Basic dTpw"), 401, "Bearer"},
			{"SubscribeEmptyBearer", req("GET", "?match=a", "", "Authorization", "Bearer "), 400, `Bearer error="invalid_request"`},
			{"SubscribeBareBearer", req("GET", "?match=a", "", "Authorization", "Bearer"), 400, `Bearer error="invalid_request"`},
			{"SubscribeGarbage", req("GET", "?match=a", "", bearer("not.a.jwt")...), 401, `Bearer error="invalid_token"`},
			{"SubscribeWrongKey", req("GET", "?match=a", "", bearer(wrongKey)...), 401, `Bearer error="invalid_token"`},
			{"SubscribeExpired", req("GET", "?match=a", "", bearer(expired)...), 401, `Bearer error="invalid_token"`},
			{"SubscribeEmptyQueryToken", req("GET", "?match=a&authorization=", ""), 401, `Bearer error="invalid_token"`},
			{"SubscribeUnknownMatcher", req("GET", "?match_regex=a", "", bearer(subscriber)...), 400, ""},
			{"PublishNoToken", req("POST", "", "topic=a&data=x"), 401, "Bearer"},
			{"PublishWrongKey", req("POST", "", "topic=a&data=x", bearer(wrongKey)...), 401, `Bearer error="invalid_token"`},
			{"PublishWithoutGrant", req("POST", "", "topic=a&data=x", bearer(subscriber)...), 403, `Bearer error="insufficient_scope"`},
			{"PublishReservedTopic", req("POST", "", "topic=*&data=x", bearer(th.publisher())...), 400, ""},
			{"SubscriptionsNoToken", req("GET", "/subscriptions", ""), 401, "Bearer"},
			{"SubscriptionsWithoutGrant", req("GET", "/subscriptions", "", bearer(subscriber)...), 403, `Bearer error="insufficient_scope"`},
		}
		// Every challenge points to the metadata document.
		metadata := `resource_metadata="` + th.metadataURL() + `"`
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, _ := th.send(tt.req)
				want := tt.challenge
				switch {
				case want == "Bearer":
					want += " " + metadata
				case want != "":
					want += ", " + metadata
				}
				got := resp.Header.Values("WWW-Authenticate")
				if resp.StatusCode != tt.status || (want == "") != (len(got) == 0) || len(got) > 0 && got[0] != want {
					t.Errorf("%d with WWW-Authenticate %q; want %d with %q", resp.StatusCode, got, tt.status, want)
				}
			})
		}
	})
}

// TestDraft08PublishGrants publishes with draft-08 access tokens: a
// publish detail's exact, "*" and URL Pattern matchers (relative ones
// resolved against Config.HubURL, never the request's Host), every topic
// of an update needing a grant, and a subscribe-only detail granting no
// publishing.
func TestDraft08PublishGrants(t *testing.T) {
	const (
		issuer = "https://issuer.example"
		hubURL = "https://hub.example/.well-known/mercure"
	)
	for _, withHubURL := range []bool{true, false} {
		name := "WithHubURL"
		if !withHubURL {
			name = "WithoutHubURL"
		}
		t.Run(name, func(t *testing.T) {
			th := newTestHub(t, ssetest.HTTP1, func(_ *hub.Config, s *server.Config) {
				key, err := jwtauth.NewKey("HS256", []byte(testhub.Secret))
				if err != nil {
					t.Fatal(err)
				}
				auth, err := jwtauth.New(jwtauth.Config{Issuers: []jwtauth.Issuer{{ID: issuer, Keys: []*jwtauth.Key{key}}}, Resource: hubURL})
				if err != nil {
					t.Fatal(err)
				}
				s.Auth = auth
				if withHubURL {
					s.HubURL = hubURL
				}
			})
			access := func(details ...hub.AuthorizationDetail) string {
				tok, err := jwtauth.SignAccess(th.key, jwtauth.AccessClaims{Issuer: issuer, Audience: hubURL, ExpiresAt: time.Now().Add(time.Hour), Details: details})
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
			publish := func(matchers ...hub.TokenMatcher) hub.AuthorizationDetail {
				return hub.AuthorizationDetail{Publish: true, Topics: matchers}
			}
			books := access(publish(hub.TokenMatcher{Match: "https://hub.example/books/:id", Type: "urlpattern"}))
			relative := access(publish(hub.TokenMatcher{Match: "/books/:id", Type: "urlpattern"}))
			tests := []struct {
				name   string
				token  string
				topics []string
				host   string // "": the server's own
				want   int
			}{
				{"Exact", access(publish(hub.TokenMatcher{Match: "urn:a"})), []string{"urn:a"}, "", 200},
				{"ExactOther", access(publish(hub.TokenMatcher{Match: "urn:a"})), []string{"urn:b"}, "", 403},
				{"Wildcard", access(publish(hub.TokenMatcher{Match: "*"})), []string{"urn:x", "https://x/y"}, "", 200},
				{"URLPattern", books, []string{"https://hub.example/books/1"}, "", 200},
				{"URLPatternNotPath", books, []string{"https://hub.example/books/1/reviews"}, "", 403},
				{"EveryTopicNeedsAGrant", books, []string{"https://hub.example/books/1", "urn:other"}, "", 403},
				{"TwoDetails", access(publish(hub.TokenMatcher{Match: "urn:other"}), publish(hub.TokenMatcher{Match: "https://hub.example/books/:id", Type: "urlpattern"})), []string{"https://hub.example/books/1", "urn:other"}, "", 200},
				{"SubscribeOnly", access(hub.AuthorizationDetail{Subscribe: true, Topics: []hub.TokenMatcher{{Match: "*"}}}), []string{"urn:a"}, "", 403},
				{"Relative", relative, []string{"https://hub.example/books/1"}, "", map[bool]int{true: 200, false: 403}[withHubURL]},
				{"RelativeForgedHost", relative, []string{"http://evil.example/books/1"}, "evil.example", 403},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					header := []string{"Authorization", "Bearer " + tt.token}
					if tt.host != "" {
						header = append(header, "Host", tt.host)
					}
					form := url.Values{"topic": tt.topics, "data": {"x"}}
					resp, body := th.send(th.newRequest("POST", "", form.Encode(), header...))
					if resp.StatusCode != tt.want {
						t.Errorf("%d %q; want %d", resp.StatusCode, body, tt.want)
					}
				})
			}
		})
	}
}

// TestDraft08PrivateGrants subscribes with draft-08 access tokens and
// checks which private updates each receives, live and replayed: exact,
// "*" and URL Pattern subscribe grants (relative ones against HubURL), a
// publish-only detail granting nothing, and a forged Host reaching no
// other host's private topics.
func TestDraft08PrivateGrants(t *testing.T) {
	const (
		issuer = "https://issuer.example"
		hubURL = "https://hub.example/.well-known/mercure"
	)
	th := newTestHub(t, ssetest.HTTP1, func(_ *hub.Config, s *server.Config) {
		key, err := jwtauth.NewKey("HS256", []byte(testhub.Secret))
		if err != nil {
			t.Fatal(err)
		}
		auth, err := jwtauth.New(jwtauth.Config{PublisherKey: key, Issuers: []jwtauth.Issuer{{ID: issuer, Keys: []*jwtauth.Key{key}}}, Resource: hubURL})
		if err != nil {
			t.Fatal(err)
		}
		s.Auth = auth
		s.HubURL = hubURL
	})
	access := func(d hub.AuthorizationDetail) string {
		tok, err := jwtauth.SignAccess(th.key, jwtauth.AccessClaims{Issuer: issuer, Audience: hubURL, ExpiresAt: time.Now().Add(time.Hour), Details: []hub.AuthorizationDetail{d}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	grant := func(matchers ...hub.TokenMatcher) string {
		return access(hub.AuthorizationDetail{Subscribe: true, Topics: matchers})
	}
	publishPrivate := func(data string, topics ...string) string {
		status, body := th.publish(th.publisher(), url.Values{"topic": topics, "data": {data}, "private": {""}})
		if status != http.StatusOK {
			t.Fatalf("publish: %d %s", status, body)
		}
		return body
	}
	first := publishPrivate("before", "https://hub.example/books/1")
	tests := []struct {
		name  string
		token string
		host  string
		want  []string // replayed then live, until "end"
	}{
		{"Exact", grant(hub.TokenMatcher{Match: "https://hub.example/books/1"}), "", []string{"1"}},
		{"Wildcard", grant(hub.TokenMatcher{Match: "*"}), "", []string{"1", "2", "3", "x"}},
		{"URLPattern", grant(hub.TokenMatcher{Match: "https://hub.example/books/:id", Type: "urlpattern"}), "", []string{"1", "2"}},
		{"RelativeURLPattern", grant(hub.TokenMatcher{Match: "/books/:id", Type: "urlpattern"}), "", []string{"1", "2"}},
		{"AlternateTopic", grant(hub.TokenMatcher{Match: "urn:alt"}), "", []string{"3"}},
		{"PublishOnly", access(hub.AuthorizationDetail{Publish: true, Topics: []hub.TokenMatcher{{Match: "*"}}}), "", nil},
		{"ForgedHost", grant(hub.TokenMatcher{Match: "/books/:id", Type: "urlpattern"}), "evil.example", []string{"1", "2"}},
	}
	// 1 and 2 are replayed, 3 and x live.
	publishPrivate("1", "https://hub.example/books/1")
	publishPrivate("2", "https://hub.example/books/2")
	subs := make([]*subscription, len(tests))
	for i, tt := range tests {
		header := []string{"Authorization", "Bearer " + tt.token}
		if tt.host != "" {
			header = append(header, "Host", tt.host)
		}
		resp := th.subscribeRaw("GET", "match=*&last_event_id="+url.QueryEscape(first), "", header...)
		subs[i] = th.stream(resp)
	}
	publishPrivate("3", "https://hub.example/authors/1", "urn:alt")
	publishPrivate("x", "http://evil.example/books/1")
	th.mustPublish("end", "urn:end")
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for d := subs[i].nextData(); d != "end"; d = subs[i].nextData() {
				got = append(got, d)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("received %q; want %q", got, tt.want)
			}
		})
	}
}

// TestDraft08Discovery reads the RFC 9728 protected-resource metadata and
// the Link header a hub answers with, configured and by default, and
// checks that a challenge points to the metadata of the configured hub URL.
func TestDraft08Discovery(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		const hubURL = "https://hub.example/.well-known/mercure"
		type metadata struct {
			Resource             string   `json:"resource"`
			AuthorizationServers []string `json:"authorization_servers"`
			BearerMethods        []string `json:"bearer_methods_supported"`
			DetailTypes          []string `json:"authorization_details_types_supported"`
			Cookie               string   `json:"mercure_cookie"`
			Subscriptions        *bool    `json:"mercure_subscriptions"`
		}
		read := func(th *testHub) (metadata, *http.Response) {
			t.Helper()
			req, _ := http.NewRequest("GET", th.metadataURL(), nil)
			resp, body := th.send(req)
			var m metadata
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("metadata: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			if err := json.Unmarshal([]byte(body), &m); err != nil {
				t.Fatalf("metadata %q: %v", body, err)
			}
			return m, resp
		}
		t.Run("Configured", func(t *testing.T) {
			th := newTestHub(t, proto, func(_ *hub.Config, s *server.Config) {
				s.HubURL = hubURL
				s.Resource = "urn:hub"
				s.AuthorizationServers = []string{"https://auth.example"}
				s.CookieName = "sid"
				s.Subscriptions = true
				s.AllowAnonymous = false
			})
			m, resp := read(th)
			if m.Resource != "urn:hub" || !slices.Equal(m.AuthorizationServers, []string{"https://auth.example"}) ||
				!slices.Equal(m.BearerMethods, []string{"header"}) || !slices.Equal(m.DetailTypes, []string{jwtauth.MercureDetailType}) ||
				m.Cookie != "sid" || m.Subscriptions == nil || !*m.Subscriptions {
				t.Errorf("metadata %+v", m)
			}
			if got := resp.Header.Get("Link"); got != "<"+hubURL+`>; rel="mercure"` {
				t.Errorf("Link %q; want the configured hub URL", got)
			}
			// The configured cookie is read, the default name no longer.
			reader := th.token(hub.Claims{Subscribe: []string{"*"}})
			if resp := th.subscribeRaw("GET", "match=a", "", "Cookie", "sid="+reader); resp.StatusCode != 200 {
				t.Errorf("configured cookie: %d; want 200", resp.StatusCode)
			}
			if resp := th.subscribeRaw("GET", "match=a", "", "Cookie", server.DefaultCookieName+"="+reader); resp.StatusCode != 401 {
				t.Errorf("default cookie name with another configured: %d; want 401", resp.StatusCode)
			}
			resp = th.subscribeRaw("GET", "match=a", "")
			want := `Bearer resource_metadata="https://hub.example/.well-known/oauth-protected-resource/.well-known/mercure"`
			if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || got != want {
				t.Errorf("%d with %q; want 401 with %q", resp.StatusCode, got, want)
			}
		})
		t.Run("Default", func(t *testing.T) {
			th := newTestHub(t, proto, nil)
			m, resp := read(th)
			if m.Resource != th.url || m.AuthorizationServers != nil || m.Cookie != server.DefaultCookieName || m.Subscriptions != nil {
				t.Errorf("metadata %+v; want the request's hub URL, the default cookie, no servers nor subscriptions", m)
			}
			if got := resp.Header.Get("Link"); got != "<"+hub.Path+`>; rel="mercure"` {
				t.Errorf("Link %q", got)
			}
			if got := resp.Header.Get("Vary"); got != "Host" {
				t.Errorf("Vary %q; want Host (the resource is the request's)", got)
			}
		})
	})
}

// TestDraft08ServerConfigRefusals: a hub URL the hub does not serve and a
// cookie name that is no cookie name are refused by server.New.
func TestDraft08ServerConfigRefusals(t *testing.T) {
	tb := testhub.New(t, nil)
	for _, c := range []server.Config{
		{HubURL: "https://hub.example/hub"},
		{HubURL: "https://hub.example/.well-known/mercure?x=1"},
		{HubURL: "ftp://hub.example/.well-known/mercure"},
		{HubURL: "/.well-known/mercure"},
		{CookieName: "a b"},
		{CookieName: "a;b"},
	} {
		c.Hub = tb.Hub
		if s, err := server.New(c); err == nil {
			s.Shutdown(t.Context())
			t.Errorf("server.New(HubURL %q, CookieName %q) accepted", c.HubURL, c.CookieName)
		}
	}
}

// TestDraft08TokenSources presents subscribers' tokens every way: the
// draft-08 cookie, draft-07's, both (the draft-08 one wins), a header
// beside a cookie (the header wins), and the authorization query
// parameter, which only draft-07 tokens may use.
func TestDraft08TokenSources(t *testing.T) {
	const (
		issuer = "https://issuer.example"
		hubURL = "https://hub.example/.well-known/mercure"
	)
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, func(_ *hub.Config, s *server.Config) {
			key, err := jwtauth.NewKey("HS256", []byte(testhub.Secret))
			if err != nil {
				t.Fatal(err)
			}
			auth, err := jwtauth.New(jwtauth.Config{PublisherKey: key, Issuers: []jwtauth.Issuer{{ID: issuer, Keys: []*jwtauth.Key{key}}}, Resource: hubURL})
			if err != nil {
				t.Fatal(err)
			}
			s.Auth, s.HubURL, s.AllowAnonymous = auth, hubURL, false
		})
		access, err := jwtauth.SignAccess(th.key, jwtauth.AccessClaims{Issuer: issuer, Audience: hubURL, ExpiresAt: time.Now().Add(time.Hour),
			Details: []hub.AuthorizationDetail{{Subscribe: true, Topics: []hub.TokenMatcher{{Match: "urn:p"}}}}})
		if err != nil {
			t.Fatal(err)
		}
		reader07 := th.token(hub.Claims{Subscribe: []string{"urn:p"}})
		other07 := th.token(hub.Claims{Subscribe: []string{"urn:other"}})
		if status, body := th.publish(th.publisher(), url.Values{"topic": {"urn:p"}, "data": {"private"}, "private": {""}}); status != 200 {
			t.Fatalf("publish: %d %s", status, body)
		}
		th.mustPublish("end", "urn:p")
		cookie := func(name, value string) string { return name + "=" + value }
		tests := []struct {
			name   string
			query  string
			header []string
			status int
			first  string // the first event: "private" when the token reads it
		}{
			{"Cookie", "", []string{"Cookie", cookie(server.DefaultCookieName, access)}, 200, "private"},
			{"Draft07Cookie", "", []string{"Cookie", cookie(hub.AuthCookie, reader07)}, 200, "private"},
			{"Draft08CookieFirst", "", []string{"Cookie", cookie(server.DefaultCookieName, other07) + "; " + cookie(hub.AuthCookie, reader07)}, 200, "end"},
			{"HeaderOverCookie", "", []string{"Authorization", "Bearer " + other07, "Cookie", cookie(server.DefaultCookieName, access)}, 200, "end"},
			{"HeaderOverCookieGranted", "", []string{"Authorization", "Bearer " + access, "Cookie", cookie(server.DefaultCookieName, other07)}, 200, "private"},
			{"QueryDraft07", "&authorization=" + reader07, nil, 200, "private"},
			{"QueryAccessToken", "&authorization=" + access, nil, 401, ""},
			{"BadCookie", "", []string{"Cookie", cookie(server.DefaultCookieName, "x.y.z")}, 401, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp := th.subscribeRaw("GET", "match=urn:p&last_event_id=earliest"+tt.query, "", tt.header...)
				if resp.StatusCode != tt.status {
					body, _ := io.ReadAll(resp.Body)
					t.Fatalf("%d %q; want %d", resp.StatusCode, body, tt.status)
				}
				if tt.status != 200 {
					if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer error="invalid_token", resource_metadata=`) {
						t.Errorf("WWW-Authenticate %q; want invalid_token", got)
					}
					return
				}
				if got := th.stream(resp).nextData(); got != tt.first {
					t.Errorf("first event %q; want %q", got, tt.first)
				}
			})
		}
	})
}

// TestDraft08DuplicateIDs publishes an id again: another update under it
// is accepted (200 with the id) and delivered with that id, an exact
// retry is stored once, and the id as a cursor resumes after its first
// occurrence, the reuse included.
func TestDraft08DuplicateIDs(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, nil)
		for _, p := range [][2]string{{"d", "1"}, {"a", "2"}, {"d", "3"}, {"d", "3"}, {"e", "4"}} {
			status, body := th.publish(th.publisher(), url.Values{"topic": {"t"}, "id": {p[0]}, "data": {p[1]}})
			if status != 200 || body != p[0] {
				t.Fatalf("publish %s=%s: %d %q; want 200 with the id", p[0], p[1], status, body)
			}
		}
		tests := []struct {
			cursor, resumed string
			want            []string // id=data
		}{
			{"d", "d", []string{"a=2", "d=3", "e=4"}},
			{"earliest", "earliest", []string{"d=1", "a=2", "d=3", "e=4"}},
			{"a", "a", []string{"d=3", "e=4"}},
		}
		for _, tt := range tests {
			t.Run(tt.cursor, func(t *testing.T) {
				resp := th.subscribeRaw("GET", "match=t&last_event_id="+tt.cursor, "")
				if got := resp.Header.Get("Mercure-Last-Event-ID"); got != tt.resumed {
					t.Errorf("Mercure-Last-Event-ID %q; want %q", got, tt.resumed)
				}
				s := th.stream(resp)
				var got []string
				for range tt.want {
					ev := s.next()
					got = append(got, ev.ID+"="+ev.Data)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("replayed %q; want %q", got, tt.want)
				}
			})
		}
		// Live delivery carries the reused id too.
		s := th.stream(th.subscribeRaw("GET", "match=t", ""))
		th.publish(th.publisher(), url.Values{"topic": {"t"}, "id": {"a"}, "data": {"5"}})
		if ev := s.next(); ev.ID != "a" || ev.Data != "5" {
			t.Errorf("live reuse: id %q data %q; want a, 5", ev.ID, ev.Data)
		}
	})
}

// TestDraft08ExpiryEndsStream: a subscriber's stream ends when its access
// token expires, over both protocols, without a write to trigger it.
func TestDraft08ExpiryEndsStream(t *testing.T) {
	const (
		issuer = "https://issuer.example"
		hubURL = "https://hub.example/.well-known/mercure"
	)
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, func(_ *hub.Config, s *server.Config) {
			key, err := jwtauth.NewKey("HS256", []byte(testhub.Secret))
			if err != nil {
				t.Fatal(err)
			}
			auth, err := jwtauth.New(jwtauth.Config{Issuers: []jwtauth.Issuer{{ID: issuer, Keys: []*jwtauth.Key{key}}}, Resource: hubURL})
			if err != nil {
				t.Fatal(err)
			}
			s.Auth, s.HubURL, s.Heartbeat = auth, hubURL, -1
		})
		exp := time.Now().Add(2 * time.Second)
		tok, err := jwtauth.SignAccess(th.key, jwtauth.AccessClaims{Issuer: issuer, Audience: hubURL, ExpiresAt: exp,
			Details: []hub.AuthorizationDetail{{Subscribe: true, Topics: []hub.TokenMatcher{{Match: "*"}}}}})
		if err != nil {
			t.Fatal(err)
		}
		s := th.stream(th.subscribeRaw("GET", "match=t", "", "Authorization", "Bearer "+tok))
		if err := s.ended(); err == nil {
			t.Fatal("stream ended without an error")
		}
		if now := time.Now(); now.Before(exp.Truncate(time.Second)) {
			t.Errorf("stream ended %v before the token's exp", exp.Sub(now))
		}
	})
}

// TestDraft08Subscriptions: subscription events and the subscriptions API
// in each draft's shape. A match* subscription's event has the reserved
// "mercure" type, its /{match_type}/{match}/{subscriber} topic and plain
// JSON with the payload of the first matching detail; a topic= one keeps
// draft-07's JSON-LD message. The API is authorised by access-token
// details on the request's path and sends its cursor in the Link header.
func TestDraft08Subscriptions(t *testing.T) {
	const (
		issuer = "https://issuer.example"
		hubURL = "https://hub.example/.well-known/mercure"
	)
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, func(h *hub.Config, s *server.Config) {
			key, err := jwtauth.NewKey("HS256", []byte(testhub.Secret))
			if err != nil {
				t.Fatal(err)
			}
			auth, err := jwtauth.New(jwtauth.Config{PublisherKey: key, Issuers: []jwtauth.Issuer{{ID: issuer, Keys: []*jwtauth.Key{key}}}, Resource: hubURL})
			if err != nil {
				t.Fatal(err)
			}
			s.Auth, s.HubURL, s.Subscriptions, h.SubscriptionEvents = auth, hubURL, true, true
		})
		access := func(details ...hub.AuthorizationDetail) string {
			tok, err := jwtauth.SignAccess(th.key, jwtauth.AccessClaims{Issuer: issuer, Audience: hubURL, ExpiresAt: time.Now().Add(time.Hour), Details: details})
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		subscribe := func(payload string, m ...hub.TokenMatcher) hub.AuthorizationDetail {
			d := hub.AuthorizationDetail{Subscribe: true, Topics: m}
			if payload != "" {
				d.Payload = json.RawMessage(payload)
			}
			return d
		}
		api := access(subscribe("", hub.TokenMatcher{Match: hub.SubscriptionsPath}, hub.TokenMatcher{Match: hub.SubscriptionsPath + "/*", Type: "urlpattern"}))
		watcher := th.stream(th.subscribeRaw("GET", "match_urlpattern="+url.QueryEscape(hub.SubscriptionsPath+"/*"), "", "Authorization", "Bearer "+api))
		subject := th.subscribeRaw("GET", "match=urn:book&match_urlpattern="+url.QueryEscape("https://hub.example/books/:id")+"&topic=urn:legacy", "",
			"Authorization", "Bearer "+access(subscribe(`{"a":1}`, hub.TokenMatcher{Match: "urn:book"}), subscribe(`{"d":1}`, hub.TokenMatcher{Match: "*"})))
		if subject.StatusCode != 200 {
			t.Fatalf("subject: %d", subject.StatusCode)
		}
		type doc struct {
			Context    string          `json:"@context"`
			ID         string          `json:"id"`
			Type       string          `json:"type"`
			Topic      string          `json:"topic"`
			MatchType  string          `json:"match_type"`
			Match      string          `json:"match"`
			Subscriber string          `json:"subscriber"`
			Active     bool            `json:"active"`
			Payload    json.RawMessage `json:"payload"`
		}
		// events reads the watcher's events about the subject's three
		// subscriptions, by its subscriber id (the watcher's own come too).
		events := func(active bool) map[string]doc {
			got := map[string]doc{}
			for len(got) < 3 {
				ev := watcher.next()
				var d doc
				if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
					t.Fatalf("event %q: %v", ev.Data, err)
				}
				if d.Match == hub.SubscriptionsPath+"/*" || d.Active != active {
					continue
				}
				want := map[bool]string{true: "mercure", false: "message"}[d.MatchType != ""]
				if ev.Type != want {
					t.Errorf("event of %q: type %q; want %q", d.ID, ev.Type, want)
				}
				got[d.MatchType+" "+d.Match+d.Topic] = d
			}
			return got
		}
		got := events(true)
		exact, pattern, legacy := got["exact urn:book"], got["urlpattern https://hub.example/books/:id"], got[" urn:legacy"]
		sub := exact.Subscriber
		if exact.ID != hub.SubscriptionsPath+"/exact/urn%3Abook/"+hub.EscapeUnreserved(sub) || exact.Type != "subscription" || exact.Context != "" || string(exact.Payload) != `{"a":1}` {
			t.Errorf("exact event %+v", exact)
		}
		if pattern.ID != hub.SubscriptionsPath+"/urlpattern/https%3A%2F%2Fhub.example%2Fbooks%2F%3Aid/"+hub.EscapeUnreserved(sub) || string(pattern.Payload) != `{"d":1}` {
			t.Errorf("urlpattern event %+v", pattern)
		}
		if legacy.ID != hub.SubscriptionID("urn:legacy", sub) || legacy.Type != "Subscription" || legacy.Context != "https://mercure.rocks/" || legacy.Subscriber != sub {
			t.Errorf("topic= event %+v", legacy)
		}

		get := func(path, tok string) (*http.Response, string) {
			req, _ := http.NewRequest("GET", th.url+"/subscriptions"+path, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			return th.send(req)
		}
		resp, body := get("", api)
		var list struct {
			ID, Type      string
			Subscriptions []doc
		}
		json.Unmarshal([]byte(body), &list)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || list.Type != "subscriptions" || len(list.Subscriptions) != 4 {
			t.Errorf("collection: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if link := resp.Header.Get("Link"); !strings.HasPrefix(link, "<"+hubURL+`>; rel="mercure"; last-event-id="`) || !strings.HasSuffix(link, `; type="mercure"; content-type="application/json"`) {
			t.Errorf("Link %q", link)
		}
		resp, body = get("/exact/urn%3Abook", api)
		json.Unmarshal([]byte(body), &list)
		if resp.StatusCode != 200 || len(list.Subscriptions) != 1 || list.Subscriptions[0].ID != exact.ID || list.Subscriptions[0].Subscriber != sub || !list.Subscriptions[0].Active {
			t.Errorf("per matcher: %d %q", resp.StatusCode, body)
		}
		resp, body = get("/exact/urn%3Abook/"+hub.EscapeUnreserved(sub), api)
		var one doc
		json.Unmarshal([]byte(body), &one)
		if resp.StatusCode != 200 || one.ID != exact.ID || string(one.Payload) != `{"a":1}` {
			t.Errorf("one: %d %q", resp.StatusCode, body)
		}
		if resp, body := get("/urlpattern/x/urn%3Anobody", api); resp.StatusCode != 404 {
			t.Errorf("unknown: %d %q; want 404", resp.StatusCode, body)
		}
		if resp, _ := get("", access(subscribe("", hub.TokenMatcher{Match: "urn:book"}))); resp.StatusCode != 403 {
			t.Errorf("without the grant: %d; want 403", resp.StatusCode)
		}
		resp, body = get("", th.token(hub.Claims{Subscribe: []string{"*"}}))
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/ld+json" || !strings.Contains(body, `"type":"Subscriptions"`) {
			t.Errorf("draft-07 token: %d %s %q; want JSON-LD", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}

		subject.Body.Close()
		if gone := events(false)["exact urn:book"]; gone.ID != exact.ID {
			t.Errorf("departure event %+v", gone)
		}
	})
}
