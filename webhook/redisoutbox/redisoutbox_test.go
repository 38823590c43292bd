package redisoutbox_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/sse/internal/redistest"
	"github.com/ssekit/sse/store/redisstream"
	"github.com/ssekit/sse/webhook/outboxtest"
	"github.com/ssekit/sse/webhook/redisoutbox"
)

// TestCluster: the suite over one real redis-server, each node with its
// own connections (a store and the outbox's), cut to kill it.
func TestCluster(t *testing.T) {
	outboxtest.Run(t, func(t *testing.T, i int, opts outboxtest.Options) outboxtest.Node {
		srv := redisOf(t)
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
		srdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
		st, err := redisstream.New(t.Context(), srdb, redisstream.Config{Prefix: "t:" + t.Name(), HistorySize: opts.HistorySize})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close(context.Background()); srdb.Close(); rdb.Close() })
		c, err := redisoutbox.New(rdb, redisoutbox.Config{Prefix: "t:" + t.Name() + ":webhooks", TTL: opts.TTL})
		if err != nil {
			t.Fatal(err)
		}
		return outboxtest.Node{Store: st, Cluster: c, Kill: func() { rdb.Close() }}
	})
}

// servers are the tests' redis-servers, one per (sub)test.
var servers = map[string]*redistest.Server{}

func redisOf(t *testing.T) *redistest.Server {
	if s, ok := servers[t.Name()]; ok {
		return s
	}
	s := redistest.Start(t, redistest.Options{})
	servers[t.Name()] = s
	return s
}
