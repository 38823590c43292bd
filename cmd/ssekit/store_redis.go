package main

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/store/redisstream"
)

// redisOpenTimeout bounds connecting to Redis at start.
const redisOpenTimeout = 10 * time.Second

// isRedisURL reports whether --store names a Redis store: redis://,
// rediss://, redis+sentinel://, redis+cluster:// (and their TLS twins).
func isRedisURL(store string) bool {
	scheme, _, ok := strings.Cut(store, "://")
	return ok && (scheme == "redis" || scheme == "rediss" || strings.HasPrefix(scheme, "redis+") || strings.HasPrefix(scheme, "rediss+"))
}

// openRedisStore opens the Redis Streams store --store names, with the
// history flags: --history-size is the stream's MAXLEN ~, --history-age
// its MINID ~ age; --history-bytes has no Redis equivalent (bound Redis
// with maxmemory instead).
func openRedisStore(cfg *serveConfig, log *slog.Logger) (hub.Store, error) {
	if cfg.historyBytes > 0 {
		return nil, usageErrorf("--history-bytes is not supported by the redis store: use --history-size or --history-age")
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisOpenTimeout)
	defer cancel()
	return redisstream.Open(ctx, cfg.store, redisstream.Config{
		HistorySize: cfg.historySize,
		MaxAge:      cfg.historyAge,
		Logger:      log,
	})
}
