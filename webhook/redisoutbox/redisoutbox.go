// Package redisoutbox is the webhook outbox of a cluster on Redis
// (webhook.Cluster): the hub nodes sharing a redisstream store share each
// endpoint's delivery through it.
//
// Layout, under a prefix P (a hash tag, so on Redis Cluster every key is
// in one slot and a script may touch them all), for an endpoint E
// (hex-encoded):
//   - {P}:lease:E, the endpoint's lease (internal/redislock);
//   - {P}:cursor:E, its cursor (JSON: seq, id);
//   - {P}:dead:E and {P}:replay:E, lists of event bodies: its dead letters
//     and its replay queue.
//
// A holder writes the cursor, the dead letters and the replay queue only
// through scripts that first check that the lease still holds its token:
// a holder that lost its lease (paused, partitioned) is fenced.
package redisoutbox

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/sse/internal/redislock"
	"github.com/ssekit/sse/webhook"
)

// Defaults of Config.
const (
	DefaultTTL        = 10 * time.Second
	DefaultMaxLetters = 1_000_000
	replayChunk       = 1000 // dead letters one replay script moves
)

// Config says where the outbox lives.
type Config struct {
	// Prefix of the keys (e.g. "ssekit:webhooks"). Required.
	Prefix string
	// TTL is the lease's time to live (renewed every third of it). Zero:
	// DefaultTTL.
	TTL time.Duration
	// MaxLetters bounds each endpoint's dead letters (the oldest are
	// dropped beyond). Zero: DefaultMaxLetters.
	MaxLetters int
}

// Cluster is a webhook.Cluster in Redis.
type Cluster struct {
	rdb    redis.UniversalClient
	locks  *redislock.Locks
	prefix string
	max    int
}

// New keeps the outbox in rdb.
func New(rdb redis.UniversalClient, cfg Config) (*Cluster, error) {
	if cfg.Prefix == "" {
		return nil, errors.New("redisoutbox: a prefix is required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxLetters <= 0 {
		cfg.MaxLetters = DefaultMaxLetters
	}
	return &Cluster{rdb: rdb, locks: redislock.New(rdb, cfg.TTL), prefix: "{" + cfg.Prefix + "}", max: cfg.MaxLetters}, nil
}

func (c *Cluster) key(kind, endpoint string) string {
	return c.prefix + ":" + kind + ":" + hex.EncodeToString([]byte(endpoint))
}

// TTL is the leases' time to live.
func (c *Cluster) TTL() time.Duration { return c.locks.TTL() }

// Acquire takes the endpoint's lease and reads its cursor.
func (c *Cluster) Acquire(ctx context.Context, endpoint string) (webhook.Lease, error) {
	l, err := c.locks.TryLock(ctx, c.key("lease", endpoint))
	if errors.Is(err, redislock.ErrHeld) {
		return nil, fmt.Errorf("redisoutbox: %s: %w", endpoint, webhook.ErrLeaseHeld)
	}
	if err != nil {
		return nil, fmt.Errorf("redisoutbox: %w", err)
	}
	ls := &Lease{Lock: l, c: c, endpoint: endpoint}
	b, err := c.rdb.Get(ctx, c.key("cursor", endpoint)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		l.Unlock(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("redisoutbox: %s's cursor: %w", endpoint, err)
	default:
		if err := json.Unmarshal(b, &ls.cursor); err != nil {
			l.Unlock(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("redisoutbox: %s: the cursor is not ours: %w", endpoint, err)
		}
		ls.set = true
	}
	return ls, nil
}

// Lease is one node's lease on an endpoint.
type Lease struct {
	*redislock.Lock
	c        *Cluster
	endpoint string
	cursor   webhook.Position
	set      bool
}

// Cursor is the endpoint's cursor when the lease was taken.
func (l *Lease) Cursor() (webhook.Position, bool) { return l.cursor, l.set }

// fenced runs its command only while KEYS[1] (the lease) holds ARGV[1]
// (the holder's token); 0 when it does not.
var (
	commitScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[2], ARGV[2])
return 1`)
	deadScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("RPUSH", KEYS[2], ARGV[2])
redis.call("LTRIM", KEYS[2], -tonumber(ARGV[3]), -1)
return 1`)
	popScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("LPOP", KEYS[2])
return 1`)
	// replayScript moves up to ARGV[1] dead letters to the replay queue
	// and returns how many, and how many are left.
	replayScript = redis.NewScript(`
local n = 0
while n < tonumber(ARGV[1]) do
	local v = redis.call("LPOP", KEYS[1])
	if not v then break end
	redis.call("RPUSH", KEYS[2], v)
	n = n + 1
end
return {n, redis.call("LLEN", KEYS[1])}`)
)

func (l *Lease) fenced(ctx context.Context, s *redis.Script, kind string, args ...any) error {
	n, err := s.Run(ctx, l.c.rdb, []string{l.Key, l.c.key(kind, l.endpoint)}, append([]any{l.Token()}, args...)...).Int()
	if err != nil {
		return fmt.Errorf("redisoutbox: %s's %s: %w", l.endpoint, kind, err)
	}
	if n == 0 {
		return fmt.Errorf("redisoutbox: %s's %s: %w", l.endpoint, kind, webhook.ErrLeaseLost)
	}
	return nil
}

// Commit moves the cursor, only while this lease holds the endpoint.
func (l *Lease) Commit(ctx context.Context, p webhook.Position) error {
	b, _ := json.Marshal(p)
	return l.fenced(ctx, commitScript, "cursor", b)
}

// Dead records a dead letter.
func (l *Lease) Dead(ctx context.Context, body []byte) error {
	return l.fenced(ctx, deadScript, "dead", body, l.c.max)
}

// NextReplay returns the replay queue's head.
func (l *Lease) NextReplay(ctx context.Context) (string, []byte, error) {
	b, err := l.c.rdb.LIndex(ctx, l.c.key("replay", l.endpoint), 0).Bytes()
	if errors.Is(err, redis.Nil) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("redisoutbox: %s's replay queue: %w", l.endpoint, err)
	}
	return "head", b, nil
}

// DoneReplay removes the replay queue's head.
func (l *Lease) DoneReplay(ctx context.Context, _ string) error {
	return l.fenced(ctx, popScript, "replay")
}

// Counts returns the endpoint's replay queue and dead letters.
func (c *Cluster) Counts(ctx context.Context, endpoint string) (replay, dead int, err error) {
	var r, d *redis.IntCmd
	_, err = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		r = p.LLen(ctx, c.key("replay", endpoint))
		d = p.LLen(ctx, c.key("dead", endpoint))
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("redisoutbox: %s's letters: %w", endpoint, err)
	}
	return int(r.Val()), int(d.Val()), nil
}

// Replay moves at most limit dead letters (0: all) to the replay queue,
// oldest first, each chunk in one script.
func (c *Cluster) Replay(ctx context.Context, endpoint string, limit int) (n, left int, err error) {
	for {
		chunk := replayChunk
		if limit > 0 {
			chunk = min(chunk, limit-n)
		}
		if chunk == 0 {
			return n, left, nil
		}
		res, err := replayScript.Run(ctx, c.rdb, []string{c.key("dead", endpoint), c.key("replay", endpoint)}, chunk).Int64Slice()
		if err != nil {
			return n, 0, fmt.Errorf("redisoutbox: replaying %s: %w", endpoint, err)
		}
		if len(res) != 2 {
			return n, 0, fmt.Errorf("redisoutbox: replaying %s: the script answered %v", endpoint, res)
		}
		n, left = n+int(res[0]), int(res[1])
		if left == 0 || res[0] < int64(chunk) {
			return n, left, nil
		}
	}
}

var _ webhook.Cluster = (*Cluster)(nil)
