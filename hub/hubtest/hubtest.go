// Package hubtest is the conformance suite and benchmark set that every
// hub.Store implementation runs, so the memory, bolt, NATS JetStream and
// Redis Streams stores keep one contract:
//
//	func TestStore(t *testing.T) {
//		hubtest.RunStoreTests(t, func(t *testing.T) hub.Store {
//			s, err := bolt.Open(filepath.Join(t.TempDir(), "h.db"), bolt.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// Retention (by count, size or age) is store-specific and tested by each
// store itself.
package hubtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
)

// waitTimeout bounds every wait for asynchronous delivery. It is generous so
// slow CI machines and network stores pass; nothing is asserted about speed.
const waitTimeout = 20 * time.Second

// RunStoreTests runs the Store contract against stores made by open. Each
// call of open must return a new, empty store that retains at least 1,000
// updates. The suite closes every store it opens (some twice, to check that
// a second Close does not panic), so open need not register a Close itself.
func RunStoreTests(t *testing.T, open func(t *testing.T) hub.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s hub.Store)
	}{
		{"AppendAssignsSeqAndTime", testAppendAssignsSeqAndTime},
		{"AfterEmptyIDReturnsAll", testAfterEmptyIDReturnsAll},
		{"AfterEmptyStore", testAfterEmptyStore},
		{"AfterIDReturnsStrictlyAfter", testAfterIDReturnsStrictlyAfter},
		{"AfterLastIDReturnsNothing", testAfterLastIDReturnsNothing},
		{"AfterUnknownIDReturnsAll", testAfterUnknownIDReturnsAll},
		{"AfterStopsWhenFnReturnsFalse", testAfterStopsWhenFnReturnsFalse},
		{"AfterPagesBounded", testAfterPagesBounded},
		{"AfterPageFromSeq", testAfterPageFromSeq},
		{"FieldsRoundTrip", testFieldsRoundTrip},
		{"DuplicateID", testDuplicateID},
		{"ReusedIDResolvesToFirst", testReusedIDResolvesToFirst},
		{"NoID", testNoID},
		{"LongestNames", testLongestNames},
		{"SubscribeConcurrentAppends", testSubscribeConcurrentAppends},
		{"SubscribeOnlyNewUpdates", testSubscribeOnlyNewUpdates},
		{"SubscribeStop", testSubscribeStop},
		{"SubscribeCallbackMayBlock", testSubscribeCallbackMayBlock},
		{"AfterDuringAppends", testAfterDuringAppends},
		{"Closed", testClosed},
		{"BatchAppend", testBatchAppend},
		{"BatchDuplicateRefusesAll", testBatchDuplicateRefusesAll},
		{"BatchNoID", testBatchNoID},
		{"BatchConcurrent", testBatchConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { _ = s.Close(context.Background()) })
			tt.fn(t, s)
		})
	}
}

// NewUpdate returns an update with id and one topic, ready to Append.
func NewUpdate(id string) *hub.Update {
	return &hub.Update{ID: id, Topics: []string{"https://example.com/t/" + id}, Data: "data of " + id}
}

// AppendN appends n updates with ids prefix-0 … prefix-(n-1) and returns
// them, failing t on any error: for store tests beyond the suite.
func AppendN(t testing.TB, s hub.Store, prefix string, n int) []*hub.Update {
	t.Helper()
	us := make([]*hub.Update, n)
	for i := range us {
		us[i] = NewUpdate(fmt.Sprintf("%s-%d", prefix, i))
		if err := s.Append(context.Background(), us[i]); err != nil {
			t.Fatalf("Append(%q): %v", us[i].ID, err)
		}
	}
	return us
}

// AfterAll reads the history after id page by page (pageBytes each; 0
// means hub.DefaultPageBytes) and calls fn with each update until fn
// returns false, as a replay does: for store tests that want the whole
// history. It fails when a page that is not the end leaves Next where it
// was: the replay would never finish.
func AfterAll(ctx context.Context, s hub.Store, id string, pageBytes int, fn func(*hub.Update) bool) (anchor uint64, found bool, err error) {
	if pageBytes == 0 {
		pageBytes = hub.DefaultPageBytes
	}
	from := hub.Cursor{ID: id}
	for first := true; ; first = false {
		p, err := s.After(ctx, from, pageBytes)
		if err != nil {
			return anchor, found, err
		}
		if first {
			anchor, found = p.Anchor, p.Found
		}
		for _, u := range p.Updates {
			if !fn(u) {
				return anchor, found, nil
			}
		}
		if p.End {
			return anchor, found, nil
		}
		if p.Next <= from.Seq {
			return anchor, found, fmt.Errorf("hubtest: After(%+v): a page of %d updates, Next %d, not the end: the replay would not move on", from, len(p.Updates), p.Next)
		}
		from = hub.Cursor{Seq: p.Next}
	}
}

// collectAfter returns the ids After passes to fn, checking Seq increases.
func collectAfter(t *testing.T, s hub.Store, id string) (ids []string, found bool) {
	t.Helper()
	ids, anchor, found := collectAfterAnchor(t, s, id)
	if !found && anchor != 0 {
		t.Errorf("After(%q): anchor %d with found false; want 0", id, anchor)
	}
	return ids, found
}

// collectAfterAnchor is collectAfter that also returns the anchor Seq.
func collectAfterAnchor(t *testing.T, s hub.Store, id string) (ids []string, anchor uint64, found bool) {
	t.Helper()
	var last uint64
	anchor, found, err := AfterAll(context.Background(), s, id, 0, func(u *hub.Update) bool {
		if len(ids) > 0 && u.Seq <= last {
			t.Errorf("After(%q): Seq %d after %d; want increasing", id, u.Seq, last)
		}
		last = u.Seq
		ids = append(ids, u.ID)
		return true
	})
	if err != nil {
		t.Fatalf("After(%q): %v", id, err)
	}
	return ids, anchor, found
}

func idsOf(us []*hub.Update) []string {
	ids := make([]string, len(us))
	for i, u := range us {
		ids[i] = u.ID
	}
	return ids
}

func testAppendAssignsSeqAndTime(t *testing.T, s hub.Store) {
	before := time.Now().Add(-time.Minute) // tolerate a store clock slightly behind
	us := AppendN(t, s, "seq", 20)
	for i, u := range us {
		if u.Seq == 0 {
			t.Errorf("update %d: Seq 0; want assigned", i)
		}
		if u.Time.IsZero() {
			t.Errorf("update %d: zero Time; want assigned", i)
		}
		if u.Time.Before(before) {
			t.Errorf("update %d: Time %v; want after %v", i, u.Time, before)
		}
		if i > 0 {
			if u.Seq <= us[i-1].Seq {
				t.Errorf("update %d: Seq %d after %d; want increasing", i, u.Seq, us[i-1].Seq)
			}
			if u.Time.Before(us[i-1].Time) {
				t.Errorf("update %d: Time %v before previous %v; want non-decreasing", i, u.Time, us[i-1].Time)
			}
		}
	}
	// The Seq seen by After is the one Append assigned.
	i := 0
	_, _, err := AfterAll(context.Background(), s, "", 0, func(u *hub.Update) bool {
		if i < len(us) && u.Seq != us[i].Seq {
			t.Errorf("After: update %q Seq %d; want %d as assigned by Append", u.ID, u.Seq, us[i].Seq)
		}
		i++
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testAfterEmptyIDReturnsAll(t *testing.T, s hub.Store) {
	us := AppendN(t, s, "all", 50)
	ids, found := collectAfter(t, s, "")
	if !found {
		t.Errorf(`After(""): found false; want true`)
	}
	if want := idsOf(us); !slices.Equal(ids, want) {
		t.Errorf(`After(""): got %v; want %v`, ids, want)
	}
}

func testAfterEmptyStore(t *testing.T, s hub.Store) {
	ids, _ := collectAfter(t, s, "")
	if len(ids) != 0 {
		t.Errorf(`After("") on an empty store: got %v; want nothing`, ids)
	}
	ids, found := collectAfter(t, s, "unknown")
	if found || len(ids) != 0 {
		t.Errorf(`After("unknown") on an empty store: got %v, found %v; want nothing, false`, ids, found)
	}
}

func testAfterIDReturnsStrictlyAfter(t *testing.T, s hub.Store) {
	us := AppendN(t, s, "after", 30)
	for _, i := range []int{0, 1, 14, 28} {
		ids, anchor, found := collectAfterAnchor(t, s, us[i].ID)
		if !found {
			t.Errorf("After(%q): found false; want true", us[i].ID)
		}
		if anchor != us[i].Seq {
			t.Errorf("After(%q): anchor %d; want its Seq %d", us[i].ID, anchor, us[i].Seq)
		}
		if want := idsOf(us[i+1:]); !slices.Equal(ids, want) {
			t.Errorf("After(%q): got %v; want %v", us[i].ID, ids, want)
		}
	}
}

func testAfterLastIDReturnsNothing(t *testing.T, s hub.Store) {
	us := AppendN(t, s, "last", 5)
	ids, found := collectAfter(t, s, us[4].ID)
	if !found || len(ids) != 0 {
		t.Errorf("After(last id): got %v, found %v; want nothing, true", ids, found)
	}
}

func testAfterUnknownIDReturnsAll(t *testing.T, s hub.Store) {
	us := AppendN(t, s, "unknown", 10)
	ids, found := collectAfter(t, s, "never-appended")
	if found {
		t.Errorf("After(unknown): found true; want false")
	}
	if want := idsOf(us); !slices.Equal(ids, want) {
		t.Errorf("After(unknown): got %v; want the whole history %v", ids, want)
	}
}

func testAfterStopsWhenFnReturnsFalse(t *testing.T, s hub.Store) {
	us := AppendN(t, s, "stop", 20)
	for _, id := range []string{"", us[3].ID, "never-appended"} {
		calls := 0
		_, _, err := AfterAll(context.Background(), s, id, 0, func(*hub.Update) bool {
			calls++
			return calls < 3
		})
		if err != nil {
			t.Fatalf("After(%q): %v", id, err)
		}
		if calls != 3 {
			t.Errorf("After(%q) with fn returning false on the 3rd call: %d calls; want 3", id, calls)
		}
	}
}

// testAfterPagesBounded: pages hold at most maxBytes of updates (by
// hub.UpdateSize) or a single larger one, never none before the end, and
// together they are the history, in order, whatever the page size.
func testAfterPagesBounded(t *testing.T, s hub.Store) {
	const pageBytes = 16 << 10
	var want []string
	for i := range 40 {
		u := NewUpdate(fmt.Sprintf("page-%d", i))
		u.Data = strings.Repeat("d", 3000)
		if i == 17 {
			u.Data = strings.Repeat("L", 40<<10) // larger than a page: alone in its own
		}
		if err := s.Append(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		want = append(want, u.ID)
	}
	for _, id := range []string{"", "page-4", "never-appended"} {
		var got []string
		from := hub.Cursor{ID: id}
		pages := 0
		for {
			p, err := s.After(context.Background(), from, pageBytes)
			if err != nil {
				t.Fatalf("After(%+v, %d): %v", from, pageBytes, err)
			}
			pages++
			if pages > 100 {
				t.Fatalf("After(%q): more than 100 pages for 40 updates", id)
			}
			size := 0
			for _, u := range p.Updates {
				size += hub.UpdateSize(u)
				got = append(got, u.ID)
			}
			if size > pageBytes && len(p.Updates) > 1 {
				t.Errorf("After(%+v, %d): a page of %d updates taking %d bytes; want at most %d or a single update", from, pageBytes, len(p.Updates), size, pageBytes)
			}
			if from.Seq == 0 {
				if wantFound := id != "never-appended"; p.Found != wantFound {
					t.Errorf("After(%q): first page Found %v; want %v", id, p.Found, wantFound)
				}
			}
			if p.End {
				break
			}
			if len(p.Updates) == 0 {
				t.Fatalf("After(%+v): an empty page that is not the end", from)
			}
			if last := p.Updates[len(p.Updates)-1].Seq; p.Next != last {
				t.Errorf("After(%+v): Next %d; want the last update's Seq %d", from, p.Next, last)
			}
			from = hub.Cursor{Seq: p.Next}
		}
		w := want
		if id == "page-4" {
			w = want[5:]
		}
		if !slices.Equal(got, w) {
			t.Errorf("pages after %q: got %v; want %v", id, got, w)
		}
		if pages < 8 {
			t.Errorf("pages after %q: %d pages of %d bytes for over 150 KB; want pages, not the whole history at once", id, pages, pageBytes)
		}
	}
}

// testAfterPageFromSeq: a Cursor with a Seq continues after that update.
func testAfterPageFromSeq(t *testing.T, s hub.Store) {
	us := AppendN(t, s, "seq", 10)
	p, err := s.After(context.Background(), hub.Cursor{Seq: us[6].Seq}, hub.DefaultPageBytes)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := idsOf(p.Updates), idsOf(us[7:]); !slices.Equal(got, want) {
		t.Errorf("After(Seq of seq-6): got %v; want %v", got, want)
	}
	if p.Next != us[9].Seq {
		t.Errorf("After(Seq of seq-6): Next %d; want %d", p.Next, us[9].Seq)
	}
	p, err = s.After(context.Background(), hub.Cursor{Seq: us[9].Seq}, hub.DefaultPageBytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Updates) != 0 || !p.End || p.Next < us[9].Seq {
		t.Errorf("After(Seq of the last): %d updates, End %v, Next %d; want none, true, at least %d", len(p.Updates), p.End, p.Next, us[9].Seq)
	}
	p, err = s.After(context.Background(), hub.Cursor{ID: us[3].ID}, hub.DefaultPageBytes)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Found || p.Anchor != us[3].Seq {
		t.Errorf("After(ID seq-3): Found %v, Anchor %d; want true, %d", p.Found, p.Anchor, us[3].Seq)
	}
}

func testFieldsRoundTrip(t *testing.T, s hub.Store) {
	big := strings.Repeat("0123456789abcdef", 4096) // 64 KiB
	want := []hub.Update{
		{ID: "urn:uuid:6f1c0d8e-1b7a-4c41-9a43-3c1b0f1d2e3f", Topics: []string{"https://example.com/books/1"}},
		{ID: "full", Topics: []string{"https://example.com/a", "https://example.com/b", "urn:c"},
			Private: true, Type: "book.updated", Data: "line 1\nline 2\r\nline 3\n", Retry: 1500 * time.Millisecond},
		{ID: "unicode é 😀", Topics: []string{"/topic with spaces/ü"}, Data: "é😀\x00"},
		{ID: "big", Topics: []string{"big"}, Data: big},
		{ID: "empty-data", Topics: []string{"x"}, Data: ""},
	}
	var mu sync.Mutex
	var live []hub.Update
	done := make(chan struct{})
	stop, err := s.Subscribe(context.Background(), func(u *hub.Update) {
		mu.Lock()
		defer mu.Unlock()
		live = append(live, *u)
		if len(live) == len(want) {
			close(done)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for i := range want {
		u := want[i]
		if err := s.Append(context.Background(), &u); err != nil {
			t.Fatalf("Append(%q): %v", u.ID, err)
		}
	}
	var replayed []hub.Update
	if _, _, err := AfterAll(context.Background(), s, "", 0, func(u *hub.Update) bool {
		replayed = append(replayed, *u)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, done, "Subscribe delivery of every update")
	mu.Lock()
	defer mu.Unlock()
	for name, got := range map[string][]hub.Update{"After": replayed, "Subscribe": live} {
		if len(got) != len(want) {
			t.Fatalf("%s: %d updates; want %d", name, len(got), len(want))
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.ID != w.ID || !slices.Equal(g.Topics, w.Topics) || g.Private != w.Private ||
				g.Type != w.Type || g.Data != w.Data || g.Retry != w.Retry {
				t.Errorf("%s: update %d:\n got {ID:%q Topics:%q Private:%v Type:%q Data:%.40q Retry:%v}\nwant {ID:%q Topics:%q Private:%v Type:%q Data:%.40q Retry:%v}",
					name, i, g.ID, g.Topics, g.Private, g.Type, g.Data, g.Retry,
					w.ID, w.Topics, w.Private, w.Type, w.Data, w.Retry)
			}
			if g.Seq == 0 || g.Time.IsZero() {
				t.Errorf("%s: update %d: Seq %d, Time %v; want both set", name, i, g.Seq, g.Time)
			}
		}
	}
}

func testDuplicateID(t *testing.T, s hub.Store) {
	AppendN(t, s, "dup", 3)
	err := s.Append(context.Background(), NewUpdate("dup-1"))
	if !errors.Is(err, hub.ErrDuplicateID) {
		t.Fatalf("Append of a retained id: got %v; want ErrDuplicateID", err)
	}
	ids, _ := collectAfter(t, s, "")
	if want := []string{"dup-0", "dup-1", "dup-2"}; !slices.Equal(ids, want) {
		t.Errorf("history after a refused duplicate: got %v; want %v", ids, want)
	}
	// The store still works after the refusal.
	if err := s.Append(context.Background(), NewUpdate("dup-3")); err != nil {
		t.Fatalf("Append after a refused duplicate: %v", err)
	}
}

// testReusedIDResolvesToFirst: the hub stores an id a publisher reuses
// as a hub.ReusedID; the store keeps that id byte for byte, and a cursor
// naming the reused id resumes after its first occurrence, the reuse
// included in what follows (draft-08: a duplicate id as a cursor is its
// earliest update).
func testReusedIDResolvesToFirst(t *testing.T, s hub.Store) {
	ctx := context.Background()
	reuse := hub.ReusedID(NewUpdate("r-0"))
	for _, id := range []string{"r-0", "r-1", reuse, "r-2"} {
		if err := s.Append(ctx, NewUpdate(id)); err != nil {
			t.Fatalf("Append(%q): %v", id, err)
		}
	}
	ids, found := collectAfter(t, s, "r-0")
	if want := []string{"r-1", reuse, "r-2"}; !found || !slices.Equal(ids, want) {
		t.Errorf("After(r-0): %q (found %v); want %q after the first r-0", ids, found, want)
	}
	for _, id := range ids {
		if hub.WireID(id) == "r-0" && id != reuse {
			t.Errorf("reused id stored as %q; want %q byte for byte", id, reuse)
		}
	}
	if ids, found := collectAfter(t, s, reuse); !found || !slices.Equal(ids, []string{"r-2"}) {
		t.Errorf("After(the reuse's stored id): %q (found %v); want [r-2]", ids, found)
	}
}

func testNoID(t *testing.T, s hub.Store) {
	u := &hub.Update{Topics: []string{"t"}, Data: "no id"}
	if err := s.Append(context.Background(), u); !errors.Is(err, hub.ErrNoID) {
		t.Fatalf("Append of an update without id: got %v; want hub.ErrNoID", err)
	}
	if u.Seq != 0 {
		t.Errorf("refused Append set Seq %d; want 0", u.Seq)
	}
	if ids, _ := collectAfter(t, s, ""); len(ids) != 0 {
		t.Errorf("history after a refused update: %v; want empty", ids)
	}
}

// testLongestNames: an update at every limit the hub lets through
// (hub.MaxIDLength, MaxTypeLength, MaxTopicLength, multi-byte UTF-8) is
// stored, found by its id and returned whole.
func testLongestNames(t *testing.T, s hub.Store) {
	id := strings.Repeat("é", hub.MaxIDLength/2)
	u := &hub.Update{
		ID:     id,
		Type:   strings.Repeat("t", hub.MaxTypeLength),
		Topics: []string{strings.Repeat("/", hub.MaxTopicLength), "short"},
		Data:   "longest",
	}
	if err := s.Append(context.Background(), u); err != nil {
		t.Fatalf("Append of an update at the hub's limits: %v", err)
	}
	AppendN(t, s, "next", 1)
	ids, found := collectAfter(t, s, id)
	if !found || !slices.Equal(ids, []string{"next-0"}) {
		t.Errorf("After(the longest id): got %v, found %v; want [next-0], true", ids, found)
	}
	var got *hub.Update
	if _, _, err := AfterAll(context.Background(), s, "", 0, func(r *hub.Update) bool {
		got = r
		return false
	}); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.ID != u.ID || got.Type != u.Type || !slices.Equal(got.Topics, u.Topics) {
		t.Errorf("the update at the hub's limits did not come back whole")
	}
}

// recorder collects what a Subscribe callback receives.
type recorder struct {
	mu   sync.Mutex
	got  []*hub.Update
	want int
	done chan struct{}
}

func newRecorder(want int) *recorder {
	return &recorder{want: want, done: make(chan struct{})}
}

func (r *recorder) fn(u *hub.Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cp := *u
	r.got = append(r.got, &cp)
	if len(r.got) == r.want {
		close(r.done)
	}
}

func (r *recorder) updates() []*hub.Update {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func waitClosed(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(waitTimeout):
		t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
	}
}

func testSubscribeConcurrentAppends(t *testing.T, s hub.Store) {
	const appenders, each = 8, 50
	recs := []*recorder{newRecorder(appenders * each), newRecorder(appenders * each)}
	for _, r := range recs {
		stop, err := s.Subscribe(context.Background(), r.fn)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
	}
	var wg sync.WaitGroup
	errs := make(chan error, appenders)
	for a := range appenders {
		wg.Go(func() {
			for i := range each {
				if err := s.Append(context.Background(), NewUpdate(fmt.Sprintf("c%d-%d", a, i))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Append: %v", err)
	}
	for n, r := range recs {
		waitClosed(t, r.done, fmt.Sprintf("subscriber %d to receive %d updates", n, appenders*each))
		got := r.updates()
		seen := make(map[string]bool, len(got))
		for i, u := range got {
			if seen[u.ID] {
				t.Errorf("subscriber %d: %q delivered twice", n, u.ID)
			}
			seen[u.ID] = true
			if i > 0 && u.Seq <= got[i-1].Seq {
				t.Errorf("subscriber %d: Seq %d delivered after %d; want increasing", n, u.Seq, got[i-1].Seq)
			}
		}
		for a := range appenders {
			for i := range each {
				if id := fmt.Sprintf("c%d-%d", a, i); !seen[id] {
					t.Errorf("subscriber %d: %q never delivered", n, id)
				}
			}
		}
		// Delivery order is the history order.
		replayed, _ := collectAfter(t, s, "")
		if !slices.Equal(replayed, idsOf(got)) {
			t.Errorf("subscriber %d: delivery order differs from After order", n)
		}
	}
}

func testSubscribeOnlyNewUpdates(t *testing.T, s hub.Store) {
	AppendN(t, s, "old", 3)
	r := newRecorder(2)
	stop, err := s.Subscribe(context.Background(), r.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	AppendN(t, s, "new", 2)
	waitClosed(t, r.done, "two new updates")
	if got, want := idsOf(r.updates()), []string{"new-0", "new-1"}; !slices.Equal(got, want) {
		t.Errorf("Subscribe delivered %v; want only the updates appended after it: %v", got, want)
	}
}

func testSubscribeStop(t *testing.T, s hub.Store) {
	stopped := newRecorder(1)
	stop, err := s.Subscribe(context.Background(), stopped.fn)
	if err != nil {
		t.Fatal(err)
	}
	AppendN(t, s, "before", 1)
	waitClosed(t, stopped.done, "the update before stop")
	stop()
	stop() // idempotent

	// A second subscriber shows when the next update has been delivered.
	witness := newRecorder(1)
	stopWitness, err := s.Subscribe(context.Background(), witness.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer stopWitness()
	AppendN(t, s, "after", 1)
	waitClosed(t, witness.done, "the update after stop, to the other subscriber")
	if got := idsOf(stopped.updates()); !slices.Equal(got, []string{"before-0"}) {
		t.Errorf("stopped subscriber received %v; want only [before-0]", got)
	}
}

// testSubscribeCallbackMayBlock: the hub's callback blocks while its
// fan-out is behind; After must still answer meanwhile, and every update
// must arrive once the callback is released.
func testSubscribeCallbackMayBlock(t *testing.T, s hub.Store) {
	entered, release := make(chan struct{}), make(chan struct{})
	r := newRecorder(3)
	var once sync.Once
	stop, err := s.Subscribe(context.Background(), func(u *hub.Update) {
		once.Do(func() {
			close(entered)
			<-release
		})
		r.fn(u)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	appended := make(chan error, 1)
	go func() { // the memory store delivers from Append: it waits too
		for i := range 3 {
			if err := s.Append(context.Background(), NewUpdate(fmt.Sprintf("blocked-%d", i))); err != nil {
				appended <- err
				return
			}
		}
		appended <- nil
	}()
	releaseAll := sync.OnceFunc(func() { close(release) })
	defer releaseAll() // so that a failure does not leave the store stuck
	waitClosed(t, entered, "the first delivery")
	replayed := make(chan []string, 1)
	go func() { // After must not wait for the blocked callback
		var ids []string
		_, _, err := AfterAll(context.Background(), s, "", 0, func(u *hub.Update) bool {
			ids = append(ids, u.ID)
			return true
		})
		if err != nil {
			t.Errorf("After while the callback blocks: %v", err)
		}
		replayed <- ids
	}()
	select {
	case ids := <-replayed:
		if len(ids) == 0 || ids[0] != "blocked-0" {
			t.Errorf("After while the callback blocks: got %v; want blocked-0 first", ids)
		}
	case <-time.After(waitTimeout):
		releaseAll()
		t.Fatalf("After did not return within %v while a Subscribe callback blocked", waitTimeout)
	}
	releaseAll()
	select {
	case err := <-appended:
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("Append did not return within %v of releasing the callback", waitTimeout)
	}
	waitClosed(t, r.done, "every update after the callback was released")
	if got, want := idsOf(r.updates()), []string{"blocked-0", "blocked-1", "blocked-2"}; !slices.Equal(got, want) {
		t.Errorf("delivered %v; want %v", got, want)
	}
}

func testAfterDuringAppends(t *testing.T, s hub.Store) {
	const n = 300
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			if err := s.Append(ctx, NewUpdate(fmt.Sprintf("during-%d", i))); err != nil {
				t.Errorf("Append: %v", err)
				return
			}
		}
	}()
	for passes := 0; ; passes++ {
		var last uint64
		prev := -1
		_, _, err := AfterAll(ctx, s, "", 0, func(u *hub.Update) bool {
			if u.Seq <= last {
				t.Errorf("After during appends: Seq %d after %d", u.Seq, last)
			}
			last = u.Seq
			var i int
			if _, err := fmt.Sscanf(u.ID, "during-%d", &i); err != nil || i != prev+1 {
				t.Errorf("After during appends: %q after during-%d; want no gap", u.ID, prev)
			}
			prev = i
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
			ids, _ := collectAfter(t, s, "")
			if len(ids) != n {
				t.Errorf("after %d appends: %d retained; want %d", n, len(ids), n)
			}
			return
		default:
		}
	}
}

func testClosed(t *testing.T, s hub.Store) {
	AppendN(t, s, "closed", 2)
	r := newRecorder(1)
	stop, err := s.Subscribe(context.Background(), r.fn)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	stop() // after Close: must not panic or block
	ctx := context.Background()
	if err := s.Append(ctx, NewUpdate("late")); !errors.Is(err, hub.ErrStoreClosed) {
		t.Errorf("Append after Close: got %v; want ErrStoreClosed", err)
	}
	if _, _, err := AfterAll(ctx, s, "", 0, func(*hub.Update) bool { return true }); !errors.Is(err, hub.ErrStoreClosed) {
		t.Errorf("After after Close: got %v; want ErrStoreClosed", err)
	}
	if _, err := s.Subscribe(context.Background(), func(*hub.Update) {}); !errors.Is(err, hub.ErrStoreClosed) {
		t.Errorf("Subscribe after Close: got %v; want ErrStoreClosed", err)
	}
	if err := s.Close(context.Background()); err != nil && !errors.Is(err, hub.ErrStoreClosed) {
		t.Errorf("second Close: got %v; want nil or ErrStoreClosed", err)
	}
}

// BenchmarkStore measures a store: Append one at a time and from parallel
// goroutines (small updates, about 100 bytes of data), and After replaying
// 1,000 updates. open must return a new, empty store retaining at least
// 1,001 updates; the benchmark closes it.
func BenchmarkStore(b *testing.B, open func(b *testing.B) hub.Store) {
	data := strings.Repeat("x", 100)
	b.Run("Append", func(b *testing.B) {
		s := open(b)
		defer s.Close(context.Background())
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			u := &hub.Update{ID: fmt.Sprintf("a-%d", i), Topics: []string{"https://example.com/bench"}, Data: data}
			if err := s.Append(ctx, u); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("AppendParallel", func(b *testing.B) {
		s := open(b)
		defer s.Close(context.Background())
		ctx := context.Background()
		var mu sync.Mutex
		next := 0
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			mu.Lock()
			g := next
			next++
			mu.Unlock()
			i := 0
			for pb.Next() {
				u := &hub.Update{ID: fmt.Sprintf("p%d-%d", g, i), Topics: []string{"https://example.com/bench"}, Data: data}
				if err := s.Append(ctx, u); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	})
	b.Run("After1000", func(b *testing.B) {
		s := open(b)
		defer s.Close(context.Background())
		ctx := context.Background()
		for i := range 1001 {
			u := &hub.Update{ID: fmt.Sprintf("r-%d", i), Topics: []string{"https://example.com/bench"}, Data: data}
			if err := s.Append(ctx, u); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			_, found, err := AfterAll(ctx, s, "r-0", 0, func(*hub.Update) bool { n++; return true })
			if err != nil || !found || n != 1000 {
				b.Fatalf("After: %d updates, found %v, err %v; want 1000, true, nil", n, found, err)
			}
		}
	})
}
