package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/webhook"
)

// TestWebhookOutboxSurvivesKill: with the receiver down, 200 published
// updates wait in the hub's outbox; the hub is killed (SIGKILL, as
// kill -9) and started again on the same data directory, the receiver
// comes back, and it gets every acknowledged update, in order; a
// duplicate, if any, carries the same event id.
func TestWebhookOutboxSurvivesKill(t *testing.T) {
	secret := "e2e-webhook-secret-0123456789"
	var (
		up   atomic.Bool
		mu   sync.Mutex
		got  []string
		seen = map[string]bool{}
		bad  atomic.Int64
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify([]byte(secret), r.Header, body, 0, time.Now()); err != nil {
			bad.Add(1)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var ev webhook.Event
		json.Unmarshal(body, &ev)
		mu.Lock()
		defer mu.Unlock()
		if !seen[ev.ID] {
			seen[ev.ID] = true
			got = append(got, ev.Update.ID)
		}
	}))
	t.Cleanup(recv.Close)

	dataDir := t.TempDir()
	cfgPath := filepath.Join(t.TempDir(), "hub.toml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("[[webhook]]\nname = \"app\"\nurl = %q\nsecrets = [%q]\n", recv.URL, secret)), 0o600)
	args := []string{"--jwt-key", testSecret, "--data-dir", dataDir, "--config", cfgPath}
	h := ssekit.Start(t, e2etest.HubSpec{Args: args})
	tok := publisherToken(t)
	var acked []string
	for i := range 200 {
		id, err := e2etest.Publish(t.Context(), h.Client, h.URL(), tok, url.Values{"topic": {"orders"}, "data": {strconv.Itoa(i)}})
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, id)
	}
	pending := regexp.MustCompile(`ssekit_webhook_pending\{endpoint="app"\} (\d+)`)
	poll.Until(t, "the 200 events in the outbox", 30*time.Second, func() bool {
		resp, err := h.Client.Get(h.Base() + "/metrics")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := pending.FindSubmatch(b)
		return m != nil && string(m[1]) == "200"
	})
	h.Kill()

	up.Store(true)
	h = ssekit.Start(t, e2etest.HubSpec{Addr: h.Addr, Args: args})
	poll.Until(t, "every event delivered after the restart", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= len(acked)
	})
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, ",") != strings.Join(acked, ",") {
		t.Errorf("received %d events, not the %d acknowledged in order:\ngot  %v\nwant %v", len(got), len(acked), got, acked)
	}
	if bad.Load() != 0 {
		t.Errorf("%d deliveries failed verification", bad.Load())
	}
}
