package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/updatecodec"
)

// logRecord is one log record of an update with id and seq, as the
// committer writes it.
func logRecord(id string, seq uint64) []byte {
	u := &hub.Update{ID: id, Topics: []string{"t"}, Data: "data " + id, Seq: seq}
	b := appendWALHeader(nil, seq)
	b = updatecodec.Append(b, u)
	sealWALRecord(b, 0)
	return b
}

func appendFile(t *testing.T, path string, parts ...[]byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range parts {
		if _, err := f.Write(p); err != nil {
			t.Fatal(err)
		}
	}
}

// closed opens the store at path, appends ids and closes it: the bolt
// file then holds them and the log is empty.
func closed(t *testing.T, path string, ids ...string) {
	t.Helper()
	s := openStore(t, path, Config{HistorySize: -1})
	appendIDs(t, s, ids...)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range walPaths(path) {
		if fi, err := os.Stat(p); err != nil || fi.Size() != 0 {
			t.Fatalf("log %s after Close: %v, %v; want empty", p, fi, err)
		}
	}
}

// TestLogReplayedOnce: records past the bolt file's sequence, in either
// log file, are written into it at open, once: the log is then empty,
// and a second open finds the same history, Seqs continuing after it.
// Records the bolt file already has are skipped.
func TestLogReplayedOnce(t *testing.T) {
	path := tempPath(t)
	closed(t, path, "a", "b")
	ps := walPaths(path)
	// A crash before the checkpoint of c and d, with the checkpoint of b
	// (already in bolt) not yet truncated from the other file.
	appendFile(t, ps[0], logRecord("b", 2))
	appendFile(t, ps[1], logRecord("c", 3), logRecord("d", 4))

	for round := range 2 {
		s := openStore(t, path, Config{HistorySize: -1})
		if got, found := history(t, s, ""); !found || !reflect.DeepEqual(got, []string{"a", "b", "c", "d"}) {
			t.Fatalf("round %d: history = %v; want [a b c d]", round, got)
		}
		if want := []int{2, 0}[round]; s.replayed != want {
			t.Fatalf("round %d: replayed %d records; want %d", round, s.replayed, want)
		}
		if st := s.stats(t); st.count != 4 {
			t.Fatalf("round %d: count = %d; want 4", round, st.count)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	s := openStore(t, path, Config{HistorySize: -1})
	if err := s.Append(context.Background(), &hub.Update{ID: "c"}); err != hub.ErrDuplicateID {
		t.Fatalf("Append(c), replayed: %v; want ErrDuplicateID", err)
	}
	if seqs := appendIDs(t, s, "e"); seqs[0] != 5 {
		t.Fatalf("seq of e = %d; want 5", seqs[0])
	}
}

// TestLogTornTail: a record cut short, one whose checksum fails, and
// everything after a gap in the Seqs are dropped at open; the intact
// records before them are kept.
func TestLogTornTail(t *testing.T) {
	for name, tail := range map[string][][]byte{
		"cut short": {logRecord("c", 3)[:20]},
		"bad checksum": func() [][]byte {
			r := logRecord("c", 3)
			r[len(r)-1] ^= 0xff
			return [][]byte{r, logRecord("d", 4)}
		}(),
		"gap":          {logRecord("d", 4)},
		"huge length":  {{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3}},
		"short header": {{0, 0, 0}},
	} {
		t.Run(name, func(t *testing.T) {
			path := tempPath(t)
			closed(t, path, "a")
			appendFile(t, walPaths(path)[0], append([][]byte{logRecord("b", 2)}, tail...)...)
			s := openStore(t, path, Config{HistorySize: -1})
			if got, _ := history(t, s, ""); !reflect.DeepEqual(got, []string{"a", "b"}) {
				t.Fatalf("history = %v; want [a b]", got)
			}
			if seqs := appendIDs(t, s, "c"); seqs[0] != 3 {
				t.Fatalf("seq of c = %d; want 3", seqs[0])
			}
		})
	}
}

// TestLogRetention: retention applies to replayed records as to
// checkpointed ones (the count limit evicts the oldest, their ids free).
func TestLogRetention(t *testing.T) {
	path := tempPath(t)
	closed(t, path, "a", "b")
	appendFile(t, walPaths(path)[1], logRecord("c", 3), logRecord("d", 4))
	s := openStore(t, path, Config{HistorySize: 2})
	if got, _ := history(t, s, ""); !reflect.DeepEqual(got, []string{"c", "d"}) {
		t.Fatalf("history = %v; want [c d]", got)
	}
	appendIDs(t, s, "a") // evicted: its id is free again
	s.stats(t)
}

// TestTailFullWaits: with the tail at its bound, commits wait for the
// checkpointer instead of the tail growing; every append is acknowledged,
// in order, the tail never past the bound after a commit.
func TestTailFullWaits(t *testing.T) {
	defer func(n int) { tailLimit = n }(tailLimit)
	tailLimit = 3
	s := openStore(t, tempPath(t), Config{HistorySize: -1})
	var want []string
	for i := range 20 {
		id := string(rune('a' + i))
		appendIDs(t, s, id)
		want = append(want, id)
		s.tmu.Lock()
		n := len(s.tail)
		s.tmu.Unlock()
		if n > 3 {
			t.Fatalf("tail %d after append %d; want at most 3", n, i)
		}
	}
	if got, _ := history(t, s, ""); !reflect.DeepEqual(got, want) {
		t.Fatalf("history = %v; want %v", got, want)
	}
}

// TestBatchRepeatingID: a batch naming one id twice is refused at the
// second, nothing of it stored, and its ids stay free.
func TestBatchRepeatingID(t *testing.T) {
	s := openStore(t, tempPath(t), Config{})
	us := []*hub.Update{{ID: "p"}, {ID: "q"}, {ID: "p"}}
	var be *hub.BatchError
	if err := s.AppendBatch(context.Background(), us); !errors.As(err, &be) || be.Index != 2 || !errors.Is(be.Err, hub.ErrDuplicateID) {
		t.Fatalf("AppendBatch(p q p): %v; want BatchError{2, ErrDuplicateID}", err)
	}
	appendIDs(t, s, "p", "q")
	if got, _ := history(t, s, ""); !reflect.DeepEqual(got, []string{"p", "q"}) {
		t.Fatalf("history = %v; want [p q]", got)
	}
}

// TestLogRewrittenInPlace: a checkpointed log file is rewritten from its
// start, not truncated, so what it held stays past the new records. A
// crash then (the store's files copied while it runs, the bolt file in a
// read transaction) finds every acknowledged update and nothing twice:
// the stale records are in the bolt file, or cut by the new ones.
func TestLogRewrittenInPlace(t *testing.T) {
	ctx := context.Background()
	path := tempPath(t)
	s := openStore(t, path, Config{HistorySize: -1})
	var want []string
	for round := range 4 { // both files checkpointed twice: each rewritten
		ids := ids(fmt.Sprintf("r%d-", round), 0, 8)
		seqs := appendIDs(t, s, ids...)
		want = append(want, ids...)
		if err := s.waitCheckpoint(ctx, seqs[len(seqs)-1]); err != nil {
			t.Fatal(err)
		}
	}
	appendIDs(t, s, "x") // logged at the start of a file with stale records after it
	want = append(want, "x")

	crash := filepath.Join(t.TempDir(), "hub.db")
	if err := s.db.View(func(tx *bbolt.Tx) error { return tx.CopyFile(crash, 0o600) }); err != nil {
		t.Fatal(err)
	}
	s.wmu.Lock()
	cur, off := s.walCur, s.walOff[s.walCur]
	for i, p := range walPaths(path) {
		b, err := os.ReadFile(p)
		if err == nil {
			err = os.WriteFile(walPaths(crash)[i], b, 0o600)
		}
		if err != nil {
			s.wmu.Unlock()
			t.Fatal(err)
		}
		if i == cur && int64(len(b)) <= off {
			s.wmu.Unlock()
			t.Fatalf("current log %d bytes, next record at %d: want stale records past it", len(b), off)
		}
	}
	s.wmu.Unlock()

	c := openStore(t, crash, Config{HistorySize: -1})
	if got, _ := history(t, c, ""); !reflect.DeepEqual(got, want) {
		t.Fatalf("history after the crash = %v; want %v", got, want)
	}
	if seqs := appendIDs(t, c, "y"); seqs[0] != uint64(len(want)+1) {
		t.Fatalf("seq of y = %d; want %d", seqs[0], len(want)+1)
	}

	// A stale record cut in the middle by the new ones ends the file.
	path = tempPath(t)
	closed(t, path, "a", "b")
	stale := logRecord("old", 1)
	appendFile(t, walPaths(path)[0], logRecord("c", 3), logRecord("b", 2), stale[5:], logRecord("d", 4))
	s = openStore(t, path, Config{HistorySize: -1})
	if got, _ := history(t, s, ""); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("history = %v; want [a b c]", got)
	}
}
