package bolt

import (
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/updatecodec"
)

// SetRetention applies per-topic retention rules (hub.RetentionRule): it
// rebuilds their index from the retained history in one write
// transaction (deleting what the rules drop already), and from then on
// every commit applies them to its updates. The index is in memory, so a
// store reopened needs SetRetention again (the hub's serve does it).
func (s *Store) SetRetention(rules []hub.RetentionRule) error {
	r, err := hub.NewRetention(rules, max(s.limit, 0))
	if err != nil {
		return err
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return hub.ErrStoreClosed
	}
	now := time.Unix(0, s.now().UnixNano())
	var ids indexTx
	return s.db.Update(func(tx *bbolt.Tx) error {
		ups, meta := tx.Bucket(bucketUpdates), tx.Bucket(bucketMeta)
		ids.del = ids.del[:0]
		st := stats{count: getU64(meta, keyCount), bytes: getU64(meta, keyBytes)}
		var drops []uint64
		c := ups.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			u, err := updatecodec.Decode(v, binary.BigEndian.Uint64(k))
			if err != nil {
				return fmt.Errorf("bolt: retention at seq %d: %w", binary.BigEndian.Uint64(k), err)
			}
			r.Add(u, now, func(seq uint64) { drops = append(drops, seq) })
		}
		for _, seq := range drops {
			if err := dropSeq(ups, &ids, &st, seq); err != nil {
				return err
			}
		}
		if err := meta.Put(keyCount, u64(st.count)); err != nil {
			return err
		}
		if err := meta.Put(keyBytes, u64(st.bytes)); err != nil {
			return err
		}
		// Applied before the commit (a failed one leaves those ids
		// unknown, resolved as cursors like expired ones), under imu for
		// After and the committer.
		s.imu.Lock()
		ids.apply(s.ids)
		s.imu.Unlock()
		// Writes are serialised: the checkpointer's next transaction
		// sees it. The updates still in the log's tail are given to r
		// by that checkpoint.
		s.ret.Store(r)
		return nil
	})
}

// retain applies the retention rules to the updates a transaction stored.
// A transaction that then fails leaves their Seqs in the index: deleting a
// Seq that is not there does nothing, so at worst a topic keeps one fewer
// for a while.
func (s *Store) retain(ups *bbolt.Bucket, ids *indexTx, st *stats, tail []logged, now time.Time) error {
	r := s.ret.Load()
	if r == nil {
		return nil
	}
	var err error
	drop := func(seq uint64) {
		if err == nil {
			err = dropSeq(ups, ids, st, seq)
		}
	}
	for _, l := range tail {
		r.Add(l.u, now, drop)
	}
	return err
}

// retainedExpired reports whether u is past its rule's age at now.
func (s *Store) retainedExpired(u *hub.Update, now time.Time) bool {
	return s.ret.Load().Expired(u, now)
}

// dropSeq deletes the update with Seq seq, if retained.
func dropSeq(ups *bbolt.Bucket, ids *indexTx, st *stats, seq uint64) error {
	k := u64(seq)
	v := ups.Get(k)
	if v == nil {
		return nil
	}
	_, id, err := updatecodec.PeekTimeID(v)
	if err != nil {
		return fmt.Errorf("bolt: retention at seq %d: %w", seq, err)
	}
	size := entrySize(len(id), len(v))
	ids.remove(string(id), seq)
	if err := ups.Delete(k); err != nil {
		return err
	}
	st.count = max(st.count, 1) - 1
	st.bytes -= min(st.bytes, size)
	return nil
}

// expiredByRule is retainedExpired for an encoded update, decoded only
// when some rule bounds by age.
func (s *Store) expiredByRule(v []byte, seq uint64, now time.Time) bool {
	r := s.ret.Load()
	if !r.HasAge() {
		return false
	}
	u, err := updatecodec.Decode(v, seq)
	return err == nil && r.Expired(u, now)
}
