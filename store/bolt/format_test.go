package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/updatecodec"
)

// writeFormat1 writes a file as format 1 wrote it: the updates, an ids
// bucket indexing them and meta with format 1.
func writeFormat1(t *testing.T, path string, ids ...string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		ups, err := tx.CreateBucket(bucketUpdates)
		if err != nil {
			return err
		}
		idx, err := tx.CreateBucket(bucketIDsV1)
		if err != nil {
			return err
		}
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		now := time.Unix(0, time.Now().UnixNano())
		var st stats
		for _, id := range ids {
			seq, _ := ups.NextSequence()
			u := &hub.Update{ID: id, Topics: []string{"t"}, Data: "data " + id, Seq: seq, Time: now}
			key, val := u64(seq), updatecodec.Append(nil, u)
			if err := ups.Put(key, val); err != nil {
				return err
			}
			if err := idx.Put([]byte(id), key); err != nil {
				return err
			}
			st.count++
			st.bytes += entrySize(len(id), len(val))
		}
		for k, v := range map[string]uint64{"format": 1, "count": st.count, "bytes": st.bytes} {
			if err := meta.Put([]byte(k), u64(v)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateFormat1: a data dir of the previous format opens, its ids
// bucket is dropped, and the in-memory index answers as the bucket did
// (replay from an id, duplicates refused, retention).
func TestMigrateFormat1(t *testing.T) {
	path := tempPath(t)
	writeFormat1(t, path, "a", "b", "c")

	s := openStore(t, path, Config{HistorySize: 3})
	if got, found := history(t, s, "b"); !found || !reflect.DeepEqual(got, []string{"c"}) {
		t.Fatalf("After(b) = %v, %v; want [c], true", got, found)
	}
	if err := s.Append(context.Background(), &hub.Update{ID: "a"}); !errors.Is(err, hub.ErrDuplicateID) {
		t.Fatalf("Append(a): %v; want ErrDuplicateID", err)
	}
	if seqs := appendIDs(t, s, "d"); seqs[0] != 4 {
		t.Fatalf("seq of d = %d; want 4", seqs[0])
	}
	if got, found := history(t, s, "a"); found || !reflect.DeepEqual(got, []string{"b", "c", "d"}) {
		t.Fatalf("After(a), a evicted = %v, %v; want [b c d], false", got, found)
	}
	s.stats(t) // the index and the counters agree
	err := s.view(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketIDsV1) != nil {
			t.Error("ids bucket still there after the migration")
		}
		if f := getU64(tx.Bucket(bucketMeta), keyFormat); f != storeFormat {
			t.Errorf("format = %d; want %d", f, storeFormat)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// writeFormat2 writes a file as format 2 left it: format 1's buckets
// without ids, meta with format 2, and no log beside it.
func writeFormat2(t *testing.T, path string, ids ...string) {
	t.Helper()
	writeFormat1(t, path, ids...)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bucketIDsV1); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyFormat, u64(2))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateFormat2: a format-2 data dir opens as format 3, its history
// intact (replay, duplicates, Seqs continuing), and an update appended
// after the migration is in the log and, after a reopen, in the file.
func TestMigrateFormat2(t *testing.T) {
	path := tempPath(t)
	writeFormat2(t, path, "a", "b", "c")

	s := openStore(t, path, Config{HistorySize: 3})
	if got, found := history(t, s, "a"); !found || !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Fatalf("After(a) = %v, %v; want [b c], true", got, found)
	}
	if err := s.Append(context.Background(), &hub.Update{ID: "b"}); !errors.Is(err, hub.ErrDuplicateID) {
		t.Fatalf("Append(b): %v; want ErrDuplicateID", err)
	}
	if seqs := appendIDs(t, s, "d"); seqs[0] != 4 {
		t.Fatalf("seq of d = %d; want 4", seqs[0])
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, Config{HistorySize: 3})
	if got, found := history(t, s, ""); !found || !reflect.DeepEqual(got, []string{"b", "c", "d"}) {
		t.Fatalf("history after reopen = %v; want [b c d]", got)
	}
	s.stats(t)
	err := s.view(func(tx *bbolt.Tx) error {
		if f := getU64(tx.Bucket(bucketMeta), keyFormat); f != storeFormat {
			t.Errorf("format = %d; want %d", f, storeFormat)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOpenNewerFormat: a file of a format this version does not know is
// refused with ErrFormat naming the version, and left untouched.
func TestOpenNewerFormat(t *testing.T) {
	path := tempPath(t)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return meta.Put(keyFormat, binary.BigEndian.AppendUint64(nil, storeFormat+1))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Config{})
	if want := fmt.Sprintf("version %d", storeFormat+1); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open: %v; want ErrFormat naming %s", err, want)
	}
}

// TestIDReusedAfterExpiry: the index, as the open transaction
// sees it, lets an expired id be published again and keeps it afterwards.
func TestIDReusedAfterExpiry(t *testing.T) {
	clk := newClock()
	s := openStore(t, tempPath(t), Config{MaxAge: time.Minute, Now: clk.Now})
	appendIDs(t, s, "x", "y")
	clk.Advance(2 * time.Minute)
	appendIDs(t, s, "x")
	if got, found := history(t, s, ""); found != true || !reflect.DeepEqual(got, []string{"x"}) {
		t.Fatalf("history = %v; want [x]", got)
	}
	if err := s.Append(context.Background(), &hub.Update{ID: "x"}); !errors.Is(err, hub.ErrDuplicateID) {
		t.Fatalf("Append(x) again: %v; want ErrDuplicateID", err)
	}
	if _, found := history(t, s, "y"); found {
		t.Fatal("expired y still found")
	}
}
