// Package lease keeps a lock of a shared store (internal/natslock,
// internal/redislock) held: it renews the lock every third of its time to
// live and says, by this process's own monotonic clock, whether the lock
// is still known to be held. A holder that was paused (SIGSTOP, a long GC,
// a partition) past its lease finds Valid false when it resumes, before
// any renewal answers, so it stops acting as the holder at once.
//
// It imports only the standard library: the backends implement Lock.
package lease

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrLost is returned (wrapped) by a backend's Renew when another holder
// took the lock, or it expired and was deleted.
var ErrLost = errors.New("lease: lost")

// Lock is one lock held in a shared store.
type Lock interface {
	// Renew extends the lock by its TTL, only if this holder still holds
	// it: ErrLost (wrapped) when it does not.
	Renew(ctx context.Context) error
	// Unlock releases it, only if this holder still holds it.
	Unlock(ctx context.Context) error
}

// Keeper renews one Lock until Stop.
type Keeper struct {
	lock   Lock
	ttl    time.Duration
	lost   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	until time.Time // valid until; guarded by mu
	once  sync.Once
}

// Keep starts renewing lock, taken at taken (the time just before the
// request that took it was sent) with a time to live ttl. It is valid
// until taken + 2/3 of ttl, and each renewal that succeeds moves that to
// 2/3 of ttl after the renewal was sent: the last third is the margin
// for a clock that runs slower than the store's.
func Keep(lock Lock, ttl time.Duration, taken time.Time) *Keeper {
	ctx, cancel := context.WithCancel(context.Background())
	k := &Keeper{lock: lock, ttl: ttl, lost: make(chan struct{}), cancel: cancel, done: make(chan struct{}), until: taken.Add(ttl * 2 / 3)}
	go k.run(ctx)
	return k
}

func (k *Keeper) run(ctx context.Context) {
	defer close(k.done)
	t := time.NewTicker(k.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !k.Valid() {
			k.markLost()
			return
		}
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, k.ttl/3)
		err := k.lock.Renew(rctx)
		cancel()
		switch {
		case err == nil:
			k.mu.Lock()
			k.until = sent.Add(k.ttl * 2 / 3)
			k.mu.Unlock()
		case errors.Is(err, ErrLost):
			k.markLost()
			return
		}
		// Another error (the store unreachable): try again at the next
		// tick, until the lease runs out by the local clock.
	}
}

func (k *Keeper) markLost() { k.once.Do(func() { close(k.lost) }) }

// Valid reports whether the lock is still known to be held.
func (k *Keeper) Valid() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return time.Now().Before(k.until)
}

// Lost is closed when the lock is lost: another holder has it, or no
// renewal succeeded in time.
func (k *Keeper) Lost() <-chan struct{} { return k.lost }

// Stop ends the renewals and releases the lock (if still held); ctx
// bounds the release.
func (k *Keeper) Stop(ctx context.Context) error {
	k.cancel()
	<-k.done // no renewal racing the release
	k.markLost()
	return k.lock.Unlock(ctx)
}

// Wait calls try every poll until it returns anything but an error
// wrapping held (the backend's "someone else holds it"), or ctx ends: how
// natslock and redislock wait for a lock.
func Wait[L any](ctx context.Context, poll time.Duration, held error, try func(context.Context) (L, error)) (L, error) {
	for {
		k, err := try(ctx)
		if !errors.Is(err, held) {
			return k, err
		}
		select {
		case <-ctx.Done():
			var zero L
			return zero, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// Held is the leases one holder keeps, by name, between a Lock and its
// Unlock (certmagic's storages take and release locks by name). The zero
// value is ready for concurrent use.
type Held struct {
	mu    sync.Mutex
	byKey map[string]*Keeper
}

// Add records k as the lease on name. One already there (the lock taken
// again without an Unlock) is stopped.
func (h *Held) Add(ctx context.Context, name string, k *Keeper) {
	h.mu.Lock()
	if h.byKey == nil {
		h.byKey = make(map[string]*Keeper)
	}
	old, ok := h.byKey[name]
	h.byKey[name] = k
	h.mu.Unlock()
	if ok {
		old.Stop(ctx)
	}
}

// Release stops the lease on name and forgets it; ok is false when none
// was held. The stop is outside the lock: it waits on the store.
func (h *Held) Release(ctx context.Context, name string) (ok bool, err error) {
	h.mu.Lock()
	k, ok := h.byKey[name]
	delete(h.byKey, name)
	h.mu.Unlock()
	if !ok {
		return false, nil
	}
	return true, k.Stop(ctx)
}
