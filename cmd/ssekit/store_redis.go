package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

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
	// go-redis reports every failed dial on its own logger; the store
	// reports an outage once, so its messages go to debug.
	redis.SetLogger(redisLogger{log})
	ctx, cancel := context.WithTimeout(context.Background(), redisOpenTimeout)
	defer cancel()
	return redisstream.Open(ctx, cfg.store, redisstream.Config{
		HistorySize: cfg.historySize,
		MaxAge:      cfg.historyAge,
		Logger:      log,
	})
}

// redisLogger sends go-redis's own messages to the hub's logger at debug
// level.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if l.log.Enabled(ctx, slog.LevelDebug) {
		l.log.DebugContext(ctx, "redis: "+strings.TrimSpace(fmt.Sprintf(format, v...)))
	}
}
