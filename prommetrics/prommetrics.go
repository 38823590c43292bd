// Package prommetrics reports the hub's measurements (hub.Metrics) to
// Prometheus. Every metric is named ssekit_…; they are registered with the
// prometheus.Registerer given to New, never with a global one unless the
// caller passes prometheus.DefaultRegisterer.
//
// The metrics:
//
//	ssekit_subscribers                             gauge      subscribers connected now
//	ssekit_subscribers_connected_total             counter    subscribers ever connected
//	ssekit_subscribers_disconnected_total{reason}  counter    by reason: slow, gone, auth, shutdown, other
//	ssekit_publish_duration_seconds                histogram  time Publish took; its _count is the updates published
//	ssekit_deliveries_total                        counter    update copies queued for subscribers
//	ssekit_fanout_subscribers                      histogram  subscribers each update was queued for
//	ssekit_replays_total{result}                   counter    resumes whose Last-Event-ID was found (hit) or not (miss)
//	ssekit_queue_depth                             histogram  events a subscriber had queued when it drained them
//	ssekit_queue_wait_seconds                      histogram  how long the oldest of them had waited since its fan-out
package prommetrics

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ssekit/sse/hub"
)

// Metrics implements hub.Metrics with Prometheus collectors. Its methods
// are safe for concurrent use and do not block: each is a few atomic
// operations.
type Metrics struct {
	subscribers  prometheus.Gauge
	connected    prometheus.Counter
	disconnected map[string]prometheus.Counter // by reason; fixed after New
	otherReason  prometheus.Counter
	publish      prometheus.Histogram
	deliveries   prometheus.Counter
	fanout       prometheus.Histogram
	replayHit    prometheus.Counter
	replayMiss   prometheus.Counter
	queueDepth   prometheus.Histogram
	queueWait    prometheus.Histogram
}

// reasons are the disconnect reasons the hub defines. Any other reason is
// counted as "other", so that a label value never comes from outside this
// list and the metric's cardinality stays fixed.
var reasons = []string{hub.DisconnectSlow, hub.DisconnectGone, hub.DisconnectAuth, hub.DisconnectShutdown}

// New creates the collectors and registers them with reg. Every disconnect
// reason and replay result starts at zero, so that dashboards and alerts
// see the series before the first event. A nil reg registers nothing (the
// collectors still count, as promauto.With(nil) does). It fails when reg
// already holds ssekit_ metrics, for example from a second hub, and then
// registers nothing: give each hub its own registry, or register every
// hub through prometheus.WrapRegistererWith with a distinguishing label.
func New(reg prometheus.Registerer) (*Metrics, error) {
	disconnected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ssekit_subscribers_disconnected_total",
		Help: "Subscribers disconnected, by reason: slow (queue full), gone (client left), auth (token expired), shutdown, other.",
	}, []string{"reason"})
	replays := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ssekit_replays_total",
		Help: "Subscribers that asked to resume, by whether their Last-Event-ID was in the history (hit) or not (miss).",
	}, []string{"result"})
	m := &Metrics{
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ssekit_subscribers",
			Help: "Subscribers connected now.",
		}),
		connected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ssekit_subscribers_connected_total",
			Help: "Subscribers ever connected.",
		}),
		disconnected: make(map[string]prometheus.Counter, len(reasons)),
		otherReason:  disconnected.WithLabelValues("other"),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ssekit_publish_duration_seconds",
			Help: "Time the hub took to accept an update (validation and store append); the count is the updates published.",
			// 50µs (memory store) to about 3s (a slow disk or cluster).
			Buckets: prometheus.ExponentialBuckets(50e-6, 4, 9),
		}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ssekit_deliveries_total",
			Help: "Copies of updates queued for subscribers.",
		}),
		fanout: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ssekit_fanout_subscribers",
			Help:    "Subscribers each fanned-out update was queued for.",
			Buckets: []float64{0, 1, 10, 100, 1000, 10000, 100000},
		}),
		replayHit:  replays.WithLabelValues("hit"),
		replayMiss: replays.WithLabelValues("miss"),
		queueDepth: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ssekit_queue_depth",
			Help:    "Events a subscriber had queued when it drained them; near the queue size means close to a slow disconnect.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 … 1024
		}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ssekit_queue_wait_seconds",
			Help: "How long the oldest event a subscriber drained had waited since its fan-out began: the hub's own share of delivery latency (writers behind the fan-out).",
			// 100µs to 5s: writers keeping up (well under a millisecond
			// per hundred subscribers) to a hub far behind.
			Buckets: []float64{100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 20e-3, 50e-3, 100e-3, 250e-3, 1, 5},
		}),
	}
	for _, r := range reasons {
		m.disconnected[r] = disconnected.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	cs := []prometheus.Collector{
		m.subscribers, m.connected, disconnected, m.publish,
		m.deliveries, m.fanout, replays, m.queueDepth, m.queueWait,
	}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] { // all or nothing
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("prommetrics: %w", err)
		}
	}
	return m, nil
}

// SubscriberConnected counts a new subscriber.
func (m *Metrics) SubscriberConnected() {
	m.connected.Inc()
	m.subscribers.Inc()
}

// SubscriberDisconnected counts a subscriber's end by reason.
func (m *Metrics) SubscriberDisconnected(reason string) {
	m.subscribers.Dec()
	if c, ok := m.disconnected[reason]; ok {
		c.Inc()
		return
	}
	m.otherReason.Inc()
}

// Published observes the time an accepted publish took.
func (m *Metrics) Published(latency time.Duration) {
	m.publish.Observe(latency.Seconds())
}

// Delivered counts one fanned-out update queued for n subscribers.
func (m *Metrics) Delivered(n int) {
	n = max(n, 0) // a negative Add would panic in the fan-out path
	m.deliveries.Add(float64(n))
	m.fanout.Observe(float64(n))
}

// Replay counts a resume request by whether its ID was found.
func (m *Metrics) Replay(hit bool) {
	if hit {
		m.replayHit.Inc()
	} else {
		m.replayMiss.Inc()
	}
}

// QueueDepth observes a subscriber's queue length at drain time.
func (m *Metrics) QueueDepth(n int) {
	m.queueDepth.Observe(float64(n))
}

// QueueWait observes how long a drained queue's oldest event had waited.
func (m *Metrics) QueueWait(d time.Duration) {
	m.queueWait.Observe(d.Seconds())
}

var _ hub.QueueWaitMetrics = (*Metrics)(nil)
