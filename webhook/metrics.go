package webhook

import "github.com/prometheus/client_golang/prometheus"

// metrics are the outbox's; registered only with a Registerer.
type metrics struct {
	deliveries *prometheus.CounterVec // endpoint, result
	dead       *prometheus.CounterVec // endpoint, reason
	queued     *prometheus.GaugeVec   // endpoint
	gaps       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssekit_webhook_deliveries_total", Help: "Webhook delivery attempts by endpoint and result (ok, failed)."}, []string{"endpoint", "result"}),
		dead:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssekit_webhook_dead_letters_total", Help: "Webhook events dead-lettered, by endpoint and reason (attempts, overflow)."}, []string{"endpoint", "reason"}),
		queued:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ssekit_webhook_pending", Help: "Webhook events queued per endpoint."}, []string{"endpoint"}),
		gaps:       prometheus.NewCounter(prometheus.CounterOpts{Name: "ssekit_webhook_history_gaps_total", Help: "Times the outbox's cursor had left the store's history (events lost)."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.deliveries, m.dead, m.queued, m.gaps} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) pending(endpoint string, n int) { m.queued.WithLabelValues(endpoint).Set(float64(n)) }
