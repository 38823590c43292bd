package policy_test

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/internal/redistest"
	"github.com/ssekit/sse/internal/testhub"
	"github.com/ssekit/sse/matcher/urlpattern"
	"github.com/ssekit/sse/policy"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/ssetest"
	"github.com/ssekit/sse/store/bolt"
	"github.com/ssekit/sse/store/natsjs"
	"github.com/ssekit/sse/store/natsjs/natsnode"
	"github.com/ssekit/sse/store/redisstream"
)

// TestLatestState, on every store (memory, bolt, NATS JetStream, Redis),
// over HTTP: a
// subscriber without a cursor gets the last N updates of its
// latest-state topic, then live ones, with no gap and no duplicate; one
// with a cursor resumes as always; other topics replay nothing; an index
// built at start from the history serves too.
func TestLatestState(t *testing.T) {
	stores := map[string]func(t *testing.T) hub.Store{
		"memory": func(t *testing.T) hub.Store { return hub.NewMemoryStore(hub.MemoryStoreConfig{}) },
		"bolt": func(t *testing.T) hub.Store {
			s, err := bolt.Open(filepath.Join(t.TempDir(), "hub.db"), bolt.Config{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	stores["nats"] = func(t *testing.T) hub.Store {
		n, err := natsnode.Start(natsnode.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Shutdown)
		s, err := natsjs.Open(context.Background(), natsjs.Config{URL: n.ClientURL(), Stream: "LATEST"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	stores["redis"] = func(t *testing.T) hub.Store {
		srv := redistest.Start(t, redistest.Options{})
		s, err := redisstream.Open(context.Background(), srv.URL(), redisstream.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			store := open(t)
			stocks, err := urlpattern.New("https://example.com/stocks/*", "")
			if err != nil {
				t.Fatal(err)
			}
			latest, err := policy.NewLatest(policy.LatestConfig{Store: store, Poll: 10 * time.Millisecond, Policies: []policy.LatestPolicy{
				{Pattern: stocks, N: 1}, {Exact: "room", N: 3},
			}})
			if err != nil {
				t.Fatal(err)
			}
			th := testhub.New(t, func(h *hub.Config, s *server.Config) { h.Store = store; s.LatestState = latest })
			srv := ssetest.NewServer(t, ssetest.HTTP1, th.Server)
			t.Cleanup(th.Close)
			pub := func(topic, id string) {
				if _, err := th.Hub.Publish(t.Context(), &hub.Update{ID: id, Topics: []string{topic}, Data: id}); err != nil {
					t.Fatal(err)
				}
			}
			// Some history before the index runs: Run reads it.
			pub("room", "r1")
			pub("https://example.com/stocks/acme", "acme1")
			pub("room", "r2")
			if err := latest.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			hubURL := srv.URL + "/.well-known/mercure"
			open := func(query, last string) *e2etest.Stream {
				return e2etest.OpenStream(t, srv.Client(), hubURL, query, last, 10*time.Second)
			}
			ids := func(s *e2etest.Stream, until string) string {
				var out []string
				for _, ev := range s.Until(t, until) {
					if ev.ID != "" {
						out = append(out, ev.ID)
					}
				}
				return strings.Join(out, ",")
			}
			// Fewer than N so far: all of them.
			s := open("topic=room", "")
			pub("room", "r3")
			if got := ids(s, "r3"); got != "r1,r2,r3" {
				t.Errorf("room with 2 of 3 retained: %s", got)
			}
			for _, id := range []string{"r4", "r5"} {
				pub("room", id)
			}
			pub("https://example.com/stocks/acme", "acme2")
			pub("https://example.com/stocks/acme", "acme3")
			latest.Notify()
			waitCursor(t, latest, "https://example.com/stocks/acme", "acme2")
			s = open("topic=room", "")
			pub("room", "r6")
			if got := ids(s, "r6"); got != "r3,r4,r5,r6" {
				t.Errorf("room (last 3, then live): %s; want r3,r4,r5,r6", got)
			}
			s = open("topic="+"https://example.com/stocks/acme", "")
			pub("https://example.com/stocks/acme", "acme4")
			if got := ids(s, "acme4"); got != "acme3,acme4" {
				t.Errorf("a stock (the last one, then live): %s", got)
			}
			// A template selector: the oldest cursor of the topics it matches.
			pub("https://example.com/stocks/beta", "beta1")
			pub("https://example.com/stocks/beta", "beta2")
			latest.Notify()
			waitCursor(t, latest, "https://example.com/stocks/beta", "beta1")
			s = open("topic="+url.QueryEscape("https://example.com/stocks/{sym}"), "")
			pub("https://example.com/stocks/acme", "acme5")
			if got := ids(s, "acme5"); got != "acme4,beta1,beta2,acme5" {
				t.Errorf("a template over two stocks: %s; want acme4,beta1,beta2,acme5 (at least the last of each)", got)
			}
			s = open("topic=room", "r5")
			if got := ids(s, "r6"); got != "r6" {
				t.Errorf("with a cursor: %s; want r6 only", got)
			}
			s = open("topic=elsewhere", "")
			pub("elsewhere", "e1")
			if got := ids(s, "e1"); got != "e1" {
				t.Errorf("a topic without a policy: %s; want live only", got)
			}
			th.Close()
			store.Close(context.Background())
		})
	}
}

// waitCursor waits until the index names want for topic.
func waitCursor(t *testing.T, l *policy.Latest, topic, want string) {
	t.Helper()
	poll.Until(t, "the index reaches "+want, 10*time.Second, func() bool {
		return l.Cursor([]*hub.Selector{hub.ExactSelector(topic)}) == want
	})
}

func TestNewLatestRefuses(t *testing.T) {
	store := hub.NewMemoryStore(hub.MemoryStoreConfig{})
	for _, p := range []policy.LatestPolicy{{Exact: "a"}, {Exact: "a", N: policy.MaxLatest + 1}, {N: 1}} {
		if _, err := policy.NewLatest(policy.LatestConfig{Store: store, Policies: []policy.LatestPolicy{p}}); err == nil {
			t.Errorf("NewLatest(%+v) accepted", p)
		}
	}
}

// TestLatestBounded: a flood of distinct topics stops at MaxTopics; the
// topics indexed before keep working.
func TestLatestBounded(t *testing.T) {
	store := hub.NewMemoryStore(hub.MemoryStoreConfig{})
	all, _ := urlpattern.New("https://example.com/*", "")
	l, err := policy.NewLatest(policy.LatestConfig{Store: store, MaxTopics: 10, Policies: []policy.LatestPolicy{{Pattern: all, N: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		for j := range 2 {
			if _, err := h.Publish(t.Context(), &hub.Update{ID: fmt.Sprintf("u%d-%d", i, j), Topics: []string{fmt.Sprintf("https://example.com/%d", i)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := l.Cursor([]*hub.Selector{hub.ExactSelector("https://example.com/3")}); got != "u3-0" {
		t.Errorf("an indexed topic: cursor %q; want u3-0", got)
	}
	if got := l.Cursor([]*hub.Selector{hub.ExactSelector("https://example.com/50")}); got != "" {
		t.Errorf("a topic beyond the bound: cursor %q; want none (live only)", got)
	}
}

// TestLatestTemplates: a template or URL Pattern selector gets the oldest
// cursor of the indexed topics it matches, none when it matches none, and
// the earliest when there are more topics than MaxScan to match.
func TestLatestTemplates(t *testing.T) {
	store := hub.NewMemoryStore(hub.MemoryStoreConfig{})
	all, _ := urlpattern.New("https://example.com/*", "")
	l, err := policy.NewLatest(policy.LatestConfig{Store: store, MaxScan: 20, Policies: []policy.LatestPolicy{{Pattern: all, N: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			for j := range 2 {
				if _, err := h.Publish(t.Context(), &hub.Update{ID: fmt.Sprintf("u%d-%d", i, j), Topics: []string{fmt.Sprintf("https://example.com/%d", i)}}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	publish(0, 10)
	if err := l.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	sel := func(s string) []*hub.Selector {
		c, err := hub.CompileSelector(s)
		if err != nil {
			t.Fatal(err)
		}
		return []*hub.Selector{c}
	}
	if got := l.Cursor(sel("https://example.com/{n}")); got != "u0-0" {
		t.Errorf("a template over 10 topics: cursor %q; want the oldest, u0-0", got)
	}
	if got := l.Cursor(sel("https://other.example/{n}")); got != "" {
		t.Errorf("a template matching none: cursor %q; want none", got)
	}
	publish(10, 30)
	l.Notify()
	poll.Until(t, "30 topics indexed", 10*time.Second, func() bool {
		return l.Cursor([]*hub.Selector{hub.ExactSelector("https://example.com/29")}) == "u29-0"
	})
	if got := l.Cursor(sel("https://example.com/{n}")); got != hub.EarliestID {
		t.Errorf("a template over more topics than MaxScan: cursor %q; want %q", got, hub.EarliestID)
	}
}
