package policy_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/ssekit/sse/authhook"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/testhub"
	"github.com/ssekit/sse/matcher/urlpattern"
	"github.com/ssekit/sse/policy"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/ssetest"
)

// TestSubscribePolicies: over HTTP, a policy forbidding anonymous
// subscribers and one requiring the auth hook, against exact, template
// and URL Pattern selectors.
func TestSubscribePolicies(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"allow": true}`)
	}))
	t.Cleanup(app.Close)
	vip, err := urlpattern.New("https://example.com/vip/*", "")
	if err != nil {
		t.Fatal(err)
	}
	set, err := policy.New([]policy.Policy{
		{Name: "secret", Exact: "https://example.com/secret", NoAnonymous: true},
		{Name: "vip", Pattern: vip, RequireHook: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, withHook := range []bool{false, true} {
		th := testhub.New(t, func(_ *hub.Config, s *server.Config) {
			s.SubscribePolicy = set
			if withHook {
				h, err := authhook.New(authhook.Config{URL: app.URL})
				if err != nil {
					t.Fatal(err)
				}
				s.SubscribeHook = h
			}
		})
		srv := ssetest.NewServer(t, ssetest.HTTP1, th.Server)
		t.Cleanup(th.Close)
		tok := th.Token(t, hub.Claims{Subscribe: []string{"*"}})
		status := func(query string, token bool) int {
			req, _ := http.NewRequest(http.MethodHead, srv.URL+"/.well-known/mercure?"+query, nil)
			if token {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		q := func(k, v string) string { return k + "=" + url.QueryEscape(v) }
		for _, tc := range []struct {
			name   string
			hook   bool // only with the hook configured
			query  string
			token  bool
			status int
		}{
			{"anonymous, public topic", false, q("topic", "https://example.com/public"), false, 200},
			{"anonymous, the secret topic", false, q("topic", "https://example.com/secret"), false, 401},
			{"anonymous, a template matching it", false, q("topic", "https://example.com/{x}"), false, 401},
			{"anonymous, *", false, q("topic", "*"), false, 401},
			{"token, the secret topic", false, q("topic", "https://example.com/secret"), true, 200},
			{"token, a vip topic", false, q("topic", "https://example.com/vip/1"), true, 403},
			{"token, a template (may overlap vip)", false, q("topic", "https://example.com/{x}"), true, 403},
			{"token, exact outside vip", false, q("topic", "https://example.com/other"), true, 200},
			{"token, a draft-08 exact matcher in vip", false, q("match_exact", "https://example.com/vip/2"), true, 403},
			{"hook, a vip topic", true, q("topic", "https://example.com/vip/1"), false, 200},
			{"hook, the secret topic", true, q("topic", "https://example.com/secret"), false, 200},
		} {
			if tc.hook != withHook {
				continue
			}
			if got := status(tc.query, tc.token); got != tc.status {
				t.Errorf("%s: %d; want %d", tc.name, got, tc.status)
			}
		}
	}
}

func TestNewRefuses(t *testing.T) {
	vip, _ := urlpattern.New("https://example.com/vip/*", "")
	for _, p := range []policy.Policy{{Name: "none"}, {Name: "both", Exact: "a", Pattern: vip}} {
		if _, err := policy.New([]policy.Policy{p}); !errors.Is(err, policy.ErrInvalidPolicy) {
			t.Errorf("New(%s) = %v; want ErrInvalidPolicy", p.Name, err)
		}
	}
}
