package authhook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Hook's counters; nil fields when not registered.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	drops    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{}
	if reg == nil {
		return m, nil
	}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ssekit_auth_hook_requests_total",
		Help: "Requests decided by the auth hook, by action and outcome (granted, refused, cached_granted, cached_refused, error, timeout, busy).",
	}, []string{"action", "outcome"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ssekit_auth_hook_duration_seconds",
		Help:    "Time the application took to answer the auth hook.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"action"})
	m.drops = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ssekit_auth_hook_grants_dropped_total",
		Help: "Grants in the application's answers beyond what the configuration allows (topics, payloads), dropped.",
	}, []string{"action"})
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.drops} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) outcome(action, outcome string) {
	if m.requests != nil {
		m.requests.WithLabelValues(action, outcome).Inc()
	}
}

func (m *metrics) observe(action string, d time.Duration) {
	if m.duration != nil {
		m.duration.WithLabelValues(action).Observe(d.Seconds())
	}
}

func (m *metrics) dropped(action string, n int) {
	if m.drops != nil && n > 0 {
		m.drops.WithLabelValues(action).Add(float64(n))
	}
}
