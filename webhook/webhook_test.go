package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/store/bolt"
	"github.com/ssekit/sse/webhook"
)

var secret = []byte("0123456789abcdef-webhook")

// receiver is the application's endpoint: it verifies each delivery and
// keeps the ids of the events it accepted, dropping duplicates by id.
type receiver struct {
	mu     sync.Mutex
	ids    []string // accepted, in order
	seen   map[string]int
	fail   atomic.Int64 // answer 503 to this many more requests
	bad    atomic.Int64 // deliveries whose signature did not verify
	status atomic.Int64 // when non-zero, always answer it
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := webhook.Verify(secret, r.Header, body, 0, time.Now()); err != nil {
		rc.bad.Add(1)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if s := rc.status.Load(); s != 0 {
		w.WriteHeader(int(s))
		return
	}
	if rc.fail.Add(-1) >= 0 {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var ev webhook.Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != r.Header.Get(webhook.HeaderID) {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.seen == nil {
		rc.seen = map[string]int{}
	}
	rc.seen[ev.Update.ID]++
	if rc.seen[ev.Update.ID] == 1 {
		rc.ids = append(rc.ids, ev.Update.ID)
	}
}

func (rc *receiver) got() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.ids...)
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

type rig struct {
	hub    *hub.Hub
	store  hub.Store
	outbox *webhook.Outbox
	reg    *prometheus.Registry
}

func open(t *testing.T, store hub.Store, path string, eps []webhook.Endpoint, mod func(*webhook.Config)) *rig {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := webhook.Config{Path: path, Store: store, Endpoints: eps, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Poll: 20 * time.Millisecond, Registerer: reg}
	if mod != nil {
		mod(&cfg)
	}
	o, err := webhook.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &rig{hub: h, store: store, outbox: o, reg: reg}
}

func (r *rig) publish(t *testing.T, topic string, idList []string) {
	t.Helper()
	for _, id := range idList {
		if _, err := r.hub.Publish(t.Context(), &hub.Update{ID: id, Topics: []string{topic}, Data: "d-" + id}); err != nil {
			t.Fatal(err)
		}
		r.outbox.Notify()
	}
}

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// TestReceiverDownThenBack: a receiver that is not listening, then
// failing, then back, gets every event once and in order.
func TestReceiverDownThenBack(t *testing.T) {
	addr := e2etest.FreeAddr(t) // nothing listens yet
	rc := &receiver{}
	store := hub.NewMemoryStore(hub.MemoryStoreConfig{})
	r := open(t, store, filepath.Join(t.TempDir(), "webhooks.db"), []webhook.Endpoint{{Name: "app", URL: "http://" + addr + "/hook", Secrets: [][]byte{secret}}}, nil)
	t.Cleanup(func() { r.outbox.Close() })
	want := ids("u", 30)
	r.publish(t, "https://example.com/a", want[:10])
	poll.Until(t, "ten events queued", 10*time.Second, func() bool { q, _, _ := r.outbox.Counts("app"); return q == 10 })

	rc.fail.Store(5) // it comes back failing
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rc}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	r.publish(t, "https://example.com/a", want[10:])
	poll.Until(t, "every event delivered", 20*time.Second, func() bool { return len(rc.got()) == len(want) })
	if got := rc.got(); !equal(got, want) {
		t.Errorf("received %v; want %v in order", got, want)
	}
	for id, n := range rc.seen {
		if n != 1 {
			t.Errorf("%s accepted %d times", id, n)
		}
	}
	if rc.bad.Load() != 0 {
		t.Errorf("%d deliveries with a bad signature", rc.bad.Load())
	}
	// The last acknowledgement is recorded just after the receiver answers.
	poll.Until(t, "the outbox empty", 10*time.Second, func() bool { q, d, _ := r.outbox.Counts("app"); return q == 0 && d == 0 })
}

// TestRestart: updates published while no outbox runs (a hub killed
// before its collector ran) are delivered when it opens again, from the
// store's history; what was queued and not delivered too.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	rc := &receiver{}
	rc.status.Store(http.StatusServiceUnavailable)
	app := httptest.NewServer(rc)
	t.Cleanup(app.Close)
	eps := []webhook.Endpoint{{Name: "app", URL: app.URL, Secrets: [][]byte{secret}}}
	openStore := func() hub.Store {
		s, err := bolt.Open(filepath.Join(dir, "hub.db"), bolt.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	store := openStore()
	r := open(t, store, filepath.Join(dir, "webhooks.db"), eps, nil)
	want := ids("r", 20)
	r.publish(t, "t", want[:10])
	poll.Until(t, "ten queued", 10*time.Second, func() bool { q, _, _ := r.outbox.Counts("app"); return q == 10 })
	r.outbox.Close()
	// Published with no outbox running: only the store has them.
	r.publish(t, "t", want[10:])
	store.Close(context.Background())

	rc.status.Store(0)
	r = open(t, openStore(), filepath.Join(dir, "webhooks.db"), eps, nil)
	t.Cleanup(func() { r.outbox.Close(); r.store.Close(context.Background()) })
	poll.Until(t, "every event delivered", 20*time.Second, func() bool { return len(rc.got()) == len(want) })
	if got := rc.got(); !equal(got, want) {
		t.Errorf("received %v; want %v", got, want)
	}
}

// TestDeadLetterAndReplay: after MaxAttempts an event goes to the dead
// letters (counted), the next ones keep flowing, and Replay sends it.
func TestDeadLetterAndReplay(t *testing.T) {
	rc := &receiver{}
	rc.status.Store(http.StatusInternalServerError)
	app := httptest.NewServer(rc)
	t.Cleanup(app.Close)
	r := open(t, hub.NewMemoryStore(hub.MemoryStoreConfig{}), filepath.Join(t.TempDir(), "w.db"),
		[]webhook.Endpoint{{Name: "app", URL: app.URL, Secrets: [][]byte{secret}}}, func(c *webhook.Config) { c.MaxAttempts = 3 })
	t.Cleanup(func() { r.outbox.Close() })
	r.publish(t, "t", []string{"a", "b"})
	poll.Until(t, "both dead-lettered", 20*time.Second, func() bool { _, d, _ := r.outbox.Counts("app"); return d == 2 })
	dead := testutil.ToFloat64(mustCollector(t, r.reg, "ssekit_webhook_dead_letters_total"))
	if dead != 2 {
		t.Errorf("dead letters counted %v; want 2", dead)
	}
	rc.status.Store(0)
	r.publish(t, "t", []string{"c"})
	poll.Until(t, "c delivered", 10*time.Second, func() bool { return len(rc.got()) == 1 })
	if n, err := r.outbox.Replay("app"); n != 2 || err != nil {
		t.Fatalf("Replay = %d, %v; want 2", n, err)
	}
	poll.Until(t, "the dead letters delivered", 10*time.Second, func() bool { return len(rc.got()) == 3 })
	if got := rc.got(); !equal(got, []string{"c", "a", "b"}) {
		t.Errorf("got %v; want c, then the replayed a, b", got)
	}
	if _, err := r.outbox.Replay("nope"); !errors.Is(err, webhook.ErrNoEndpoint) {
		t.Errorf("Replay of an unknown endpoint: %v", err)
	}
}

func mustCollector(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "v", Help: "v"}, func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		sum := 0.0
		for _, mf := range mfs {
			if mf.GetName() == name {
				for _, m := range mf.GetMetric() {
					sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
		return sum
	})
}

// TestSlowEndpointNeverSlowsPublishing: with an endpoint that never
// answers, publishing goes on, and another endpoint gets its events.
func TestSlowEndpointNeverSlowsPublishing(t *testing.T) {
	stuck := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stuck:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(stuck) })
	rc := &receiver{}
	fast := httptest.NewServer(rc)
	t.Cleanup(fast.Close)
	r := open(t, hub.NewMemoryStore(hub.MemoryStoreConfig{}), filepath.Join(t.TempDir(), "w.db"), []webhook.Endpoint{
		{Name: "slow", URL: slow.URL, Secrets: [][]byte{secret}},
		{Name: "fast", URL: fast.URL, Secrets: [][]byte{secret}},
	}, func(c *webhook.Config) { c.Timeout = time.Hour })
	t.Cleanup(func() { r.outbox.Close() })
	want := ids("s", 200)
	r.publish(t, "t", want) // would hang with a publish waiting on the slow endpoint
	poll.Until(t, "the fast endpoint got all", 20*time.Second, func() bool { return len(rc.got()) == len(want) })
	if q, _, _ := r.outbox.Counts("slow"); q != 200 {
		t.Errorf("slow endpoint queue %d; want 200 waiting", q)
	}
}

// TestTopicFilterAndPrivate: an endpoint gets only the topics its
// matchers match, and private updates only when it asks.
func TestTopicFilterAndPrivate(t *testing.T) {
	rc := &receiver{}
	app := httptest.NewServer(rc)
	t.Cleanup(app.Close)
	sel, err := hub.CompileSelector("https://example.com/books/{id}")
	if err != nil {
		t.Fatal(err)
	}
	r := open(t, hub.NewMemoryStore(hub.MemoryStoreConfig{}), filepath.Join(t.TempDir(), "w.db"),
		[]webhook.Endpoint{{Name: "books", URL: app.URL, Secrets: [][]byte{secret}, Topics: []hub.Matcher{sel}}}, nil)
	t.Cleanup(func() { r.outbox.Close() })
	r.publish(t, "https://example.com/books/1", []string{"b1"})
	r.publish(t, "https://example.com/cars/1", []string{"c1"})
	if _, err := r.hub.Publish(t.Context(), &hub.Update{ID: "p1", Topics: []string{"https://example.com/books/2"}, Private: true}); err != nil {
		t.Fatal(err)
	}
	r.publish(t, "https://example.com/books/3", []string{"b3"})
	poll.Until(t, "b3 delivered", 10*time.Second, func() bool { g := rc.got(); return len(g) > 0 && g[len(g)-1] == "b3" })
	if got := rc.got(); !equal(got, []string{"b1", "b3"}) {
		t.Errorf("got %v; want b1, b3 (no other topic, no private update)", got)
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	store := hub.NewMemoryStore(hub.MemoryStoreConfig{})
	path := filepath.Join(t.TempDir(), "w.db")
	for _, eps := range [][]webhook.Endpoint{
		{{Name: "", URL: "http://a/", Secrets: [][]byte{secret}}},
		{{Name: "a", URL: "ftp://a/", Secrets: [][]byte{secret}}},
		{{Name: "a", URL: "http://a/"}},
		{{Name: "a", URL: "http://a/", Secrets: [][]byte{[]byte("short")}}},
		{{Name: "a", URL: "http://a/", Secrets: [][]byte{secret}}, {Name: "a", URL: "http://b/", Secrets: [][]byte{secret}}},
	} {
		if _, err := webhook.Open(webhook.Config{Path: path, Store: store, Endpoints: eps}); !errors.Is(err, webhook.ErrInvalidConfig) {
			t.Errorf("Open(%+v) = %v; want ErrInvalidConfig", eps, err)
		}
	}
}

// TestReplayFile: the operator's commands on a stopped hub's outbox:
// list the counts, replay the dead letters, delivered at the next start;
// refused while the outbox is open.
func TestReplayFile(t *testing.T) {
	rc := &receiver{}
	rc.status.Store(http.StatusInternalServerError)
	app := httptest.NewServer(rc)
	t.Cleanup(app.Close)
	path := filepath.Join(t.TempDir(), "webhooks.db")
	store := hub.NewMemoryStore(hub.MemoryStoreConfig{})
	eps := []webhook.Endpoint{{Name: "app", URL: app.URL, Secrets: [][]byte{secret}, MaxAttempts: 2}}
	r := open(t, store, path, eps, nil)
	r.publish(t, "t", []string{"a", "b"})
	poll.Until(t, "both dead-lettered", 20*time.Second, func() bool { _, d, _ := r.outbox.Counts("app"); return d == 2 })
	if _, err := webhook.ReplayFile(path, "app"); !errors.Is(err, webhook.ErrInUse) {
		t.Errorf("ReplayFile while open: %v; want ErrInUse", err)
	}
	r.outbox.Close()
	qs, err := webhook.ListFile(path)
	if err != nil || len(qs) != 1 || qs[0] != (webhook.Queue{Name: "app", Queued: 0, Dead: 2}) {
		t.Errorf("ListFile = %+v, %v", qs, err)
	}
	if n, err := webhook.ReplayFile(path, "app"); n != 2 || err != nil {
		t.Fatalf("ReplayFile = %d, %v", n, err)
	}
	if _, err := webhook.ReplayFile(path, "other"); !errors.Is(err, webhook.ErrNoEndpoint) {
		t.Errorf("ReplayFile of an unknown endpoint: %v", err)
	}
	rc.status.Store(0)
	r = open(t, store, path, eps, nil)
	t.Cleanup(func() { r.outbox.Close() })
	poll.Until(t, "the replayed events delivered", 10*time.Second, func() bool { return len(rc.got()) == 2 })
	if got := rc.got(); !equal(got, []string{"a", "b"}) {
		t.Errorf("got %v", got)
	}
}

// TestSubscriptionEvents: a subscriber coming and going is told, in
// order, to the endpoints that ask; the watcher's own subscription is not.
func TestSubscriptionEvents(t *testing.T) {
	var (
		mu  sync.Mutex
		got []string
	)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(secret, r.Header, body, 0, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev webhook.Event
		json.Unmarshal(body, &ev)
		mu.Lock()
		defer mu.Unlock()
		if ev.Subscription != nil {
			got = append(got, ev.Type+" "+ev.Subscription.Topic)
		} else {
			got = append(got, ev.Type+" "+ev.Update.ID)
		}
	}))
	t.Cleanup(app.Close)
	store := hub.NewMemoryStore(hub.MemoryStoreConfig{})
	o, err := webhook.Open(webhook.Config{Path: filepath.Join(t.TempDir(), "w.db"), Store: store, Poll: 20 * time.Millisecond, Endpoints: []webhook.Endpoint{
		{Name: "subs", URL: app.URL, Secrets: [][]byte{secret}, Subscriptions: true, Topics: []hub.Matcher{hub.ExactSelector("room")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{Store: store, SubscriptionEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := o.WatchSubscriptions(t.Context(), h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Shutdown(context.Background()); o.Close() })
	for _, topic := range []string{"room", "other"} {
		sub, _, err := h.Subscribe(t.Context(), hub.SubscribeRequest{Selectors: []string{topic}, Notify: func() {}})
		if err != nil {
			t.Fatal(err)
		}
		sub.Close()
	}
	// Each kind is in order; between kinds, the order is the outbox's
	// (subscription events come from fan-out, updates from the store).
	poll.Until(t, "the subscription events", 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 2 })
	if _, err := h.Publish(t.Context(), &hub.Update{ID: "u1", Topics: []string{"room"}}); err != nil {
		t.Fatal(err)
	}
	o.Notify()
	want := []string{"subscription.started room", "subscription.ended room", "update.published u1"}
	poll.Until(t, "the subscription events", 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= len(want) })
	mu.Lock()
	defer mu.Unlock()
	if !equal(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
}
