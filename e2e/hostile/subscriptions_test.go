package hostile_test

// Subscription-event attacks: with --subscriptions every selector of a
// subscriber becomes a subscription event on connect and on disconnect.
// They used to be stored, fsynced updates: one anonymous request with 100
// selectors pushed real updates out of a 100-update history (resumers then
// got "earliest"), and one 700 KB selector grew hub.db by 40 MB. They are
// now delivered live only and never stored, and over-long selectors are
// refused before anything is sent.

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/e2etest"
)

// subscriptionAttacks are the shapes: many selectors in one request, and
// one huge selector. want is the status the hub answers.
var subscriptionAttacks = []struct {
	name  string
	query func() string
	want  int
}{
	{"ManySelectors", func() string {
		q := url.Values{}
		for i := range 100 { // --max-topics' default
			q.Add("topic", fmt.Sprintf("https://example.com/attack/%d/%s", i, strings.Repeat("a", 200)))
		}
		return q.Encode()
	}, http.StatusOK},
	{"HugeSelector", func() string {
		return url.Values{"topic": {"https://example.com/" + strings.Repeat("x", 700<<10)}}.Encode()
	}, http.StatusBadRequest},
}

// TestSubscriptionEventsDoNotEvictHistory: after each attack, repeated, a
// 100-update history still holds all 100 real updates (a resumer from the
// first gets the other 99, found), hub.db has not grown, and a watcher of
// subscriptions was told of the accepted subscriptions.
func TestSubscriptionEventsDoNotEvictHistory(t *testing.T) {
	for _, attack := range subscriptionAttacks {
		t.Run(attack.name, func(t *testing.T) {
			dir := t.TempDir()
			h := ssekit.Start(t, e2etest.HubSpec{Args: []string{"--data-dir", dir, "--jwt-key", testSecret,
				"--allow-anonymous", "--subscriptions", "--history-size", "100"}})
			tok := e2etest.PublisherToken(t, testSecret)
			for i := range 100 {
				if status, answer := h.PublishID(tok, "https://example.com/real", fmt.Sprint("real-", i)); status != http.StatusOK {
					t.Fatalf("publish real-%d: %d %s", i, status, answer)
				}
			}
			watchTok := e2etest.Token(t, testSecret, hub.Claims{Subscribe: []string{hub.SubscriptionsPath + "/{topic}/{subscriber}"}})
			watcher := e2etest.OpenStream(t, h.Client, h.URL(),
				"topic="+url.QueryEscape(hub.SubscriptionsPath+"/{topic}/{subscriber}")+"&authorization="+watchTok, "", 60*time.Second)
			db := filepath.Join(dir, "hub.db")
			before := fileSize(t, db)

			query := attack.query()
			for range 5 {
				status := subscribeAndLeave(t, h, query)
				if status != attack.want {
					t.Fatalf("attack request: %d; want %d", status, attack.want)
				}
			}
			if attack.want == http.StatusOK { // told of the subscriptions it made
				ev := watcher.Next(t) // its own subscription first
				if !strings.Contains(ev.Data, "attack") {
					ev = watcher.Next(t)
				}
				if !strings.Contains(ev.Data, "attack") || ev.ID != "" {
					t.Errorf("watcher's event: id %q, data %.120q; want an attack subscription, no id", ev.ID, ev.Data)
				}
			}

			resumed := e2etest.OpenStream(t, h.Client, h.URL(), "topic=https://example.com/real", "real-0", 30*time.Second)
			if got := resumed.Resp.Header.Get("Last-Event-ID"); got != "real-0" {
				t.Errorf("resuming after real-0: Last-Event-ID %q; want real-0 (still in the history)", got)
			}
			var ids []string
			for _, ev := range resumed.Until(t, "real-99") {
				ids = append(ids, ev.ID)
			}
			want := make([]string, 0, 99)
			for i := 1; i < 100; i++ {
				want = append(want, fmt.Sprint("real-", i))
			}
			e2etest.CheckExactly(t, "a resumer after the attack", ids, want)
			if after := fileSize(t, db); after > before {
				t.Errorf("hub.db grew from %d to %d bytes during the attack; want no growth", before, after)
			}
		})
	}
}

// subscribeAndLeave subscribes with query, reads the answer's head and
// leaves; it returns the status.
func subscribeAndLeave(t *testing.T, h *e2etest.Hub, query string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.URL()+"?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		t.Fatalf("attack request: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	}
	resp.Body.Close()
	return resp.StatusCode
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
