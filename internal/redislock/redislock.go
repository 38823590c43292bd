// Package redislock is a lock every node of a cluster sees, in Redis: SET
// NX PX with a random token is the lock, a script renews (and another
// deletes) it only while it still holds the holder's token, and the key's
// expiry frees the lock of a holder that died. Keep it held with
// internal/lease.
package redislock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/sse/internal/lease"
)

// ErrHeld is returned by TryLock while another holder has the lock.
var ErrHeld = errors.New("redislock: held by another holder")

// Locks takes locks in one Redis.
type Locks struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

// New returns locks in rdb that live ttl after their last renewal.
func New(rdb redis.UniversalClient, ttl time.Duration) *Locks { return &Locks{rdb: rdb, ttl: ttl} }

// TTL is how long a lock outlives its holder's last renewal.
func (l *Locks) TTL() time.Duration { return l.ttl }

// TryLock takes the lock at key if no one holds it; ErrHeld if someone
// does.
func (l *Locks) TryLock(ctx context.Context, key string) (*Lock, error) {
	var b [16]byte
	rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	taken := time.Now()
	ok, err := l.rdb.SetNX(ctx, key, token, l.ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("redislock: lock %s: %w", key, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrHeld, key)
	}
	return &Lock{l: l, Key: key, token: token, taken: taken}, nil
}

// Lock waits until it holds the lock at key, trying every poll, or ctx
// ends.
func (l *Locks) Lock(ctx context.Context, key string, poll time.Duration) (*Lock, error) {
	return lease.Wait(ctx, poll, ErrHeld, func(ctx context.Context) (*Lock, error) { return l.TryLock(ctx, key) })
}

// Lock is one held lock.
type Lock struct {
	l *Locks
	// Key is the lock's key: a script that must act only for the holder
	// checks that it still holds Token (so on Redis Cluster the keys it
	// writes need the same hash tag).
	Key   string
	token string
	taken time.Time
}

// Taken is when the request that took the lock was sent: its TTL runs
// from no earlier (lease.Keep's start).
func (k *Lock) Taken() time.Time { return k.taken }

// Token is this holder's random token, the key's value.
func (k *Lock) Token() string { return k.token }

// renewScript extends the lock only if it is still ours.
var renewScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

// unlockScript deletes the lock only if it is still ours.
var unlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// Renew extends the lock by its TTL if this holder still holds it:
// lease.ErrLost when it does not.
func (k *Lock) Renew(ctx context.Context) error {
	n, err := renewScript.Run(ctx, k.l.rdb, []string{k.Key}, k.token, k.l.ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("redislock: renewing %s: %w", k.Key, err)
	}
	if n == 0 {
		return fmt.Errorf("redislock: %s: %w", k.Key, lease.ErrLost)
	}
	return nil
}

// Unlock deletes the lock if this holder still holds it.
func (k *Lock) Unlock(ctx context.Context) error {
	if err := unlockScript.Run(ctx, k.l.rdb, []string{k.Key}, k.token).Err(); err != nil {
		return fmt.Errorf("redislock: unlock %s: %w", k.Key, err)
	}
	return nil
}

var _ lease.Lock = (*Lock)(nil)
