// Package certstoragetest is the conformance suite every certmagic.Storage
// of the hub runs (internal/certnats, internal/certredis): what certmagic
// expects of a storage shared by the nodes of a cluster, checked on the
// real server behind it.
package certstoragetest

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// Storage stores, loads, stats, lists and deletes keys as certmagic writes
// them ('@', ':' and dots included) in an empty s.
func Storage(t *testing.T, s certmagic.Storage) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.Load(ctx, "nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing key: %v; want fs.ErrNotExist", err)
	}
	if _, err := s.Stat(ctx, "nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a missing key: %v; want fs.ErrNotExist", err)
	}
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
}

// Lock checks two nodes' storages a and b over one server: b waits for a
// lock a holds (for longer than wait, which should pass the lock's TTL so
// that renewal is what keeps it), b's Unlock of it is refused with
// notHeld, b gets it once a unlocks, and a gets it again at once after b
// unlocks.
func Lock(t *testing.T, a, b certmagic.Storage, wait time.Duration, notHeld error) {
	t.Helper()
	ctx := t.Context()
	const name = "issue_cert_hub.example.com"
	if err := a.Lock(ctx, name); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := b.Lock(short, name); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second node's Lock while held: %v; want it to wait (deadline exceeded)", err)
	}
	if err := b.Unlock(ctx, name); !errors.Is(err, notHeld) {
		t.Errorf("Unlock by a node not holding it: %v; want %v", err, notHeld)
	}
	got := make(chan error, 1)
	go func() { got <- b.Lock(ctx, name) }()
	time.Sleep(100 * time.Millisecond)
	if err := a.Unlock(ctx, name); err != nil {
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
	if err := b.Unlock(ctx, name); err != nil {
		t.Fatal(err)
	}
	quick, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel2()
	if err := a.Lock(quick, name); err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
	if err := a.Unlock(ctx, name); err != nil {
		t.Fatal(err)
	}
}
