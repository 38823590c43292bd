package policy

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/server"
)

// Latest-state topics: a subscriber that sends no cursor first gets the
// last N updates of the latest-state topics it subscribes to, then live
// ones, with no gap and no duplicate. The index keeps, per topic, the ids
// of its last N+1 updates, read from the store's history (so from every
// node's publishes, and again after a restart); a subscriber is given the
// (N+1)-th last as its cursor, and the hub's replay-then-live does the
// rest. The index may lag the store by a poll: a subscriber then gets one
// update more, never one less.
//
// An exact selector looks its topic up; a template or URL Pattern
// selector is matched against the indexed topics, at most MaxScan of them
// (beyond, the cursor is the earliest: the whole history, so at least N
// of each, never fewer). With several latest-state topics the cursor is
// the oldest of theirs, so each gets at least its N.

// DefaultLatestTopics bounds the topics indexed, and DefaultLatestIDs
// the ids kept for them all: MaxTopics defaults to the smaller of
// DefaultLatestTopics and DefaultLatestIDs / (largest N + 1), so the
// index stays within tens of megabytes whatever the topics published.
const (
	DefaultLatestTopics = 100_000
	DefaultLatestIDs    = 1_000_000
)

// MaxLatest bounds a policy's N.
const MaxLatest = 1000

// DefaultLatestScan is LatestConfig.MaxScan's default.
const DefaultLatestScan = 10_000

// LatestPolicy is a latest-state rule: the last N updates of each topic
// it matches.
type LatestPolicy struct {
	Exact   string
	Pattern hub.Matcher
	N       int
}

// LatestConfig configures a Latest index.
type LatestConfig struct {
	Store    hub.Store
	Policies []LatestPolicy
	// MaxTopics bounds the topics indexed (beyond: not latest-state, and
	// logged once). Zero: see DefaultLatestIDs.
	MaxTopics int
	// MaxScan bounds the indexed topics a template or URL Pattern
	// selector is matched against per subscription (beyond: the earliest
	// cursor). Zero: DefaultLatestScan.
	MaxScan int
	// Poll is how often the store is read without a Notify. Zero: 1 s.
	Poll   time.Duration
	Logger *slog.Logger
}

// Latest is the latest-state index; it implements server.LatestState.
type Latest struct {
	cfg  LatestConfig
	wake chan struct{}

	mu     sync.Mutex
	topics map[string]*ring // guarded by mu
	warned bool             // guarded by mu
}

type ring struct {
	n    int
	seqs []uint64
	ids  []string
}

func (r *ring) add(seq uint64, id string) {
	r.seqs, r.ids = append(r.seqs, seq), append(r.ids, id)
	if len(r.ids) > r.n+1 {
		r.seqs, r.ids = r.seqs[1:], r.ids[1:]
	}
}

// NewLatest checks cfg.
func NewLatest(cfg LatestConfig) (*Latest, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: latest-state needs the store", ErrInvalidPolicy)
	}
	for _, p := range cfg.Policies {
		if (p.Exact == "") == (p.Pattern == nil) || p.N < 1 || p.N > MaxLatest {
			return nil, fmt.Errorf("%w: a latest-state policy needs one matcher and 1 to %d updates", ErrInvalidPolicy, MaxLatest)
		}
	}
	if cfg.MaxTopics <= 0 {
		maxN := 1
		for _, p := range cfg.Policies {
			maxN = max(maxN, p.N)
		}
		cfg.MaxTopics = min(DefaultLatestTopics, max(1, DefaultLatestIDs/(maxN+1)))
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.MaxScan <= 0 {
		cfg.MaxScan = DefaultLatestScan
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Latest{cfg: cfg, wake: make(chan struct{}, 1), topics: map[string]*ring{}}, nil
}

// Notify wakes the reader: something was published. It never blocks.
func (l *Latest) Notify() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Run reads the whole retained history into the index, then follows
// the store until ctx ends.
func (l *Latest) Run(ctx context.Context) error {
	from := hub.Cursor{}
	var err error
	if from, err = l.read(ctx, from); err != nil {
		return err
	}
	go func() {
		t := time.NewTicker(l.cfg.Poll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-l.wake:
			case <-t.C:
			}
			if from, err = l.read(ctx, from); err != nil && ctx.Err() == nil {
				l.cfg.Logger.Warn("latest-state: reading the store", "err", err)
			}
		}
	}()
	return nil
}

// read indexes the pages after from and returns where to continue.
func (l *Latest) read(ctx context.Context, from hub.Cursor) (hub.Cursor, error) {
	for {
		page, err := l.cfg.Store.After(ctx, from, 1<<20)
		if err != nil {
			return from, err
		}
		l.mu.Lock()
		for _, u := range page.Updates {
			l.indexLocked(u)
		}
		l.mu.Unlock()
		if len(page.Updates) > 0 {
			from = hub.Cursor{Seq: page.Next}
		}
		if page.End || len(page.Updates) == 0 {
			return from, nil
		}
	}
}

func (l *Latest) indexLocked(u *hub.Update) {
	for _, t := range u.Topics {
		r := l.topics[t]
		if r == nil {
			n := l.n(t)
			if n == 0 {
				continue
			}
			if len(l.topics) >= l.cfg.MaxTopics {
				if !l.warned {
					l.warned = true
					l.cfg.Logger.Warn("latest-state: topic index full; further topics are not latest-state", "max_topics", l.cfg.MaxTopics)
				}
				continue
			}
			r = &ring{n: n}
			l.topics[t] = r
		}
		r.add(u.Seq, u.ID)
	}
}

// n is the N of the first policy matching topic, 0 for none.
func (l *Latest) n(topic string) int {
	for _, p := range l.cfg.Policies {
		if p.Exact == topic || p.Pattern != nil && p.Pattern.Match(topic) {
			return p.N
		}
	}
	return 0
}

// Cursor implements server.LatestState.
func (l *Latest) Cursor(selectors []*hub.Selector) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	cursor, oldest := "", uint64(0)
	// take reports false when r gives the earliest cursor.
	take := func(r *ring) bool {
		if len(r.ids) <= r.n { // N or fewer so far: all of them
			return false
		}
		if cursor == "" || r.seqs[0] < oldest {
			cursor, oldest = r.ids[0], r.seqs[0]
		}
		return true
	}
	var patterns []*hub.Selector
	for _, s := range selectors {
		if !s.Exact() {
			patterns = append(patterns, s)
			continue
		}
		if r := l.topics[s.String()]; r != nil && !take(r) {
			return hub.EarliestID
		}
	}
	if len(patterns) == 0 {
		return cursor
	}
	if len(l.topics) > l.cfg.MaxScan {
		return hub.EarliestID // too many to match: the whole history
	}
	for t, r := range l.topics {
		for _, s := range patterns {
			if s.Match(t) {
				if !take(r) {
					return hub.EarliestID
				}
				break
			}
		}
	}
	return cursor
}

var _ server.LatestState = (*Latest)(nil)
