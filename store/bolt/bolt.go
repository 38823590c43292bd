// Package bolt is the hub's embedded durable store: the update history in
// one bbolt file, for a single hub node.
//
// An Append returns only after the transaction holding the update is
// committed, and bbolt fsyncs on commit, so an acknowledged publish survives
// a crash or kill -9. Appends are committed in groups: one committer
// goroutine takes every Append waiting at that moment and writes them in one
// transaction, so concurrent publishers share an fsync instead of queueing
// for one each, and a lone publisher waits for a single fsync with no added
// delay.
//
// The file holds two buckets:
//
//	updates  Seq (8 bytes, big-endian) → encoded update (internal/updatecodec)
//	meta     format version, count and size of the retained history
//
// Seq comes from the updates bucket's sequence, which is committed with the
// updates, so it survives restarts and never repeats, even when retention
// has deleted everything. The id index (update ID → Seq) is kept in memory,
// rebuilt by one scan of the retained history when the file is opened, and
// so bounded by the retention limits: an append then writes only to the
// last page of updates (its keys only ever grow) and the meta page, where
// an index in the file had a leaf at the id's place in sort order, a
// random page for publisher-given ids, to insert and another to delete
// the evicted id. Files of format 1 (which had an ids bucket) are migrated
// at open: the bucket is deleted. After looks the id up, seeks the cursor
// to the next Seq and reads one page (see hub.Store) in a short read
// transaction: replay costs no scan of older history and holds no
// transaction open.
// Retention (by count, approximate bytes and age) deletes the oldest
// updates in the same transactions that append new ones.
package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/fanout"
	"github.com/ssekit/sse/internal/updatecodec"
)

// Defaults for the zero Config fields.
const (
	// DefaultHistorySize is the number of updates kept when
	// Config.HistorySize is zero.
	DefaultHistorySize = 10_000
	// DefaultMaxBatch is the most appends committed in one transaction when
	// Config.MaxBatch is zero.
	DefaultMaxBatch = 1024
	// DefaultOpenTimeout is how long Open waits for the file lock when
	// Config.OpenTimeout is zero.
	DefaultOpenTimeout = time.Second
)

// Errors returned by the store besides hub.ErrStoreClosed,
// hub.ErrDuplicateID and hub.ErrNoID.
var (
	// ErrInvalidConfig is returned by Open (wrapped with the reason) for a
	// Config it cannot use.
	ErrInvalidConfig = errors.New("bolt: invalid config")
	// ErrIDTooLong is returned by Append for an ID longer than bbolt's
	// maximum key size (32 KiB).
	ErrIDTooLong = errors.New("bolt: update id too long")
	// ErrFormat is returned by Open for a file written in a format this
	// version does not know (a newer ssekit, or not an ssekit store).
	ErrFormat = errors.New("bolt: unknown store format")
)

// Config configures a Store. The zero value keeps the newest 10,000 updates
// with no age or size limit.
type Config struct {
	// HistorySize is the most updates retained; the oldest are deleted
	// beyond it. Zero means DefaultHistorySize (10,000); a negative value
	// means no limit by count. The retained updates' id index is held in
	// memory, about 60 bytes plus the id per update, so whatever limits
	// the history (count, MaxBytes, MaxAge) limits it too.
	HistorySize int

	// MaxBytes bounds the retained history's size: the encoded updates
	// plus their keys and id index entries, which approximates the live
	// data in the file (bbolt's page overhead and free pages are not
	// counted). The newest update is always kept, even if larger. Zero
	// means no limit by size.
	MaxBytes int64

	// MaxAge is how long an update is retained. Expired updates are no
	// longer returned by After; they are deleted by the next Append's
	// transaction. Zero means no limit by age.
	MaxAge time.Duration

	// MaxBatch is the most appends committed in one transaction. Zero
	// means DefaultMaxBatch (1024).
	MaxBatch int

	// OpenTimeout is how long Open waits for the file's lock when another
	// process (or Store) has it open. Zero means DefaultOpenTimeout (1s).
	OpenTimeout time.Duration

	// Now returns the current time, used for Update.Time and age-based
	// retention. Nil means time.Now; tests inject a fake clock.
	Now func() time.Time
}

var (
	bucketUpdates = []byte("updates")
	bucketMeta    = []byte("meta")
	// bucketIDsV1 is format 1's id index, deleted by the migration to 2.
	bucketIDsV1 = []byte("ids")

	keyFormat = []byte("format")
	keyCount  = []byte("count")
	keyBytes  = []byte("bytes")
)

// initialMmapSize is the file mapping's initial size (see Open).
const initialMmapSize = 64 << 20

// storeFormat is the version of the bucket layout, kept in meta/format.
// Format 1 had the id index in an ids bucket; 2 keeps it in memory.
const storeFormat = 2

// Store is a hub.Store in a bbolt file. It is safe for concurrent use.
type Store struct {
	db    *bbolt.DB
	cfg   Config
	now   func() time.Time
	limit int // HistorySize after defaults; < 0 means none

	// mu guards pending and closed.
	mu      sync.Mutex
	pending []*request
	closed  bool
	wake    chan struct{} // cap 1: pending has work or closed was set

	committerDone chan struct{}

	// committed is the highest Seq committed, stored by the committer
	// before it hands the batch to the dispatcher. A new subscriber starts
	// after it: updates committed before Subscribe are history, for After.
	committed atomic.Uint64

	// ids is the id index of the committed, retained history: update ID →
	// Seq. Only the committer writes it (after a commit succeeds, under
	// imu), so the committer reads it without imu; After reads it under
	// imu.RLock.
	imu sync.RWMutex
	ids map[string]uint64
	// tx is the committer's view of the index inside its open
	// transaction, applied to ids only once that transaction committed.
	tx indexTx
	// ret is the per-topic retention index (SetRetention), used by the
	// committer; nil without rules.
	ret atomic.Pointer[hub.Retention]

	// subs are the Subscribe callbacks the dispatcher calls.
	subs fanout.List

	// dmu guards dqueue and dclosed: committed batches waiting for the
	// dispatcher goroutine.
	dmu            sync.Mutex
	dqueue         [][]*hub.Update
	dclosed        bool
	dwake          chan struct{}
	dispatcherDone chan struct{}

	closeOnce sync.Once
	closeDone chan struct{} // closed when shutdown has finished
	closeErr  error         // set before closeDone is closed
}

// request is one Append or AppendBatch waiting for the committer.
type request struct {
	ctx  context.Context
	us   []*hub.Update // the committer's own copies, later given to subscribers
	err  error
	done chan struct{}

	// batch: us came from AppendBatch, so a refusal names its index.
	batch bool
	// Append's single update, with no allocation of its own for us.
	one   [1]*hub.Update
	upd   hub.Update
	topic [1]string // upd.Topics for a single-topic update
}

// Open opens (creating if needed) the store in the bbolt file at path. Only
// one Store, in one process, can have a file open at a time.
func Open(path string, cfg Config) (*Store, error) {
	if cfg.MaxBatch < 0 {
		return nil, fmt.Errorf("%w: negative MaxBatch %d", ErrInvalidConfig, cfg.MaxBatch)
	}
	if cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("%w: negative MaxBytes %d", ErrInvalidConfig, cfg.MaxBytes)
	}
	if cfg.MaxAge < 0 {
		return nil, fmt.Errorf("%w: negative MaxAge %v", ErrInvalidConfig, cfg.MaxAge)
	}
	s := &Store{
		cfg:            cfg,
		now:            cfg.Now,
		limit:          cfg.HistorySize,
		wake:           make(chan struct{}, 1),
		committerDone:  make(chan struct{}),
		dwake:          make(chan struct{}, 1),
		dispatcherDone: make(chan struct{}),
		closeDone:      make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.limit == 0 {
		s.limit = DefaultHistorySize
	}
	if s.cfg.MaxBatch == 0 {
		s.cfg.MaxBatch = DefaultMaxBatch
	}
	timeout := cfg.OpenTimeout
	if timeout <= 0 {
		timeout = DefaultOpenTimeout
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      timeout,
		FreelistType: bbolt.FreelistMapType,
		// The free-page list is not written with every commit (it is
		// rebuilt by a scan when the file is opened): a commit then writes
		// only the pages its appends changed and the meta page. What is
		// committed is as durable as before.
		NoFreelistSync: true,
		// Address space for the file to grow into without remapping: a
		// remap copies every node the open write transaction holds
		// (bbolt's dereference), a quarter of a batch's allocations in the
		// publish profile. Only the file's pages are ever touched.
		InitialMmapSize: initialMmapSize,
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	s.db = db
	if err := db.Update(initBuckets); err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	if err := db.View(s.load); err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	go s.committer()
	go s.dispatcher()
	return s, nil
}

// initBuckets creates the buckets of a new file, checks the format of an
// existing one and migrates format 1 to 2.
func initBuckets(tx *bbolt.Tx) error {
	for _, name := range [][]byte{bucketUpdates, bucketMeta} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	v := meta.Get(keyFormat)
	switch {
	case v == nil:
		if tx.Bucket(bucketUpdates).Sequence() != 0 {
			return fmt.Errorf("%w: updates without a format version", ErrFormat)
		}
		return meta.Put(keyFormat, u64(storeFormat))
	case len(v) != 8:
		return fmt.Errorf("%w: version %x", ErrFormat, v)
	}
	switch f := binary.BigEndian.Uint64(v); f {
	case storeFormat:
		return nil
	case 1: // the ids bucket's content is rebuilt in memory from updates
		if err := tx.DeleteBucket(bucketIDsV1); err != nil && !errors.Is(err, bberrors.ErrBucketNotFound) {
			return err
		}
		return meta.Put(keyFormat, u64(storeFormat))
	default:
		return fmt.Errorf("%w: version %d (this ssekit reads %d and migrates 1)", ErrFormat, f, storeFormat)
	}
}

// load reads the committed Seq and rebuilds the id index from the retained
// history: one pass over updates, reading each entry's header only.
func (s *Store) load(tx *bbolt.Tx) error {
	ups := tx.Bucket(bucketUpdates)
	s.committed.Store(ups.Sequence())
	s.ids = make(map[string]uint64, ups.Stats().KeyN)
	c := ups.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		_, id, err := updatecodec.PeekTimeID(v)
		if err != nil {
			return fmt.Errorf("seq %d: %w", binary.BigEndian.Uint64(k), err)
		}
		s.ids[string(id)] = binary.BigEndian.Uint64(k)
	}
	s.tx = indexTx{base: s.ids, add: map[string]uint64{}, del: map[string]uint64{}}
	return nil
}

// indexTx is the id index as the committer's open transaction sees it:
// base (the committed index) with add and del applied. Its maps are kept
// from one commit to the next, cleared, so a commit allocates none.
type indexTx struct {
	base     map[string]uint64
	add, del map[string]uint64
}

// get returns the Seq of id, as of the open transaction.
func (x *indexTx) get(id string) (uint64, bool) {
	if seq, ok := x.add[id]; ok {
		return seq, true
	}
	seq, ok := x.base[id]
	if ok && x.del[id] == seq {
		return 0, false
	}
	return seq, ok
}

func (x *indexTx) put(id string, seq uint64) { x.add[id] = seq }

// remove drops id from the index if it points at seq (a later update may
// have reused an id whose first update expired).
func (x *indexTx) remove(id string, seq uint64) {
	if cur, ok := x.add[id]; ok {
		if cur == seq {
			delete(x.add, id)
		}
		return
	}
	if cur, ok := x.base[id]; ok && cur == seq {
		x.del[id] = seq
	}
}

func (x *indexTx) reset() {
	clear(x.add)
	clear(x.del)
}

// Append records u, durably: it returns nil only after the transaction that
// holds u is committed to disk. It sets u.Seq and u.Time. When ctx ends
// first Append returns ctx.Err() and u may or may not be stored.
func (s *Store) Append(ctx context.Context, u *hub.Update) error {
	if err := checkID(u); err != nil {
		return err
	}
	r := &request{ctx: ctx, upd: *u, done: make(chan struct{})}
	if len(u.Topics) == 1 { // the usual case: the copy takes no allocation of its own
		r.topic[0] = u.Topics[0]
		r.upd.Topics = r.topic[:]
	} else {
		r.upd.Topics = append([]string(nil), u.Topics...)
	}
	r.one[0] = &r.upd
	r.us = r.one[:]
	if err := s.wait(ctx, r); err != nil {
		return err
	}
	u.Seq, u.Time = r.upd.Seq, r.upd.Time
	return nil
}

// AppendBatch records us in one transaction, all or none (see
// hub.BatchAppender), durably: it returns nil only after that transaction
// is committed to disk. Concurrent Appends and batches share the commit.
func (s *Store) AppendBatch(ctx context.Context, us []*hub.Update) error {
	if len(us) == 0 {
		return nil
	}
	for i, u := range us {
		if err := checkID(u); err != nil { // ErrNoID, ErrIDTooLong
			return &hub.BatchError{Index: i, Err: err}
		}
	}
	r := &request{ctx: ctx, batch: true, done: make(chan struct{})}
	// The copies in one allocation (their Topics are shared with the
	// caller's, which the hub never modifies: it made them).
	cs := make([]hub.Update, len(us))
	r.us = make([]*hub.Update, len(us))
	for i, u := range us {
		cs[i] = *u
		r.us[i] = &cs[i]
	}
	if err := s.wait(ctx, r); err != nil {
		return err
	}
	for i, u := range us {
		u.Seq, u.Time = cs[i].Seq, cs[i].Time
	}
	return nil
}

// checkID refuses an update the store cannot key.
func checkID(u *hub.Update) error {
	switch {
	case u.ID == "":
		return hub.ErrNoID
	case len(u.ID) > bbolt.MaxKeySize:
		return ErrIDTooLong
	}
	return nil
}

// wait hands r to the committer and waits for its commit.
func (s *Store) wait(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return hub.ErrStoreClosed
	}
	s.pending = append(s.pending, r)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // the committer is already woken
	}

	select {
	case <-r.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return r.err
}

// committer is the only writer: it takes the pending appends in batches,
// commits each batch in one transaction and hands it to the dispatcher. It
// returns when the store is closed and nothing is pending.
func (s *Store) committer() {
	defer close(s.committerDone)
	var spare []*request
	for {
		s.mu.Lock()
		batch := s.pending
		if len(batch) > s.cfg.MaxBatch {
			rest := batch[s.cfg.MaxBatch:]
			batch = batch[:s.cfg.MaxBatch:s.cfg.MaxBatch]
			s.pending = append(spare[:0], rest...)
			spare = nil
		} else {
			s.pending = spare[:0]
			spare = nil
		}
		closed := s.closed
		s.mu.Unlock()

		if len(batch) == 0 {
			if closed {
				return
			}
			<-s.wake
			continue
		}
		s.commit(batch)
		clear(batch) // drop references to finished requests
		spare = batch[:0]
	}
}

// commit writes batch in one transaction, then delivers and acknowledges.
func (s *Store) commit(batch []*request) {
	now := time.Unix(0, s.now().UnixNano()) // no monotonic reading, as decoded
	s.tx.reset()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		s.tx.reset() // a previous attempt's changes do not carry over
		return s.appendTx(tx, batch, now)
	})
	if err == nil && (len(s.tx.add) > 0 || len(s.tx.del) > 0) {
		s.imu.Lock()
		for id, seq := range s.tx.del {
			if s.ids[id] == seq {
				delete(s.ids, id)
			}
		}
		for id, seq := range s.tx.add {
			s.ids[id] = seq
		}
		s.imu.Unlock()
	}
	var added []*hub.Update
	for _, r := range batch {
		switch {
		case err != nil && r.err == nil:
			r.err = fmt.Errorf("bolt: commit: %w", err)
		case r.err == nil:
			added = append(added, r.us...)
		}
	}
	if len(added) > 0 {
		s.committed.Store(added[len(added)-1].Seq)
		s.dispatch(added)
	}
	for _, r := range batch {
		close(r.done)
	}
}

// appendTx stores the batch's updates in tx, assigning Seq and Time, and
// applies retention. A request that cannot be stored gets its own error and
// does not fail the others.
func (s *Store) appendTx(tx *bbolt.Tx, batch []*request, now time.Time) error {
	ups, ids, meta := tx.Bucket(bucketUpdates), &s.tx, tx.Bucket(bucketMeta)
	st := stats{count: getU64(meta, keyCount), bytes: getU64(meta, keyBytes)}

	// Expire first, so an expired id can be published again.
	if s.cfg.MaxAge > 0 {
		cutoff := now.Add(-s.cfg.MaxAge)
		if err := trim(ups, ids, &st, func(t time.Time) bool { return t.Before(cutoff) }); err != nil {
			return err
		}
	}
	// The batch's keys and values share one buffer, which bbolt may
	// reference until the commit: one allocation per batch, not two per
	// update. Its size is an upper bound, and if it were exceeded append
	// would move on to a new array while the earlier slices stay valid.
	size := 0
	for _, r := range batch {
		for _, u := range r.us {
			size += 8 + updatecodec.EncodedSize(u)
		}
	}
	slab := make([]byte, 0, size)
	carve := func(start int) []byte { return slab[start:len(slab):len(slab)] }
	// Keys are Seqs, increasing: they append to the last page, which is
	// then filled completely rather than split in half.
	ups.FillPercent = 1
	for _, r := range batch {
		r.err = nil // a previous attempt's error does not carry over
		if err := r.ctx.Err(); err != nil {
			r.err = err // the caller has gone; do not store what it gave up on
			continue
		}
		// Every id is checked before anything is put, so a refused batch
		// leaves nothing behind (earlier requests' ids are already in the
		// index).
		for i, u := range r.us {
			if _, dup := ids.get(u.ID); dup {
				r.err = hub.ErrDuplicateID
				if r.batch {
					r.err = &hub.BatchError{Index: i, Err: hub.ErrDuplicateID}
				}
				break
			}
		}
		if r.err != nil {
			continue
		}
		for _, u := range r.us {
			seq, err := ups.NextSequence()
			if err != nil {
				return err
			}
			u.Seq, u.Time = seq, now
			start := len(slab)
			slab = binary.BigEndian.AppendUint64(slab, seq)
			key := carve(start)
			start = len(slab)
			slab = updatecodec.Append(slab, u)
			val := carve(start)
			if err := ups.Put(key, val); err != nil {
				return err
			}
			ids.put(u.ID, seq)
			st.count++
			st.bytes += entrySize(len(u.ID), len(val))
		}
	}
	if err := s.retain(ups, ids, &st, batch, now); err != nil {
		return err
	}
	if s.limit > 0 && st.count > uint64(s.limit) {
		excess := st.count - uint64(s.limit)
		if err := trim(ups, ids, &st, func(time.Time) bool {
			if excess == 0 {
				return false
			}
			excess--
			return true
		}); err != nil {
			return err
		}
	}
	if s.cfg.MaxBytes > 0 && st.bytes > uint64(s.cfg.MaxBytes) {
		if err := trim(ups, ids, &st, func(time.Time) bool {
			return st.count > 1 && st.bytes > uint64(s.cfg.MaxBytes)
		}); err != nil {
			return err
		}
	}
	if err := meta.Put(keyCount, u64(st.count)); err != nil {
		return err
	}
	return meta.Put(keyBytes, u64(st.bytes))
}

// stats are the retained history's count and approximate size, kept in the
// meta bucket and updated in every write transaction.
type stats struct{ count, bytes uint64 }

// entrySize is what one update adds to stats.bytes: its key and value in
// updates, its id and Seq in the id index (counted as format 1 stored it,
// so MaxBytes means what it meant).
func entrySize(idLen, valLen int) uint64 { return uint64(8 + valLen + idLen + 8) }

// trim deletes the oldest updates while drop(their Time) is true.
func trim(ups *bbolt.Bucket, ids *indexTx, st *stats, drop func(time.Time) bool) error {
	c := ups.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		t, id, err := updatecodec.PeekTimeID(v)
		if err != nil {
			return fmt.Errorf("bolt: retention at seq %d: %w", binary.BigEndian.Uint64(k), err)
		}
		if !drop(t) {
			return nil
		}
		size := entrySize(len(id), len(v))
		ids.remove(string(id), binary.BigEndian.Uint64(k))
		if err := c.Delete(); err != nil {
			return err
		}
		st.count = max(st.count, 1) - 1
		st.bytes -= min(st.bytes, size)
	}
	return nil
}

// dispatch queues a committed batch for the dispatcher goroutine. It never
// blocks on subscribers.
func (s *Store) dispatch(batch []*hub.Update) {
	s.dmu.Lock()
	s.dqueue = append(s.dqueue, batch)
	s.dmu.Unlock()
	select {
	case s.dwake <- struct{}{}:
	default:
	}
}

// dispatcher calls the Subscribe callbacks with committed updates in Seq
// order. Being a single goroutine, it calls each callback from one
// goroutine at a time, and a slow callback delays deliveries but never the
// commits. It returns once closed and drained.
func (s *Store) dispatcher() {
	defer close(s.dispatcherDone)
	for {
		s.dmu.Lock()
		q := s.dqueue
		s.dqueue = nil
		closed := s.dclosed
		s.dmu.Unlock()
		if len(q) == 0 {
			if closed {
				return
			}
			<-s.dwake
			continue
		}
		for _, batch := range q {
			for _, u := range batch {
				s.subs.Deliver(u)
			}
		}
	}
}

// Subscribe calls fn with every update committed from now on, in Seq order,
// from the dispatcher goroutine, after the commit. Updates committed before
// Subscribe was called are not delivered, even if their Append has not
// returned yet: they are history, returned by After. fn may block: it holds
// back later deliveries, never commits or After. fn must not call stop
// (stop waits for a call of fn in progress). Nothing waits, so ctx is
// unused.
func (s *Store) Subscribe(_ context.Context, fn func(*hub.Update)) (stop func(), err error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, hub.ErrStoreClosed
	}
	return s.subs.Add(fn, s.committed.Load()+1), nil
}

// After returns the page of retained updates after from (see hub.Store),
// read in one short read transaction: the id is looked up in the id index
// and the cursor seeks to the next Seq, so a page costs no scan of older
// history, and only the page is decoded.
func (s *Store) After(ctx context.Context, from hub.Cursor, maxBytes int) (hub.Page, error) {
	if err := ctx.Err(); err != nil {
		return hub.Page{}, err
	}
	var cutoff time.Time
	if s.cfg.MaxAge > 0 {
		cutoff = s.now().Add(-s.cfg.MaxAge)
	}
	expired := func(t time.Time) bool { return s.cfg.MaxAge > 0 && t.Before(cutoff) }
	now := s.now()

	var p hub.Page
	err := s.view(func(tx *bbolt.Tx) error {
		ups := tx.Bucket(bucketUpdates)
		p.Next = from.Seq
		if from.Seq == 0 {
			p.Found = from.ID == ""
			s.imu.RLock()
			seq, ok := s.ids[from.ID]
			s.imu.RUnlock()
			if k := u64(seq); from.ID != "" && ok {
				if v := ups.Get(k); v != nil {
					t, err := updatecodec.PeekTime(v)
					if err != nil {
						return err
					}
					if !expired(t) && !s.expiredByRule(v, binary.BigEndian.Uint64(k), now) {
						p.Found, p.Anchor = true, binary.BigEndian.Uint64(k)
						p.Next = p.Anchor
					}
				}
			}
		}
		used := 0
		c := ups.Cursor()
		k, v := c.Seek(u64(p.Next + 1))
		for ; k != nil; k, v = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			t, err := updatecodec.PeekTime(v)
			if err != nil {
				return fmt.Errorf("bolt: seq %d: %w", seq, err)
			}
			if expired(t) {
				p.Next = seq
				continue
			}
			u, err := updatecodec.Decode(v, seq)
			if err != nil {
				return fmt.Errorf("bolt: seq %d: %w", seq, err)
			}
			if s.retainedExpired(u, now) {
				p.Next = seq
				continue
			}
			size := hub.UpdateSize(u)
			if hub.PageFull(len(p.Updates), used, size, maxBytes) {
				break
			}
			used += size
			p.Updates = append(p.Updates, u)
			p.Next = seq
		}
		p.End = k == nil
		return nil
	})
	if err != nil {
		return hub.Page{}, err
	}
	return p, nil
}

// view runs a read transaction, mapping a closed database to
// hub.ErrStoreClosed.
func (s *Store) view(fn func(*bbolt.Tx) error) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return hub.ErrStoreClosed
	}
	err := s.db.View(fn)
	if errors.Is(err, bberrors.ErrDatabaseNotOpen) {
		return hub.ErrStoreClosed
	}
	return err
}

// Close stops accepting appends, commits those already waiting, delivers
// them to subscribers and closes the file. When ctx ends first (a callback
// that blocks holds the delivery back) Close returns ctx.Err() and finishes
// in the background. Later calls wait for the same end and return the same
// error; other methods return hub.ErrStoreClosed.
func (s *Store) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		go s.shutdown()
	})
	select {
	case <-s.closeDone:
		return s.closeErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// shutdown is Close's work: the committer finishes what is pending, the
// dispatcher delivers it, then the file is closed.
func (s *Store) shutdown() {
	defer close(s.closeDone)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	<-s.committerDone

	s.dmu.Lock()
	s.dclosed = true
	s.dmu.Unlock()
	select {
	case s.dwake <- struct{}{}:
	default:
	}
	<-s.dispatcherDone

	if err := s.db.Close(); err != nil {
		s.closeErr = fmt.Errorf("bolt: close: %w", err)
	}
}

// u64 encodes v as 8 bytes, big-endian: a fresh slice, as bbolt requires
// keys and values to stay valid for the life of the transaction.
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v) }

func getU64(b *bbolt.Bucket, key []byte) uint64 {
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

var (
	_ hub.Store         = (*Store)(nil)
	_ hub.BatchAppender = (*Store)(nil)
)
