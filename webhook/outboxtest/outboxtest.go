// Package outboxtest is the conformance suite of a webhook.Cluster: hub
// nodes sharing a real backend (an embedded NATS cluster, a real
// redis-server), each with its own webhook.Outbox, against a real HTTP
// receiver. Run it from the implementation's tests with Run.
package outboxtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/webhook"
)

// Node is one hub node: its store and cluster outbox on a backend shared
// with the suite's other nodes.
type Node struct {
	Store   hub.Store
	Cluster webhook.Cluster
	// Kill makes the node die as with kill -9: its connections to the
	// backend are cut, nothing is released.
	Kill func()
}

// Options are a node's.
type Options struct {
	// TTL is the leases' time to live.
	TTL time.Duration
	// HistorySize, when set, bounds the store's history (at least that
	// many kept, as the store's own option says).
	HistorySize int
}

// NewNode makes node i of a cluster (every call of one test shares one
// backend); the node's cleanup is registered with t.
type NewNode func(t testing.TB, i int, opts Options) Node

// TTL is the leases' time to live in the suite.
const TTL = 1500 * time.Millisecond

const wait = 60 * time.Second

var secret = []byte("0123456789abcdef-webhook-cluster")

// Run runs the suite.
func Run(t *testing.T, newNode NewNode) {
	t.Run("OncePerIDAcrossNodes", func(t *testing.T) { testOncePerID(t, newNode) })
	t.Run("TakeoverWhenTheHolderDies", func(t *testing.T) { testTakeover(t, newNode) })
	t.Run("FencedOldHolder", func(t *testing.T) { testFencing(t, newNode) })
	t.Run("DownEndpointBlocksNoOther", func(t *testing.T) { testDownEndpoint(t, newNode) })
	t.Run("DeadLettersReplayedFromAnyNode", func(t *testing.T) { testReplay(t, newNode) })
	t.Run("GapCountedOnTakeover", func(t *testing.T) { testGap(t, newNode) })
	t.Run("SubscriptionEventsFromEachNode", func(t *testing.T) { testSubscriptions(t, newNode) })
}

// Receiver is the application's endpoint: it verifies each delivery and
// counts each update id.
type Receiver struct {
	mu     sync.Mutex
	order  []string // every accepted delivery's update id, duplicates too
	subs   []string // the subscription events' ids
	seen   map[string]int
	status atomic.Int64 // when non-zero, answer it
	bad    atomic.Int64
}

func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	var ev webhook.Event
	if err := json.Unmarshal(body, &ev); err == nil && ev.Subscription != nil && ev.ID == r.Header.Get(webhook.HeaderID) {
		rc.mu.Lock()
		rc.subs = append(rc.subs, ev.ID)
		rc.mu.Unlock()
		return
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.Update == nil || ev.ID != r.Header.Get(webhook.HeaderID) || ev.ID != "update:"+ev.Update.ID {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.seen == nil {
		rc.seen = map[string]int{}
	}
	rc.seen[ev.Update.ID]++
	rc.order = append(rc.order, ev.Update.ID)
}

// distinct is how many distinct ids were accepted.
func (rc *Receiver) distinct() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.seen)
}

// check fails t unless want were all received, in order by first
// delivery, and (once) only once each; a duplicate is allowed only as a
// re-delivery of an id already received, and what it re-delivers goes on
// in order.
func (rc *Receiver) check(t *testing.T, want []string, once bool) {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var first, dups []string
	for _, id := range rc.order {
		if !contains(first, id) {
			first = append(first, id)
		} else {
			dups = append(dups, id)
		}
	}
	dup := len(dups)
	if strings.Join(first, ",") != strings.Join(want, ",") {
		t.Fatalf("received %d distinct updates %v…; want %d in order", len(first), head(first), len(want))
	}
	if once && dup > 0 {
		t.Fatalf("%d duplicate deliveries in steady state; want none", dup)
	}
	if rc.bad.Load() > 0 {
		t.Fatalf("%d deliveries with a bad signature", rc.bad.Load())
	}
	t.Logf("%d updates received, %d duplicates (same ids): %v", len(first), dup, head(dups))
}

func contains(s []string, id string) bool {
	for _, x := range s {
		if x == id {
			return true
		}
	}
	return false
}

func head(s []string) []string { return s[:min(len(s), 5)] }

// node is a Node with its outbox running.
type node struct {
	Node
	outbox *webhook.Outbox
	reg    *prometheus.Registry
	holds  atomic.Int64 // leases this node took
	ready  atomic.Int64 // leases it committed a cursor under
	held   atomic.Int64 // leases it holds now (taken, not unlocked)
	killed atomic.Bool
}

// watch is a Cluster that counts the leases its node takes.
type watch struct {
	webhook.Cluster
	n *node
}

func (w watch) Acquire(ctx context.Context, ep string) (webhook.Lease, error) {
	l, err := w.Cluster.Acquire(ctx, ep)
	if err != nil {
		return nil, err
	}
	w.n.holds.Add(1)
	w.n.held.Add(1)
	return &watchedLease{Lease: l, n: w.n}, nil
}

// watchedLease marks its node ready at its first commit (a new
// endpoint's: the stream's end, before which nothing is delivered).
type watchedLease struct {
	webhook.Lease
	n    *node
	once sync.Once
}

func (l *watchedLease) Commit(ctx context.Context, p webhook.Position) error {
	err := l.Lease.Commit(ctx, p)
	if err == nil {
		l.once.Do(func() { l.n.ready.Add(1) })
	}
	return err
}

func (l *watchedLease) Unlock(ctx context.Context) error {
	l.n.held.Add(-1)
	return l.Lease.Unlock(ctx)
}

// ready waits until n endpoints have a holder that committed.
func ready(t testing.TB, nodes []*node, n int64) {
	t.Helper()
	poll.Until(t, "the endpoints' holders", wait, func() bool {
		var sum int64
		for _, nd := range nodes {
			sum += nd.ready.Load()
		}
		return sum >= n
	})
}

func start(t testing.TB, newNode NewNode, count int, opts Options, eps []webhook.Endpoint, mod func(*webhook.Config)) []*node {
	t.Helper()
	var nodes []*node
	opts.TTL = TTL
	for i := range count {
		n := &node{Node: newNode(t, i, opts), reg: prometheus.NewRegistry()}
		cfg := webhook.Config{
			Path: filepath.Join(t.TempDir(), "webhooks.db"), Store: n.Store, Endpoints: eps,
			Cluster: watch{n.Cluster, n}, Registerer: n.reg,
			MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Poll: 50 * time.Millisecond,
		}
		if mod != nil {
			mod(&cfg)
		}
		o, err := webhook.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		n.outbox = o
		t.Cleanup(func() { o.Close() })
		nodes = append(nodes, n)
	}
	return nodes
}

// holder waits until exactly one live node holds the (single) endpoint
// and has committed its cursor under a lease.
func holder(t testing.TB, nodes []*node) *node {
	t.Helper()
	var h *node
	poll.Until(t, "a lease holder", wait, func() bool {
		h = nil
		count := 0
		for _, n := range nodes {
			if n.held.Load() > 0 && n.ready.Load() > 0 && !n.killed.Load() {
				h = n
				count++
			}
		}
		return count == 1
	})
	return h
}

func endpoint(name, url string) webhook.Endpoint {
	return webhook.Endpoint{Name: name, URL: url, Secrets: [][]byte{secret}}
}

// publish appends the updates in turn on each node's store.
func publish(t testing.TB, nodes []*node, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%04d", prefix, i)
		var live []*node
		for _, nd := range nodes {
			if !nd.killed.Load() {
				live = append(live, nd)
			}
		}
		nd := live[i%len(live)]
		if err := nd.Store.Append(t.Context(), &hub.Update{ID: id, Topics: []string{"https://example.com/t"}, Data: "d"}); err != nil {
			t.Fatal(err)
		}
		for _, x := range live {
			x.outbox.Notify()
		}
		ids = append(ids, id)
	}
	return ids
}

func server(t testing.TB, rc *Receiver) *httptest.Server {
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return srv
}

// testOncePerID: three nodes, one receiver: every update exactly once,
// in order, whichever node it was published on.
func testOncePerID(t *testing.T, newNode NewNode) {
	rc := &Receiver{}
	nodes := start(t, newNode, 3, Options{}, []webhook.Endpoint{endpoint("app", server(t, rc).URL)}, nil)
	holder(t, nodes)
	want := publish(t, nodes, "once", 300)
	poll.Until(t, "every update received", wait, func() bool { return rc.distinct() >= len(want) })
	time.Sleep(4 * nodes[0].Cluster.TTL() / 3) // what a second deliverer would send, it would have sent by now
	rc.check(t, want, true)
	holders := 0
	for _, n := range nodes {
		if n.holds.Load() > 0 {
			holders++
		}
	}
	if holders != 1 {
		t.Fatalf("%d nodes took the lease; want 1 (nobody died)", holders)
	}
}

// testTakeover: the holder dies with undelivered events (the receiver
// was down); another node takes over and delivers all, in order.
func testTakeover(t *testing.T, newNode NewNode) {
	rc := &Receiver{}
	rc.status.Store(http.StatusServiceUnavailable)
	nodes := start(t, newNode, 3, Options{}, []webhook.Endpoint{endpoint("app", server(t, rc).URL)}, nil)
	old := holder(t, nodes)
	rc.status.Store(0)
	want := publish(t, nodes, "before", 100)
	poll.Until(t, "some delivered", wait, func() bool { return rc.distinct() >= 20 })
	rc.status.Store(http.StatusServiceUnavailable) // the rest pending at the holder
	old.killed.Store(true)
	died := time.Now()
	old.Kill()
	old.outbox.Close()
	want = append(want, publish(t, nodes, "after", 50)...)
	rc.status.Store(0)
	next := holder(t, nodes)
	poll.Until(t, "every update received after the takeover", wait, func() bool { return rc.distinct() >= len(want) })
	t.Logf("took over and caught up %v after the holder died (TTL %v)", time.Since(died).Round(time.Millisecond), TTL)
	rc.check(t, want, false)
	if next == old {
		t.Fatal("the dead node still holds the lease")
	}
	var holds []int64
	for _, n := range nodes {
		holds = append(holds, n.holds.Load())
	}
	t.Logf("leases taken per node: %v", holds)
}

// testFencing: a holder that lost its lease (paused past the TTL) can no
// longer move the cursor, nor renew; the new holder's cursor stands.
func testFencing(t *testing.T, newNode NewNode) {
	a, b := newNode(t, 0, Options{TTL: TTL}), newNode(t, 1, Options{TTL: TTL})
	ctx := t.Context()
	la, err := a.Cluster.Acquire(ctx, "fenced")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := la.Cursor(); ok {
		t.Fatal("a new endpoint has a cursor")
	}
	if _, err := b.Cluster.Acquire(ctx, "fenced"); !errors.Is(err, webhook.ErrLeaseHeld) {
		t.Fatalf("Acquire while held: %v; want ErrLeaseHeld", err)
	}
	p1 := webhook.Position{Seq: 10, ID: "u10"}
	if err := la.Commit(ctx, p1); err != nil {
		t.Fatal(err)
	}
	// a pauses: no renewal. b takes the endpoint once the lease expired.
	var lb webhook.Lease
	poll.Until(t, "b taking the expired lease", wait, func() bool {
		lb, err = b.Cluster.Acquire(ctx, "fenced")
		return err == nil
	})
	if p, ok := lb.Cursor(); !ok || p != p1 {
		t.Fatalf("b's cursor %v %v; want %v", p, ok, p1)
	}
	if err := la.Commit(ctx, webhook.Position{Seq: 20, ID: "u20"}); !errors.Is(err, webhook.ErrLeaseLost) {
		t.Fatalf("the old holder's commit forward: %v; want ErrLeaseLost", err)
	}
	if err := la.Commit(ctx, webhook.Position{Seq: 5, ID: "u5"}); !errors.Is(err, webhook.ErrLeaseLost) {
		t.Fatalf("the old holder's commit backwards: %v; want ErrLeaseLost", err)
	}
	if err := la.Renew(ctx); !errors.Is(err, webhook.ErrLeaseLost) {
		t.Fatalf("the old holder's renewal: %v; want ErrLeaseLost", err)
	}
	if err := la.Dead(ctx, []byte(`{"id":"x"}`)); err != nil && !errors.Is(err, webhook.ErrLeaseLost) {
		t.Fatalf("the old holder's dead letter: %v", err)
	}
	p3 := webhook.Position{Seq: 30, ID: "u30"}
	if err := lb.Commit(ctx, p3); err != nil {
		t.Fatalf("the new holder's commit: %v", err)
	}
	la.Unlock(ctx) // must not free b's lease
	if _, err := a.Cluster.Acquire(ctx, "fenced"); !errors.Is(err, webhook.ErrLeaseHeld) {
		t.Fatalf("Acquire after the old holder's unlock: %v; want ErrLeaseHeld (b holds it)", err)
	}
	if err := lb.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	var lc webhook.Lease
	// A read may come from a replica that has not seen the unlock yet
	// (NATS KV's direct gets): the deliverers try again every third of
	// the TTL, so does this.
	poll.Until(t, "a taking the lease after b's unlock", wait, func() bool {
		lc, err = a.Cluster.Acquire(ctx, "fenced")
		return err == nil
	})
	if p, _ := lc.Cursor(); p != p3 {
		t.Fatalf("cursor %v; want the new holder's %v", p, p3)
	}
	lc.Unlock(ctx)
}

// testDownEndpoint: an endpoint down for the whole test delays neither
// another endpoint nor publishing.
func testDownEndpoint(t *testing.T, newNode NewNode) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + ln.Addr().String() + "/hook"
	ln.Close() // refused from now on
	rc := &Receiver{}
	nodes := start(t, newNode, 3, Options{}, []webhook.Endpoint{endpoint("down", downURL), endpoint("up", server(t, rc).URL)}, nil)
	ready(t, nodes, 2)
	want := publish(t, nodes, "both", 200)
	poll.Until(t, "the up endpoint's updates", wait, func() bool { return rc.distinct() >= len(want) })
	rc.check(t, want, true)
	q, dead, err := nodes[0].outbox.Counts("down")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("down endpoint: %d queued, %d dead", q, dead)
}

// testReplay: dead letters are in the shared store: counted and
// replayed from a node that does not hold the endpoint, delivered by the
// one that does.
func testReplay(t *testing.T, newNode NewNode) {
	rc := &Receiver{}
	rc.status.Store(http.StatusInternalServerError)
	nodes := start(t, newNode, 2, Options{}, []webhook.Endpoint{endpoint("app", server(t, rc).URL)}, func(c *webhook.Config) { c.MaxAttempts = 2 })
	h := holder(t, nodes)
	want := publish(t, nodes, "dead", 10)
	other := nodes[0]
	if other == h {
		other = nodes[1]
	}
	poll.Until(t, "every event dead-lettered", wait, func() bool {
		_, dead, err := other.outbox.Counts("app")
		return err == nil && dead == len(want)
	})
	rc.status.Store(0)
	n, left, err := other.outbox.ReplayN("app", 4)
	if err != nil || n != 4 || left != len(want)-4 {
		t.Fatalf("ReplayN(4) = %d, %d, %v; want 4, %d", n, left, err, len(want)-4)
	}
	if n, left, err = other.outbox.ReplayN("app", webhook.MaxReplay); err != nil || n != len(want)-4 || left != 0 {
		t.Fatalf("ReplayN(rest) = %d, %d, %v; want %d, 0", n, left, err, len(want)-4)
	}
	poll.Until(t, "the replayed events", wait, func() bool { return rc.distinct() >= len(want) })
	rc.check(t, want, true)
	poll.Until(t, "an empty replay queue", wait, func() bool {
		q, dead, err := other.outbox.Counts("app")
		return err == nil && q == 0 && dead == 0
	})
	if _, _, err := other.outbox.ReplayN("nope", 1); !errors.Is(err, webhook.ErrNoEndpoint) {
		t.Fatalf("ReplayN of an unknown endpoint: %v; want ErrNoEndpoint", err)
	}
}

// testGap: the holder dies with the receiver down, and the history is
// trimmed past its cursor before another node takes over: the node
// taking over counts the gap, and delivers what is left, in order.
func testGap(t *testing.T, newNode NewNode) {
	rc := &Receiver{}
	nodes := start(t, newNode, 2, Options{HistorySize: 20}, []webhook.Endpoint{endpoint("app", server(t, rc).URL)}, nil)
	old := holder(t, nodes)
	first := publish(t, nodes, "seen", 5)
	poll.Until(t, "the first updates", wait, func() bool { return rc.distinct() >= len(first) })
	rc.status.Store(http.StatusServiceUnavailable)
	old.killed.Store(true)
	old.Kill()
	old.outbox.Close()
	next := nodes[0]
	if next == old {
		next = nodes[1]
	}
	publish(t, nodes, "trimmed", 500)
	rc.status.Store(0)
	gaps := func() float64 { return counter(next.reg, "ssekit_webhook_history_gaps_total") }
	poll.Until(t, "the gap counted by the node taking over", wait, func() bool { return gaps() == 1 })
	want := publish(t, nodes, "later", 3)
	poll.Until(t, "the updates after the gap", wait, func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return rc.seen[want[len(want)-1]] > 0
	})
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, id := range first {
		if rc.seen[id] != 1 {
			t.Errorf("%s received %d times; want once (before the gap)", id, rc.seen[id])
		}
	}
	if n := len(rc.seen); n > len(first)+500+len(want) {
		t.Errorf("%d distinct updates; want at most what was published", n)
	}
}

func escape(s string) string { return url.QueryEscape(s) }

// counter sums the metric name's counters in reg.
func counter(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// testSubscriptions: subscription events are each node's own (not in
// the shared stream): each node delivers those of its subscribers from
// its own file, once, while updates go through the cluster outbox.
func testSubscriptions(t *testing.T, newNode NewNode) {
	rc := &Receiver{}
	ep := endpoint("app", server(t, rc).URL)
	ep.Subscriptions = true
	nodes := start(t, newNode, 2, Options{}, []webhook.Endpoint{ep}, nil)
	holder(t, nodes)
	var want []string
	for i, n := range nodes {
		h, err := hub.New(hub.Config{Store: n.Store, SubscriptionEvents: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Shutdown(context.Background()) })
		if err := n.outbox.WatchSubscriptions(t.Context(), h); err != nil {
			t.Fatal(err)
		}
		sub, _, err := h.Subscribe(t.Context(), hub.SubscribeRequest{Selectors: []string{fmt.Sprint("room", i)}, Notify: func() {}})
		if err != nil {
			t.Fatal(err)
		}
		sid := "/.well-known/mercure/subscriptions/room" + fmt.Sprint(i) + "/" + escape(sub.ID())
		want = append(want, "subscription:"+sid+":started", "subscription:"+sid+":ended")
		sub.Close()
	}
	ids := publish(t, nodes, "subs", 10)
	poll.Until(t, "the updates and subscription events", wait, func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return len(rc.subs) >= len(want) && len(rc.seen) >= len(ids)
	})
	time.Sleep(TTL / 2) // a duplicate would have come by now
	rc.check(t, ids, true)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	got := append([]string(nil), rc.subs...)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("subscription events %v; want each once: %v", got, want)
	}
}

// BenchPublish measures publishes/s through three nodes' stores (8
// publishers, appends spread over the nodes), with cluster webhooks off
// and on (one endpoint answering 204, delivered by its lease holder).
func BenchPublish(b *testing.B, newNode NewNode) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("webhooks=%v", map[bool]string{false: "off", true: "on"}[on]), func(b *testing.B) {
			var delivered atomic.Int64
			app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				delivered.Add(1)
				w.WriteHeader(http.StatusNoContent)
			}))
			b.Cleanup(app.Close)
			var nodes []*node
			if on {
				nodes = start(b, newNode, 3, Options{}, []webhook.Endpoint{endpoint("app", app.URL)}, nil)
				holder(b, nodes)
			} else {
				for i := range 3 {
					nodes = append(nodes, &node{Node: newNode(b, i, Options{TTL: TTL})})
				}
			}
			var n atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					nd := nodes[i%3]
					if err := nd.Store.Append(context.Background(), &hub.Update{ID: fmt.Sprint("b-", i), Topics: []string{"t"}, Data: "0123456789abcdef0123456789abcdef"}); err != nil {
						b.Error(err)
						return
					}
					if nd.outbox != nil {
						nd.outbox.Notify()
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "publishes/s")
			if on {
				poll.Until(b, "every update delivered", 5*time.Minute, func() bool { return delivered.Load() >= int64(b.N) })
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "delivered/s")
			}
		})
	}
}

// BenchTakeover measures, with leases of ttl, the time from the death of
// an endpoint's holder (1,000 events pending: the receiver was down)
// until the receiver, up again at once, has them all from another node.
func BenchTakeover(b *testing.B, newNode NewNode, ttl time.Duration) {
	for b.Loop() {
		b.StopTimer()
		rc := &Receiver{}
		rc.status.Store(http.StatusServiceUnavailable)
		var nodes []*node
		for i := range 3 {
			n := &node{Node: newNode(b, i, Options{TTL: ttl}), reg: prometheus.NewRegistry()}
			o, err := webhook.Open(webhook.Config{Path: filepath.Join(b.TempDir(), "webhooks.db"), Store: n.Store,
				Endpoints: []webhook.Endpoint{endpoint("app", server(b, rc).URL)}, Cluster: watch{n.Cluster, n},
				MinBackoff: 100 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, MaxAttempts: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			o.Run(context.Background())
			n.outbox = o
			b.Cleanup(func() { o.Close() })
			nodes = append(nodes, n)
		}
		old := holder(b, nodes)
		want := publish(b, nodes, "pending", 1000)
		time.Sleep(300 * time.Millisecond)
		rc.status.Store(0)
		b.StartTimer()
		start := time.Now()
		old.killed.Store(true)
		old.Kill()
		poll.Until(b, "every update delivered after the takeover", 5*time.Minute, func() bool { return rc.distinct() >= len(want) })
		b.ReportMetric(time.Since(start).Seconds(), "s-to-deliver-after-kill")
		b.StopTimer()
		old.outbox.Close()
		b.StartTimer()
	}
}
