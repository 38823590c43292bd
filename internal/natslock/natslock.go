// Package natslock is a lock every node of a cluster sees, in a NATS
// JetStream key-value bucket with a time to live: Create is the lock (it
// fails while the key exists), renewal is an Update compare-and-set on the
// revision the holder last wrote, and the bucket's TTL drops the entry of
// a holder that died, so another node takes the lock after the TTL. Keep
// it held with internal/lease.
package natslock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/sse/internal/lease"
)

// ErrHeld is returned by TryLock while another holder has the lock.
var ErrHeld = errors.New("natslock: held by another holder")

// Locks is a bucket of locks.
type Locks struct {
	kv  jetstream.KeyValue
	ttl time.Duration
}

// New creates (or updates) the bucket of locks on js: entries live ttl
// after their last write.
func New(ctx context.Context, js jetstream.JetStream, bucket, description string, replicas int, ttl time.Duration) (*Locks, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: description,
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("natslock: bucket %s: %w", bucket, err)
	}
	return &Locks{kv: kv, ttl: ttl}, nil
}

// TTL is how long a lock outlives its holder's last renewal.
func (l *Locks) TTL() time.Duration { return l.ttl }

// TryLock takes the lock key (a KV key) if no one holds it; ErrHeld if
// someone does.
func (l *Locks) TryLock(ctx context.Context, key string) (*Lock, error) {
	var b [16]byte
	rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	taken := time.Now()
	rev, err := l.kv.Create(ctx, key, []byte(token))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("%w: %s", ErrHeld, key)
	}
	if err != nil {
		return nil, fmt.Errorf("natslock: lock %s: %w", key, err)
	}
	return &Lock{l: l, key: key, token: token, taken: taken, rev: rev}, nil
}

// Lock waits until it holds the lock key, trying every poll, or ctx ends.
func (l *Locks) Lock(ctx context.Context, key string, poll time.Duration) (*Lock, error) {
	return lease.Wait(ctx, poll, ErrHeld, func(ctx context.Context) (*Lock, error) { return l.TryLock(ctx, key) })
}

// Lock is one held lock.
type Lock struct {
	l          *Locks
	key, token string
	taken      time.Time

	mu  sync.Mutex
	rev uint64 // the revision this holder last wrote; guarded by mu
}

// Taken is when the request that took the lock was sent: its TTL runs
// from no earlier (lease.Keep's start).
func (k *Lock) Taken() time.Time { return k.taken }

// Token is this holder's random token, the entry's value.
func (k *Lock) Token() string { return k.token }

// Renew rewrites the entry, only if it is still the one this holder
// wrote (compare-and-set on its revision): lease.ErrLost when another
// holder has it, or it expired.
func (k *Lock) Renew(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	rev, err := k.l.kv.Update(ctx, k.key, []byte(k.token), k.rev)
	if err != nil {
		if lost(err) {
			return fmt.Errorf("natslock: %s: %w", k.key, lease.ErrLost)
		}
		return fmt.Errorf("natslock: renewing %s: %w", k.key, err)
	}
	k.rev = rev
	return nil
}

// Unlock deletes the entry, if it is still the one this holder wrote.
func (k *Lock) Unlock(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	err := k.l.kv.Delete(ctx, k.key, jetstream.LastRevision(k.rev))
	if err != nil && !lost(err) {
		return fmt.Errorf("natslock: unlock %s: %w", k.key, err)
	}
	return nil
}

func lost(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) ||
		errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
}

var _ lease.Lock = (*Lock)(nil)
