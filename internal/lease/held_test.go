package lease

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// countingLock is a Lock in no store: it counts its releases.
type countingLock struct {
	unlocks   atomic.Int32
	unlockErr error
}

func (l *countingLock) Renew(context.Context) error { return nil }
func (l *countingLock) Unlock(context.Context) error {
	l.unlocks.Add(1)
	return l.unlockErr
}

func TestHeld(t *testing.T) {
	ctx := t.Context()
	var h Held
	if ok, err := h.Release(ctx, "a"); ok || err != nil {
		t.Fatalf("Release of nothing = %v, %v; want false, nil", ok, err)
	}

	first, second := &countingLock{}, &countingLock{unlockErr: errors.New("store gone")}
	h.Add(ctx, "a", Keep(first, time.Minute, time.Now()))
	h.Add(ctx, "a", Keep(second, time.Minute, time.Now())) // taken again: the first is let go
	if n := first.unlocks.Load(); n != 1 {
		t.Fatalf("the replaced lease was released %d times; want 1", n)
	}

	ok, err := h.Release(ctx, "a")
	if !ok || err == nil || err.Error() != "store gone" {
		t.Fatalf("Release = %v, %v; want true and the store's error", ok, err)
	}
	if n := second.unlocks.Load(); n != 1 {
		t.Fatalf("the held lease was released %d times; want 1", n)
	}
	if ok, _ := h.Release(ctx, "a"); ok {
		t.Fatal("a second Release found the lease still held")
	}
}
