package webhook_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/jwtauth"
	"github.com/ssekit/sse/webhook"
)

// TestAdminReplayWhileRunning: dead letters are replayed through the
// admin route of a running outbox, by a token granting the admin claim
// only; other tokens, methods and endpoints are refused.
func TestAdminReplayWhileRunning(t *testing.T) {
	rc := &receiver{}
	rc.status.Store(http.StatusInternalServerError)
	app := httptest.NewServer(rc)
	t.Cleanup(app.Close)
	r := open(t, hub.NewMemoryStore(hub.MemoryStoreConfig{}), filepath.Join(t.TempDir(), "w.db"),
		[]webhook.Endpoint{{Name: "app", URL: app.URL, Secrets: [][]byte{secret}}}, func(c *webhook.Config) { c.MaxAttempts = 1 })
	t.Cleanup(func() { r.outbox.Close() })

	const jwtKey = "admin-test-key-0123456789abcdef!"
	key, err := jwtauth.NewKey("HS256", []byte(jwtKey))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := jwtauth.New(jwtauth.Config{PublisherKey: key})
	if err != nil {
		t.Fatal(err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(webhook.AdminHandler(r.outbox, auth, next))
	t.Cleanup(srv.Close)
	admin := e2etest.Token(t, jwtKey, hub.Claims{Publish: []string{webhook.AdminClaim}})
	wildcard := e2etest.Token(t, jwtKey, hub.Claims{Publish: []string{"*"}})
	do := func(method, path, tok string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	r.publish(t, "t", []string{"a", "b"})
	poll.Until(t, "both dead-lettered", 20*time.Second, func() bool { _, d, _ := r.outbox.Counts("app"); return d == 2 })
	rc.status.Store(0)

	for _, tc := range []struct {
		name, method, path, tok string
		want                    int
	}{
		{"no token", "POST", webhook.ReplayPath + "?endpoint=app", "", 401},
		{"bad token", "POST", webhook.ReplayPath + "?endpoint=app", "x.y.z", 401},
		{"wildcard publisher", "POST", webhook.ReplayPath + "?endpoint=app", wildcard, 403},
		{"wrong method", "GET", webhook.ReplayPath + "?endpoint=app", admin, 405},
		{"no endpoint", "POST", webhook.ReplayPath, admin, 400},
		{"unknown endpoint", "POST", webhook.ReplayPath + "?endpoint=nope", admin, 404},
		{"other paths pass", "GET", "/.well-known/mercure", "", http.StatusTeapot},
	} {
		if code, body := do(tc.method, tc.path, tc.tok); code != tc.want {
			t.Errorf("%s: %d %q; want %d", tc.name, code, body, tc.want)
		}
	}
	if _, d, _ := r.outbox.Counts("app"); d != 2 {
		t.Fatalf("refused requests replayed: %d dead left; want 2", d)
	}

	code, body := do("GET", webhook.AdminPath, admin)
	if code != 200 || !strings.Contains(body, `{"name":"app","queued":0,"dead":2}`) {
		t.Errorf("list: %d %s", code, body)
	}
	code, body = do("POST", webhook.ReplayPath+"?endpoint=app", admin)
	var res struct{ Replayed, Dead int }
	if json.Unmarshal([]byte(body), &res); code != 200 || res.Replayed != 2 || res.Dead != 0 {
		t.Fatalf("replay: %d %s; want 200, 2 replayed, 0 dead", code, body)
	}
	poll.Until(t, "the dead letters delivered", 10*time.Second, func() bool { return len(rc.got()) == 2 })
	if got := rc.got(); !equal(got, []string{"a", "b"}) {
		t.Errorf("got %v; want a, b in order", got)
	}
}
