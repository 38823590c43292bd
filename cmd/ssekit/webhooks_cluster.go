package main

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/store/redisstream"
	"github.com/ssekit/sse/webhook"
	"github.com/ssekit/sse/webhook/natsoutbox"
	"github.com/ssekit/sse/webhook/redisoutbox"
)

// webhookCluster is where a cluster's nodes share the webhook outbox of
// update events when the store is shared: in Redis with a redis:// store
// (webhook/redisoutbox, keys under the store's prefix + ":webhooks"), in
// JetStream with nats:// or --cluster (webhook/natsoutbox, buckets and a
// stream named after the hub's stream, with its replicas). Nil (the
// bolt outbox alone) for the other stores. The func closes what it
// opened, after the outbox.
func webhookCluster(ctx context.Context, cfg *serveConfig, store hub.Store) (webhook.Cluster, func(), error) {
	switch {
	case isRedisURL(cfg.store):
		rdb, prefix, err := redisstream.NewClient(cfg.store)
		if err != nil {
			return nil, nil, err
		}
		c, err := redisoutbox.New(rdb, redisoutbox.Config{Prefix: cmp.Or(prefix, redisstream.DefaultPrefix) + ":webhooks"})
		if err != nil {
			rdb.Close()
			return nil, nil, err
		}
		return c, func() { rdb.Close() }, nil
	case isNATSURL(cfg.store) || cfg.nats.cluster:
		js, ok := store.(interface{ JetStream() jetstream.JetStream })
		if !ok {
			return nil, func() {}, nil
		}
		// A cluster starting up may leave a JetStream request unanswered
		// (no meta leader yet): each attempt is bounded, as natsjs.Open's.
		deadline := time.Now().Add(60 * time.Second)
		var (
			c   *natsoutbox.Cluster
			err error
		)
		for {
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			c, err = openNATSOutbox(actx, js.JetStream(), cfg.nats.stream)
			cancel()
			if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("webhook outbox: %w", err)
		}
		return c, func() {}, nil
	}
	return nil, func() {}, nil
}

// openNATSOutbox makes the outbox's buckets and stream, named after the
// hub's stream and with its replicas.
func openNATSOutbox(ctx context.Context, js jetstream.JetStream, stream string) (*natsoutbox.Cluster, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("the hub's stream: %w", err)
	}
	return natsoutbox.New(ctx, js, natsoutbox.Config{Name: stream + "_webhooks", Replicas: st.CachedInfo().Config.Replicas})
}
