// Package bolt is the hub's embedded durable store: the update history in
// one bbolt file, for a single hub node.
//
// An Append returns only after the update is on disk: in the write-ahead
// log beside the bolt file (wal.go), written and fdatasynced once per group
// commit, so an acknowledged publish survives kill -9 and power loss.
// Appends are committed in groups: one committer goroutine takes every
// Append waiting at that moment and logs them with one write and one sync,
// so concurrent publishers share a sync instead of queueing for one each,
// and a lone publisher waits for a single sync with no added delay. A
// checkpointer goroutine writes the logged updates into the bolt file in
// the background, in fully synced transactions (every 100 ms, or at once
// past 2048 updates), and then empties the log (rewritten in place): bbolt syncs twice per
// transaction, and now that cost is shared by a checkpoint's updates
// rather than paid by every group commit. The logged updates not yet in
// the bolt file are held in memory, bounded (publishers wait for a
// checkpoint rather than the tail growing); After first waits for the
// checkpoint of everything committed when it was called, so it reads the
// bolt file alone. The log is two files beside the bolt file (PATH.wal0,
// PATH.wal1): a copy of a data dir taken while the hub runs needs all
// three, as the bolt file alone may lag what was acknowledged.
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
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
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
	// DefaultGroupWait is Config.GroupWait when zero.
	DefaultGroupWait = 200 * time.Microsecond
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

	// GroupWait is how long a group commit may wait for company. When a
	// group is acknowledged, its appenders and those already queued
	// behind it are the ones in flight; while fewer appends than that
	// are pending (the rest on their way back), the committer waits
	// until as many are, or GroupWait passed, so that one log sync
	// serves them all rather than alternating groups each paying one. A
	// lone publisher (groups of one) never waits. Zero means
	// DefaultGroupWait; negative: never.
	GroupWait time.Duration

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
// Format 1 had the id index in an ids bucket; 2 keeps it in memory; 3
// adds the write-ahead log (the bolt file alone may lag the acknowledged
// history, so an older ssekit must not open it).
const storeFormat = 3

// Bounds of the log's tail held in memory, and when it is checkpointed.
const (
	// maxTail and maxTailBytes bound the updates logged but not yet in
	// the bolt file; a commit waits for a checkpoint beyond them (so the
	// tail may pass them by one group commit, at most MaxBatch requests).
	maxTail      = 8192
	maxTailBytes = 16 << 20
	// checkpointEvery is the tail length that starts a checkpoint at once;
	// a shorter tail is checkpointed checkpointDelay after it began.
	checkpointEvery = 2048
	checkpointDelay = 100 * time.Millisecond
)

// tailLimit is maxTail, read by Open; tests lower it to make commits wait.
var tailLimit = maxTail

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

	// ids is the id index of the committed, retained history (logged or
	// in the bolt file): update ID → Seq. The committer adds to it after
	// a group commit is synced, the checkpointer deletes what retention
	// dropped after its transaction committed; both under imu, and the
	// committer's and After's reads take imu.RLock.
	imu sync.RWMutex
	ids map[string]uint64
	// seen is the committer's set of the ids of the group it is
	// committing, kept from one commit to the next, cleared.
	seen map[string]struct{}
	// lastSeq is the last Seq given out; committer only (and Open).
	lastSeq uint64
	// replayed is how many log records Open wrote into the bolt file.
	replayed int

	// wmu guards wal, walCur and walOff: the committer writes and syncs
	// the current file under it, the checkpointer switches files under
	// it. walOff is where each file's next record goes: a checkpointed
	// file is rewritten from its start, not truncated, so that once it
	// has reached its size a group commit's fdatasync changes no
	// metadata (no journal commit: measured here, half the CPU and wall
	// time of a sync that grows the file).
	wmu    sync.Mutex
	wal    [2]*os.File
	walCur int
	walOff [2]int64

	// tmu guards the tail: the updates logged but not yet in the bolt
	// file, in Seq order, and what tells the waiters about checkpoints.
	tmu          sync.Mutex
	tail         []logged
	tailBytes    int
	maxTail      int           // tailLimit when opened
	checkpointed uint64        // the last Seq in the bolt file
	cpDone       chan struct{} // closed (and replaced) after each checkpoint
	cpUrgent     bool          // someone waits: checkpoint now, no delay
	failed       error         // a log or checkpoint failure: appends refused from then on

	cpWake           chan struct{} // cap 1: the tail has updates, or closing
	cpStop           atomic.Bool   // the committer has finished: checkpoint all and return
	checkpointerDone chan struct{}
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

// logged is one update of the tail: in the log, not yet in the bolt file.
type logged struct {
	u   *hub.Update // the committer's copy, for retention rules
	val []byte      // its encoding, as bolt stores it
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
	if s.cfg.GroupWait == 0 {
		s.cfg.GroupWait = DefaultGroupWait
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
	if s.wal, err = openWAL(path); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.recover(); err != nil {
		closeWAL(s.wal)
		db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	s.seen = map[string]struct{}{}
	s.maxTail = tailLimit
	s.cpDone = make(chan struct{})
	s.cpWake = make(chan struct{}, 1)
	s.checkpointerDone = make(chan struct{})
	go s.committer()
	go s.checkpointer()
	go s.dispatcher()
	return s, nil
}

// recover writes the log's records past the bolt file's sequence into
// the bolt file, in Seq order and in one synced transaction, then empties
// both log files. A gap ends the replay: what follows it was never
// acknowledged (each group commit's sync covers every earlier record).
func (s *Store) recover() error {
	base := s.committed.Load()
	recs := map[uint64][]byte{}
	for _, f := range s.wal {
		err := readWAL(f, func(seq uint64, val []byte) {
			if seq > base {
				recs[seq] = val
			}
		})
		if err != nil {
			return fmt.Errorf("log: %w", err)
		}
	}
	var tail []logged
	for seq := base + 1; ; seq++ {
		val, ok := recs[seq]
		if !ok {
			break
		}
		u, err := updatecodec.Decode(val, seq)
		if err != nil {
			break // cannot be: its checksum held
		}
		tail = append(tail, logged{u: u, val: val})
	}
	if len(tail) > 0 {
		s.imu.Lock()
		for _, l := range tail {
			s.ids[l.u.ID] = l.u.Seq
		}
		s.imu.Unlock()
		if err := s.checkpointLogged(tail); err != nil {
			return err
		}
		s.committed.Store(tail[len(tail)-1].u.Seq)
		s.replayed = len(tail)
	}
	for _, f := range s.wal {
		if err := truncateWAL(f); err != nil {
			return fmt.Errorf("log: %w", err)
		}
	}
	s.lastSeq = s.committed.Load()
	s.checkpointed = s.lastSeq
	return nil
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
	case 2: // the same buckets; the log beside the file is new (and empty)
		return meta.Put(keyFormat, u64(storeFormat))
	default:
		return fmt.Errorf("%w: version %d (this ssekit reads %d and migrates 1 and 2)", ErrFormat, f, storeFormat)
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
	return nil
}

// indexTx collects the ids a write transaction's retention deleted, to be
// dropped from the id index once that transaction committed (each only if
// the index still points at that Seq: a later update may have reused an id
// whose first update expired).
type indexTx struct{ del []idSeq }

type idSeq struct {
	id  string
	seq uint64
}

func (x *indexTx) remove(id string, seq uint64) { x.del = append(x.del, idSeq{id, seq}) }

// apply drops the collected ids from ids; the caller holds imu.
func (x *indexTx) apply(ids map[string]uint64) {
	for _, d := range x.del {
		if cur, ok := ids[d.id]; ok && cur == d.seq {
			delete(ids, d.id)
		}
	}
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
	company := 0 // requests known to be in flight: the next group waits for as many
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		s.mu.Lock()
		if n := len(s.pending); n > 0 && n < company && s.cfg.GroupWait > 0 && !s.closed {
			s.mu.Unlock()
			s.waitCompany(min(company, s.cfg.MaxBatch), linger)
			s.mu.Lock()
		}
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
		s.mu.Lock()
		company = len(batch) + len(s.pending)
		s.mu.Unlock()
		clear(batch) // drop references to finished requests
		spare = batch[:0]
	}
}

// waitCompany waits until target appends are pending, the store is
// closed, or GroupWait passed (on t).
func (s *Store) waitCompany(target int, t *time.Timer) {
	t.Reset(s.cfg.GroupWait)
	defer t.Stop()
	for {
		select {
		case <-s.wake:
		case <-t.C:
			return
		}
		s.mu.Lock()
		n, closed := len(s.pending), s.closed
		s.mu.Unlock()
		if n >= target || closed {
			return
		}
	}
}

// commit logs batch with one write and one sync, then hands it to the
// dispatcher and the checkpointer and acknowledges it.
func (s *Store) commit(batch []*request) {
	now := time.Unix(0, s.now().UnixNano()) // no monotonic reading, as decoded
	err := s.waitRoom()
	var slab []byte
	var added []*hub.Update
	var tail []logged
	if err == nil {
		size := 0
		for _, r := range batch {
			for _, u := range r.us {
				size += walHeader + updatecodec.EncodedSize(u)
			}
		}
		// One buffer for the batch's records; the tail's values are
		// slices of it, which bolt copies at the checkpoint. Its size is
		// an upper bound; were it exceeded, append would move on to a new
		// array while the earlier slices stay valid.
		slab = make([]byte, 0, size)
		clear(s.seen)
		for _, r := range batch {
			r.err = s.check(r, now)
			if r.err != nil {
				continue
			}
			for _, u := range r.us {
				s.lastSeq++
				u.Seq, u.Time = s.lastSeq, now
				start := len(slab)
				slab = appendWALHeader(slab, u.Seq)
				slab = updatecodec.Append(slab, u)
				sealWALRecord(slab, start)
				tail = append(tail, logged{u: u, val: slab[start+walHeader : len(slab) : len(slab)]})
			}
			added = append(added, r.us...)
		}
	}
	kick := false
	if err == nil && len(tail) > 0 {
		kick, err = s.log(slab, tail)
	}
	for _, r := range batch {
		if err != nil && r.err == nil {
			r.err = err
		}
	}
	if err == nil && len(added) > 0 {
		s.imu.Lock()
		for _, u := range added {
			s.ids[u.ID] = u.Seq
		}
		s.imu.Unlock()
		s.committed.Store(added[len(added)-1].Seq)
		s.dispatch(added)
		if kick {
			s.kickCheckpointer()
		}
	}
	for _, r := range batch {
		close(r.done)
	}
}

// check refuses a request whose caller has gone or that repeats a
// retained id (of the history or earlier in this group), recording its
// ids in s.seen when it is accepted.
func (s *Store) check(r *request, now time.Time) error {
	if err := r.ctx.Err(); err != nil {
		return err // the caller has gone; do not store what it gave up on
	}
	// Every id is checked before any is taken, so a refused batch leaves
	// nothing behind.
	for i, u := range r.us {
		_, dup := s.seen[u.ID]
		if !dup {
			s.imu.RLock()
			seq, ok := s.ids[u.ID]
			s.imu.RUnlock()
			dup = ok && s.live(seq, now)
		}
		if dup {
			for _, v := range r.us[:i] { // nothing of a refused request is taken
				delete(s.seen, v.ID)
			}
			if r.batch {
				return &hub.BatchError{Index: i, Err: hub.ErrDuplicateID}
			}
			return hub.ErrDuplicateID
		}
		s.seen[u.ID] = struct{}{} // a batch repeating an id is refused too
	}
	return nil
}

// live reports whether the update with Seq seq is still retained at now:
// in the tail or the bolt file, and not past its age (an expired id may be
// published again before a checkpoint deletes it). Only a repeated id
// asks, so it costs the usual publish nothing.
func (s *Store) live(seq uint64, now time.Time) bool {
	expired := func(t time.Time) bool {
		return s.cfg.MaxAge > 0 && t.Before(now.Add(-s.cfg.MaxAge))
	}
	s.tmu.Lock()
	if len(s.tail) > 0 && seq >= s.tail[0].u.Seq {
		i := int(seq - s.tail[0].u.Seq) // the tail's Seqs are consecutive
		var u *hub.Update
		if i < len(s.tail) {
			u = s.tail[i].u
		}
		s.tmu.Unlock()
		return u != nil && !expired(u.Time) && !s.retainedExpired(u, now)
	}
	s.tmu.Unlock()
	live := true // on a read error, refuse the id rather than repeat it
	_ = s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketUpdates).Get(u64(seq))
		if v == nil {
			live = false
			return nil
		}
		t, err := updatecodec.PeekTime(v)
		if err == nil {
			live = !expired(t) && !s.expiredByRule(v, seq, now)
		}
		return nil
	})
	return live
}

// waitRoom waits while the tail is full, for the checkpointer to empty it.
func (s *Store) waitRoom() error {
	for {
		s.tmu.Lock()
		if s.failed != nil {
			err := s.failed
			s.tmu.Unlock()
			return err
		}
		if len(s.tail) < s.maxTail && s.tailBytes < maxTailBytes {
			s.tmu.Unlock()
			return nil
		}
		s.cpUrgent = true
		done := s.cpDone
		s.tmu.Unlock()
		s.kickCheckpointer()
		<-done
	}
}

// log writes a group's records to the current log file and syncs it, then
// adds them to the tail. A failure is final: the file may hold part of
// the group, so no later group could be appended after it safely. It
// reports whether the checkpointer has news: the tail was empty (its
// delay starts) or has just grown long enough to checkpoint at once. Any
// other commit would only wake it to wait again.
func (s *Store) log(slab []byte, tail []logged) (kick bool, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	f := s.wal[s.walCur]
	_, err = f.WriteAt(slab, s.walOff[s.walCur])
	if err == nil {
		s.walOff[s.walCur] += int64(len(slab))
		err = fdatasync(f)
	}
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if err != nil {
		s.failed = fmt.Errorf("bolt: log: %w", err)
		return false, s.failed
	}
	before := len(s.tail)
	s.tail = append(s.tail, tail...)
	for _, l := range tail {
		s.tailBytes += len(l.val)
	}
	return before == 0 || before < checkpointEvery && len(s.tail) >= checkpointEvery, nil
}

func (s *Store) kickCheckpointer() {
	select {
	case s.cpWake <- struct{}{}:
	default:
	}
}

// checkpointer writes the tail into the bolt file: at once when it is
// long or someone waits, else checkpointDelay after it began, so that a
// checkpoint's two syncs are shared by many group commits. It returns
// once the committer has finished and the tail is empty.
func (s *Store) checkpointer() {
	defer close(s.checkpointerDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		<-s.cpWake
		if !s.checkpointDue() {
			// A wake meanwhile is a commit, a waiter or Close: only
			// the last two, or a tail grown long, cut the delay short.
			timer.Reset(checkpointDelay)
		delay:
			for {
				select {
				case <-timer.C:
					break delay
				case <-s.cpWake:
					if s.checkpointDue() {
						timer.Stop()
						break delay
					}
				}
			}
		}
		err := s.checkpoint()
		s.tmu.Lock()
		if err != nil && s.failed == nil {
			s.failed = err
		}
		empty := len(s.tail) == 0 || s.failed != nil
		s.tmu.Unlock()
		if s.cpStop.Load() && empty {
			return
		}
		if !empty {
			s.kickCheckpointer()
		}
	}
}

// checkpointDue reports whether a checkpoint should start without waiting
// for checkpointDelay: the tail is long, someone waits for it, or the
// store is closing.
func (s *Store) checkpointDue() bool {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	return s.cpUrgent || len(s.tail) >= checkpointEvery || s.cpStop.Load()
}

// checkpoint writes the tail into the bolt file in one synced transaction
// and marks the log file that held it empty (the next switch to it rewrites
// it from its start). Appends meanwhile go to the
// other log file.
func (s *Store) checkpoint() error {
	s.wmu.Lock()
	s.tmu.Lock()
	snap := s.tail[:len(s.tail):len(s.tail)]
	failed := s.failed
	s.tmu.Unlock()
	if len(snap) == 0 || failed != nil {
		s.wmu.Unlock()
		s.finishCheckpoint(0, 0)
		return nil
	}
	old := s.walCur
	s.walCur ^= 1 // emptied by the previous checkpoint
	s.wmu.Unlock()

	if err := s.checkpointLogged(snap); err != nil {
		s.finishCheckpoint(0, 0)
		return err
	}
	// The old file is rewritten from its start by the next switch to it.
	// What it holds past the new records is then all in the bolt file
	// (Seqs at or below its sequence, skipped at recovery), or ends the
	// file's reading (a record cut by the new ones fails its checksum).
	s.wmu.Lock()
	s.walOff[old] = 0
	s.wmu.Unlock()
	s.finishCheckpoint(len(snap), snap[len(snap)-1].u.Seq)
	return nil
}

// finishCheckpoint drops n checkpointed updates from the tail and wakes
// whoever waits for a checkpoint.
func (s *Store) finishCheckpoint(n int, last uint64) {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if n > 0 {
		for _, l := range s.tail[:n] {
			s.tailBytes -= len(l.val)
		}
		s.tail = append([]logged(nil), s.tail[n:]...)
		if last > 0 {
			s.checkpointed = last
		}
	}
	s.cpUrgent = false
	close(s.cpDone)
	s.cpDone = make(chan struct{})
}

// checkpointLogged writes tail (consecutive Seqs, after the bolt file's
// last) into the bolt file in one transaction, applying retention, and
// then drops what retention deleted from the id index.
func (s *Store) checkpointLogged(tail []logged) error {
	now := time.Unix(0, s.now().UnixNano())
	var ids indexTx
	err := s.db.Update(func(tx *bbolt.Tx) error {
		ids.del = ids.del[:0] // a previous attempt's changes do not carry over
		return s.checkpointTx(tx, &ids, tail, now)
	})
	if err != nil {
		return fmt.Errorf("bolt: checkpoint: %w", err)
	}
	if len(ids.del) > 0 {
		s.imu.Lock()
		ids.apply(s.ids)
		s.imu.Unlock()
	}
	return nil
}

// checkpointTx stores tail's updates in tx and applies retention.
func (s *Store) checkpointTx(tx *bbolt.Tx, ids *indexTx, tail []logged, now time.Time) error {
	ups, meta := tx.Bucket(bucketUpdates), tx.Bucket(bucketMeta)
	st := stats{count: getU64(meta, keyCount), bytes: getU64(meta, keyBytes)}

	if s.cfg.MaxAge > 0 {
		cutoff := now.Add(-s.cfg.MaxAge)
		if err := trim(ups, ids, &st, func(t time.Time) bool { return t.Before(cutoff) }); err != nil {
			return err
		}
	}
	// The keys share one buffer, which bbolt may reference until the
	// commit; the values are the log records' (the tail keeps them).
	keys := make([]byte, 0, 8*len(tail))
	// Keys are Seqs, increasing: they append to the last page, which is
	// then filled completely rather than split in half.
	ups.FillPercent = 1
	for _, l := range tail {
		start := len(keys)
		keys = binary.BigEndian.AppendUint64(keys, l.u.Seq)
		if err := ups.Put(keys[start:len(keys):len(keys)], l.val); err != nil {
			return err
		}
		st.count++
		st.bytes += entrySize(len(l.u.ID), len(l.val))
	}
	if err := ups.SetSequence(tail[len(tail)-1].u.Seq); err != nil {
		return err
	}
	if err := s.retain(ups, ids, &st, tail, now); err != nil {
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
//
// It reads ahead a chunk of keys, then deletes them: deleting at the
// cursor and starting again from First would cost a walk over every leaf
// the transaction has emptied so far (bbolt's First skips them one by
// one), quadratic in what one checkpoint drops; at 150,000 updates/s in
// batches that walk was a third of the hub's CPU.
func trim(ups *bbolt.Bucket, ids *indexTx, st *stats, drop func(time.Time) bool) error {
	const chunk = 512
	var keys [chunk][8]byte
	c, del := ups.Cursor(), ups.Cursor()
	k, v := c.First()
	for {
		n, done := 0, false
		for ; k != nil && n < chunk; k, v = c.Next() {
			t, id, err := updatecodec.PeekTimeID(v)
			if err != nil {
				return fmt.Errorf("bolt: retention at seq %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if !drop(t) {
				done = true
				break
			}
			size := entrySize(len(id), len(v))
			ids.remove(string(id), binary.BigEndian.Uint64(k))
			st.count = max(st.count, 1) - 1
			st.bytes -= min(st.bytes, size)
			copy(keys[n][:], k)
			n++
		}
		if k == nil {
			done = true
		}
		for i := range n { // one cursor for them all: Bucket.Delete makes one each
			// Read in this transaction, so found (the check keeps a
			// Delete from ever landing on another key).
			if at, _ := del.Seek(keys[i][:]); !bytes.Equal(at, keys[i][:]) {
				continue
			}
			if err := del.Delete(); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
		k, v = c.Seek(keys[n-1][:]) // deleted: the key after it
	}
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

	if err := s.waitCheckpoint(ctx, s.committed.Load()); err != nil {
		return hub.Page{}, err
	}
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

// waitCheckpoint waits until the bolt file holds every update up to seq:
// After reads the bolt file alone. A checkpoint asked for starts at once,
// and every reader waiting meanwhile shares it.
func (s *Store) waitCheckpoint(ctx context.Context, seq uint64) error {
	for {
		s.tmu.Lock()
		if s.checkpointed >= seq {
			s.tmu.Unlock()
			return nil
		}
		if s.failed != nil {
			err := s.failed
			s.tmu.Unlock()
			return err
		}
		s.cpUrgent = true
		done := s.cpDone
		s.tmu.Unlock()
		s.kickCheckpointer()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.checkpointerDone:
			return hub.ErrStoreClosed
		}
	}
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
	s.cpStop.Store(true)
	s.kickCheckpointer()
	<-s.checkpointerDone

	s.dmu.Lock()
	s.dclosed = true
	s.dmu.Unlock()
	select {
	case s.dwake <- struct{}{}:
	default:
	}
	<-s.dispatcherDone

	// Every record checkpointed: the log files are left empty (a crash
	// undoing that leaves records the bolt file has, skipped at open).
	s.tmu.Lock()
	done := len(s.tail) == 0 && s.failed == nil
	s.tmu.Unlock()
	if done {
		for _, f := range s.wal {
			if err := truncateWAL(f); err != nil && s.closeErr == nil {
				s.closeErr = fmt.Errorf("bolt: close: %w", err)
			}
		}
	}
	if err := s.db.Close(); err != nil && s.closeErr == nil {
		s.closeErr = fmt.Errorf("bolt: close: %w", err)
	}
	if err := closeWAL(s.wal); err != nil && s.closeErr == nil {
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
