// Package natsoutbox is the webhook outbox of a cluster on NATS JetStream
// (webhook.Cluster): the hub nodes sharing a natsjs store share each
// endpoint's delivery through it.
//
// Layout, for a name N (the hub's stream name and "_webhooks"):
//   - the bucket N_leases (internal/natslock, TTL): the endpoint's lease,
//     at the key hex(endpoint);
//   - the bucket N_cursors: the endpoint's cursor (JSON: seq, id, and
//     the token of the lease that wrote it) at hex(endpoint), written
//     only by compare-and-set on the revision its holder last wrote. A
//     node taking the lease first rewrites it (a claim), so an earlier
//     holder's next write fails: it is fenced;
//   - the stream N_letters: dead letters on subject N.dead.hex(endpoint),
//     the replay queue on N.replay.hex(endpoint), one event body each.
package natsoutbox

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/sse/internal/natslock"
	"github.com/ssekit/sse/webhook"
)

// DefaultTTL is a lease's time to live when Config.TTL is zero.
const DefaultTTL = 10 * time.Second

// Config says where the outbox lives.
type Config struct {
	// Name prefixes the buckets and the stream (letters, digits, - and
	// _). Required.
	Name string
	// Replicas of the buckets and the stream (1 to 5; 0: 1): as many as
	// the hub's stream, so the outbox survives the loss of a node.
	Replicas int
	// TTL is the lease's time to live (renewed every third of it). Zero:
	// DefaultTTL.
	TTL time.Duration
	// MaxLetters bounds the dead letters and replay queue together, in
	// events (the stream's limit: the oldest are dropped beyond). Zero:
	// 1,000,000.
	MaxLetters int64
}

// Cluster is a webhook.Cluster on JetStream.
type Cluster struct {
	js      jetstream.JetStream
	locks   *natslock.Locks
	cursors jetstream.KeyValue
	letters jetstream.Stream
	name    string
}

// New creates (or updates) the buckets and the stream on js.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Cluster, error) {
	if cfg.Name == "" {
		return nil, errors.New("natsoutbox: a name is required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	cfg.Replicas = max(cfg.Replicas, 1)
	if cfg.MaxLetters <= 0 {
		cfg.MaxLetters = 1_000_000
	}
	locks, err := natslock.New(ctx, js, cfg.Name+"_leases", "ssekit: webhook endpoints' delivery leases", cfg.Replicas, cfg.TTL)
	if err != nil {
		return nil, fmt.Errorf("natsoutbox: %w", err)
	}
	cursors, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Name + "_cursors",
		Description: "ssekit: webhook endpoints' cursors in the hub's stream",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("natsoutbox: bucket %s_cursors: %w", cfg.Name, err)
	}
	letters, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Name + "_letters",
		Description: "ssekit: webhook endpoints' dead letters and replay queues",
		Subjects:    []string{cfg.Name + ".dead.*", cfg.Name + ".replay.*"},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxMsgs:     cfg.MaxLetters,
	})
	if err != nil {
		return nil, fmt.Errorf("natsoutbox: stream %s_letters: %w", cfg.Name, err)
	}
	return &Cluster{js: js, locks: locks, cursors: cursors, letters: letters, name: cfg.Name}, nil
}

func key(endpoint string) string { return hex.EncodeToString([]byte(endpoint)) }

func (c *Cluster) dead(endpoint string) string   { return c.name + ".dead." + key(endpoint) }
func (c *Cluster) replay(endpoint string) string { return c.name + ".replay." + key(endpoint) }

// TTL is the leases' time to live.
func (c *Cluster) TTL() time.Duration { return c.locks.TTL() }

// record is a cursor entry.
type record struct {
	webhook.Position
	Set   bool   `json:"set"`
	Token string `json:"token"`
}

func missing(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
}

func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

// Acquire takes the endpoint's lease and claims its cursor.
func (c *Cluster) Acquire(ctx context.Context, endpoint string) (webhook.Lease, error) {
	k := key(endpoint)
	l, err := c.locks.TryLock(ctx, k)
	if errors.Is(err, natslock.ErrHeld) {
		return nil, fmt.Errorf("natsoutbox: %s: %w", endpoint, webhook.ErrLeaseHeld)
	}
	if err != nil {
		return nil, fmt.Errorf("natsoutbox: %w", err)
	}
	ls := &Lease{Lock: l, c: c, endpoint: endpoint, key: k}
	if err := ls.claim(ctx); err != nil {
		l.Unlock(context.WithoutCancel(ctx))
		return nil, err
	}
	return ls, nil
}

// Lease is one node's lease on an endpoint.
type Lease struct {
	*natslock.Lock
	c             *Cluster
	endpoint, key string
	cursor        record // as claimed

	mu  sync.Mutex
	rev uint64 // the cursor entry's revision this lease last wrote; guarded by mu
}

// claim rewrites the cursor entry with this lease's token: the revision
// moves, so an earlier holder's compare-and-set fails.
func (l *Lease) claim(ctx context.Context) error {
	e, err := l.c.cursors.Get(ctx, l.key)
	switch {
	case missing(err):
		b, _ := json.Marshal(record{Token: l.Token()})
		l.rev, err = l.c.cursors.Create(ctx, l.key, b)
	case err == nil:
		if err = json.Unmarshal(e.Value(), &l.cursor); err != nil {
			return fmt.Errorf("natsoutbox: %s: the cursor is not ours: %w", l.endpoint, err)
		}
		r := l.cursor
		r.Token = l.Token()
		b, _ := json.Marshal(r)
		l.rev, err = l.c.cursors.Update(ctx, l.key, b, e.Revision())
	}
	if conflict(err) {
		return fmt.Errorf("natsoutbox: %s: the cursor moved while claimed: %w", l.endpoint, webhook.ErrLeaseHeld)
	}
	if err != nil {
		return fmt.Errorf("natsoutbox: claiming %s's cursor: %w", l.endpoint, err)
	}
	return nil
}

// Cursor is the endpoint's cursor when the lease was taken.
func (l *Lease) Cursor() (webhook.Position, bool) { return l.cursor.Position, l.cursor.Set }

// Commit moves the cursor, only if no other lease claimed it since.
func (l *Lease) Commit(ctx context.Context, p webhook.Position) error {
	b, _ := json.Marshal(record{Position: p, Set: true, Token: l.Token()})
	l.mu.Lock()
	defer l.mu.Unlock()
	rev, err := l.c.cursors.Update(ctx, l.key, b, l.rev)
	if conflict(err) || missing(err) {
		return fmt.Errorf("natsoutbox: %s's cursor: %w", l.endpoint, webhook.ErrLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("natsoutbox: %s's cursor: %w", l.endpoint, err)
	}
	l.rev = rev
	return nil
}

// Dead records a dead letter.
func (l *Lease) Dead(ctx context.Context, body []byte) error {
	if _, err := l.c.js.Publish(ctx, l.c.dead(l.endpoint), body); err != nil {
		return fmt.Errorf("natsoutbox: %s's dead letter: %w", l.endpoint, err)
	}
	return nil
}

// NextReplay returns the replay queue's head.
func (l *Lease) NextReplay(ctx context.Context) (string, []byte, error) {
	m, err := l.c.letters.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(l.c.replay(l.endpoint)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("natsoutbox: %s's replay queue: %w", l.endpoint, err)
	}
	return fmt.Sprint(m.Sequence), m.Data, nil
}

// DoneReplay removes the replay queue's head, key.
func (l *Lease) DoneReplay(ctx context.Context, key string) error {
	var seq uint64
	fmt.Sscan(key, &seq)
	if err := l.c.letters.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("natsoutbox: %s's replay queue: %w", l.endpoint, err)
	}
	return nil
}

// Counts returns the endpoint's replay queue and dead letters.
func (c *Cluster) Counts(ctx context.Context, endpoint string) (replay, dead int, err error) {
	info, err := c.letters.Info(ctx, jetstream.WithSubjectFilter(c.name+".*."+key(endpoint)))
	if err != nil {
		return 0, 0, fmt.Errorf("natsoutbox: %s's letters: %w", endpoint, err)
	}
	return int(info.State.Subjects[c.replay(endpoint)]), int(info.State.Subjects[c.dead(endpoint)]), nil
}

// Replay moves at most limit dead letters (0: all) to the replay queue,
// oldest first. A node dying in the middle may leave one both replayed
// and dead: replayed again, it is a duplicate with its id.
func (c *Cluster) Replay(ctx context.Context, endpoint string, limit int) (n, left int, err error) {
	seq := uint64(1)
	for limit == 0 || n < limit {
		m, err := c.letters.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(c.dead(endpoint)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return n, 0, fmt.Errorf("natsoutbox: %s's dead letters: %w", endpoint, err)
		}
		if _, err := c.js.Publish(ctx, c.replay(endpoint), m.Data); err != nil {
			return n, 0, fmt.Errorf("natsoutbox: %s's replay queue: %w", endpoint, err)
		}
		if err := c.letters.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return n, 0, fmt.Errorf("natsoutbox: %s's dead letters: %w", endpoint, err)
		}
		seq = m.Sequence + 1
		n++
	}
	_, left, err = c.Counts(ctx, endpoint)
	return n, left, err
}

var _ webhook.Cluster = (*Cluster)(nil)
