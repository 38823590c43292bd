package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/jwtauth"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/store/bolt"
)

// BenchmarkPublishHTTP drives the publish handler directly (no network:
// httptest.NewRecorder) from 128 goroutines, as the "publishes with no
// subscribers" load test does, with a memory store and a bolt store in
// t.TempDir(). ns/op and allocs/op are per publish, the request's own
// construction included; the bolt figures include the group commit's
// fdatasync, shared by the appends waiting at that moment.
func BenchmarkPublishHTTP(b *testing.B) {
	for _, kind := range []string{"memory", "bolt"} {
		b.Run(kind, func(b *testing.B) {
			var store hub.Store
			if kind == "bolt" {
				s, err := bolt.Open(filepath.Join(b.TempDir(), "hub.db"), bolt.Config{})
				if err != nil {
					b.Fatal(err)
				}
				store = s
			} else {
				store = hub.NewMemoryStore(hub.MemoryStoreConfig{})
			}
			srv, token := benchServer(b, store)
			body := "topic=" + strings.Repeat("t", 20) + "&data=" + strings.Repeat("x", 100)
			target := "http://127.0.0.1/.well-known/mercure"
			var failed atomic.Int64
			b.SetParallelism(max(1, 128/benchProcs()))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("Authorization", "Bearer "+token)
					w := httptest.NewRecorder()
					srv.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						failed.Add(1)
					}
				}
			})
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d publishes failed", n)
			}
		})
	}
}

// benchProcs is GOMAXPROCS: RunParallel starts that many goroutines
// times the parallelism.
func benchProcs() int { return runtime.GOMAXPROCS(0) }

// benchServer returns a server over a hub on store and a token that may
// publish anywhere; everything is closed when b ends.
func benchServer(b *testing.B, store hub.Store) (*server.Server, string) {
	b.Helper()
	key, err := jwtauth.NewKey("HS256", []byte(testSecret))
	if err != nil {
		b.Fatal(err)
	}
	auth, err := jwtauth.New(jwtauth.Config{PublisherKey: key})
	if err != nil {
		b.Fatal(err)
	}
	h, err := hub.New(hub.Config{Store: store})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(server.Config{Hub: h, Auth: auth, Heartbeat: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	token, err := jwtauth.Sign(key, hub.Claims{Publish: []string{"*"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		h.Shutdown(ctx)
		store.Close(context.Background())
	})
	return srv, token
}
