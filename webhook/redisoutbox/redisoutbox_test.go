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

// newNode makes hub nodes on one real redis-server per (sub)test or
// benchmark, each with its own connections (a store and the outbox's);
// cutting the outbox's kills the node.
func newNode() outboxtest.NewNode {
	servers := map[string]*redistest.Server{}
	return func(t testing.TB, i int, opts outboxtest.Options) outboxtest.Node {
		srv, ok := servers[t.Name()]
		if !ok {
			srv = redistest.Start(t, redistest.Options{})
			servers[t.Name()] = srv
		}
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
	}
}

// TestCluster: the suite over a real redis-server.
func TestCluster(t *testing.T) { outboxtest.Run(t, newNode()) }

func BenchmarkPublish(b *testing.B) { outboxtest.BenchPublish(b, newNode()) }

// BenchmarkTakeover is with the default lease (10 s).
func BenchmarkTakeover(b *testing.B) {
	outboxtest.BenchTakeover(b, newNode(), redisoutbox.DefaultTTL)
}
