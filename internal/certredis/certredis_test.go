package certredis_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/sse/internal/certredis"
	"github.com/ssekit/sse/internal/certstoragetest"
	"github.com/ssekit/sse/internal/redistest"
)

func newStorage(t *testing.T, addr string) *certredis.Storage {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	return certredis.New(rdb, "test:certs")
}

func TestStorage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	certstoragetest.Storage(t, newStorage(t, srv.Addr))
}

// TestLock: the suite's lock checks (the lock's TTL is a minute: the wait
// is shorter, renewal is not what this checks).
func TestLock(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	certstoragetest.Lock(t, newStorage(t, srv.Addr), newStorage(t, srv.Addr), 300*time.Millisecond, certredis.ErrNotHeld)
}
