package natscluster_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/webhook"
)

// hookReceiver is the application's webhook endpoint: it verifies each
// delivery, answers 503 while down, and keeps every accepted delivery's
// update id in order (duplicates too).
type hookReceiver struct {
	secret []byte
	down   atomic.Bool
	bad    atomic.Int64
	mu     sync.Mutex
	order  []string
	seen   map[string]int
}

func (rc *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := webhook.Verify(rc.secret, r.Header, body, 0, time.Now()); err != nil {
		rc.bad.Add(1)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if rc.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var ev webhook.Event
	if json.Unmarshal(body, &ev) != nil || ev.Update == nil || ev.ID != "update:"+ev.Update.ID {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	if strings.HasPrefix(ev.Update.ID, "warmup") {
		return // published while waiting for a holder: may arrive after the reset
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.seen[ev.Update.ID]++
	rc.order = append(rc.order, ev.Update.ID)
}

func (rc *hookReceiver) distinct() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.seen)
}

// check: want received in order by first delivery; duplicates only as
// re-deliveries (same id); none at all unless dups.
func (rc *hookReceiver) check(t *testing.T, want []string, dups bool) {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var first []string
	seen := map[string]bool{}
	n := 0
	for _, id := range rc.order {
		if seen[id] {
			n++
			continue
		}
		seen[id] = true
		first = append(first, id)
	}
	if strings.Join(first, ",") != strings.Join(want, ",") {
		t.Fatalf("received %d distinct updates, not the %d acknowledged in order:\ngot  %v\nwant %v", len(first), len(want), first, want)
	}
	if n > 0 && !dups {
		t.Fatalf("%d duplicate deliveries in steady state: every node delivers?", n)
	}
	if rc.bad.Load() > 0 {
		t.Fatalf("%d deliveries failed verification", rc.bad.Load())
	}
	t.Logf("%d updates received, %d duplicates (same ids)", len(first), n)
}

// delivered is a node's successful webhook deliveries, from its metrics.
func delivered(h *e2etest.Hub, result string) int {
	return e2etest.Gauge(h.Client, h.Base(), `ssekit_webhook_deliveries_total{endpoint="app",result="`+result+`"}`)
}

// TestClusterWebhooksOnceAndTakeover: three --cluster nodes with one
// webhook: each update is delivered once (by the node holding the
// endpoint's lease), not once per node; the holder is killed with
// SIGKILL with events pending (the receiver down), another node takes
// over after the lease's TTL and delivers everything, in order, a
// duplicate only with its id.
func TestClusterWebhooksOnceAndTakeover(t *testing.T) {
	rc := &hookReceiver{secret: []byte("e2e-cluster-webhook-secret-0123456789"), seen: map[string]int{}}
	recv := httptest.NewServer(rc)
	t.Cleanup(recv.Close)
	cfg := filepath.Join(t.TempDir(), "hub.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[[webhook]]\nname = \"app\"\nurl = %q\nsecrets = [%q]\n", recv.URL, rc.secret)), 0o600)
	nodes := startClusterNodes(t, "--config", cfg)
	p := e2etest.NewPublisher(nodes, e2etest.PublisherToken(t, testSecret))
	// A new endpoint starts at the stream's end when its first holder
	// takes it: wait for one before publishing.
	var holder *e2etest.Hub
	p.MustPublish(t, "orders", "warmup")
	poll.Until(t, "a node delivering", 60*time.Second, func() bool {
		for _, n := range nodes {
			if delivered(n, "ok") > 0 {
				holder = n
				return true
			}
		}
		p.MustPublish(t, "orders", fmt.Sprint("warmup-", time.Now().UnixNano()))
		return false
	})
	rc.mu.Lock()
	rc.order, rc.seen = nil, map[string]int{}
	rc.mu.Unlock()
	base := len(p.Acked("orders"))
	for i := range 150 {
		p.MustPublish(t, "orders", fmt.Sprint("once-", i))
	}
	want := p.Acked("orders")[base:]
	poll.Until(t, "every update delivered once", 60*time.Second, func() bool { return rc.distinct() >= len(want) })
	time.Sleep(2 * time.Second) // what another node would deliver too, it would have by now
	rc.check(t, want, false)
	for _, n := range nodes {
		if n != holder && delivered(n, "ok") > 0 {
			t.Fatalf("node %s delivered too; want only the lease holder %s", n.Addr, holder.Addr)
		}
	}

	rc.down.Store(true)
	for i := range 100 {
		p.MustPublish(t, "orders", fmt.Sprint("pending-", i))
	}
	poll.Until(t, "the holder failing to deliver", 30*time.Second, func() bool { return delivered(holder, "failed") > 0 })
	holder.Kill()
	killed := time.Now()
	for i := range 50 {
		p.MustPublish(t, "orders", fmt.Sprint("after-", i))
	}
	rc.down.Store(false)
	want = p.Acked("orders")[base:]
	poll.Until(t, "every update delivered after the takeover", 90*time.Second, func() bool { return rc.distinct() >= len(want) })
	t.Logf("the holder killed: everything delivered %v later (lease TTL 10s)", time.Since(killed).Round(100*time.Millisecond))
	rc.check(t, want, true)
}
