// Package redisstream is the hub's store on Redis Streams: one history
// shared by every hub node pointed at the same Redis, so a load balancer can
// spread subscribers and publishers over several machines.
//
// # Keys
//
// A store with prefix P (Config.Prefix, "ssekit" by default) uses four keys,
// all with the hash tag {P} so that they live in one Redis Cluster slot and
// one script can touch them all:
//
//	{P}:stream  the updates, one stream entry each (fields: see codec.go)
//	{P}:ids     hash: update id → entry id
//	{P}:idlog   list: the update ids in stream order
//	{P}:last    the last entry id the store wrote
//
// # Append
//
// Append runs one Lua script, atomically: it refuses an id already in
// {P}:ids (hub.ErrDuplicateID), picks the entry id from the server's clock
// (see the Seq encoding in codec.go), XADDs the entry with MAXLEN ~ N
// (Config.HistorySize) and, with Config.MaxAge, trims by MINID ~; then it
// records the id. Trimming with "~" drops whole stream nodes (about 100
// entries) at a time, so the history is N to N+~100 entries and trimming
// costs O(1) per append. The id index follows the stream exactly: the
// entries of {P}:idlog and of the stream are the same updates in the same
// order, so after the XADD the script pops the LLEN − XLEN oldest ids from
// {P}:idlog and HDELs them from {P}:ids. An id is therefore a duplicate
// exactly while its update is retained, and can be published again once
// trimmed, as in the other stores. The index costs about twice the ids'
// size in Redis memory. AppendBatch runs the same script once for the
// whole batch: every id is checked before anything is written, so a batch
// is stored whole or not at all, in one round trip.
//
// When Append returns nil the update is in Redis as durable as Redis is
// configured to make it (appendonly yes with appendfsync everysec loses at
// most the last second on a Redis crash, none on a clean restart; use
// appendfsync always, or replicas and WAIT, for more).
//
// # After and Subscribe
//
// After looks the entry id up with HGET and reads one page after it with
// one XRANGE (see hub.Store): no scan of older history. Subscribe callbacks are
// fed by one XREAD BLOCK loop per Store, which delivers every entry, from
// any node, in stream order. When Redis is unreachable Append, After and
// Healthy fail fast with hub.ErrStoreUnavailable (the server answers 503,
// /readyz turns 503), and the loop retries with backoff; when Redis is back
// the loop continues from the last entry id it delivered, so subscribers
// miss nothing and get nothing twice.
//
// It needs Redis 6.2 or later (XADD MINID, LPOP with a count, exclusive
// XRANGE bounds).
package redisstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/fanout"
)

// Defaults for the zero Config fields.
const (
	// DefaultPrefix is the key prefix when Config.Prefix is empty.
	DefaultPrefix = "ssekit"
	// DefaultHistorySize is the number of updates kept (at least; see the
	// package doc) when Config.HistorySize is zero.
	DefaultHistorySize = 10_000
	// DefaultBlock is how long one XREAD waits for new entries when
	// Config.Block is zero.
	DefaultBlock = 5 * time.Second
)

// Errors returned by the store besides the hub's (hub.ErrStoreClosed,
// hub.ErrDuplicateID, hub.ErrNoID, hub.ErrStoreUnavailable). Errors wrap in
// one order: "redisstream: <operation>: <sentinel>: <cause>".
var (
	// ErrInvalidConfig is returned by Open and New (wrapped with the
	// reason) for a Config or store URL they cannot use.
	ErrInvalidConfig = errors.New("redisstream: invalid config")
)

// readChunk is how many entries one XRANGE of After and one XREAD of the
// delivery loop read.
const readChunk = 256

// Retry delays of the delivery loop while Redis is unreachable.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// Config configures a Store. The zero value keeps at least the newest
// 10,000 updates under the prefix "ssekit" with no age limit.
type Config struct {
	// Prefix names the store's keys ({Prefix}:stream and so on). Hubs that
	// share a prefix share the history; several hubs can use one Redis
	// with different prefixes. Empty means DefaultPrefix.
	Prefix string

	// HistorySize is the fewest updates retained: the stream is trimmed
	// with MAXLEN ~ HistorySize, which keeps up to about 100 more. Zero
	// means DefaultHistorySize; a negative value means no limit by count
	// (Redis memory then bounds it: use MaxAge).
	HistorySize int

	// MaxAge is how long an update is retained. After skips expired
	// updates; they are trimmed (MINID ~) by later Appends. Zero means no
	// limit by age.
	MaxAge time.Duration

	// Block is how long one XREAD of the delivery loop blocks waiting for
	// new entries. Zero means DefaultBlock. Close of a Store made by New
	// (whose client the caller owns) may wait this long for the loop.
	Block time.Duration

	// Logger receives the delivery loop's reports: Redis lost and back,
	// entries that do not decode. Nil discards them.
	Logger *slog.Logger
}

// Store is a hub.Store on Redis Streams. It is safe for concurrent use.
type Store struct {
	rdb       redis.UniversalClient
	ownClient bool
	cfg       Config
	log       *slog.Logger
	maxLen    int64 // HistorySize after defaults; 0 means none
	keys      []string
	stream    string // keys[0]
	idsKey    string // keys[1]
	lastKey   string // keys[3]

	ctx    context.Context // ends at Close; the delivery loop's
	cancel context.CancelFunc
	closed atomic.Bool

	// delivered is the Seq of the last entry the loop delivered; appended
	// the highest Seq this Store's Appends got. Subscribe starts after the
	// greater when it cannot ask Redis.
	delivered atomic.Uint64
	appended  atomic.Uint64

	// subs are the Subscribe callbacks the loop calls.
	subs fanout.List

	// ret applies per-topic retention rules (SetRetention).
	ret retention

	// deliverMu is held (for reading) while the loop delivers a batch; Close
	// takes it to wait for a batch in progress.
	deliverMu sync.RWMutex

	loopDone  chan struct{}
	closeOnce sync.Once
	closeDone chan struct{} // closed when shutdown has finished
	closeErr  error         // set before closeDone is closed
}

// Open connects to the Redis the URL names (see NewClient for the forms)
// and returns a store that owns the client. The URL's prefix option, when
// present, overrides cfg.Prefix. Open fails when Redis cannot be reached.
func Open(ctx context.Context, rawURL string, cfg Config) (*Store, error) {
	rdb, prefix, err := NewClient(rawURL)
	if err != nil {
		return nil, err
	}
	if prefix != "" {
		cfg.Prefix = prefix
	}
	s, err := newStore(ctx, rdb, cfg, true)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	return s, nil
}

// New returns a store on a client the caller made and owns (Close does not
// close it). The client should not retry commands (MaxRetries -1): a
// retried Append whose reply was lost is refused as a duplicate. New fails
// when Redis cannot be reached.
func New(ctx context.Context, rdb redis.UniversalClient, cfg Config) (*Store, error) {
	return newStore(ctx, rdb, cfg, false)
}

func newStore(ctx context.Context, rdb redis.UniversalClient, cfg Config, own bool) (*Store, error) {
	switch {
	case cfg.MaxAge < 0:
		return nil, fmt.Errorf("%w: negative MaxAge %v", ErrInvalidConfig, cfg.MaxAge)
	case cfg.Block < 0:
		return nil, fmt.Errorf("%w: negative Block %v", ErrInvalidConfig, cfg.Block)
	case strings.ContainsAny(cfg.Prefix, "{}"):
		return nil, fmt.Errorf("%w: prefix %q has a brace", ErrInvalidConfig, cfg.Prefix)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Block == 0 {
		cfg.Block = DefaultBlock
	}
	s := &Store{rdb: rdb, ownClient: own, cfg: cfg, log: cfg.Logger, loopDone: make(chan struct{}), closeDone: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.HistorySize == 0:
		s.maxLen = DefaultHistorySize
	case cfg.HistorySize > 0:
		s.maxLen = int64(cfg.HistorySize)
	}
	tag := "{" + cfg.Prefix + "}:"
	s.keys = []string{tag + "stream", tag + "ids", tag + "idlog", tag + "last", tag + "dropped"}
	s.stream, s.idsKey, s.lastKey = s.keys[0], s.keys[1], s.keys[3]

	start, err := s.lastEntryID(ctx)
	if err != nil {
		return nil, s.wrap("open", err)
	}
	if err := appendScript.Load(ctx, rdb).Err(); err != nil {
		return nil, s.wrap("open: load the append script", err)
	}
	if start != "0-0" {
		seq, err := seqOf(start)
		if err != nil {
			return nil, fmt.Errorf("redisstream: open: stream %s: %w", s.stream, err)
		}
		s.delivered.Store(seq)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.loop(start)
	return s, nil
}

// lastEntryID returns the id of the last entry written: the {P}:last key,
// or the stream's last entry when the key is missing, or "0-0".
func (s *Store) lastEntryID(ctx context.Context) (string, error) {
	last, err := s.rdb.Get(ctx, s.lastKey).Result()
	if err == nil {
		return last, nil
	}
	if !errors.Is(err, redis.Nil) {
		return "", err
	}
	top, err := s.rdb.XRevRangeN(ctx, s.stream, "+", "-", 1).Result()
	if err != nil {
		return "", err
	}
	if len(top) == 0 {
		return "0-0", nil
	}
	return top[0].ID, nil
}

// appendScript appends a batch of updates, all or none. KEYS: stream, ids,
// idlog, last, dropped. ARGV: MAXLEN (0: none), max age in ms (0: none), the number
// of updates, then for each its id, the number of its entry's field/value
// strings, and those. It returns the new entry ids, in order, or the
// index+1 (an integer) of the first update whose id is already retained,
// with nothing written. Writes come after every command that can fail, as
// Redis does not roll a script back.
var appendScript = redis.NewScript(`
local stream, ids, idlog, lastkey, droppedkey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local maxlen, maxage, count = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local starts = {}
local pos = 4
for i = 1, count do
  if redis.call('HEXISTS', ids, ARGV[pos]) == 1 then
    return i
  end
  starts[i] = pos
  pos = pos + 2 + tonumber(ARGV[pos + 1])
end
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = 0
local last = redis.call('GET', lastkey)
if not last then
  local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #top > 0 then last = top[1][1] end
end
local lms, ln = -1, 0
if last then
  local dash = string.find(last, '-', 1, true)
  lms = tonumber(string.sub(last, 1, dash - 1))
  ln = tonumber(string.sub(last, dash + 1))
end
local eids = {}
for i = 1, count do
  if ms <= lms then
    ms = lms
    n = ln + 1
    if n > ` + fmt.Sprint(maxN) + ` then
      ms = ms + 1
      n = 0
    end
  end
  local eid = string.format('%d-%d', ms, n)
  lms, ln = ms, n
  local p = starts[i]
  local nf = tonumber(ARGV[p + 1])
  if maxlen > 0 then
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, eid, unpack(ARGV, p + 2, p + 1 + nf))
  else
    redis.call('XADD', stream, eid, unpack(ARGV, p + 2, p + 1 + nf))
  end
  redis.call('HSET', ids, ARGV[p], eid)
  redis.call('RPUSH', idlog, ARGV[p])
  eids[i] = eid
end
if maxage > 0 then
  redis.call('XTRIM', stream, 'MINID', '~', string.format('%d-0', ms - maxage))
end
redis.call('SET', lastkey, eids[count])
local dropped = tonumber(redis.call('GET', droppedkey) or '0')
local gone = redis.call('LLEN', idlog) - redis.call('XLEN', stream) - dropped
if dropped == 0 then
  while gone > 0 do
    local k = math.min(gone, 1000)
    local popped = redis.call('LPOP', idlog, k)
    redis.call('HDEL', ids, unpack(popped))
    gone = gone - k
  end
elseif gone > 0 then
  ` + popTrimmed + `
end
return eids
`)

// popTrimmed is the append script's trim of idlog when retention rules
// have deleted entries (dropScript): their ids, already gone from the
// hash, sit in idlog among the others, so each id popped is checked. One
// with no hash entry was deleted (dropped counts it down); one whose entry
// the stream no longer has was trimmed (HDEL); one still retained stops
// the trim. Every id is popped once: O(1) amortised per append.
const popTrimmed = `
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
  local fms, fn = math.huge, 0
  if #first > 0 then
    local f = first[1][1]
    local dash = string.find(f, '-', 1, true)
    fms, fn = tonumber(string.sub(f, 1, dash - 1)), tonumber(string.sub(f, dash + 1))
  end
  while gone > 0 do
    local id = redis.call('LPOP', idlog)
    if not id then break end
    local eid = redis.call('HGET', ids, id)
    if not eid then
      dropped = dropped - 1
    else
      local dash = string.find(eid, '-', 1, true)
      local ems, en = tonumber(string.sub(eid, 1, dash - 1)), tonumber(string.sub(eid, dash + 1))
      if ems > fms or (ems == fms and en >= fn) then
        redis.call('LPUSH', idlog, id)
        break
      end
      redis.call('HDEL', ids, id)
      gone = gone - 1
    end
  end
  redis.call('SET', droppedkey, math.max(dropped, 0))
`

// Append records u in one atomic script (see the package doc) and sets
// u.Seq and u.Time from the new entry's id. It returns hub.ErrDuplicateID
// for a retained id, and an error wrapping hub.ErrStoreUnavailable when
// Redis cannot be reached, in which case u may or may not be stored (the
// reply was lost), as when ctx ends first.
func (s *Store) Append(ctx context.Context, u *hub.Update) error {
	one := [1]*hub.Update{u}
	err := s.AppendBatch(ctx, one[:])
	var be *hub.BatchError
	if errors.As(err, &be) {
		return be.Err
	}
	return err
}

// AppendBatch records us in one run of the append script, atomically: all
// or none (see hub.BatchAppender), so a batch costs one round trip. Its
// errors are Append's, a refused update's in a *hub.BatchError.
func (s *Store) AppendBatch(ctx context.Context, us []*hub.Update) error {
	if len(us) == 0 {
		return nil
	}
	if err := hub.CheckBatchIDs(us); err != nil {
		return err
	}
	if s.closed.Load() {
		return hub.ErrStoreClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var maxAge int64
	if s.cfg.MaxAge > 0 {
		maxAge = max(1, s.cfg.MaxAge.Milliseconds())
	}
	args := make([]any, 0, 3+len(us)*14)
	args = append(args, s.maxLen, maxAge, len(us))
	for _, u := range us {
		args = append(args, u.ID, 0)
		at := len(args) - 1
		args = appendFields(args, u)
		args[at] = len(args) - at - 1
	}
	res, err := appendScript.Run(ctx, s.rdb, s.keys, args...).Result()
	if err != nil {
		return s.wrap("append", err)
	}
	switch res := res.(type) {
	case int64:
		if res < 1 || int(res) > len(us) {
			return fmt.Errorf("redisstream: append: unexpected script reply %v", res)
		}
		return &hub.BatchError{Index: int(res) - 1, Err: hub.ErrDuplicateID}
	case []any:
		if len(res) != len(us) {
			return fmt.Errorf("redisstream: append: %d entry ids for %d updates", len(res), len(us))
		}
		var top uint64
		for i, r := range res {
			eid, _ := r.(string)
			seq, err := seqOf(eid)
			if err != nil {
				return err
			}
			us[i].Seq, us[i].Time = seq, timeOf(seq)
			top = seq
		}
		for {
			old := s.appended.Load()
			if top <= old || s.appended.CompareAndSwap(old, top) {
				break
			}
		}
		return nil
	}
	return fmt.Errorf("redisstream: append: unexpected script reply %v", res)
}

// After returns the page of retained updates after from (see hub.Store):
// on the first page HGET finds the entry id of from.ID, then one XRANGE
// reads up to readChunk entries after it, and the page keeps those that
// fit maxBytes (the rest are read again with the next page).
func (s *Store) After(ctx context.Context, from hub.Cursor, maxBytes int) (hub.Page, error) {
	if s.closed.Load() {
		return hub.Page{}, hub.ErrStoreClosed
	}
	var cutoff uint64 // the first Seq not expired
	if s.cfg.MaxAge > 0 {
		cutoff = uint64(max(0, time.Now().Add(-s.cfg.MaxAge).UnixMilli())) << seqBits
	}
	now := time.Now()
	p := hub.Page{Next: from.Seq}
	if from.Seq == 0 {
		p.Found = from.ID == ""
		if from.ID != "" {
			eid, err := s.rdb.HGet(ctx, s.idsKey, from.ID).Result()
			switch {
			case errors.Is(err, redis.Nil):
			case err != nil:
				return hub.Page{}, s.wrap("after", err)
			default:
				if seq, err := seqOf(eid); err == nil && seq >= cutoff {
					p.Found, p.Anchor, p.Next = true, seq, seq
				}
			}
		}
	}
	start := "-"
	if p.Next > 0 {
		start = "(" + entryID(p.Next)
	}
	msgs, err := s.rdb.XRangeN(ctx, s.stream, start, "+", readChunk).Result()
	if err != nil {
		return hub.Page{}, s.wrap("after", err)
	}
	used := 0
	p.End = len(msgs) < readChunk
	for _, m := range msgs {
		u, err := decodeEntry(m.ID, m.Values)
		if err != nil {
			s.log.Warn("redisstream: skipping a stream entry that does not decode", "stream", s.stream, "entry", m.ID, "err", err)
			if seq, err := seqOf(m.ID); err == nil {
				p.Next = seq
			}
			continue
		}
		if u.Seq < cutoff || s.expiredByRule(u, now) {
			p.Next = u.Seq
			continue
		}
		size := hub.UpdateSize(u)
		if hub.PageFull(len(p.Updates), used, size, maxBytes) {
			p.End = false
			break
		}
		used += size
		p.Updates = append(p.Updates, u)
		p.Next = u.Seq
	}
	return p, nil
}

// Subscribe calls fn with every update appended from now on, by any node,
// in Seq order, from the store's delivery loop. "Now" is the last entry
// written when Subscribe asks Redis; when Redis cannot be reached it is
// the last entry this Store delivered or appended. fn must not call stop (stop waits for a call of fn in progress). fn may
// block: it holds back the delivery loop, never Append or After. ctx bounds
// asking Redis where "now" is.
func (s *Store) Subscribe(ctx context.Context, fn func(*hub.Update)) (stop func(), err error) {
	if s.closed.Load() {
		return nil, hub.ErrStoreClosed
	}
	from := max(s.delivered.Load(), s.appended.Load())
	ctx, cancel := context.WithTimeout(ctx, defaultDialTimeout)
	last, err := s.rdb.Get(ctx, s.lastKey).Result()
	cancel()
	if err == nil {
		if seq, err := seqOf(last); err == nil {
			from = max(from, seq)
		}
	}
	return s.subs.Add(fn, from+1), nil
}

// loop is the delivery loop: XREAD BLOCK from the last delivered entry id,
// deliver, repeat. On an error it waits (minBackoff doubling to maxBackoff)
// and reads again from the same id, so an outage costs no update and
// repeats none. It returns when the store is closed.
func (s *Store) loop(cursor string) {
	defer close(s.loopDone)
	backoff := time.Duration(0)
	var lostAt time.Time
	for s.ctx.Err() == nil {
		res, err := s.rdb.XRead(s.ctx, &redis.XReadArgs{
			Streams: []string{s.stream, cursor},
			Count:   readChunk,
			Block:   s.cfg.Block,
		}).Result()
		if errors.Is(err, redis.Nil) { // blocked for cfg.Block, nothing new
			err = nil
			s.retain(nil) // age rules delete without new updates too
		}
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			if lostAt.IsZero() {
				lostAt = time.Now()
				s.log.Warn("redisstream: cannot read the stream; retrying", "stream", s.stream, "after", cursor, "err", err)
			}
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			select {
			case <-time.After(backoff):
			case <-s.ctx.Done():
				return
			}
			continue
		}
		if !lostAt.IsZero() {
			s.log.Info("redisstream: reading the stream again", "stream", s.stream, "after", cursor, "down_for", time.Since(lostAt).Round(time.Millisecond))
			lostAt, backoff = time.Time{}, 0
		}
		for _, st := range res {
			if len(st.Messages) > 0 {
				cursor = st.Messages[len(st.Messages)-1].ID
				s.deliver(st.Messages)
			}
		}
	}
}

// deliver decodes a batch read by the loop and calls every subscriber with
// each update, unless the store has been closed.
func (s *Store) deliver(msgs []redis.XMessage) {
	s.deliverMu.RLock()
	defer s.deliverMu.RUnlock()
	if s.closed.Load() {
		return
	}
	us := make([]*hub.Update, 0, len(msgs))
	for _, m := range msgs {
		u, err := decodeEntry(m.ID, m.Values)
		if err != nil {
			s.log.Warn("redisstream: skipping a stream entry that does not decode", "stream", s.stream, "entry", m.ID, "err", err)
			continue
		}
		s.subs.Deliver(u)
		s.delivered.Store(u.Seq)
		us = append(us, u)
	}
	s.retain(us)
}

// Healthy reports whether Redis answers a PING: the readiness of a hub on
// this store.
func (s *Store) Healthy(ctx context.Context) error {
	if s.closed.Load() {
		return hub.ErrStoreClosed
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return s.wrap("ping", err)
	}
	return nil
}

// Close stops the delivery loop (no callback runs after Close returns) and
// closes the client when the store made it (Open). Nothing is buffered:
// every acknowledged Append is already in Redis. Close waits for a batch
// being delivered (a callback may block); when ctx ends first it returns
// ctx.Err() and finishes in the background. Later calls wait for the same
// end and return the same error; other methods return
// hub.ErrStoreClosed.
func (s *Store) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.cancel()
		go s.shutdown()
	})
	select {
	case <-s.closeDone:
		return s.closeErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// shutdown is Close's work, once the loop's context is cancelled.
func (s *Store) shutdown() {
	defer close(s.closeDone)
	s.deliverMu.Lock()
	//lint:ignore SA2001 taking the lock is the point: it waits for a batch being delivered
	s.deliverMu.Unlock()
	if s.ownClient {
		if err := s.rdb.Close(); err != nil {
			s.closeErr = fmt.Errorf("redisstream: close: %w", err)
		}
		<-s.loopDone
	}
}

// unavailablePrefixes are the Redis error replies that mean "not now":
// loading the data set after a restart, a replica or a master being
// failed over, a cluster slot moving, a busy script.
var unavailablePrefixes = []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS", "MISCONF"}

// wrap prefixes err with the operation and classifies it: the client closed
// is hub.ErrStoreClosed; a network failure or a "not now" reply wraps
// hub.ErrStoreUnavailable; ctx errors stay as they are.
func (s *Store) wrap(op string, err error) error {
	switch {
	case errors.Is(err, redis.ErrClosed) || (s.closed.Load() && !errors.Is(err, context.DeadlineExceeded)):
		return hub.ErrStoreClosed
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("redisstream: %s: %w", op, err)
	case unavailable(err):
		return fmt.Errorf("redisstream: %s: %w: %w", op, hub.ErrStoreUnavailable, err)
	default:
		return fmt.Errorf("redisstream: %s: %w", op, err)
	}
}

// unavailable reports whether err means Redis could not be reached or
// asked to come back later (rather than refusing the command).
func unavailable(err error) bool {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return true // dial, I/O, pool timeout
	}
	msg := reply.Error()
	for _, p := range unavailablePrefixes {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

var (
	_ hub.Store         = (*Store)(nil)
	_ hub.HealthChecker = (*Store)(nil)
	_ hub.BatchAppender = (*Store)(nil)
)
