// Package redis_test runs several real "ssekit serve" processes on one real
// redis-server, as an operator would run hub nodes behind a load balancer:
// publish on any node and every node delivers; a subscriber that moves to
// another node resumes with its Last-Event-ID; redis-server restarted in
// the middle of the traffic loses nothing and repeats nothing.
//
// TestMain builds the binary once (internal/e2etest); each test starts its
// own redis-server (internal/redistest) and hub processes on 127.0.0.1.
package redis_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/redistest"
)

// testSecret is the HS256 key the hubs verify tokens with.
const testSecret = "e2e-redis-0123456789abcdef0123456789abcdef"

// ssekit is the binary TestMain built: set once before any test runs.
var ssekit e2etest.Binary

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, "e2e/redis", &ssekit))
}

// startNodes starts n hub processes on the store URL and waits until each
// is ready.
func startNodes(t *testing.T, storeURL string, n int) []*e2etest.Hub {
	t.Helper()
	nodes := make([]*e2etest.Hub, n)
	for i := range nodes {
		nodes[i] = ssekit.Start(t, e2etest.HubSpec{Args: []string{"--store", storeURL,
			"--jwt-key", testSecret, "--allow-anonymous", "--heartbeat", "500ms",
			"--data-dir", t.TempDir(), "--log-level", "debug"}})
	}
	for _, nd := range nodes {
		nd.WaitStatus(t, "/readyz", http.StatusOK)
	}
	return nodes
}

// publish publishes id on topic through nd, and fails the test unless it
// is acknowledged.
func publish(t *testing.T, nd *e2etest.Hub, tok, topic, id string) {
	t.Helper()
	if code, body := nd.PublishID(tok, topic, id); code != http.StatusOK {
		t.Fatalf("publish %s on %s: %d %s", id, nd.Addr, code, body)
	}
}

// TestPublishOnAnyNodeDeliveredOnAll starts three nodes on one Redis, a
// subscriber on each, and publishes on each node in turn: every
// subscriber gets every update once, in the order published.
func TestPublishOnAnyNodeDeliveredOnAll(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	nodes := startNodes(t, srv.URL(), 3)
	tok := e2etest.PublisherToken(t, testSecret)
	subs := make([]*e2etest.Subscriber, len(nodes))
	for i := range nodes {
		subs[i] = e2etest.Subscribe(t, nodes[i:i+1], 0, "https://example.com/all", "")
	}
	var want []string
	for i := range 60 {
		id := fmt.Sprintf("u-%d", i)
		publish(t, nodes[i%3], tok, "https://example.com/all", id)
		want = append(want, id)
	}
	for i, s := range subs {
		got := s.WaitIDs(t, want)
		e2etest.CheckExactly(t, fmt.Sprintf("subscriber on node %d", i), got, want)
	}
	// An id published on one node is known on the others: the same update
	// again is a retry, answered 200 and stored once (draft-08 accepts a
	// reused id; the subscribers above got u-0 once).
	if code, _ := nodes[1].PublishID(tok, "https://example.com/all", "u-0"); code != http.StatusOK {
		t.Errorf("retry of u-0 (published on node 0) on node 1: %d; want 200", code)
	}
}

// TestResumeOnAnotherNode reads part of a stream from one node, then
// reconnects to another with the Last-Event-ID: it gets the rest, with no
// gap and no duplicate.
func TestResumeOnAnotherNode(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	nodes := startNodes(t, srv.URL(), 3)
	tok := e2etest.PublisherToken(t, testSecret)
	const topic = "https://example.com/resume"

	s := e2etest.Subscribe(t, nodes[:1], 0, topic, "")
	var want []string
	for i := range 20 {
		id := fmt.Sprintf("r-%d", i)
		publish(t, nodes[2], tok, topic, id)
		want = append(want, id)
	}
	s.WaitIDs(t, want)
	s.Stop()

	// Published while the subscriber is away, on every node.
	for i := 20; i < 40; i++ {
		id := fmt.Sprintf("r-%d", i)
		publish(t, nodes[i%3], tok, topic, id)
		want = append(want, id)
	}
	got := s.IDs()
	resumed := e2etest.StartSubscriber(t, nodes[1:2], 0, topic, got[len(got)-1])
	// And while it resumes.
	for i := 40; i < 50; i++ {
		id := fmt.Sprintf("r-%d", i)
		publish(t, nodes[i%3], tok, topic, id)
		want = append(want, id)
	}
	rest := resumed.WaitIDs(t, want[20:])
	e2etest.CheckExactly(t, "resumed on node 1", append(got, rest...), want)
}

// TestRedisRestartMidStream restarts redis-server (append-only file on)
// while two publishers publish through three nodes and three subscribers
// read, moving to another node whenever a stream ends. During the outage
// publishes get 503 and /readyz 503; after it everything recovers by
// itself. Every acknowledged update reaches every subscriber exactly once,
// in publish order per topic, and no subscriber needs to reconnect.
func TestRedisRestartMidStream(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	nodes := startNodes(t, srv.URL(), 3)
	topics := []string{"https://example.com/a", "https://example.com/b"}

	subs := make([]*e2etest.Subscriber, len(nodes))
	for i := range nodes {
		subs[i] = e2etest.Subscribe(t, nodes, i, "https://example.com/{x}", "")
	}

	// One publisher per topic publishes it in order, one update at a time,
	// through the nodes in turn, and retries an id refused with 503.
	p := e2etest.NewPublisher(nodes, e2etest.PublisherToken(t, testSecret))
	ctx, stopPublishing := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		stopPublishing()
		wg.Wait()
	})
	for n, topic := range topics {
		wg.Go(func() {
			for i := range 5000 {
				if p.Publish(ctx, topic, fmt.Sprintf("%c-%d", 'a'+n, i)) != nil {
					return
				}
			}
		})
	}
	waitAcked := func(n int) {
		deadline := time.Now().Add(e2etest.Timeout)
		for p.AckedTotal() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d publishes acknowledged after %v; want %d", p.AckedTotal(), e2etest.Timeout, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAcked(100)

	srv.Stop()
	// During the outage: publishes get 503 with Retry-After, /readyz 503,
	// and the nodes keep serving (/healthz 200).
	code, body := nodes[0].PublishID(p.Token(), topics[0], "during-outage")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "Retry-After=1") {
		t.Errorf("publish during the outage: %d %s; want 503 with Retry-After", code, body)
	}
	for i, nd := range nodes {
		if got := nd.Status("/readyz"); got != http.StatusServiceUnavailable {
			t.Errorf("node %d /readyz during the outage: %d; want 503", i, got)
		}
		if got := nd.Status("/healthz"); got != http.StatusOK {
			t.Errorf("node %d /healthz during the outage: %d; want 200", i, got)
		}
	}
	// Keep Redis down until the publishers have been refused a few times.
	deadline := time.Now().Add(e2etest.Timeout)
	for p.Unavailable() < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("%d publishes refused with 503 after %v; want 20", p.Unavailable(), e2etest.Timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	atStop := p.AckedTotal()

	srv.Relaunch()
	for _, nd := range nodes {
		nd.WaitStatus(t, "/readyz", http.StatusOK)
	}
	waitAcked(atStop + 100)
	stopPublishing()
	wg.Wait()

	for _, f := range p.Failures() {
		if f.Status != http.StatusServiceUnavailable {
			t.Errorf("publish answered other than 200 or 503: %v", f)
		}
	}
	if p.Unavailable() == 0 {
		t.Errorf("no publish got 503 during the outage; want some")
	}
	var want []string
	for _, topic := range topics {
		want = append(want, p.Acked(topic)...)
	}
	for i, s := range subs {
		got := s.WaitIDs(t, want)
		// Per topic: exactly the acknowledged ids, once, in order.
		for n, topic := range topics {
			var mine []string
			for _, id := range got {
				if strings.HasPrefix(id, fmt.Sprintf("%c-", 'a'+n)) {
					mine = append(mine, id)
				}
			}
			e2etest.CheckExactly(t, fmt.Sprintf("subscriber %d, topic %s", i, topic), mine, p.Acked(topic))
		}
		if streams := s.Streams(); len(streams) != 1 {
			t.Errorf("subscriber %d opened %d streams (on %v); want 1 (kept its stream through the outage)", i, len(streams), streams)
		}
		t.Logf("subscriber %d: %d events", i, len(got))
		if testing.Verbose() {
			t.Logf("node %d output:\n%s", i, nodes[i].Out)
		}
	}
	t.Logf("acknowledged %d + %d, %d answers 503 during the outage", len(p.Acked(topics[0])), len(p.Acked(topics[1])), p.Unavailable())
}
