package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/hub/hubtest"
	"github.com/ssekit/sse/internal/poll"
)

// clock is a settable time source for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openStore(t testing.TB, path string, cfg Config) *Store {
	t.Helper()
	s, err := Open(path, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func tempPath(t testing.TB) string { return filepath.Join(t.TempDir(), "hub.db") }

func appendIDs(t testing.TB, s *Store, ids ...string) []uint64 {
	t.Helper()
	seqs := make([]uint64, len(ids))
	for i, id := range ids {
		u := &hub.Update{ID: id, Topics: []string{"t"}, Data: "data " + id}
		if err := s.Append(context.Background(), u); err != nil {
			t.Fatalf("Append(%q): %v", id, err)
		}
		seqs[i] = u.Seq
	}
	return seqs
}

// history returns the ids After passes to fn, and found.
func history(t testing.TB, s *Store, after string) ([]string, bool) {
	t.Helper()
	var ids []string
	_, found, err := hubtest.AfterAll(context.Background(), s, after, 0, func(u *hub.Update) bool {
		ids = append(ids, u.ID)
		return true
	})
	if err != nil {
		t.Fatalf("After(%q): %v", after, err)
	}
	return ids, found
}

func ids(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

func TestAppendAfterRoundTrip(t *testing.T) {
	clk := newClock()
	s := openStore(t, tempPath(t), Config{Now: clk.Now})
	in := &hub.Update{
		ID:      "urn:uuid:1",
		Topics:  []string{"https://example.com/books/1", "https://example.com/books/{id}"},
		Private: true,
		Type:    "update",
		Data:    "line 1\nline 2\x00\xff",
		Retry:   1500 * time.Millisecond,
	}
	if err := s.Append(context.Background(), in); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if in.Seq != 1 || !in.Time.Equal(clk.Now()) {
		t.Fatalf("Append set Seq=%d Time=%v; want 1, %v", in.Seq, in.Time, clk.Now())
	}
	var got []*hub.Update
	_, found, err := hubtest.AfterAll(context.Background(), s, "", 0, func(u *hub.Update) bool {
		got = append(got, u)
		return true
	})
	if err != nil || !found {
		t.Fatalf("After(\"\") = %v, %v; want true, nil", found, err)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0], in) {
		t.Fatalf("After gave %+v; want [%+v]", got, in)
	}
}

func TestAfter(t *testing.T) {
	s := openStore(t, tempPath(t), Config{})
	appendIDs(t, s, ids("a", 1, 5)...)
	tests := []struct {
		name      string
		after     string
		want      []string
		wantFound bool
	}{
		{"all", "", ids("a", 1, 5), true},
		{"middle", "a2", ids("a", 3, 5), true},
		{"last", "a5", nil, true},
		{"unknown", "zzz", ids("a", 1, 5), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := history(t, s, tt.after)
			if !reflect.DeepEqual(got, tt.want) || found != tt.wantFound {
				t.Errorf("After(%q) = %v, found %v; want %v, found %v", tt.after, got, found, tt.want, tt.wantFound)
			}
		})
	}
}

// TestAfterPagesSeeAppends replays in many small pages and appends between
// them: each page is read on its own, up to the history's end at its read.
func TestAfterPagesSeeAppends(t *testing.T) {
	s := openStore(t, tempPath(t), Config{HistorySize: -1})
	n := 300
	appendBatch(t, s, ids("u", 1, n)...)
	var got []string
	var prev uint64
	pages := 0
	from := hub.Cursor{ID: "u5"}
	for {
		p, err := s.After(context.Background(), from, 8<<10)
		if err != nil {
			t.Fatal(err)
		}
		if pages == 0 && !p.Found {
			t.Fatal("first page: u5 not found")
		}
		pages++
		for _, u := range p.Updates {
			if u.Seq <= prev {
				t.Fatalf("seq %d after %d", u.Seq, prev)
			}
			prev = u.Seq
			got = append(got, u.ID)
		}
		if pages == 2 {
			appendIDs(t, s, "late") // commits between two pages
		}
		if p.End {
			break
		}
		from = hub.Cursor{Seq: p.Next}
	}
	if want := append(ids("u", 6, n), "late"); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %d ids; want %d (u6..u%d, late)", len(got), len(want), n)
	}
	if pages < 5 {
		t.Errorf("%d pages of 8 KiB for 300 updates; want several", pages)
	}
}

func TestReopenKeepsHistoryAndSeq(t *testing.T) {
	path := tempPath(t)
	s, err := Open(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	seqs := appendIDs(t, s, "a", "b", "c")
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openStore(t, path, Config{})
	if got, _ := history(t, s, ""); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("history after reopen = %v; want [a b c]", got)
	}
	if got, found := history(t, s, "b"); !found || !reflect.DeepEqual(got, []string{"c"}) {
		t.Fatalf("After(b) after reopen = %v, %v; want [c], true", got, found)
	}
	next := appendIDs(t, s, "d")
	if next[0] != seqs[2]+1 {
		t.Fatalf("seq after reopen = %d; want %d", next[0], seqs[2]+1)
	}
	if err := s.Append(context.Background(), &hub.Update{ID: "a"}); !errors.Is(err, hub.ErrDuplicateID) {
		t.Fatalf("re-Append(a) after reopen: %v; want ErrDuplicateID", err)
	}
}

// TestSeqSurvivesEmptyHistory: once retention has deleted everything, a
// reopened store still continues the sequence instead of reusing numbers.
func TestSeqSurvivesEmptyHistory(t *testing.T) {
	path := tempPath(t)
	clk := newClock()
	s, err := Open(path, Config{MaxAge: time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	appendIDs(t, s, "a", "b")
	clk.Advance(time.Hour)
	appendIDs(t, s, "c") // its transaction deletes a and b
	s.Close(context.Background())

	clk.Advance(time.Hour)
	s = openStore(t, path, Config{MaxAge: time.Minute, Now: clk.Now})
	if got, _ := history(t, s, ""); len(got) != 0 {
		t.Fatalf("history = %v; want empty", got)
	}
	if seq := appendIDs(t, s, "d")[0]; seq != 4 {
		t.Fatalf("seq = %d; want 4", seq)
	}
}

func TestRetentionByCount(t *testing.T) {
	s := openStore(t, tempPath(t), Config{HistorySize: 3})
	appendIDs(t, s, ids("a", 1, 5)...)
	if got, _ := history(t, s, ""); !reflect.DeepEqual(got, ids("a", 3, 5)) {
		t.Fatalf("history = %v; want %v", got, ids("a", 3, 5))
	}
	// a1 was dropped: not found, and the whole retained history instead.
	got, found := history(t, s, "a1")
	if found || !reflect.DeepEqual(got, ids("a", 3, 5)) {
		t.Fatalf("After(a1) = %v, found %v; want %v, false", got, found, ids("a", 3, 5))
	}
	// A dropped id may be published again.
	appendIDs(t, s, "a1")
	if got, _ := history(t, s, ""); !reflect.DeepEqual(got, []string{"a4", "a5", "a1"}) {
		t.Fatalf("history = %v; want [a4 a5 a1]", got)
	}
}

func TestRetentionByCountInOneBatch(t *testing.T) {
	// Many concurrent appends land in few transactions; retention still
	// keeps exactly the newest HistorySize.
	s := openStore(t, tempPath(t), Config{HistorySize: 10})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				u := &hub.Update{ID: fmt.Sprintf("g%d-%d", g, i)}
				if err := s.Append(context.Background(), u); err != nil {
					t.Errorf("Append: %v", err)
				}
			}
		})
	}
	wg.Wait()
	var seqs []uint64
	if _, _, err := hubtest.AfterAll(context.Background(), s, "", 0, func(u *hub.Update) bool {
		seqs = append(seqs, u.Seq)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 10 || seqs[0] != 191 || seqs[9] != 200 {
		t.Fatalf("retained seqs %v; want 191..200", seqs)
	}
}

// TestRetentionTrimsManyInOneCheckpoint: a checkpoint that drops more
// than trim reads ahead at once (by count, by age, by bytes) drops exactly
// the oldest, keeps the index and the counters in step, and what it kept
// is what a reopened store has.
func TestRetentionTrimsManyInOneCheckpoint(t *testing.T) {
	appendMany := func(t *testing.T, s *Store, from, n int, data string) {
		t.Helper()
		for start := from; start < from+n; start += 500 {
			var us []*hub.Update
			for i := start; i < min(start+500, from+n); i++ {
				us = append(us, &hub.Update{ID: fmt.Sprint("u", i), Topics: []string{"t"}, Data: data})
			}
			if err := s.AppendBatch(context.Background(), us); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(t *testing.T, s *Store, path string, cfg Config, want []string) {
		t.Helper()
		if got, _ := history(t, s, ""); !reflect.DeepEqual(got, want) {
			t.Fatalf("history has %d updates (%.3v…); want %d (%.3v…)", len(got), got, len(want), want)
		}
		if st := s.stats(t); st.count != uint64(len(want)) {
			t.Fatalf("stored count = %d; want %d", st.count, len(want))
		}
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		s = openStore(t, path, cfg)
		if got, _ := history(t, s, ""); !reflect.DeepEqual(got, want) {
			t.Fatalf("reopened: history has %d updates; want %d", len(got), len(want))
		}
	}
	t.Run("count", func(t *testing.T) {
		path, cfg := tempPath(t), Config{HistorySize: 100}
		s := openStore(t, path, cfg)
		appendMany(t, s, 1, 3000, "")
		check(t, s, path, cfg, ids("u", 2901, 3000))
	})
	t.Run("age", func(t *testing.T) {
		clk := newClock()
		path := tempPath(t)
		cfg := Config{HistorySize: -1, MaxAge: time.Hour, Now: clk.Now}
		s := openStore(t, path, cfg)
		appendMany(t, s, 1, 1500, "")
		if err := s.waitCheckpoint(context.Background(), s.committed.Load()); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Hour)
		appendMany(t, s, 1501, 10, "")
		check(t, s, path, cfg, ids("u", 1501, 1510))
	})
	t.Run("bytes", func(t *testing.T) {
		path := tempPath(t)
		cfg := Config{HistorySize: -1, MaxBytes: 200 * 1100}
		s := openStore(t, path, cfg)
		appendMany(t, s, 1, 2500, string(make([]byte, 1000)))
		got, _ := history(t, s, "")
		if len(got) < 150 || len(got) > 220 || got[len(got)-1] != "u2500" {
			t.Fatalf("history has %d updates ending %v; want about 200 of 1,000 bytes, the newest last", len(got), got[len(got)-1:])
		}
		if st := s.stats(t); st.bytes > uint64(cfg.MaxBytes) {
			t.Fatalf("%d bytes stored; want at most %d", st.bytes, cfg.MaxBytes)
		}
		first := 2500 - len(got) + 1
		check(t, s, path, cfg, ids("u", first, 2500))
	})
}

func TestRetentionByAge(t *testing.T) {
	clk := newClock()
	s := openStore(t, tempPath(t), Config{MaxAge: time.Hour, Now: clk.Now})
	appendIDs(t, s, "old1", "old2")
	clk.Advance(40 * time.Minute)
	appendIDs(t, s, "mid")
	clk.Advance(30 * time.Minute) // old* are 70 minutes old, mid 30

	// Expired updates are gone from After before any deletion ran.
	if got, _ := history(t, s, ""); !reflect.DeepEqual(got, []string{"mid"}) {
		t.Fatalf("history = %v; want [mid]", got)
	}
	if got, found := history(t, s, "old2"); found || !reflect.DeepEqual(got, []string{"mid"}) {
		t.Fatalf("After(old2) = %v, found %v; want [mid], false", got, found)
	}
	// The next append deletes them, and their ids are free again.
	appendIDs(t, s, "new", "old1")
	if got, _ := history(t, s, ""); !reflect.DeepEqual(got, []string{"mid", "new", "old1"}) {
		t.Fatalf("history = %v; want [mid new old1]", got)
	}
	st := s.stats(t)
	if st.count != 3 {
		t.Fatalf("stored count = %d; want 3", st.count)
	}
}

func TestRetentionByBytes(t *testing.T) {
	data := string(make([]byte, 1000))
	s := openStore(t, tempPath(t), Config{MaxBytes: 3500})
	for i := range 10 {
		if err := s.Append(context.Background(), &hub.Update{ID: fmt.Sprint(i), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := history(t, s, "")
	if want := []string{"7", "8", "9"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("history = %v; want %v", got, want)
	}
	if st := s.stats(t); st.bytes > 3500 || st.count != 3 {
		t.Fatalf("stats = %+v; want 3 updates within 3500 bytes", st)
	}

	// An update larger than MaxBytes is still kept, alone.
	big := string(make([]byte, 5000))
	if err := s.Append(context.Background(), &hub.Update{ID: "big", Data: big}); err != nil {
		t.Fatal(err)
	}
	if got, _ := history(t, s, ""); !reflect.DeepEqual(got, []string{"big"}) {
		t.Fatalf("history = %v; want [big]", got)
	}
}

// stats reads the counters kept in the meta bucket.
func (s *Store) stats(t testing.TB) stats {
	t.Helper()
	var st stats
	// The updates in the log's tail are in the index, not yet in the file.
	if err := s.waitCheckpoint(context.Background(), s.committed.Load()); err != nil {
		t.Fatal(err)
	}
	err := s.view(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		st = stats{count: getU64(meta, keyCount), bytes: getU64(meta, keyBytes)}
		n := tx.Bucket(bucketUpdates).Stats().KeyN
		s.imu.RLock()
		m := len(s.ids)
		s.imu.RUnlock()
		if n != m || uint64(n) != st.count {
			t.Errorf("updates has %d keys, the id index %d, meta count %d; want all equal", n, m, st.count)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestAppendErrors(t *testing.T) {
	s := openStore(t, tempPath(t), Config{})
	appendIDs(t, s, "taken")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		u    *hub.Update
		want error
	}{
		{"duplicate", context.Background(), &hub.Update{ID: "taken"}, hub.ErrDuplicateID},
		{"no id", context.Background(), &hub.Update{}, hub.ErrNoID},
		{"id too long", context.Background(), &hub.Update{ID: string(make([]byte, 40000))}, ErrIDTooLong},
		{"canceled", canceled, &hub.Update{ID: "new"}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Append(tt.ctx, tt.u); !errors.Is(err, tt.want) {
				t.Errorf("Append: %v; want %v", err, tt.want)
			}
			if tt.u.Seq != 0 {
				t.Errorf("failed Append set Seq %d", tt.u.Seq)
			}
		})
	}
	if got, _ := history(t, s, ""); !reflect.DeepEqual(got, []string{"taken"}) {
		t.Fatalf("history = %v; want [taken]", got)
	}
}

// TestDuplicateInOneBatch: of concurrent appends with one id, exactly one
// wins, and the others in its transaction still commit.
func TestDuplicateInOneBatch(t *testing.T) {
	s := openStore(t, tempPath(t), Config{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, dups := 0, 0
	for i := range 20 {
		wg.Go(func() {
			err := s.Append(context.Background(), &hub.Update{ID: "same"})
			other := s.Append(context.Background(), &hub.Update{ID: fmt.Sprint("other", i)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, hub.ErrDuplicateID):
				dups++
			default:
				t.Errorf("Append: %v", err)
			}
			if other != nil {
				t.Errorf("Append(other): %v", other)
			}
		})
	}
	wg.Wait()
	if wins != 1 || dups != 19 {
		t.Fatalf("%d appends won, %d duplicates; want 1, 19", wins, dups)
	}
	if got, _ := history(t, s, ""); len(got) != 21 {
		t.Fatalf("history has %d updates; want 21", len(got))
	}
}

func TestSubscribeOrder(t *testing.T) {
	s := openStore(t, tempPath(t), Config{HistorySize: -1})
	var mu sync.Mutex
	var got []uint64
	inCall := false
	stop, err := s.Subscribe(context.Background(), func(u *hub.Update) {
		mu.Lock()
		if inCall {
			t.Error("callback called concurrently")
		}
		inCall = true
		got = append(got, u.Seq)
		inCall = false
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	const goroutines, each = 8, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if err := s.Append(context.Background(), &hub.Update{ID: fmt.Sprintf("%d-%d", g, i)}); err != nil {
					t.Errorf("Append: %v", err)
				}
			}
		})
	}
	wg.Wait()
	poll.Until(t, "the delivery of the appended updates", waitTimeout, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == goroutines*each
	})
	mu.Lock()
	defer mu.Unlock()
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("delivery %d has seq %d; want %d", i, seq, i+1)
		}
	}
}

func TestSubscribeStop(t *testing.T) {
	s := openStore(t, tempPath(t), Config{})
	var mu sync.Mutex
	var got []string
	stop, err := s.Subscribe(context.Background(), func(u *hub.Update) {
		mu.Lock()
		got = append(got, u.ID)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	appendIDs(t, s, "a")
	poll.Until(t, "one delivery", waitTimeout, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	stop()
	stop() // idempotent
	appendIDs(t, s, "b")
	// A second subscriber registered after stop sees b; once it has,
	// the dispatcher is past b and the stopped one must not have seen it.
	seen := make(chan struct{})
	stop2, err := s.Subscribe(context.Background(), func(u *hub.Update) {
		if u.ID == "c" {
			close(seen)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop2()
	appendIDs(t, s, "c")
	select {
	case <-seen:
	case <-time.After(waitTimeout):
		t.Fatalf("the second subscriber did not get c within %v", waitTimeout)
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("stopped subscriber got %v; want [a]", got)
	}
}

// TestSlowSubscriberDoesNotBlockAppend: a callback that blocks delays
// delivery, not commits.
func TestSlowSubscriberDoesNotBlockAppend(t *testing.T) {
	s := openStore(t, tempPath(t), Config{})
	release := make(chan struct{})
	var n int
	var mu sync.Mutex
	stop, err := s.Subscribe(context.Background(), func(*hub.Update) {
		<-release
		mu.Lock()
		n++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	releaseAll := sync.OnceFunc(func() { close(release) })
	defer releaseAll() // on failure too, so the dispatcher and Close end
	appended := make(chan error, 1)
	go func() {
		for _, id := range ids("x", 1, 20) {
			if err := s.Append(context.Background(), &hub.Update{ID: id}); err != nil {
				appended <- err
				return
			}
		}
		appended <- nil
	}()
	select {
	case err := <-appended:
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("20 Appends did not return within %v while the callback blocked: Append waits for delivery", waitTimeout)
	}
	mu.Lock()
	got := n
	mu.Unlock()
	if got != 0 {
		t.Fatalf("%d deliveries while the callback blocked; want 0", got)
	}
	releaseAll()
	poll.Until(t, "20 deliveries", waitTimeout, func() bool { mu.Lock(); defer mu.Unlock(); return n == 20 })
}

func TestClose(t *testing.T) {
	s, err := Open(tempPath(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	delivered := make(chan uint64, 1)
	if _, err := s.Subscribe(context.Background(), func(u *hub.Update) { delivered <- u.Seq }); err != nil {
		t.Fatal(err)
	}
	appendIDs(t, s, "a")
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close waits for delivery of what was committed.
	select {
	case <-delivered:
	default:
		t.Fatal("Close returned before delivering a committed update")
	}
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Append(context.Background(), &hub.Update{ID: "b"}); !errors.Is(err, hub.ErrStoreClosed) {
		t.Errorf("Append after Close: %v; want ErrStoreClosed", err)
	}
	if _, _, err := hubtest.AfterAll(context.Background(), s, "", 0, func(*hub.Update) bool { return true }); !errors.Is(err, hub.ErrStoreClosed) {
		t.Errorf("After after Close: %v; want ErrStoreClosed", err)
	}
	if _, err := s.Subscribe(context.Background(), func(*hub.Update) {}); !errors.Is(err, hub.ErrStoreClosed) {
		t.Errorf("Subscribe after Close: %v; want ErrStoreClosed", err)
	}
}

// TestCloseFlushesPending: appends racing with Close either fail with
// ErrStoreClosed or are on disk after it.
func TestCloseFlushesPending(t *testing.T) {
	path := tempPath(t)
	s, err := Open(path, Config{HistorySize: -1})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("%d-%d", g, i)
				err := s.Append(context.Background(), &hub.Update{ID: id})
				if errors.Is(err, hub.ErrStoreClosed) {
					return
				}
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		})
	}
	poll.Until(t, "50 acknowledged appends", waitTimeout, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 50 })
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	s = openStore(t, path, Config{HistorySize: -1})
	got, _ := history(t, s, "")
	have := make(map[string]bool, len(got))
	for _, id := range got {
		have[id] = true
	}
	for _, id := range acked {
		if !have[id] {
			t.Fatalf("acknowledged %s is missing after Close", id)
		}
	}
}

func TestOpenLockedFile(t *testing.T) {
	path := tempPath(t)
	openStore(t, path, Config{})
	if s, err := Open(path, Config{OpenTimeout: 50 * time.Millisecond}); err == nil {
		s.Close(context.Background())
		t.Fatal("second Open of a locked file succeeded")
	}
}

func TestOpenBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"negative MaxBatch", Config{MaxBatch: -1}},
		{"negative MaxBytes", Config{MaxBytes: -1}},
		{"negative MaxAge", Config{MaxAge: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tempPath(t), tt.cfg)
			if err == nil {
				s.Close(context.Background())
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Open: %v; want ErrInvalidConfig", err)
			}
		})
	}
}

// waitTimeout bounds every wait of these tests; nothing is asserted about
// speed.
const waitTimeout = 10 * time.Second

func TestAfterContextCanceled(t *testing.T) {
	s := openStore(t, tempPath(t), Config{})
	appendBatch(t, s, ids("a", 1, 20)...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.After(ctx, hub.Cursor{}, hub.DefaultPageBytes); !errors.Is(err, context.Canceled) {
		t.Fatalf("After with a canceled ctx: %v; want context.Canceled", err)
	}
}

// appendBatch appends updates with the given ids, in order, in one
// AppendBatch: seeding a large history one fsync per update would make the
// tests slow on a slow disk.
func appendBatch(t testing.TB, s *Store, ids ...string) {
	t.Helper()
	us := make([]*hub.Update, len(ids))
	for i, id := range ids {
		us[i] = &hub.Update{ID: id, Topics: []string{"t"}, Data: "data " + id}
	}
	if err := s.AppendBatch(context.Background(), us); err != nil {
		t.Fatalf("append batch: %v", err)
	}
}

// appendInLoops runs writers appenders at once, each appending n updates
// one after another (ids "w<writer>-<i>"), and fails t on any error.
func appendInLoops(t *testing.T, s *Store, writers, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, writers*n)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				errs <- s.Append(context.Background(), &hub.Update{ID: fmt.Sprintf("w%d-%d", w, i), Topics: []string{"t"}})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestGroupWaitCommitsEveryAppend: with a long GroupWait, concurrent
// appenders that wait for company are all committed, in one Seq order,
// and a lone appender after them is committed too (it waits at most
// once, then groups of one never wait).
func TestGroupWaitCommitsEveryAppend(t *testing.T) {
	s := openStore(t, tempPath(t), Config{GroupWait: 20 * time.Millisecond})
	const writers, each = 16, 40
	appendInLoops(t, s, writers, each)
	seqs := appendIDs(t, s, "lone-1", "lone-2", "lone-3")
	if want := uint64(writers*each + 3); seqs[2] != want {
		t.Fatalf("last Seq %d; want %d", seqs[2], want)
	}
	n := 0
	_, _, err := hubtest.AfterAll(context.Background(), s, "", 0, func(u *hub.Update) bool {
		n++
		if u.Seq != uint64(n) {
			t.Fatalf("update %d has Seq %d", n, u.Seq)
		}
		return true
	})
	if err != nil || n != writers*each+3 {
		t.Fatalf("After: %d updates, %v; want %d", n, err, writers*each+3)
	}
}

// TestGroupWaitGathersEveryAppenderInFlight: appenders in a closed loop
// (each appends again once answered) come to share one group per round.
// The company a group waits for counts both the appenders it answered
// and those already queued behind it, so two alternating groups merge
// where waiting only for the last group's size kept them apart, each
// paying a log sync.
func TestGroupWaitGathersEveryAppenderInFlight(t *testing.T) {
	s := openStore(t, tempPath(t), Config{GroupWait: time.Second})
	const writers, rounds = 8, 30
	appendInLoops(t, s, writers, rounds)
	// A group's updates share its commit time: the distinct times count
	// the groups.
	groups := map[time.Time]int{}
	_, _, err := hubtest.AfterAll(context.Background(), s, "", 0, func(u *hub.Update) bool {
		groups[u.Time]++
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	// The first groups form before every appender has arrived.
	if allowed := rounds + 3; len(groups) > allowed {
		t.Fatalf("%d appenders in %d rounds made %d groups; want at most %d", writers, rounds, len(groups), allowed)
	}
}

// Group commits arriving while a checkpoint waits out checkpointDelay do
// not start it early: appends one at a time share checkpoints, about one
// per delay, where each commit once set one off (two bbolt syncs apiece).
func TestCheckpointWaitsOutItsDelay(t *testing.T) {
	s := openStore(t, tempPath(t), Config{})
	writeTxs := func() uint64 { // bbolt's transaction id counts the write transactions
		var id uint64
		if err := s.db.View(func(tx *bbolt.Tx) error { id = uint64(tx.ID()); return nil }); err != nil {
			t.Fatal(err)
		}
		return id
	}
	before := writeTxs()
	start := time.Now()
	seqs := appendIDs(t, s, ids("one-at-a-time-", 1, 200)...)
	last := seqs[len(seqs)-1]
	poll.Until(t, "the appends checkpointed", 10*time.Second, func() bool {
		s.tmu.Lock()
		defer s.tmu.Unlock()
		return s.checkpointed >= last
	})
	elapsed := time.Since(start)
	checkpoints := writeTxs() - before
	if allowed := uint64(elapsed/checkpointDelay) + 2; checkpoints > allowed {
		t.Fatalf("200 appends over %v took %d checkpoints; want at most %d, one per %v", elapsed, checkpoints, allowed, checkpointDelay)
	}
	if checkpoints == 0 {
		t.Fatal("no checkpoint wrote the appends")
	}
	if got, _ := history(t, s, ""); len(got) != 200 {
		t.Fatalf("history holds %d updates; want 200", len(got))
	}
}
