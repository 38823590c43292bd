// Package redis_test runs several real "ssekit serve" processes on one real
// redis-server, as an operator would run hub nodes behind a load balancer:
// publish on any node and every node delivers; a subscriber that moves to
// another node resumes with its Last-Event-ID; redis-server restarted in
// the middle of the traffic loses nothing and repeats nothing.
//
// TestMain builds the binary once; each test starts its own redis-server
// (internal/redistest) and hub processes on 127.0.0.1.
package redis_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/redistest"
	"github.com/ssekit/sse/jwtauth"
)

// testSecret is the HS256 key the hubs verify tokens with.
const testSecret = "e2e-redis-0123456789abcdef0123456789abcdef"

// waitTimeout bounds every wait; nothing is asserted about speed.
const waitTimeout = 30 * time.Second

// ssekitBin is the binary TestMain built: set once before any test runs.
var ssekitBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ssekit-e2e-redis-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/redis:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ssekitBin = filepath.Join(dir, "ssekit")
	build := exec.Command("go", "build", "-o", ssekitBin, "github.com/ssekit/sse/cmd/ssekit")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e/redis: building ssekit:", err)
		return 1
	}
	return m.Run()
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

// node is one "ssekit serve" process.
type node struct {
	addr   string
	out    *syncBuffer
	cmd    *exec.Cmd
	done   chan struct{}
	client *http.Client
}

func (n *node) url() string { return "http://" + n.addr + "/.well-known/mercure" }

// startNodes starts n hub processes on the store URL and waits until each
// is ready.
func startNodes(t *testing.T, storeURL string, n int) []*node {
	t.Helper()
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = startNode(t, storeURL)
	}
	for _, nd := range nodes {
		waitStatus(t, nd, "/readyz", http.StatusOK)
	}
	return nodes
}

func startNode(t *testing.T, storeURL string) *node {
	t.Helper()
	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		nd := &node{addr: addr, out: &syncBuffer{}, done: make(chan struct{}), client: &http.Client{Transport: tr}}
		nd.cmd = exec.Command(ssekitBin, "serve", "--addr", addr, "--store", storeURL,
			"--jwt-key", testSecret, "--allow-anonymous", "--heartbeat", "500ms",
			"--data-dir", t.TempDir(), "--log-level", "debug")
		nd.cmd.Env = cleanEnv()
		nd.cmd.Stdout, nd.cmd.Stderr = nd.out, nd.out
		if err := nd.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			nd.cmd.Wait()
			close(nd.done)
		}()
		t.Cleanup(func() {
			nd.cmd.Process.Kill()
			<-nd.done
			if t.Failed() {
				t.Logf("node %s output:\n%s", addr, nd.out)
			}
		})
		deadline := time.After(waitTimeout)
	wait:
		for !strings.Contains(nd.out.String(), "hub listening") {
			select {
			case <-nd.done:
				break wait
			case <-deadline:
				t.Fatalf("node %s not listening after %v:\n%s", addr, waitTimeout, nd.out)
			case <-time.After(10 * time.Millisecond):
			}
		}
		select {
		case <-nd.done:
			if strings.Contains(nd.out.String(), "address already in use") && attempt < 20 {
				continue
			}
			t.Fatalf("node %s exited:\n%s", addr, nd.out)
		default:
		}
		return nd
	}
}

// cleanEnv is the environment without SSEKIT_* settings (other than
// SSEKIT_REQUIRE_ALL).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SSEKIT_") && !strings.HasPrefix(kv, "SSEKIT_REQUIRE_ALL=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// status returns the status of GET path on the node (0 when it cannot be
// reached).
func status(nd *node, path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+nd.addr+path, nil)
	resp, err := nd.client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus waits until GET path on the node answers want.
func waitStatus(t *testing.T, nd *node, path string, want int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got := status(nd, path)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s on %s: %d after %v; want %d", path, nd.addr, got, waitTimeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func publisherToken(t *testing.T) string {
	t.Helper()
	key, err := jwtauth.NewKey("HS256", []byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwtauth.Sign(key, hub.Claims{Publish: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// publish posts one update with the given id and returns the status (0
// when the request failed).
func publish(nd *node, tok, topic, id string) (int, string) {
	form := url.Values{"topic": {topic}, "id": {id}, "data": {"data of " + id}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, nd.url(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := nd.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)) + " Retry-After=" + resp.Header.Get("Retry-After")
}

// event is one update a subscriber received.
type event struct {
	id, data string
}

// subscriber reads one stream at a time from a list of nodes; when a
// stream ends it reconnects to the next node with its Last-Event-ID.
type subscriber struct {
	t      *testing.T
	nodes  []*node
	topic  string
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	events     []event // guarded by mu
	lastID     string  // guarded by mu
	connects   int     // guarded by mu: streams opened (200)
	wake       chan struct{}
	streamOpen chan struct{} // closed once the first stream is open
}

// subscribe starts a subscriber on nodes[first], moving to the next node
// whenever a stream ends.
func subscribe(t *testing.T, nodes []*node, first int, topic string) *subscriber {
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscriber{t: t, nodes: nodes, topic: topic, cancel: cancel, done: make(chan struct{}),
		wake: make(chan struct{}, 1), streamOpen: make(chan struct{})}
	go s.run(ctx, first)
	t.Cleanup(s.stop)
	select {
	case <-s.streamOpen:
	case <-time.After(waitTimeout):
		t.Fatalf("subscriber to %s: no stream opened in %v", topic, waitTimeout)
	}
	return s
}

func (s *subscriber) stop() {
	s.cancel()
	<-s.done
}

func (s *subscriber) run(ctx context.Context, i int) {
	defer close(s.done)
	var opened sync.Once
	for attempt := 0; ctx.Err() == nil && attempt < 1000; attempt++ {
		nd := s.nodes[i%len(s.nodes)]
		i++
		s.stream(ctx, nd, func() { opened.Do(func() { close(s.streamOpen) }) })
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond): // as a client's retry
		}
	}
}

// stream reads one stream from nd until it ends.
func (s *subscriber) stream(ctx context.Context, nd *node, opened func()) {
	u := nd.url() + "?topic=" + url.QueryEscape(s.topic)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	s.mu.Lock()
	if s.lastID != "" {
		req.Header.Set("Last-Event-ID", s.lastID)
	}
	s.mu.Unlock()
	resp, err := nd.client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	s.mu.Lock()
	s.connects++
	s.mu.Unlock()
	opened()
	d := sse.NewDecoder(bufio.NewReader(resp.Body))
	for {
		ev, err := d.Next()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.events = append(s.events, event{id: ev.ID, data: ev.Data})
		s.lastID = ev.ID
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// received returns the events so far and the streams opened.
func (s *subscriber) received() ([]event, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event(nil), s.events...), s.connects
}

// waitIDs waits until the subscriber has received every id in want (and
// maybe more).
func (s *subscriber) waitIDs(t *testing.T, want []string) []event {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		got, _ := s.received()
		seen := make(map[string]bool, len(got))
		for _, e := range got {
			seen[e.id] = true
		}
		missing := 0
		for _, id := range want {
			if !seen[id] {
				missing++
			}
		}
		if missing == 0 {
			return got
		}
		select {
		case <-s.wake:
		case <-deadline:
			t.Fatalf("subscriber to %s: %d of %d ids missing after %v", s.topic, missing, len(want), waitTimeout)
		}
	}
}

// checkExactly checks that got holds want's ids exactly once each, in
// want's order.
func checkExactly(t *testing.T, who string, got []event, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d events; want %d", who, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i].id != want[i] {
			t.Errorf("%s: event %d is %q; want %q", who, i, got[i].id, want[i])
			return
		}
	}
}

// TestPublishOnAnyNodeDeliveredOnAll starts three nodes on one Redis, a
// subscriber on each, and publishes on each node in turn: every
// subscriber gets every update once, in the order published.
func TestPublishOnAnyNodeDeliveredOnAll(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	nodes := startNodes(t, srv.URL(), 3)
	tok := publisherToken(t)
	subs := make([]*subscriber, len(nodes))
	for i := range nodes {
		subs[i] = subscribe(t, nodes[i:i+1], 0, "https://example.com/all")
	}
	var want []string
	for i := range 60 {
		id := fmt.Sprintf("u-%d", i)
		if code, body := publish(nodes[i%3], tok, "https://example.com/all", id); code != http.StatusOK {
			t.Fatalf("publish %s on node %d: %d %s", id, i%3, code, body)
		}
		want = append(want, id)
	}
	for i, s := range subs {
		got := s.waitIDs(t, want)
		checkExactly(t, fmt.Sprintf("subscriber on node %d", i), got, want)
	}
	// An id published on one node is a duplicate on the others.
	if code, _ := publish(nodes[1], tok, "https://example.com/all", "u-0"); code != http.StatusConflict {
		t.Errorf("publish of u-0 (published on node 0) on node 1: %d; want 409", code)
	}
}

// TestResumeOnAnotherNode reads part of a stream from one node, then
// reconnects to another with the Last-Event-ID: it gets the rest, with no
// gap and no duplicate.
func TestResumeOnAnotherNode(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	nodes := startNodes(t, srv.URL(), 3)
	tok := publisherToken(t)
	const topic = "https://example.com/resume"

	s := subscribe(t, nodes[:1], 0, topic)
	var want []string
	for i := range 20 {
		id := fmt.Sprintf("r-%d", i)
		if code, body := publish(nodes[2], tok, topic, id); code != http.StatusOK {
			t.Fatalf("publish %s: %d %s", id, code, body)
		}
		want = append(want, id)
	}
	s.waitIDs(t, want)
	s.stop()

	// Published while the subscriber is away, on every node.
	for i := 20; i < 40; i++ {
		id := fmt.Sprintf("r-%d", i)
		if code, body := publish(nodes[i%3], tok, topic, id); code != http.StatusOK {
			t.Fatalf("publish %s: %d %s", id, code, body)
		}
		want = append(want, id)
	}
	got, _ := s.received()
	resumed := &subscriber{}
	*resumed = subscriber{t: t, nodes: nodes[1:2], topic: topic, done: make(chan struct{}),
		wake: make(chan struct{}, 1), streamOpen: make(chan struct{}), lastID: got[len(got)-1].id}
	ctx, cancel := context.WithCancel(context.Background())
	resumed.cancel = cancel
	go resumed.run(ctx, 0)
	t.Cleanup(resumed.stop)
	// And while it resumes.
	for i := 40; i < 50; i++ {
		id := fmt.Sprintf("r-%d", i)
		if code, body := publish(nodes[i%3], tok, topic, id); code != http.StatusOK {
			t.Fatalf("publish %s: %d %s", id, code, body)
		}
		want = append(want, id)
	}
	rest := resumed.waitIDs(t, want[20:])
	checkExactly(t, "resumed on node 1", append(got, rest...), want)
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
	tok := publisherToken(t)
	topics := []string{"https://example.com/a", "https://example.com/b"}

	subs := make([]*subscriber, len(nodes))
	for i := range nodes {
		subs[i] = subscribe(t, nodes, i, "https://example.com/{x}")
	}

	// Each publisher publishes its topic in order, one update at a time,
	// through the nodes in turn, and retries an id refused with 503.
	type result struct {
		acked      []string // ids answered 200, in order
		unavail    int      // 503 answers
		otherFails []string
	}
	results := make([]result, len(topics))
	phase := make(chan struct{}) // closed: stop publishing
	var wg sync.WaitGroup
	var ackedMu sync.Mutex
	acked := 0
	var unavailTotal atomic.Int64
	for p, topic := range topics {
		wg.Go(func() {
			r := &results[p]
			for i := 0; i < 5000; i++ {
				id := fmt.Sprintf("%c-%d", 'a'+p, i)
				for {
					select {
					case <-phase:
						return
					default:
					}
					code, body := publish(nodes[(i+p)%3], tok, topic, id)
					if code == http.StatusOK {
						r.acked = append(r.acked, id)
						ackedMu.Lock()
						acked++
						ackedMu.Unlock()
						break
					}
					if code == http.StatusServiceUnavailable {
						r.unavail++
						unavailTotal.Add(1)
						time.Sleep(20 * time.Millisecond) // as Retry-After, shortened
						continue
					}
					if code == http.StatusConflict && r.unavail > 0 {
						// Stored although the reply was lost: count it as
						// acknowledged, which it is.
						r.acked = append(r.acked, id)
						ackedMu.Lock()
						acked++
						ackedMu.Unlock()
						break
					}
					r.otherFails = append(r.otherFails, fmt.Sprintf("%s: %d %s", id, code, body))
					break
				}
			}
		})
	}
	waitAcked := func(n int) {
		deadline := time.Now().Add(waitTimeout)
		for {
			ackedMu.Lock()
			got := acked
			ackedMu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d publishes acknowledged after %v; want %d", got, waitTimeout, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAcked(100)

	srv.Stop()
	// During the outage: publishes get 503 with Retry-After, /readyz 503,
	// and the nodes keep serving (/healthz 200).
	code, body := publish(nodes[0], tok, topics[0], "during-outage")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "Retry-After=1") {
		t.Errorf("publish during the outage: %d %s; want 503 with Retry-After", code, body)
	}
	for i, nd := range nodes {
		if got := status(nd, "/readyz"); got != http.StatusServiceUnavailable {
			t.Errorf("node %d /readyz during the outage: %d; want 503", i, got)
		}
		if got := status(nd, "/healthz"); got != http.StatusOK {
			t.Errorf("node %d /healthz during the outage: %d; want 200", i, got)
		}
	}
	// Keep Redis down until the publishers have been refused a few times.
	deadline := time.Now().Add(waitTimeout)
	for unavailTotal.Load() < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("%d publishes refused with 503 after %v; want 20", unavailTotal.Load(), waitTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ackedMu.Lock()
	atStop := acked
	ackedMu.Unlock()

	srv.Relaunch()
	for _, nd := range nodes {
		waitStatus(t, nd, "/readyz", http.StatusOK)
	}
	waitAcked(atStop + 100)
	close(phase)
	wg.Wait()

	unavail := 0
	for p, r := range results {
		for _, f := range r.otherFails {
			t.Errorf("publisher %d: %s", p, f)
		}
		unavail += r.unavail
	}
	if unavail == 0 {
		t.Errorf("no publish got 503 during the outage; want some")
	}
	for i, s := range subs {
		var want []string
		for _, r := range results {
			want = append(want, r.acked...)
		}
		got := s.waitIDs(t, want)
		// Per topic: exactly the acknowledged ids, once, in order.
		for p, r := range results {
			var mine []event
			for _, e := range got {
				if strings.HasPrefix(e.id, fmt.Sprintf("%c-", 'a'+p)) {
					mine = append(mine, e)
				}
			}
			checkExactly(t, fmt.Sprintf("subscriber %d, topic %s", i, topics[p]), mine, r.acked)
		}
		if _, connects := s.received(); connects != 1 {
			t.Errorf("subscriber %d opened %d streams; want 1 (kept its stream through the outage)", i, connects)
		}
		t.Logf("subscriber %d: %d events", i, len(got))
		if testing.Verbose() {
			t.Logf("node %d output:\n%s", i, nodes[i].out)
		}
	}
	t.Logf("acknowledged %d + %d, %d answers 503 during the outage", len(results[0].acked), len(results[1].acked), unavail)
}
