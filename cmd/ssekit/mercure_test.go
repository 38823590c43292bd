package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/internal/testhub"
	"github.com/ssekit/sse/jwtauth"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/ssetest"
)

// The draft tests run the commands against a real ssekit hub that trusts
// testIssuer for draft-08 access tokens (and keeps taking draft-07
// tokens), as it is, and behind a front that makes it look like a hub of
// one draft only: "mercure1" is Mercure 1.0 in its default mode (metadata
// document, topic= and draft-07 tokens refused), "draft07" a pre-1.0 hub
// (no metadata, match= and access tokens refused).
const (
	testIssuer   = "https://issuer.test"
	testResource = "https://hub.test/.well-known/mercure"
	metadataPath = "/.well-known/oauth-protected-resource/.well-known/mercure"
)

type draftHub struct {
	th    *testhub.Hub
	srv   *httptest.Server
	url   string // the hub URL
	front string

	mu      sync.Mutex
	queries []string // the subscription requests' queries, in order
}

func (d *draftHub) seen() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.queries...)
}

func newDraftHub(t *testing.T, proto, front string) *draftHub {
	t.Helper()
	key, err := jwtauth.NewKey("HS256", []byte(testhub.Secret))
	if err != nil {
		t.Fatal(err)
	}
	d := &draftHub{front: front}
	d.th = testhub.New(t, func(_ *hub.Config, scfg *server.Config) {
		auth, err := jwtauth.New(jwtauth.Config{PublisherKey: key,
			Issuers: []jwtauth.Issuer{{ID: testIssuer, Keys: []*jwtauth.Key{key}}}, Resource: testResource})
		if err != nil {
			t.Fatal(err)
		}
		scfg.Auth = auth
	})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/mercure" && r.Method == http.MethodGet {
			d.mu.Lock()
			d.queries = append(d.queries, r.URL.RawQuery)
			d.mu.Unlock()
		}
		q := r.URL.Query()
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		switch front {
		case "mercure1":
			switch {
			case r.URL.Path == metadataPath:
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(map[string]any{"resource": testResource, "bearer_methods_supported": []string{"header"}})
				return
			case q.Has("topic") || q.Has("lastEventID"):
				http.Error(w, `topic is deprecated: use "match"`, http.StatusBadRequest)
				return
			case token != "" && tokenDraft(token) != draft08:
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				http.Error(w, "invalid token", http.StatusUnauthorized)
				return
			}
		case "draft07":
			switch {
			case r.URL.Path == metadataPath:
				http.NotFound(w, r)
				return
			case q.Has("match") || q.Has("match_urlpattern") || q.Has("last_event_id"):
				http.Error(w, "missing topic", http.StatusBadRequest)
				return
			case token != "" && tokenDraft(token) != draft07:
				http.Error(w, "invalid token", http.StatusUnauthorized)
				return
			}
		}
		d.th.Server.ServeHTTP(w, r)
	})
	d.srv = ssetest.NewServer(t, proto, h)
	t.Cleanup(d.th.Close)
	d.url = d.srv.URL + "/.well-known/mercure"
	return d
}

// audience is the flag naming the hub's resource identifier where the
// hub serves no metadata document saying it.
func (d *draftHub) audience() []string {
	if d.front == "mercure1" {
		return nil
	}
	return []string{"--audience", testResource}
}

func (d *draftHub) main() *Main {
	m, _, _ := testMain()
	m.HTTPClient = d.srv.Client()
	return m
}

func TestDraftDetection(t *testing.T) {
	tests := []struct {
		front, flag string
		want, via   string
	}{
		{"", "auto", draft08, "its metadata document"}, // ssekit speaks both and says so (RFC 9728)
		{"mercure1", "auto", draft08, "its metadata document"},
		{"draft07", "auto", draft07, "its answer to match= (400 Bad Request)"},
		{"draft07", "08", draft08, "--draft"},
		{"mercure1", "07", draft07, "--draft"},
	}
	for _, tt := range tests {
		t.Run(tt.front+" "+tt.flag, func(t *testing.T) {
			d := newDraftHub(t, ssetest.HTTP1, tt.front)
			mc := mercureClient{draft: tt.flag}
			if err := d.main().resolve(t.Context(), d.srv.Client(), &mc, d.url, ""); err != nil {
				t.Fatal(err)
			}
			if mc.draft != tt.want || mc.via != tt.via {
				t.Errorf("draft %s via %q; want %s via %q", mc.draft, mc.via, tt.want, tt.via)
			}
			if tt.front == "mercure1" && tt.flag == "auto" && mc.resource != testResource {
				t.Errorf("resource %q; want %q from the metadata", mc.resource, testResource)
			}
		})
	}
}

func TestSubscribeParams(t *testing.T) {
	tests := []struct {
		draft, want string
	}{
		{draft08, "last_event_id=x&match=a&match=%2A&match_urlpattern=https%3A%2F%2Fe.test%2Fbooks%2F%3Aid&match_urlpattern=%2Fp%2F%3Aq&topic=https%3A%2F%2Fe.test%2F%7Bid%7D"},
		{draft07, "lastEventID=x&topic=a&topic=%2A&topic=https%3A%2F%2Fe.test%2Fbooks%2F%3Aid&topic=https%3A%2F%2Fe.test%2F%7Bid%7D"},
	}
	for _, tt := range tests {
		var patterns []string
		if tt.draft == draft08 {
			patterns = []string{"/p/:q"}
		}
		got := subscribeParams(tt.draft, []string{"a", "*", "https://e.test/books/:id", "https://e.test/{id}"}, patterns, "x", true).Encode()
		if got != tt.want {
			t.Errorf("draft %s: %s\nwant      %s", tt.draft, got, tt.want)
		}
	}
}

func TestTokenDraft(t *testing.T) {
	key, _ := jwtauth.NewKey("HS256", []byte(testhub.Secret))
	t07, _ := jwtauth.Sign(key, hub.Claims{Publish: []string{"*"}})
	mc := mercureClient{draft: draft08, key: testhub.Secret, issuer: testIssuer, resource: testResource}
	t08, _, err := mc.mint("https://ignored.test/.well-known/mercure", true, false, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]string{t07: draft07, t08: draft08, "": "", "a.b": "", "x.y.z": "", "e30.e30.x": draft07} {
		if got := tokenDraft(tok); got != want {
			t.Errorf("tokenDraft(%.20q…) = %q; want %q", tok, got, want)
		}
	}
	// The minted access token is for the metadata's resource and passes
	// the hub's own validation.
	auth, err := jwtauth.New(jwtauth.Config{Issuers: []jwtauth.Issuer{{ID: testIssuer, Keys: []*jwtauth.Key{key}}}, Resource: testResource})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.VerifyPublisher(t08); err != nil {
		t.Errorf("the hub refuses the minted access token: %v", err)
	}
}

func TestPublishDrafts(t *testing.T) {
	for _, proto := range ssetest.Protocols {
		t.Run(proto, func(t *testing.T) {
			for _, front := range []string{"", "mercure1", "draft07"} {
				t.Run("minted for "+front, func(t *testing.T) {
					d := newDraftHub(t, proto, front)
					res := run(t, d.main(), append([]string{"publish", "--hub", d.url, "--jwt-key", testhub.Secret, "--issuer", testIssuer, "--topic", "https://e.test/1", "hello"}, d.audience()...)...)
					if res.code != 0 || res.stderr != "" {
						t.Fatalf("exit %d, stderr %q; want 0 and nothing", res.code, res.stderr)
					}
				})
			}
			t.Run("draft-07 token refused by Mercure 1.0", func(t *testing.T) {
				d := newDraftHub(t, proto, "mercure1")
				m := d.main()
				m.Getenv = env("SSEKIT_JWT_KEY=" + testhub.Secret) // no issuer: a draft-07 token, and a note
				res := run(t, m, "publish", "--hub", d.url, "--topic", "x", "hello")
				if res.code != 1 || !strings.Contains(res.stderr, "no --issuer") || !strings.Contains(res.stderr, "401") ||
					!strings.Contains(res.stderr, "ssekit token --issuer ISS --audience "+testResource) {
					t.Errorf("exit %d, stderr %q; want 1, the note, the 401 and the hint", res.code, res.stderr)
				}
			})
			t.Run("type mercure", func(t *testing.T) {
				d := newDraftHub(t, proto, "")
				res := run(t, d.main(), "publish", "--hub", d.url, "--draft", "08", "--type", "mercure", "--topic", "x", "hello")
				if res.code != 2 || !strings.Contains(res.stderr, "reserved") {
					t.Errorf("exit %d, stderr %q; want 2 and why", res.code, res.stderr)
				}
			})
		})
	}
}

func TestListenDrafts(t *testing.T) {
	tests := []struct {
		front, draft string
		wantQuery    string
	}{
		{"mercure1", "auto", "last_event_id=first&match=https%3A%2F%2Fe.test%2Fbooks%2F1"},
		{"", "auto", "last_event_id=first&match=https%3A%2F%2Fe.test%2Fbooks%2F1"},
		{"", "07", "lastEventID=first&topic=https%3A%2F%2Fe.test%2Fbooks%2F1"},
		{"draft07", "auto", "lastEventID=first&topic=https%3A%2F%2Fe.test%2Fbooks%2F1"},
	}
	for _, tt := range tests {
		t.Run(tt.front+" "+tt.draft, func(t *testing.T) {
			d := newDraftHub(t, ssetest.HTTP2, tt.front)
			for _, id := range []string{"first", "second"} {
				res := run(t, d.main(), append([]string{"publish", "--hub", d.url, "--jwt-key", testhub.Secret, "--issuer", testIssuer,
					"--topic", "https://e.test/books/1", "--id", id, "--private", "data of " + id}, d.audience()...)...)
				if res.code != 0 {
					t.Fatalf("publish: exit %d, %s", res.code, res.stderr)
				}
			}
			// A private update replayed after the cursor: the query carries
			// the draft's cursor, the minted token the draft's grant.
			res := run(t, d.main(), append([]string{"listen", "--json", "--max-events", "1", "--no-reconnect", "--draft", tt.draft,
				"--jwt-key", testhub.Secret, "--issuer", testIssuer, "--last-event-id", "first",
				"--topic", "https://e.test/books/1", d.url}, d.audience()...)...)
			if res.code != 0 {
				t.Fatalf("listen: exit %d, %s", res.code, res.stderr)
			}
			if !strings.Contains(res.stdout, `"data":"data of second"`) || strings.Contains(res.stdout, "data of first") {
				t.Errorf("stdout %q; want the second update only", res.stdout)
			}
			q := d.seen()
			if len(q) == 0 || q[len(q)-1] != tt.wantQuery {
				t.Errorf("subscription queries %q; want the last %q", q, tt.wantQuery)
			}
			if !strings.Contains(res.stderr, "the hub resumes after \"first\"") {
				t.Errorf("stderr %q; want the hub's Mercure-Last-Event-ID", res.stderr)
			}
		})
	}
}

func TestListenMercureUsage(t *testing.T) {
	for _, args := range [][]string{
		{"listen", "--token", "x", "http://127.0.0.1:1/events"},
		{"listen", "--draft", "08", "http://127.0.0.1:1/events"},
		{"listen", "--draft", "09", "--topic", "x", "http://127.0.0.1:1/.well-known/mercure"},
		{"listen", "--draft", "07", "--match-urlpattern", "/b/:id", "http://127.0.0.1:1/.well-known/mercure"},
		{"listen", "--token", "x", "--jwt-key", "k", "--topic", "x", "http://127.0.0.1:1/.well-known/mercure"},
	} {
		if res := run(t, nil, args...); res.code != 2 {
			t.Errorf("%q: exit %d, stderr %q; want 2", args, res.code, res.stderr)
		}
	}
}

func TestBenchDrafts(t *testing.T) {
	for _, front := range []string{"mercure1", "draft07", ""} {
		t.Run(front, func(t *testing.T) {
			d := newDraftHub(t, ssetest.HTTP1, front)
			res := run(t, nil, append([]string{"bench", "--hub", d.url, "--jwt-key", testhub.Secret, "--issuer", testIssuer,
				"--subscribers", "6", "--hot-share", "0.5", "--updates", "5", "--rate", "0", "--json", "--quiet"}, d.audience()...)...)
			if res.code != 0 {
				t.Fatalf("exit %d; stderr %q", res.code, res.stderr)
			}
			var rep struct {
				Draft                     string
				Expected, Delivered, Lost int
			}
			if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
				t.Fatalf("%v: %s", err, res.stdout)
			}
			want := draft08
			if front == "draft07" {
				want = draft07
			}
			if rep.Draft != want || rep.Expected != 15 || rep.Delivered != 15 || rep.Lost != 0 {
				t.Errorf("draft %q, expected %d, delivered %d, lost %d; want %s, 15, 15, 0", rep.Draft, rep.Expected, rep.Delivered, rep.Lost, want)
			}
			param := "match="
			if want == draft07 {
				param = "topic="
			}
			for _, q := range d.seen() {
				if !strings.HasPrefix(q, param) && !strings.HasPrefix(q, "match=urn%3Assekit%3Adraft-probe") {
					t.Errorf("subscription query %q; want %s", q, param)
				}
			}
		})
	}
}

// TestDebugMercure runs "ssekit debug --hub": the printed address holds
// the subscription in the hub's draft, with a minted token of that draft
// in the page's bearer field.
func TestDebugMercure(t *testing.T) {
	for _, front := range []string{"mercure1", "draft07"} {
		t.Run(front, func(t *testing.T) {
			d := newDraftHub(t, ssetest.HTTP1, front)
			m, _, stderr := testMain()
			m.HTTPClient = d.srv.Client()
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan int, 1)
			go func() {
				done <- m.Exit(m.Run(ctx, []string{"debug", "--addr", "127.0.0.1:0", "--hub", d.url, "--topic", "https://e.test/books/:id",
					"--jwt-key", testhub.Secret, "--issuer", testIssuer}))
			}()
			defer func() { cancel(); <-done }()
			frag := regexp.MustCompile(`#req=([A-Za-z0-9_-]+) `)
			var b64 string
			poll.Until(t, "the printed address", 30*time.Second, func() bool {
				if sub := frag.FindStringSubmatch(stderr.String()); sub != nil {
					b64 = sub[1]
					return true
				}
				return false
			})
			raw, err := base64.RawURLEncoding.DecodeString(b64)
			if err != nil {
				t.Fatal(err)
			}
			var req struct{ Method, URL, Bearer string }
			if err := json.Unmarshal(raw, &req); err != nil {
				t.Fatal(err)
			}
			wantParam, wantDraft := "match_urlpattern=", draft08
			if front == "draft07" {
				wantParam, wantDraft = "topic=", draft07
			}
			if req.Method != "GET" || !strings.HasPrefix(req.URL, d.url+"?"+wantParam) || tokenDraft(req.Bearer) != wantDraft {
				t.Errorf("the page's request %s %s with a draft-%q token; want GET %s?%s… and a draft-%s one", req.Method, req.URL, tokenDraft(req.Bearer), d.url, wantParam, wantDraft)
			}
		})
	}
	if res := run(t, nil, "debug", "--topic", "x"); res.code != 2 || !strings.Contains(res.stderr, "--hub") {
		t.Errorf("--topic without --hub: exit %d, %q; want 2", res.code, res.stderr)
	}
	if res := run(t, nil, "debug", "--hub", "http://127.0.0.1:1/.well-known/mercure"); res.code != 2 || !strings.Contains(res.stderr, "--topic") {
		t.Errorf("--hub without --topic: exit %d, %q; want 2", res.code, res.stderr)
	}
}
