package webhook

import "github.com/prometheus/client_golang/prometheus"

// metrics are the outbox's; registered only with a Registerer.
type metrics struct {
	deliveries *prometheus.CounterVec // endpoint, result
	dead       *prometheus.CounterVec // endpoint, reason
	queued     *prometheus.GaugeVec   // endpoint
	gaps       prometheus.Counter
	leases     *prometheus.GaugeVec // endpoint: 1 while this node delivers it for the cluster
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssekit_webhook_deliveries_total", Help: "Webhook delivery attempts by endpoint and result (ok, failed)."}, []string{"endpoint", "result"}),
		dead:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssekit_webhook_dead_letters_total", Help: "Webhook events dead-lettered, by endpoint and reason (attempts, overflow)."}, []string{"endpoint", "reason"}),
		queued:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ssekit_webhook_pending", Help: "Webhook events queued per endpoint."}, []string{"endpoint"}),
		gaps:       prometheus.NewCounter(prometheus.CounterOpts{Name: "ssekit_webhook_history_gaps_total", Help: "Times the outbox's cursor had left the store's history (events lost)."}),
		leases:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ssekit_webhook_lease_held", Help: "1 while this node holds the endpoint's lease and delivers its updates for the cluster."}, []string{"endpoint"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.deliveries, m.dead, m.queued, m.gaps, m.leases} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) pending(endpoint string, n int) { m.queued.WithLabelValues(endpoint).Set(float64(n)) }
