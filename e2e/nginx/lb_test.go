package nginx_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/redistest"
	"github.com/ssekit/sse/internal/testenv"
)

// lbSite rewrites testdata/ssekit-lb.conf for the hubs: its three server
// lines become the hubs' addresses.
func lbSite(t *testing.T, hubs []*e2etest.Hub) string {
	t.Helper()
	if len(hubs) != 3 {
		t.Fatalf("%d hubs; the site file has 3 servers", len(hubs))
	}
	site := readSite(t, "ssekit-lb.conf")
	for i, h := range hubs {
		site = e2etest.ReplaceOnce(t, site, fmt.Sprintf("server 10.0.0.1%d:8080 ", i+1), "server "+h.Addr+" ")
	}
	return site
}

// lbSubscriber reads one stream through nginx with the sse package's
// client, which reconnects as a browser's EventSource does: after the
// reconnection time, sending Last-Event-ID, and giving up for good on a
// status other than 200.
type lbSubscriber struct {
	es   *sse.EventSource
	done chan struct{}
	wake chan struct{} // a token after each event

	mu       sync.Mutex
	ids      []string // guarded by mu: the ids received, in order
	connects int      // guarded by mu: responses accepted (200)
	err      error    // guarded by mu: why the stream ended for good
}

func newLBSubscriber(t *testing.T, u string) *lbSubscriber {
	t.Helper()
	s := &lbSubscriber{done: make(chan struct{}), wake: make(chan struct{}, 1)}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &sse.Client{
		HTTPClient: &http.Client{Transport: tr},
		Retry:      50 * time.Millisecond,
		OnConnect: func(*http.Response) {
			s.mu.Lock()
			s.connects++
			s.mu.Unlock()
			s.poke()
		},
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.es = c.Connect(req)
	go func() {
		defer close(s.done)
		for ev, err := range s.es.Events() {
			s.mu.Lock()
			if err != nil {
				s.err = err
			} else {
				s.ids = append(s.ids, ev.ID)
			}
			s.mu.Unlock()
			s.poke()
		}
	}()
	t.Cleanup(func() {
		s.es.Close()
		<-s.done
	})
	return s
}

func (s *lbSubscriber) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// state returns the ids so far, the responses accepted, and the error
// that ended the stream (nil while it goes on).
func (s *lbSubscriber) state() ([]string, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ids...), s.connects, s.err
}

// waitFor waits until cond holds for the subscriber's state, failing the
// test after waitTimeout or when the stream ended for good.
func (s *lbSubscriber) waitFor(t *testing.T, what string, cond func(ids []string, connects int) bool) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		ids, connects, err := s.state()
		if cond(ids, connects) {
			return
		}
		if err != nil {
			t.Fatalf("waiting for %s: the stream ended for good: %v (%d events, %d connections)", what, err, len(ids), connects)
		}
		select {
		case <-s.wake:
		case <-deadline:
			t.Fatalf("waiting for %s: not after %v (%d events, %d connections)", what, waitTimeout, len(ids), connects)
		}
	}
}

// TestLoadBalancer runs three hubs on one Redis behind nginx with the
// upstream configuration of docs/deploying.md ("Behind a load
// balancer"): round-robin, no affinity. Subscribers land on every node;
// updates published through nginx (on any node) reach all of them; one
// node stopped with SIGTERM while a publisher goes on ends its streams,
// its subscribers reconnect through nginx to the others with their
// Last-Event-ID, and every subscriber gets every acknowledged update once,
// in order, without ever seeing an error status.
func TestLoadBalancer(t *testing.T) {
	testenv.NeedCommand(t, "nginx")
	redis := redistest.Start(t, redistest.Options{})
	hubs := make([]*e2etest.Hub, 3)
	for i := range hubs {
		hubs[i] = startHub(t, "--store", redis.URL(), "--heartbeat", "500ms")
	}
	ng := startNginx(t, lbSite(t, hubs))
	c := e2etest.NewClient(t)
	tok := publisherToken(t)
	const topic = "https://example.com/lb"

	// Six subscribers through nginx: round-robin gives each node two.
	subs := make([]*lbSubscriber, 6)
	for i := range subs {
		subs[i] = newLBSubscriber(t, ng.hubURL()+"?topic="+url.QueryEscape(topic))
		subs[i].waitFor(t, "the first connection", func(_ []string, n int) bool { return n == 1 })
	}
	total := 0
	for i, h := range hubs {
		n := subscribers(h)
		if n < 1 {
			t.Errorf("node %d has %d subscribers; want some (round-robin)", i, n)
		}
		total += n
	}
	if total != len(subs) {
		t.Errorf("the nodes count %d subscribers; want %d", total, len(subs))
	}

	// Publish through nginx: each publish lands on the next node.
	var acked []string
	pub := func(id string) (int, string) {
		return publish(c, ng.hubURL(), tok, url.Values{"topic": {topic}, "id": {id}, "data": {"data of " + id}})
	}
	for i := range 30 {
		id := fmt.Sprintf("before-%d", i)
		if code, body := pub(id); code != http.StatusOK {
			t.Fatalf("publish %s through nginx: %d %s", id, code, body)
		}
		acked = append(acked, id)
	}
	for i, s := range subs {
		s.waitFor(t, fmt.Sprintf("subscriber %d: the first 30 updates", i), func(ids []string, _ int) bool { return len(ids) >= len(acked) })
	}

	// A publisher goes on through nginx while node 1 is stopped. It
	// retries an update until it is acknowledged, with the same id; a 409
	// on a retry means the earlier attempt was stored.
	stop := make(chan struct{})
	var (
		pubMu     sync.Mutex
		pubAcked  []string // guarded by pubMu
		pubFailed []string // guarded by pubMu: answers other than 200 (retried)
	)
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for i := 0; i < 10000; i++ {
			id := fmt.Sprintf("during-%d", i)
			for retried := false; ; retried = true {
				select {
				case <-stop:
					return
				default:
				}
				code, body := pub(id)
				if code == http.StatusOK || code == http.StatusConflict && retried {
					pubMu.Lock()
					pubAcked = append(pubAcked, id)
					pubMu.Unlock()
					break
				}
				pubMu.Lock()
				pubFailed = append(pubFailed, fmt.Sprintf("%s: %d %s", id, code, body))
				pubMu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	ackedCount := func() int {
		pubMu.Lock()
		defer pubMu.Unlock()
		return len(pubAcked)
	}
	waitAcked := func(n int) {
		deadline := time.Now().Add(waitTimeout)
		for ackedCount() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d publishes acknowledged after %v; want %d", ackedCount(), waitTimeout, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAcked(50)

	stopped := hubs[1]
	onStopped := subscribers(stopped)
	_ = stopped.Cmd.Process.Signal(syscall.SIGTERM)
	if err := stopped.Wait(waitTimeout); err != nil {
		t.Errorf("node 1 after SIGTERM: %v; want exit status 0", err)
	}
	if !strings.Contains(stopped.Out.String(), "stopped") {
		t.Errorf("node 1 did not log that it stopped")
	}
	atStop := ackedCount()
	waitAcked(atStop + 100)
	close(stop)
	<-pubDone

	pubMu.Lock()
	acked = append(acked, pubAcked...)
	failed := pubFailed
	pubMu.Unlock()
	// Every subscriber: every acknowledged id once, in order; still
	// connected (a 502 or 503 from nginx would have ended it for good).
	moved := 0
	for i, s := range subs {
		s.waitFor(t, fmt.Sprintf("subscriber %d: all %d updates", i, len(acked)), func(ids []string, _ int) bool { return len(ids) >= len(acked) })
		ids, connects, err := s.state()
		if err != nil {
			t.Errorf("subscriber %d ended for good: %v", i, err)
		}
		if len(ids) != len(acked) {
			t.Errorf("subscriber %d: %d events; want %d (no duplicates)", i, len(ids), len(acked))
		}
		for j := range min(len(ids), len(acked)) {
			if ids[j] != acked[j] {
				t.Errorf("subscriber %d: event %d is %q; want %q", i, j, ids[j], acked[j])
				break
			}
		}
		if connects > 1 {
			moved++
		}
	}
	if moved != onStopped {
		t.Errorf("%d subscribers reconnected; want %d (those on the stopped node)", moved, onStopped)
	}
	total = subscribers(hubs[0]) + subscribers(hubs[2])
	if total != len(subs) {
		t.Errorf("the two remaining nodes count %d subscribers; want %d", total, len(subs))
	}
	t.Logf("%d updates; %d subscribers moved off the stopped node; %d publishes answered other than 200 and retried: %v",
		len(acked), moved, len(failed), failed)
}
