package certredis_test

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/sse/internal/certredis"
	"github.com/ssekit/sse/internal/redistest"
)

func newStorage(t *testing.T, addr string) *certredis.Storage {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	return certredis.New(rdb, "test:certs")
}

func TestStorage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStorage(t, srv.Addr)
	ctx := t.Context()

	if _, err := s.Load(ctx, "nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing key: %v; want fs.ErrNotExist", err)
	}
	if _, err := s.Stat(ctx, "nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a missing key: %v; want fs.ErrNotExist", err)
	}
	for _, k := range []string{"certificates/ca/hub.example.com/hub.example.com.crt", "certificates/ca/hub.example.com/hub.example.com.key", "certificates/ca/other.example/other.example.crt", "acme/ca/users/ops/ops.json"} {
		if err := s.Store(ctx, k, []byte("v:"+k)); err != nil {
			t.Fatal(err)
		}
	}
	k := "certificates/ca/hub.example.com/hub.example.com.crt"
	if v, err := s.Load(ctx, k); err != nil || string(v) != "v:"+k {
		t.Errorf("Load: %q, %v", v, err)
	}
	if st, err := s.Stat(ctx, k); err != nil || !st.IsTerminal || st.Size != int64(len("v:"+k)) || time.Since(st.Modified) > time.Minute {
		t.Errorf("Stat of a value: %+v, %v", st, err)
	}
	if st, err := s.Stat(ctx, "certificates/ca"); err != nil || st.IsTerminal {
		t.Errorf("Stat of a directory: %+v, %v; want a non-terminal key", st, err)
	}
	if !s.Exists(ctx, "certificates") || s.Exists(ctx, "certif") {
		t.Error("Exists: want true for a directory, false for a prefix that is not one")
	}
	got, err := s.List(ctx, "certificates/ca", false)
	if want := []string{"certificates/ca/hub.example.com", "certificates/ca/other.example"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("List: %q, %v; want %q", got, err, want)
	}
	got, err = s.List(ctx, "certificates", true)
	if err != nil || len(got) != 3 {
		t.Errorf("recursive List: %q, %v; want the 3 keys", got, err)
	}
	if err := s.Delete(ctx, "certificates/ca/hub.example.com"); err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, k) || !s.Exists(ctx, "certificates/ca/other.example/other.example.crt") {
		t.Error("Delete of a directory: want its keys gone, the others kept")
	}
}

// TestLock: a second storage (another node) waits for the lock until the
// first unlocks it; Unlock of a lock not held is refused.
func TestLock(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a, b := newStorage(t, srv.Addr), newStorage(t, srv.Addr)
	ctx := t.Context()
	if err := a.Lock(ctx, "issue_cert_hub"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := b.Lock(short, "issue_cert_hub"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second node's Lock while held: %v; want it to wait (deadline exceeded)", err)
	}
	if err := b.Unlock(ctx, "issue_cert_hub"); !errors.Is(err, certredis.ErrNotHeld) {
		t.Errorf("Unlock by a node not holding it: %v; want ErrNotHeld", err)
	}
	got := make(chan error, 1)
	go func() { got <- b.Lock(ctx, "issue_cert_hub") }()
	time.Sleep(100 * time.Millisecond)
	if err := a.Unlock(ctx, "issue_cert_hub"); err != nil {
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
	if err := b.Unlock(ctx, "issue_cert_hub"); err != nil {
		t.Fatal(err)
	}
}
