package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/sse/hub"
)

// retention is the store's per-topic retention (SetRetention): the index,
// fed by the delivery (the ordered consumer sees every node's updates in
// stream order), so every node sharing the stream deletes the same
// messages; deleting one gone already does nothing.
type retention struct {
	mu   sync.Mutex
	idx  *hub.Retention // nil without rules
	stop chan struct{}  // ends the age ticker; closed by Close
	// ages is idx once set when some rule bounds by age: After checks
	// each update with it (Expired only reads the rules), without mu.
	ages atomic.Pointer[hub.Retention]
}

// ageTick is how often age rules delete without new updates.
const ageTick = 100 * time.Millisecond

// SetRetention applies per-topic retention rules (hub.RetentionRule): it
// builds their index from the stream's history (deleting what the rules
// drop already), then the delivery applies them to every node's updates.
// Every node sharing the stream should have the same rules.
func (s *Store) SetRetention(rules []hub.RetentionRule) error {
	if s.isClosed.Load() {
		return hub.ErrStoreClosed
	}
	window := 0
	if s.cfg.HistorySize > 0 {
		window = s.cfg.HistorySize
	}
	r, err := hub.NewRetention(rules, window)
	if err != nil {
		return err
	}
	s.ret.mu.Lock()
	defer s.ret.mu.Unlock()
	if s.ret.idx != nil {
		return errors.New("natsjs: SetRetention called twice")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var drops []uint64
	now := time.Now()
	_, _, err = afterAll(ctx, s, func(u *hub.Update) {
		r.Add(u, now, func(seq uint64) { drops = append(drops, seq) })
	})
	if err != nil {
		return err
	}
	s.deleteSeqs(ctx, drops)
	s.ret.idx = r
	if r.HasAge() {
		s.ret.ages.Store(r)
		s.ret.stop = make(chan struct{})
		go s.ageTicker(s.ret.stop)
	}
	return nil
}

// afterAll reads the whole history, page by page.
func afterAll(ctx context.Context, s *Store, fn func(*hub.Update)) (uint64, bool, error) {
	from := hub.Cursor{}
	for {
		p, err := s.After(ctx, from, hub.DefaultPageBytes)
		if err != nil {
			return 0, false, err
		}
		for _, u := range p.Updates {
			fn(u)
		}
		if p.End || p.Next <= from.Seq {
			return p.Next, true, nil
		}
		from = hub.Cursor{Seq: p.Next}
	}
}

func (s *Store) ageTicker(stop <-chan struct{}) {
	t := time.NewTicker(ageTick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.retain(nil)
		}
	}
}

// retain feeds the index with a delivered update (nil: only expire) and
// deletes what the rules drop. It is called by the delivery after the
// callbacks, without the delivery lock.
func (s *Store) retain(u *hub.Update) {
	s.ret.mu.Lock()
	r := s.ret.idx
	if r == nil {
		s.ret.mu.Unlock()
		return
	}
	var drops []uint64
	now := time.Now()
	drop := func(seq uint64) { drops = append(drops, seq) }
	if u != nil && u.Seq > r.Last() {
		r.Add(u, now, drop)
	} else {
		r.Expire(now, drop)
	}
	s.ret.mu.Unlock()
	if len(drops) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.PublishTimeout)
		defer cancel()
		s.deleteSeqs(ctx, drops)
	}
}

// deleteSeqs deletes stream messages for retention rules (no_erase: a
// delete, not an overwrite). A failure is logged: After still hides an
// expired update, a count rule's is kept until the stream's limits.
func (s *Store) deleteSeqs(ctx context.Context, seqs []uint64) {
	for _, seq := range seqs {
		req, _ := json.Marshal(map[string]any{"seq": seq, "no_erase": true})
		resp, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.DELETE."+s.stream, req)
		if err != nil {
			if !s.isClosed.Load() {
				s.log.Warn("natsjs: cannot delete a message for a retention rule", "seq", seq, "err", err)
			}
			return
		}
		var r struct {
			Error *jetstream.APIError `json:"error"`
		}
		if json.Unmarshal(resp.Data, &r) == nil && r.Error != nil && r.Error.ErrorCode != jetstream.JSErrCodeMessageNotFound {
			s.log.Warn("natsjs: cannot delete a message for a retention rule", "seq", seq, "err", r.Error)
		}
	}
}

// expiredByRule reports whether After hides u for its rule's age.
func (s *Store) expiredByRule(u *hub.Update, now time.Time) bool {
	return s.ret.ages.Load().Expired(u, now)
}

// stopRetention ends the age ticker.
func (s *Store) stopRetention() {
	s.ret.mu.Lock()
	defer s.ret.mu.Unlock()
	if s.ret.stop != nil {
		close(s.ret.stop)
		s.ret.stop = nil
	}
}
