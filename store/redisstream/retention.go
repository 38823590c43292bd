package redisstream

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/sse/hub"
)

// retention is the store's per-topic retention (SetRetention): the index,
// fed by the delivery loop with every node's updates in stream order, so
// that every node sharing the stream computes the same deletions (XDEL of
// an entry gone already does nothing).
type retention struct {
	mu  sync.Mutex
	idx *hub.Retention // nil without rules
	// ages reports some rule bounds by age: After then checks each update.
	ages bool
}

// dropScript deletes entries for retention rules. KEYS: stream, ids,
// dropped. ARGV: entry ids. For each entry still in the stream it deletes
// the entry and its id's hash entry, and counts it in dropped, which the
// append script's trim of idlog uses (see popTrimmed). An entry's id is
// its first field (appendFields).
var dropScript = redis.NewScript(`
local stream, ids, droppedkey = KEYS[1], KEYS[2], KEYS[3]
local n = 0
for i = 1, #ARGV do
  local e = redis.call('XRANGE', stream, ARGV[i], ARGV[i])
  if #e > 0 then
    local id = e[1][2][2]
    redis.call('XDEL', stream, ARGV[i])
    if redis.call('HGET', ids, id) == ARGV[i] then
      redis.call('HDEL', ids, id)
      n = n + 1
    end
  end
end
if n > 0 then redis.call('INCRBY', droppedkey, n) end
return n
`)

// dropChunk is the most entries one dropScript call deletes.
const dropChunk = 1000

// SetRetention applies per-topic retention rules (hub.RetentionRule): it
// builds their index from the stream (deleting what the rules drop
// already), then the delivery loop applies them to every node's updates.
// Every node sharing the stream should have the same rules.
func (s *Store) SetRetention(rules []hub.RetentionRule) error {
	if s.closed.Load() {
		return hub.ErrStoreClosed
	}
	// The window is in updates; MAXLEN ~ may keep about 100 more.
	window := 0
	if s.maxLen > 0 {
		window = int(s.maxLen) + 1000
	}
	r, err := hub.NewRetention(rules, window)
	if err != nil {
		return err
	}
	s.ret.mu.Lock()
	defer s.ret.mu.Unlock()
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	var drops []uint64
	now := time.Now()
	start := "-"
	for {
		msgs, err := s.rdb.XRangeN(ctx, s.stream, start, "+", readChunk).Result()
		if err != nil {
			return s.wrap("set retention", err)
		}
		for _, m := range msgs {
			if u, err := decodeEntry(m.ID, m.Values); err == nil {
				r.Add(u, now, func(seq uint64) { drops = append(drops, seq) })
			}
			start = "(" + m.ID
		}
		if len(msgs) < readChunk {
			break
		}
	}
	if err := s.drop(ctx, drops); err != nil {
		return err
	}
	s.ret.idx, s.ret.ages = r, r.HasAge()
	return nil
}

// retain feeds the index with updates the loop delivered and deletes what
// the rules drop.
func (s *Store) retain(us []*hub.Update) {
	s.ret.mu.Lock()
	defer s.ret.mu.Unlock()
	r := s.ret.idx
	if r == nil {
		return
	}
	var drops []uint64
	now := time.Now()
	for _, u := range us {
		if u.Seq > r.Last() {
			r.Add(u, now, func(seq uint64) { drops = append(drops, seq) })
		}
	}
	if len(us) == 0 {
		r.Expire(now, func(seq uint64) { drops = append(drops, seq) })
	}
	if err := s.drop(s.ctx, drops); err != nil && s.ctx.Err() == nil {
		// The next node's or the next update's drops do not repeat these:
		// After still hides them by age, but a count rule's are kept.
		s.log.Warn("redisstream: cannot delete entries for retention rules", "stream", s.stream, "entries", len(drops), "err", err)
	}
}

// drop deletes the entries of seqs, dropChunk per script call.
func (s *Store) drop(ctx context.Context, seqs []uint64) error {
	keys := []string{s.stream, s.idsKey, s.keys[4]}
	for len(seqs) > 0 {
		n := min(len(seqs), dropChunk)
		args := make([]any, n)
		for i, seq := range seqs[:n] {
			args[i] = entryID(seq)
		}
		if err := dropScript.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
			return s.wrap(fmt.Sprintf("delete %d entries for retention", n), err)
		}
		seqs = seqs[n:]
	}
	return nil
}

// expiredByRule reports whether After hides u for its rule's age.
func (s *Store) expiredByRule(u *hub.Update, now time.Time) bool {
	s.ret.mu.Lock()
	r, ages := s.ret.idx, s.ret.ages
	s.ret.mu.Unlock()
	return ages && r.Expired(u, now)
}
