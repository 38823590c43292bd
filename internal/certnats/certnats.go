// Package certnats keeps certmagic's certificates, keys, ACME account and
// challenge tokens in a NATS JetStream key-value bucket, with a lock every
// node sees: hubs of a cluster on NATS (--store nats://… or --cluster)
// share their certificates, one of them orders each one while the others
// wait and load it, and any node answers a challenge another node started.
//
// Layout: the bucket Config.Bucket holds the values; a key "a/b/c.crt" is
// stored as "A.B.C" where each token is the base64url of one path segment
// (certmagic's keys hold '@', ':' and other characters KV keys may not),
// so a directory is a subject prefix and listing it is a filtered watch.
// The bucket Config.Bucket+"_locks" holds the locks (internal/natslock,
// kept by internal/lease): the bucket's TTL drops the entry of a holder
// that died, so another node takes the lock after LockTTL.
package certnats

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/sse/internal/lease"
	"github.com/ssekit/sse/internal/natslock"
)

// Errors of this package.
var (
	ErrNotHeld = errors.New("certnats: lock not held by this storage")
	ErrBadKey  = errors.New("certnats: key with an empty path segment")
)

// Defaults of Config.
const (
	DefaultBucket  = "ssekit_certs"
	DefaultLockTTL = 60 * time.Second
	lockPoll       = 500 * time.Millisecond
)

// Config says where the certificates live.
type Config struct {
	// Bucket is the values' bucket (letters, digits, - and _); the locks
	// are in Bucket+"_locks". Empty: DefaultBucket.
	Bucket string
	// Replicas of both buckets (1 to 5; 0: 1). In a cluster, as many as
	// the hub's stream, so certificates survive the loss of a node.
	Replicas int
	// LockTTL is how long a lock outlives its holder's last renewal
	// (renewed every third of it). Zero: DefaultLockTTL.
	LockTTL time.Duration
}

// Storage is a certmagic.Storage in JetStream KV. Its methods are safe
// for concurrent use.
type Storage struct {
	kv     jetstream.KeyValue
	locks  *natslock.Locks
	bucket string
	ttl    time.Duration

	held lease.Held
}

// New creates (or updates) the two buckets on js and returns the storage.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Storage, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = DefaultLockTTL
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "ssekit: ACME certificates, keys and account (certmagic)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("certnats: bucket %s: %w", cfg.Bucket, err)
	}
	locks, err := natslock.New(ctx, js, cfg.Bucket+"_locks", "ssekit: certificate locks (an entry lives until renewed or TTL)", cfg.Replicas, cfg.LockTTL)
	if err != nil {
		return nil, fmt.Errorf("certnats: %w", err)
	}
	return &Storage{kv: kv, locks: locks, bucket: cfg.Bucket, ttl: cfg.LockTTL}, nil
}

// encode turns a certmagic key into a KV key (see the package comment);
// "" is the root.
func encode(key string) (string, error) {
	key = strings.Trim(key, "/")
	if key == "" {
		return "", nil
	}
	segs := strings.Split(key, "/")
	for i, s := range segs {
		if s == "" {
			return "", fmt.Errorf("%w: %q", ErrBadKey, key)
		}
		segs[i] = base64.RawURLEncoding.EncodeToString([]byte(s))
	}
	return strings.Join(segs, "."), nil
}

func decode(k string) (string, error) {
	segs := strings.Split(k, ".")
	for i, s := range segs {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return "", fmt.Errorf("certnats: foreign key %q in the bucket", k)
		}
		segs[i] = string(b)
	}
	return strings.Join(segs, "/"), nil
}

func missing(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
}

// Store writes value at key.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	k, err := encode(key)
	if err != nil {
		return err
	}
	if k == "" {
		return fmt.Errorf("%w: the root", ErrBadKey)
	}
	if _, err := s.kv.Put(ctx, k, value); err != nil {
		return fmt.Errorf("certnats: storing %s: %w", key, err)
	}
	return nil
}

// Load reads key, fs.ErrNotExist when there is none.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	e, err := s.get(ctx, key)
	if err != nil {
		return nil, err
	}
	return e.Value(), nil
}

func (s *Storage) get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	k, err := encode(key)
	if err != nil {
		return nil, err
	}
	if k == "" {
		return nil, fs.ErrNotExist
	}
	e, err := s.kv.Get(ctx, k)
	if missing(err) {
		return nil, fs.ErrNotExist
	}
	if err != nil {
		return nil, fmt.Errorf("certnats: loading %s: %w", key, err)
	}
	return e, nil
}

// under lists the (encoded) keys below the directory key.
func (s *Storage) under(ctx context.Context, dir string) ([]string, error) {
	k, err := encode(dir)
	if err != nil {
		return nil, err
	}
	filter := ">"
	if k != "" {
		filter = k + ".>"
	}
	l, err := s.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("certnats: listing %s: %w", dir, err)
	}
	defer l.Stop()
	var keys []string
	for {
		select {
		case key, ok := <-l.Keys():
			if !ok {
				return keys, nil
			}
			keys = append(keys, key)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Delete removes key and, as a directory, everything under it.
func (s *Storage) Delete(ctx context.Context, key string) error {
	keys, err := s.under(ctx, key)
	if err != nil {
		return err
	}
	if k, _ := encode(key); k != "" {
		keys = append(keys, k)
	}
	for _, k := range keys {
		if err := s.kv.Purge(ctx, k); err != nil && !missing(err) {
			return fmt.Errorf("certnats: deleting %s: %w", key, err)
		}
	}
	return nil
}

// Exists reports whether key is a value or a directory.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
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
	base, _ := encode(dir)
	seen := make(map[string]bool)
	var out []string
	for _, k := range keys {
		if !recursive {
			rest := k
			if base != "" {
				rest = strings.TrimPrefix(k, base+".")
			}
			child, _, _ := strings.Cut(rest, ".")
			if base != "" {
				child = base + "." + child
			}
			k = child
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		name, err := decode(k)
		if err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, nil
}

// Stat describes key.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	e, err := s.get(ctx, key)
	if err == nil {
		return certmagic.KeyInfo{Key: key, Modified: e.Created(), Size: int64(len(e.Value())), IsTerminal: true}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return certmagic.KeyInfo{}, err
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
// lock is renewed until Unlock; if this process dies, its entry expires
// after LockTTL and another node takes it.
func (s *Storage) Lock(ctx context.Context, name string) error {
	k, err := encode(name)
	if err != nil {
		return err
	}
	l, err := s.locks.Lock(ctx, k, lockPoll)
	if err != nil {
		return fmt.Errorf("certnats: lock %s: %w", name, err)
	}
	s.held.Add(ctx, name, lease.Keep(l, s.ttl, l.Taken()))
	return nil
}

// Unlock releases the lock name, if this storage still holds it.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	held, err := s.held.Release(ctx, name)
	if !held {
		return fmt.Errorf("%w: %s", ErrNotHeld, name)
	}
	if err != nil {
		return fmt.Errorf("certnats: unlock %s: %w", name, err)
	}
	return nil
}

// String names the storage in certmagic's logs.
func (s *Storage) String() string { return "nats-kv:" + s.bucket }

var _ certmagic.Storage = (*Storage)(nil)
