// Package certredis keeps certmagic's certificates, keys, ACME account and
// challenge tokens in Redis, with a lock every node sees: hubs of a
// cluster on a Redis store share their certificates, one of them orders
// each one while the others wait and load it, and any node answers a
// challenge another node started.
//
// Layout, under a prefix: "{PREFIX}:v:KEY" is a hash (value, modified),
// "{PREFIX}:keys" a sorted set of every key (for listing by prefix), and
// "{PREFIX}:lock:NAME" a lock: a random token with a time to live, renewed
// while held, so a holder that dies frees it after lockTTL.
package certredis

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"

	"github.com/ssekit/sse/internal/lease"
	"github.com/ssekit/sse/internal/redislock"
)

// Errors of this package.
var (
	ErrNotHeld = errors.New("certredis: lock not held by this storage")
)

// Lock timing: a held lock lives lockTTL (internal/redislock) and is
// renewed every third of it (internal/lease); a waiting Lock tries again
// every lockPoll.
const (
	lockTTL  = 60 * time.Second
	lockPoll = 500 * time.Millisecond
)

// Storage is a certmagic.Storage in Redis. Its methods are safe for
// concurrent use.
type Storage struct {
	rdb    redis.UniversalClient
	prefix string
	locks  *redislock.Locks

	held  lease.Held
	clock func() time.Time
}

// New keeps the certificates in rdb under prefix (e.g. "ssekit:certs").
// The prefix is a hash tag ("{ssekit:certs}:…"), so on Redis Cluster
// every key is in one slot and a Store stays one transaction.
func New(rdb redis.UniversalClient, prefix string) *Storage {
	return &Storage{rdb: rdb, prefix: "{" + prefix + "}", locks: redislock.New(rdb, lockTTL), clock: time.Now}
}

func (s *Storage) valueKey(key string) string { return s.prefix + ":v:" + key }
func (s *Storage) indexKey() string           { return s.prefix + ":keys" }
func (s *Storage) lockKey(name string) string { return s.prefix + ":lock:" + name }

// Store writes value at key.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.valueKey(key), "value", value, "modified", s.clock().UnixNano())
		p.ZAdd(ctx, s.indexKey(), redis.Z{Member: key})
		return nil
	})
	if err != nil {
		return fmt.Errorf("certredis: storing %s: %w", key, err)
	}
	return nil
}

// Load reads key, fs.ErrNotExist when there is none.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	v, err := s.rdb.HGet(ctx, s.valueKey(key), "value").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fs.ErrNotExist
	}
	if err != nil {
		return nil, fmt.Errorf("certredis: loading %s: %w", key, err)
	}
	return v, nil
}

// Delete removes key and, as a directory, everything under it.
func (s *Storage) Delete(ctx context.Context, key string) error {
	keys, err := s.under(ctx, key)
	if err != nil {
		return err
	}
	keys = append(keys, key)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, s.valueKey(k))
			p.ZRem(ctx, s.indexKey(), k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("certredis: deleting %s: %w", key, err)
	}
	return nil
}

// Exists reports whether key is a value or a directory.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// under lists the keys below dir ("dir/…").
func (s *Storage) under(ctx context.Context, dir string) ([]string, error) {
	lo := strings.TrimSuffix(dir, "/") + "/"
	if dir == "" {
		lo = ""
	}
	keys, err := s.rdb.ZRangeByLex(ctx, s.indexKey(), &redis.ZRangeBy{Min: "[" + lo, Max: "[" + lo + "\xff"}).Result()
	if err != nil {
		return nil, fmt.Errorf("certredis: listing %s: %w", dir, err)
	}
	return keys, nil
}

// List lists the keys in dir: all below it when recursive, else its
// immediate children (values and directories).
func (s *Storage) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	keys, err := s.under(ctx, dir)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fs.ErrNotExist
	}
	if recursive {
		return keys, nil
	}
	base := strings.TrimSuffix(dir, "/")
	seen := make(map[string]bool)
	var out []string
	for _, k := range keys {
		rest := strings.TrimPrefix(k, base+"/")
		if base == "" {
			rest = k
		}
		child, _, _ := strings.Cut(rest, "/")
		name := path.Join(base, child)
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out, nil
}

// Stat describes key.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	vals, err := s.rdb.HMGet(ctx, s.valueKey(key), "modified", "value").Result()
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("certredis: stat %s: %w", key, err)
	}
	if vals[0] != nil {
		mod, _ := strconv.ParseInt(fmt.Sprint(vals[0]), 10, 64)
		size := 0
		if v, ok := vals[1].(string); ok {
			size = len(v)
		}
		return certmagic.KeyInfo{Key: key, Modified: time.Unix(0, mod), Size: int64(size), IsTerminal: true}, nil
	}
	keys, err := s.under(ctx, key)
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	if len(keys) == 0 {
		return certmagic.KeyInfo{}, fs.ErrNotExist
	}
	return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
}

// Lock waits until this storage holds the lock name, or ctx ends. The
// lock is renewed until Unlock; if this process dies, it expires after
// lockTTL and another node takes it.
func (s *Storage) Lock(ctx context.Context, name string) error {
	l, err := s.locks.Lock(ctx, s.lockKey(name), lockPoll)
	if err != nil {
		return fmt.Errorf("certredis: lock %s: %w", name, err)
	}
	s.held.Add(ctx, name, lease.Keep(l, lockTTL, l.Taken()))
	return nil
}

// Unlock releases the lock name, if this storage still holds it.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	held, err := s.held.Release(ctx, name)
	if !held {
		return fmt.Errorf("%w: %s", ErrNotHeld, name)
	}
	if err != nil {
		return fmt.Errorf("certredis: unlock %s: %w", name, err)
	}
	return nil
}

// String names the storage in certmagic's logs.
func (s *Storage) String() string { return "redis:" + s.prefix }

var _ certmagic.Storage = (*Storage)(nil)
