package hub

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Defaults of MemoryStoreConfig.
const (
	DefaultMaxUpdates = 10_000
	DefaultMaxBytes   = 64 << 20
)

// MemoryStoreConfig bounds a MemoryStore's history. The oldest updates are
// dropped first when any bound is exceeded; the newest update is always kept.
// The zero value works.
type MemoryStoreConfig struct {
	// MaxUpdates is the number of updates kept; 0 or less means
	// DefaultMaxUpdates (10,000).
	MaxUpdates int
	// MaxBytes bounds the approximate memory the history takes (the
	// strings of every update plus about 256 bytes each); 0 or less means
	// DefaultMaxBytes (64 MiB).
	MaxBytes int64
	// MaxAge drops updates older than this; 0 or less means no age limit.
	MaxAge time.Duration
}

// MemoryStore is a Store that keeps a bounded history in memory, for a
// single hub node. Append delivers to Subscribe callbacks synchronously, in
// Seq order, before it returns.
type MemoryStore struct {
	cfg MemoryStoreConfig

	// deliverMu serialises Append and delivery so callbacks see updates in
	// Seq order, one at a time; it also guards subs. Lock order: deliverMu
	// before mu.
	deliverMu sync.Mutex
	subs      []*memSub // guarded by deliverMu

	mu      sync.RWMutex
	ring    []*Update      // guarded by mu; retained updates are ring[head:]
	dead    []bool         // guarded by mu; parallel to ring: deleted by a retention rule
	live    int            // guarded by mu; ring[head:] not dead
	head    int            // guarded by mu
	ret     *Retention     // guarded by mu; nil without rules
	byID    map[string]int // guarded by mu; id → Seq
	bytes   int64          // guarded by mu
	lastSeq uint64         // guarded by mu
	last    time.Time      // guarded by mu; Time of the newest update
	closed  bool           // guarded by mu
}

type memSub struct {
	fn func(*Update)
}

// NewMemoryStore returns an empty MemoryStore bounded by cfg.
func NewMemoryStore(cfg MemoryStoreConfig) *MemoryStore {
	if cfg.MaxUpdates <= 0 {
		cfg.MaxUpdates = DefaultMaxUpdates
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxAge < 0 {
		cfg.MaxAge = 0
	}
	return &MemoryStore{cfg: cfg, byID: make(map[string]int)}
}

// Append records a copy of u, assigns u.Seq and u.Time, and calls every
// Subscribe callback with it before returning. The store keeps u.Topics:
// the caller must not modify it afterwards.
func (s *MemoryStore) Append(ctx context.Context, u *Update) error {
	one := [1]*Update{u}
	err := s.AppendBatch(ctx, one[:])
	var be *BatchError
	if errors.As(err, &be) {
		return be.Err
	}
	return err
}

// AppendBatch records copies of us under one lock, all or none (a
// duplicate id refuses the batch), assigns their Seq and Time, and calls
// every Subscribe callback with each before returning.
func (s *MemoryStore) AppendBatch(_ context.Context, us []*Update) error {
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()

	if err := CheckBatchIDs(us); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrStoreClosed
	}
	for i, u := range us {
		if _, dup := s.byID[u.ID]; dup {
			s.mu.Unlock()
			return &BatchError{Index: i, Err: ErrDuplicateID}
		}
	}
	now := time.Now()
	if now.Before(s.last) { // the wall clock stepped back: keep Time ordered
		now = s.last
	}
	s.last = now
	added := make([]Update, len(us)) // the copies, in one allocation
	for i, u := range us {
		s.lastSeq++
		u.Seq, u.Time = s.lastSeq, now
		added[i] = *u
		c := &added[i]
		s.ring = append(s.ring, c)
		s.dead = append(s.dead, false)
		s.live++
		s.byID[c.ID] = int(c.Seq)
		s.bytes += int64(UpdateSize(c))
		s.ret.Add(c, now, s.dropLocked)
	}
	s.evictLocked(now)
	s.mu.Unlock()

	for i := range added {
		for _, sub := range s.subs {
			sub.fn(&added[i])
		}
	}
	return nil
}

// evictLocked drops the oldest updates beyond the bounds, keeping the
// newest. It compacts the ring when half of it is dropped, so appends stay
// amortised O(1).
func (s *MemoryStore) evictLocked(now time.Time) {
	for len(s.ring)-s.head > 1 {
		old := s.ring[s.head]
		if !s.dead[s.head] {
			// Dead slots count too, up to twice MaxUpdates, so the ring
			// stays bounded: never fewer kept than without the rules.
			if s.live <= s.cfg.MaxUpdates && len(s.ring)-s.head <= 2*s.cfg.MaxUpdates && s.bytes <= s.cfg.MaxBytes &&
				(s.cfg.MaxAge == 0 || now.Sub(old.Time) <= s.cfg.MaxAge) {
				break
			}
			s.unindexLocked(old)
		}
		s.ring[s.head] = nil
		s.head++
	}
	if s.head > 64 && s.head >= len(s.ring)/2 {
		n := copy(s.ring, s.ring[s.head:])
		copy(s.dead, s.dead[s.head:])
		clear(s.ring[n:])
		s.ring, s.dead = s.ring[:n], s.dead[:n]
		s.head = 0
	}
}

// unindexLocked forgets a retained update that is being deleted.
func (s *MemoryStore) unindexLocked(u *Update) {
	if seq, ok := s.byID[u.ID]; ok && uint64(seq) == u.Seq {
		delete(s.byID, u.ID)
	}
	s.bytes -= int64(UpdateSize(u))
	s.live--
}

// dropLocked deletes the update with Seq seq for a retention rule: it
// stays in the ring, marked dead, until eviction reaches it.
func (s *MemoryStore) dropLocked(seq uint64) {
	i := s.indexLocked(int(seq))
	if i < 0 || s.dead[i] {
		return
	}
	s.dead[i] = true
	s.unindexLocked(s.ring[i])
	// Keep only what the ring's order needs: Seq and Time.
	s.ring[i] = &Update{Seq: s.ring[i].Seq, Time: s.ring[i].Time}
}

// SetRetention applies per-topic retention rules (see RetentionRule) to
// the updates retained and to every later one.
func (s *MemoryStore) SetRetention(rules []RetentionRule) error {
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	r, err := NewRetention(rules, s.cfg.MaxUpdates)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	s.ret = r
	now := time.Now()
	for i := s.head; i < len(s.ring); i++ {
		if !s.dead[i] {
			r.Add(s.ring[i], now, s.dropLocked)
		}
	}
	return nil
}

// indexLocked returns the ring index of the update with Seq seq, or -1
// when it is no longer retained. Seqs are consecutive in the ring.
func (s *MemoryStore) indexLocked(seq int) int {
	if s.head == len(s.ring) {
		return -1
	}
	i := s.head + seq - int(s.ring[s.head].Seq)
	if i < s.head || i >= len(s.ring) {
		return -1
	}
	return i
}

// firstLiveLocked returns the ring index of the oldest update not older
// than MaxAge at now.
func (s *MemoryStore) firstLiveLocked(now time.Time) int {
	i := s.head
	if s.cfg.MaxAge == 0 {
		return i
	}
	// Times are non-decreasing: binary search for the first young enough.
	lo, hi := i, len(s.ring)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if now.Sub(s.ring[m].Time) > s.cfg.MaxAge {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// After returns the page of retained updates after from (see hub.Store),
// read under the store's read lock: pointers to the stored updates, no
// copy.
func (s *MemoryStore) After(ctx context.Context, from Cursor, maxBytes int) (Page, error) {
	if err := ctx.Err(); err != nil {
		return Page{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return Page{}, ErrStoreClosed
	}
	now := time.Now()
	first := s.firstLiveLocked(now)
	var p Page
	switch {
	case from.Seq > 0:
		p.Next = from.Seq
		if s.head < len(s.ring) {
			// Seqs are consecutive in the ring: the next one's index.
			if i := s.head + int(from.Seq+1) - int(s.ring[s.head].Seq); i > first {
				first = i
			}
		}
	case from.ID == "":
		p.Found = true
	default:
		if seq, ok := s.byID[from.ID]; ok {
			if i := s.indexLocked(seq); i >= first && !s.ret.Expired(s.ring[i], now) {
				first, p.Found, p.Anchor, p.Next = i+1, true, uint64(seq), uint64(seq)
			}
		}
	}
	used := 0
	i := first
	if i < len(s.ring) { // at most what is left, and what fits by the overhead alone
		p.Updates = make([]*Update, 0, min(len(s.ring)-i, maxBytes/updateOverhead+1))
	}
	for ; i < len(s.ring); i++ {
		u := s.ring[i]
		if s.dead[i] || s.ret.Expired(u, now) {
			p.Next = u.Seq
			continue
		}
		size := UpdateSize(u)
		if PageFull(len(p.Updates), used, size, maxBytes) {
			break
		}
		used += size
		p.Updates = append(p.Updates, u)
		p.Next = u.Seq
	}
	p.End = i >= len(s.ring)
	return p, nil
}

// Subscribe calls fn with every update appended from now on, in Seq order,
// synchronously from Append, which holds the store's delivery lock: while
// fn blocks, Append waits (the hub's back-pressure) but After does not. fn
// must not call the store's Append, Close, nor stop. stop is idempotent;
// after it returns fn is not called again. ctx is unused: nothing waits.
func (s *MemoryStore) Subscribe(_ context.Context, fn func(*Update)) (stop func(), err error) {
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil, ErrStoreClosed
	}
	sub := &memSub{fn: fn}
	// Copy on write: a new slice, so no delivery sees a half-changed one.
	s.subs = append(s.subs[:len(s.subs):len(s.subs)], sub)
	var once sync.Once
	return func() {
		once.Do(func() {
			s.deliverMu.Lock()
			defer s.deliverMu.Unlock()
			subs := make([]*memSub, 0, len(s.subs))
			for _, x := range s.subs {
				if x != sub {
					subs = append(subs, x)
				}
			}
			s.subs = subs
		})
	}, nil
}

// Len reports how many updates the store retains (including any older than
// MaxAge that have not been dropped yet).
func (s *MemoryStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.live
}

// Close drops the history and every subscription. It returns
// ErrStoreClosed when called again. Nothing is buffered, so ctx is unused.
func (s *MemoryStore) Close(context.Context) error {
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	s.closed = true
	s.ring, s.dead, s.head, s.byID, s.bytes, s.live = nil, nil, 0, nil, 0, 0
	s.subs = nil
	return nil
}

var (
	_ Store          = (*MemoryStore)(nil)
	_ RetentionStore = (*MemoryStore)(nil)
	_ BatchAppender  = (*MemoryStore)(nil)
)
