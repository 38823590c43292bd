package certnats_test

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/sse/internal/certnats"
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
	ctx := t.Context()

	if _, err := s.Load(ctx, "nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing key: %v; want fs.ErrNotExist", err)
	}
	if _, err := s.Stat(ctx, "nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a missing key: %v; want fs.ErrNotExist", err)
	}
	if _, err := s.List(ctx, "", true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List of an empty bucket: %v; want fs.ErrNotExist", err)
	}
	// Keys as certmagic writes them: '@', ':', '*'-derived and dotted
	// names, none of which a KV key may hold as such.
	stored := []string{
		"certificates/localhost-14000-dir/hub.example.com/hub.example.com.crt",
		"certificates/localhost-14000-dir/hub.example.com/hub.example.com.key",
		"certificates/localhost-14000-dir/wildcard_.example.org/wildcard_.example.org.crt",
		"acme/localhost:14000/users/ops@example.com/ops.json",
	}
	for _, k := range stored {
		if err := s.Store(ctx, k, []byte("v:"+k)); err != nil {
			t.Fatal(err)
		}
	}
	k := stored[0]
	if v, err := s.Load(ctx, k); err != nil || string(v) != "v:"+k {
		t.Errorf("Load: %q, %v", v, err)
	}
	if v, err := s.Load(ctx, stored[3]); err != nil || string(v) != "v:"+stored[3] {
		t.Errorf("Load of a key with '@' and ':': %q, %v", v, err)
	}
	if st, err := s.Stat(ctx, k); err != nil || !st.IsTerminal || st.Size != int64(len("v:"+k)) || time.Since(st.Modified) > time.Minute {
		t.Errorf("Stat of a value: %+v, %v", st, err)
	}
	if st, err := s.Stat(ctx, "certificates/localhost-14000-dir"); err != nil || st.IsTerminal {
		t.Errorf("Stat of a directory: %+v, %v; want a non-terminal key", st, err)
	}
	if !s.Exists(ctx, "certificates") || s.Exists(ctx, "certif") {
		t.Error("Exists: want true for a directory, false for a prefix that is not one")
	}
	got, err := s.List(ctx, "certificates/localhost-14000-dir", false)
	slices.Sort(got)
	if want := []string{"certificates/localhost-14000-dir/hub.example.com", "certificates/localhost-14000-dir/wildcard_.example.org"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("List: %q, %v; want %q", got, err, want)
	}
	got, err = s.List(ctx, "certificates", true)
	if err != nil || len(got) != 3 {
		t.Errorf("recursive List: %q, %v; want the 3 keys", got, err)
	}
	got, err = s.List(ctx, "", false)
	slices.Sort(got)
	if want := []string{"acme", "certificates"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("List of the root: %q, %v; want %q", got, err, want)
	}
	if err := s.Store(ctx, k, []byte("renewed")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Load(ctx, k); err != nil || string(v) != "renewed" {
		t.Errorf("Load after an overwrite: %q, %v", v, err)
	}
	if err := s.Delete(ctx, "certificates/localhost-14000-dir/hub.example.com"); err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, k) || s.Exists(ctx, "certificates/localhost-14000-dir/hub.example.com") || !s.Exists(ctx, stored[2]) {
		t.Error("Delete of a directory: want its keys gone, the others kept")
	}
	if err := s.Store(ctx, "a//b", nil); !errors.Is(err, certnats.ErrBadKey) {
		t.Errorf("Store of a key with an empty segment: %v; want ErrBadKey", err)
	}
}

// TestLock: a second storage (another node) waits for the lock until the
// first unlocks it, also past the TTL while the holder renews it; Unlock
// of a lock not held is refused.
func TestLock(t *testing.T) {
	url := startNATS(t)
	const ttl = 2 * time.Second
	a, _ := newStorage(t, url, ttl)
	b, _ := newStorage(t, url, ttl)
	ctx := t.Context()
	if err := a.Lock(ctx, "issue_cert_hub.example.com"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 2*ttl)
	defer cancel()
	if err := b.Lock(short, "issue_cert_hub.example.com"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second node's Lock while held (and renewed past its TTL): %v; want it to wait (deadline exceeded)", err)
	}
	if err := b.Unlock(ctx, "issue_cert_hub.example.com"); !errors.Is(err, certnats.ErrNotHeld) {
		t.Errorf("Unlock by a node not holding it: %v; want ErrNotHeld", err)
	}
	got := make(chan error, 1)
	go func() { got <- b.Lock(ctx, "issue_cert_hub.example.com") }()
	time.Sleep(100 * time.Millisecond)
	if err := a.Unlock(ctx, "issue_cert_hub.example.com"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second node did not get the lock after the first released it")
	}
	if err := b.Unlock(ctx, "issue_cert_hub.example.com"); err != nil {
		t.Fatal(err)
	}
	// Released: the first node takes it again at once.
	quick, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel2()
	if err := a.Lock(quick, "issue_cert_hub.example.com"); err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
	a.Unlock(ctx, "issue_cert_hub.example.com")
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
