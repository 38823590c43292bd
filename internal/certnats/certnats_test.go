package certnats_test

import (
	"context"
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/sse/internal/certnats"
	"github.com/ssekit/sse/internal/certstoragetest"
	"github.com/ssekit/sse/store/natsjs/natsnode"
)

// startNATS runs an embedded nats-server with JetStream in t.TempDir().
func startNATS(t *testing.T) string {
	t.Helper()
	n, err := natsnode.Start(natsnode.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Shutdown)
	return n.ClientURL()
}

// newStorage is one node's storage, on a connection of its own; closing
// the connection is that node dying.
func newStorage(t *testing.T, url string, ttl time.Duration) (*certnats.Storage, *nats.Conn) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := certnats.New(t.Context(), js, certnats.Config{Bucket: "test_certs", LockTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return s, nc
}

func TestStorage(t *testing.T) {
	s, _ := newStorage(t, startNATS(t), 0)
	if _, err := s.List(t.Context(), "", true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List of an empty bucket: %v; want fs.ErrNotExist", err)
	}
	certstoragetest.Storage(t, s)
	if err := s.Store(t.Context(), "a//b", nil); !errors.Is(err, certnats.ErrBadKey) {
		t.Errorf("Store of a key with an empty segment: %v; want ErrBadKey", err)
	}
}

// TestLock: the suite's lock checks, with a wait past the TTL (the holder
// renews the lock).
func TestLock(t *testing.T) {
	url := startNATS(t)
	const ttl = 2 * time.Second
	a, _ := newStorage(t, url, ttl)
	b, _ := newStorage(t, url, ttl)
	certstoragetest.Lock(t, a, b, 2*ttl, certnats.ErrNotHeld)
}

// TestLockOfADeadHolder: a node that dies holding the lock (its
// connection gone, no renewal) frees it once the TTL has passed.
func TestLockOfADeadHolder(t *testing.T) {
	url := startNATS(t)
	const ttl = 2 * time.Second
	a, nc := newStorage(t, url, ttl)
	b, _ := newStorage(t, url, ttl)
	ctx := t.Context()
	if err := a.Lock(ctx, "issue_cert_dead"); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	waitCtx, cancel := context.WithTimeout(ctx, 10*ttl)
	defer cancel()
	if err := b.Lock(waitCtx, "issue_cert_dead"); err != nil {
		t.Fatalf("Lock after the holder died: %v; want it free after the TTL", err)
	}
	if err := b.Unlock(ctx, "issue_cert_dead"); err != nil {
		t.Fatal(err)
	}
}
