package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/ssekit/sse/authhook"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/internal/testhub"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/ssetest"
	"github.com/ssekit/sse/webhook"
)

// TestExample runs the example application behind a real hub over HTTP:
// the hook decides, the webhooks arrive verified.
func TestExample(t *testing.T) {
	secret := []byte("example-webhook-secret-0123456789")
	a := newApp(secret)
	appSrv := httptest.NewServer(a.routes())
	t.Cleanup(appSrv.Close)
	hook, err := authhook.New(authhook.Config{URL: appSrv.URL + "/ssekit/auth", PrivateTopics: []string{"https://example.com/users/"}, PublishTopics: []string{"https://example.com/"}})
	if err != nil {
		t.Fatal(err)
	}
	var outbox *webhook.Outbox
	th := testhub.New(t, func(h *hub.Config, s *server.Config) {
		h.Store = hub.NewMemoryStore(hub.MemoryStoreConfig{})
		outbox, err = webhook.Open(webhook.Config{Path: filepath.Join(t.TempDir(), "webhooks.db"), Store: h.Store, Poll: 20 * time.Millisecond,
			Endpoints: []webhook.Endpoint{{Name: "app", URL: appSrv.URL + "/ssekit/webhook", Secrets: [][]byte{secret}}}})
		if err != nil {
			t.Fatal(err)
		}
		s.SubscribeHook, s.PublishHook = hook, hook
	})
	if err := outbox.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { outbox.Close() })
	srv := ssetest.NewServer(t, ssetest.HTTP1, th.Server)
	t.Cleanup(th.Close)
	hubURL := srv.URL + "/.well-known/mercure"

	withSession := func(v string) *http.Client {
		c := *srv.Client()
		c.Jar = jar{&http.Cookie{Name: "session", Value: v}}
		return &c
	}
	s := e2etest.OpenStream(t, withSession("s-alice"), hubURL, "topic="+url.QueryEscape("https://example.com/users/{u}"), "", 10*time.Second)
	resp, err := withSession("s-admin").PostForm(hubURL, url.Values{"topic": {"https://example.com/news"}, "data": {"hello"}})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("admin publish: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := th.Hub.Publish(t.Context(), &hub.Update{ID: "mine", Topics: []string{"https://example.com/users/alice"}, Private: true, Data: "for alice"}); err != nil {
		t.Fatal(err)
	}
	if ev := s.Next(t); ev.ID != "mine" {
		t.Errorf("alice got %q; want her private update", ev.ID)
	}
	resp, err = withSession("s-alice").PostForm(hubURL, url.Values{"topic": {"https://example.com/news"}, "data": {"x"}})
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("alice publishing: %v %v; want 403", resp, err)
	}
	resp.Body.Close()
	outbox.Notify()
	poll.Until(t, "the public update's webhook", 10*time.Second, func() bool {
		resp, err := http.Get(appSrv.URL + "/received")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var ids []string
		json.NewDecoder(resp.Body).Decode(&ids)
		return len(ids) == 1
	})
	bad, _ := http.NewRequest(http.MethodPost, appSrv.URL+"/ssekit/webhook", nil)
	if resp, err := http.DefaultClient.Do(bad); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned delivery: %v %v; want 401", resp, err)
	}
}

type jar struct{ c *http.Cookie }

func (j jar) SetCookies(*url.URL, []*http.Cookie) {}
func (j jar) Cookies(*url.URL) []*http.Cookie     { return []*http.Cookie{j.c} }
