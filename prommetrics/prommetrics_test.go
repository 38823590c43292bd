package prommetrics_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/prommetrics"
)

func newMetrics(t *testing.T) (*prommetrics.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m, err := prommetrics.New(reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m, reg
}

func families(t *testing.T, g prometheus.Gatherer) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return len(mfs)
}

func compare(t *testing.T, reg prometheus.Gatherer, want string, names ...string) {
	t.Helper()
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

func TestStartsAtZero(t *testing.T) {
	_, reg := newMetrics(t)
	compare(t, reg, `
# HELP ssekit_subscribers_disconnected_total Subscribers disconnected, by reason: slow (queue full), gone (client left), auth (token expired), shutdown, other.
# TYPE ssekit_subscribers_disconnected_total counter
ssekit_subscribers_disconnected_total{reason="auth"} 0
ssekit_subscribers_disconnected_total{reason="gone"} 0
ssekit_subscribers_disconnected_total{reason="other"} 0
ssekit_subscribers_disconnected_total{reason="shutdown"} 0
ssekit_subscribers_disconnected_total{reason="slow"} 0
# HELP ssekit_replays_total Subscribers that asked to resume, by whether their Last-Event-ID was in the history (hit) or not (miss).
# TYPE ssekit_replays_total counter
ssekit_replays_total{result="hit"} 0
ssekit_replays_total{result="miss"} 0
`, "ssekit_subscribers_disconnected_total", "ssekit_replays_total")
}

func TestSubscribers(t *testing.T) {
	tests := []struct {
		name       string
		connect    int
		disconnect []string
		want       string
	}{
		{
			name:    "connected",
			connect: 3,
			want: `
ssekit_subscribers 3
ssekit_subscribers_connected_total 3
ssekit_subscribers_disconnected_total{reason="auth"} 0
ssekit_subscribers_disconnected_total{reason="gone"} 0
ssekit_subscribers_disconnected_total{reason="other"} 0
ssekit_subscribers_disconnected_total{reason="shutdown"} 0
ssekit_subscribers_disconnected_total{reason="slow"} 0
`,
		},
		{
			name:       "every reason",
			connect:    6,
			disconnect: []string{hub.DisconnectSlow, hub.DisconnectSlow, hub.DisconnectGone, hub.DisconnectAuth, hub.DisconnectShutdown},
			want: `
ssekit_subscribers 1
ssekit_subscribers_connected_total 6
ssekit_subscribers_disconnected_total{reason="auth"} 1
ssekit_subscribers_disconnected_total{reason="gone"} 1
ssekit_subscribers_disconnected_total{reason="other"} 0
ssekit_subscribers_disconnected_total{reason="shutdown"} 1
ssekit_subscribers_disconnected_total{reason="slow"} 2
`,
		},
		{
			name:       "unknown reasons are other",
			connect:    2,
			disconnect: []string{"cosmic-ray", ""},
			want: `
ssekit_subscribers 0
ssekit_subscribers_connected_total 2
ssekit_subscribers_disconnected_total{reason="auth"} 0
ssekit_subscribers_disconnected_total{reason="gone"} 0
ssekit_subscribers_disconnected_total{reason="other"} 2
ssekit_subscribers_disconnected_total{reason="shutdown"} 0
ssekit_subscribers_disconnected_total{reason="slow"} 0
`,
		},
	}
	header := `
# HELP ssekit_subscribers Subscribers connected now.
# TYPE ssekit_subscribers gauge
# HELP ssekit_subscribers_connected_total Subscribers ever connected.
# TYPE ssekit_subscribers_connected_total counter
# HELP ssekit_subscribers_disconnected_total Subscribers disconnected, by reason: slow (queue full), gone (client left), auth (token expired), shutdown, other.
# TYPE ssekit_subscribers_disconnected_total counter
`
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, reg := newMetrics(t)
			for range tt.connect {
				m.SubscriberConnected()
			}
			for _, r := range tt.disconnect {
				m.SubscriberDisconnected(r)
			}
			compare(t, reg, header+tt.want,
				"ssekit_subscribers", "ssekit_subscribers_connected_total", "ssekit_subscribers_disconnected_total")
		})
	}
}

func TestPublished(t *testing.T) {
	m, reg := newMetrics(t)
	for _, d := range []time.Duration{10 * time.Microsecond, time.Millisecond, time.Minute} {
		m.Published(d)
	}
	compare(t, reg, `
# HELP ssekit_publish_duration_seconds Time the hub took to accept an update (validation and store append); the count is the updates published.
# TYPE ssekit_publish_duration_seconds histogram
ssekit_publish_duration_seconds_bucket{le="5e-05"} 1
ssekit_publish_duration_seconds_bucket{le="0.0002"} 1
ssekit_publish_duration_seconds_bucket{le="0.0008"} 1
ssekit_publish_duration_seconds_bucket{le="0.0032"} 2
ssekit_publish_duration_seconds_bucket{le="0.0128"} 2
ssekit_publish_duration_seconds_bucket{le="0.0512"} 2
ssekit_publish_duration_seconds_bucket{le="0.2048"} 2
ssekit_publish_duration_seconds_bucket{le="0.8192"} 2
ssekit_publish_duration_seconds_bucket{le="3.2768"} 2
ssekit_publish_duration_seconds_bucket{le="+Inf"} 3
ssekit_publish_duration_seconds_sum 60.00101
ssekit_publish_duration_seconds_count 3
`, "ssekit_publish_duration_seconds")
}

func TestDelivered(t *testing.T) {
	m, reg := newMetrics(t)
	for _, n := range []int{0, 1, 5, 500, -3} {
		m.Delivered(n)
	}
	compare(t, reg, `
# HELP ssekit_deliveries_total Copies of updates queued for subscribers.
# TYPE ssekit_deliveries_total counter
ssekit_deliveries_total 506
# HELP ssekit_fanout_subscribers Subscribers each fanned-out update was queued for.
# TYPE ssekit_fanout_subscribers histogram
ssekit_fanout_subscribers_bucket{le="0"} 2
ssekit_fanout_subscribers_bucket{le="1"} 3
ssekit_fanout_subscribers_bucket{le="10"} 4
ssekit_fanout_subscribers_bucket{le="100"} 4
ssekit_fanout_subscribers_bucket{le="1000"} 5
ssekit_fanout_subscribers_bucket{le="10000"} 5
ssekit_fanout_subscribers_bucket{le="100000"} 5
ssekit_fanout_subscribers_bucket{le="+Inf"} 5
ssekit_fanout_subscribers_sum 506
ssekit_fanout_subscribers_count 5
`, "ssekit_deliveries_total", "ssekit_fanout_subscribers")
}

func TestReplayAndQueueDepth(t *testing.T) {
	m, reg := newMetrics(t)
	m.Replay(true)
	m.Replay(true)
	m.Replay(false)
	for _, n := range []int{1, 3, 2000} {
		m.QueueDepth(n)
	}
	compare(t, reg, `
# HELP ssekit_replays_total Subscribers that asked to resume, by whether their Last-Event-ID was in the history (hit) or not (miss).
# TYPE ssekit_replays_total counter
ssekit_replays_total{result="hit"} 2
ssekit_replays_total{result="miss"} 1
# HELP ssekit_queue_depth Events a subscriber had queued when it drained them; near the queue size means close to a slow disconnect.
# TYPE ssekit_queue_depth histogram
ssekit_queue_depth_bucket{le="1"} 1
ssekit_queue_depth_bucket{le="2"} 1
ssekit_queue_depth_bucket{le="4"} 2
ssekit_queue_depth_bucket{le="8"} 2
ssekit_queue_depth_bucket{le="16"} 2
ssekit_queue_depth_bucket{le="32"} 2
ssekit_queue_depth_bucket{le="64"} 2
ssekit_queue_depth_bucket{le="128"} 2
ssekit_queue_depth_bucket{le="256"} 2
ssekit_queue_depth_bucket{le="512"} 2
ssekit_queue_depth_bucket{le="1024"} 2
ssekit_queue_depth_bucket{le="+Inf"} 3
ssekit_queue_depth_sum 2004
ssekit_queue_depth_count 3
`, "ssekit_replays_total", "ssekit_queue_depth")
}

// TestQueueWaitFromHub: a hub given these metrics observes, when a
// subscriber drains, how long its oldest event waited since the fan-out
// (here at least the 30 ms the test held it), once per drain.
func TestQueueWaitFromHub(t *testing.T) {
	m, reg := newMetrics(t)
	h, err := hub.New(hub.Config{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	queued := make(chan struct{}, 1)
	sub, _, err := h.Subscribe(context.Background(), hub.SubscribeRequest{
		Selectors: []string{"wait"},
		Notify:    func() { queued <- struct{}{} },
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := h.Publish(context.Background(), &hub.Update{Topics: []string{"wait"}, Data: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	<-queued
	const held = 30 * time.Millisecond
	time.Sleep(held)
	if b, err := sub.Drain(nil); err != nil || len(b) == 0 {
		t.Fatalf("Drain = %q, %v; want the two updates", b, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ssekit_queue_wait_seconds" {
			continue
		}
		hist := mf.GetMetric()[0].GetHistogram()
		if hist.GetSampleCount() != 1 {
			t.Errorf("%d waits observed; want 1 (one drain)", hist.GetSampleCount())
		}
		if got := hist.GetSampleSum(); got < held.Seconds() || got > 10 {
			t.Errorf("observed a wait of %.4fs; want at least %v", got, held)
		}
		return
	}
	t.Fatal("no ssekit_queue_wait_seconds in the registry")
}

// TestNamesAndLint checks every metric is ssekit_-prefixed and passes
// promlint (units in names, _total on counters, help text).
func TestNamesAndLint(t *testing.T) {
	m, reg := newMetrics(t)
	m.SubscriberConnected()
	m.Published(time.Millisecond)
	m.Delivered(1)
	m.QueueDepth(1)
	m.QueueWait(time.Millisecond)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 9 {
		t.Errorf("got %d metric families; want 9", len(mfs))
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "ssekit_") {
			t.Errorf("got metric %s; want the ssekit_ prefix", mf.GetName())
		}
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := prommetrics.New(reg); err != nil {
		t.Fatal(err)
	}
	_, err := prommetrics.New(reg)
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Fatalf("second New on one registry: got %v; want AlreadyRegisteredError", err)
	}
	if n := families(t, reg); n != 9 {
		t.Errorf("got %d metric families after the failed New; want the first New's 9", n)
	}
}

// TestTwoHubs registers two hubs on one registry, told apart by a label.
func TestTwoHubs(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	var ms []*prommetrics.Metrics
	for _, name := range []string{"a", "b"} {
		m, err := prommetrics.New(prometheus.WrapRegistererWith(prometheus.Labels{"hub": name}, reg))
		if err != nil {
			t.Fatalf("hub %s: %v", name, err)
		}
		ms = append(ms, m)
	}
	ms[1].SubscriberConnected()
	compare(t, reg, `
# HELP ssekit_subscribers Subscribers connected now.
# TYPE ssekit_subscribers gauge
ssekit_subscribers{hub="a"} 0
ssekit_subscribers{hub="b"} 1
`, "ssekit_subscribers")
}

// TestFailedNewRegistersNothing: a clash on a later collector must not
// leave the earlier ones registered.
func TestFailedNewRegistersNothing(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "ssekit_queue_depth", Help: "clash"}))
	if _, err := prommetrics.New(reg); err == nil {
		t.Fatal("got nil; want a registration error")
	}
	if n := families(t, reg); n != 1 {
		t.Errorf("got %d metric families; want only the clashing one", n)
	}
}

func TestNilRegisterer(t *testing.T) {
	m, err := prommetrics.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	m.SubscriberConnected()
	m.SubscriberDisconnected(hub.DisconnectGone)
}

// TestConcurrent runs under -race: the hub calls from many goroutines.
func TestConcurrent(t *testing.T) {
	m, reg := newMetrics(t)
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range each {
				m.SubscriberConnected()
				m.Published(time.Microsecond)
				m.Delivered(2)
				m.Replay(i%2 == 0)
				m.QueueDepth(i % 7)
				m.SubscriberDisconnected(hub.DisconnectSlow)
			}
		})
	}
	wg.Wait()
	compare(t, reg, `
# HELP ssekit_subscribers Subscribers connected now.
# TYPE ssekit_subscribers gauge
ssekit_subscribers 0
# HELP ssekit_subscribers_connected_total Subscribers ever connected.
# TYPE ssekit_subscribers_connected_total counter
ssekit_subscribers_connected_total 1600
# HELP ssekit_deliveries_total Copies of updates queued for subscribers.
# TYPE ssekit_deliveries_total counter
ssekit_deliveries_total 3200
`, "ssekit_subscribers", "ssekit_subscribers_connected_total", "ssekit_deliveries_total")
}

// TestScrape serves the registry over HTTP as /metrics will and scrapes it.
func TestScrape(t *testing.T) {
	m, reg := newMetrics(t)
	m.SubscriberConnected()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	err := testutil.ScrapeAndCompare(srv.URL, strings.NewReader(`
# HELP ssekit_subscribers Subscribers connected now.
# TYPE ssekit_subscribers gauge
ssekit_subscribers 1
`), "ssekit_subscribers")
	if err != nil {
		t.Error(err)
	}
}
