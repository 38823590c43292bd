package redisstream_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/hub/hubtest"
	"github.com/ssekit/sse/internal/redistest"
	"github.com/ssekit/sse/store/redisstream"
)

// TestStore runs the hub's Store contract against a real redis-server; each
// store gets a prefix of its own, so it starts empty.
func TestStore(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	var n atomic.Int64
	hubtest.RunStoreTests(t, func(t *testing.T) hub.Store {
		url := fmt.Sprintf("%s?prefix=conformance-%d", srv.URL(), n.Add(1))
		s, err := redisstream.Open(context.Background(), url, redisstream.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func BenchmarkStore(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	var n atomic.Int64
	hubtest.BenchmarkStore(b, func(b *testing.B) hub.Store {
		url := fmt.Sprintf("%s?prefix=bench-%d", srv.URL(), n.Add(1))
		s, err := redisstream.Open(context.Background(), url, redisstream.Config{})
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}

func TestStoreRetention(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	var n atomic.Int64
	hubtest.RunRetentionTests(t, func(t *testing.T) hub.Store {
		url := fmt.Sprintf("%s?prefix=retention-%d", srv.URL(), n.Add(1))
		s, err := redisstream.Open(context.Background(), url, redisstream.Config{Block: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
