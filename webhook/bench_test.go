package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/store/bolt"
	"github.com/ssekit/sse/webhook"
)

// BenchmarkPublish is durable publishing (bolt, 8 publishers at once)
// with and without a webhook endpoint receiving every update.
func BenchmarkPublish(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "webhooks=off"
		if on {
			name = "webhooks=on"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			store, err := bolt.Open(filepath.Join(dir, "hub.db"), bolt.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close(context.Background())
			var delivered atomic.Int64
			app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				delivered.Add(1)
				w.WriteHeader(http.StatusNoContent)
			}))
			defer app.Close()
			var o *webhook.Outbox
			if on {
				o, err = webhook.Open(webhook.Config{Path: filepath.Join(dir, "webhooks.db"), Store: store,
					Endpoints: []webhook.Endpoint{{Name: "app", URL: app.URL, Secrets: [][]byte{secret}}}})
				if err != nil {
					b.Fatal(err)
				}
				if err := o.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
				defer o.Close()
			}
			h, err := hub.New(hub.Config{Store: store})
			if err != nil {
				b.Fatal(err)
			}
			defer h.Shutdown(context.Background())
			var n atomic.Int64
			b.SetParallelism(4)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := "u" + strconv.FormatInt(n.Add(1), 10)
					if _, err := h.Publish(context.Background(), &hub.Update{ID: id, Topics: []string{"t"}, Data: "0123456789abcdef0123456789abcdef"}); err != nil {
						b.Error(err)
						return
					}
					if o != nil {
						o.Notify()
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "publishes/s")
		})
	}
}

// BenchmarkRecovery100k is the time a restarted outbox takes to deliver
// 100,000 pending events to a receiver answering at once.
func BenchmarkRecovery100k(b *testing.B) {
	const pending = 100_000
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		store := hub.NewMemoryStore(hub.MemoryStoreConfig{MaxUpdates: pending})
		var up atomic.Bool
		var got atomic.Int64
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !up.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			got.Add(1)
			w.WriteHeader(http.StatusNoContent)
		}))
		cfg := webhook.Config{Path: filepath.Join(dir, "webhooks.db"), Store: store, MinBackoff: time.Hour, MaxAttempts: 1 << 30,
			Endpoints: []webhook.Endpoint{{Name: "app", URL: app.URL, Secrets: [][]byte{secret}}}}
		o, err := webhook.Open(cfg)
		if err != nil {
			b.Fatal(err)
		}
		o.Run(context.Background())
		h, _ := hub.New(hub.Config{Store: store})
		for i := range pending {
			h.Publish(context.Background(), &hub.Update{ID: "u" + strconv.Itoa(i), Topics: []string{"t"}, Data: "0123456789abcdef"})
		}
		o.Notify()
		poll.Until(b, "100,000 queued", 5*time.Minute, func() bool { q, _, _ := o.Counts("app"); return q == pending })
		o.Close()
		up.Store(true)

		b.StartTimer()
		start := time.Now()
		o, err = webhook.Open(cfg)
		if err != nil {
			b.Fatal(err)
		}
		o.Run(context.Background())
		poll.Until(b, "100,000 delivered", 10*time.Minute, func() bool { return got.Load() >= pending })
		b.ReportMetric(time.Since(start).Seconds(), "s-to-deliver-100k")
		b.StopTimer()
		o.Close()
		h.Shutdown(context.Background())
		app.Close()
		b.StartTimer()
	}
}
