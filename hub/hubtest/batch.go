package hubtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/ssekit/sse/hub"
)

// batchOf returns n updates with ids prefix-0 … prefix-(n-1).
func batchOf(prefix string, n int) []*hub.Update {
	us := make([]*hub.Update, n)
	for i := range us {
		us[i] = NewUpdate(fmt.Sprintf("%s-%d", prefix, i))
	}
	return us
}

// needBatchAppender skips a test of the all-or-nothing contract for a store
// that appends batches with hub.AppendBatch's fallback.
func needBatchAppender(t *testing.T, s hub.Store) {
	t.Helper()
	if _, ok := s.(hub.BatchAppender); !ok {
		t.Skip("the store is no hub.BatchAppender")
	}
}

// testBatchAppend: a batch is stored in order, each update given an
// increasing Seq and a Time, returned by After and delivered in order.
func testBatchAppend(t *testing.T, s hub.Store) {
	rec := newRecorder(5)
	stop, err := s.Subscribe(context.Background(), rec.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	us := batchOf("b", 5)
	us[1].Topics = []string{"a", "b"}
	us[2].Type, us[2].Private = "kind", true
	if err := hub.AppendBatch(context.Background(), s, us); err != nil {
		t.Fatalf("AppendBatch: %v", err)
	}
	for i, u := range us {
		if u.Seq == 0 || u.Time.IsZero() {
			t.Errorf("update %d: Seq %d, Time %v; want both set", i, u.Seq, u.Time)
		}
		if i > 0 && u.Seq <= us[i-1].Seq {
			t.Errorf("update %d: Seq %d after %d; want increasing", i, u.Seq, us[i-1].Seq)
		}
	}
	want := idsOf(us)
	if ids, _ := collectAfter(t, s, ""); !slices.Equal(ids, want) {
		t.Errorf("history after a batch: got %v; want %v", ids, want)
	}
	waitClosed(t, rec.done, "the batch's deliveries")
	got := rec.updates()
	if !slices.Equal(idsOf(got), want) {
		t.Errorf("delivered: got %v; want %v", idsOf(got), want)
	}
	if !slices.Equal(got[1].Topics, []string{"a", "b"}) || got[2].Type != "kind" || !got[2].Private {
		t.Errorf("delivered fields differ from the batch's")
	}
	if err := hub.AppendBatch(context.Background(), s, nil); err != nil {
		t.Errorf("AppendBatch of no update: %v; want nil", err)
	}
}

// testBatchDuplicateRefusesAll: a batch with one retained id is refused
// whole, naming that update's index; nothing of it is stored or delivered,
// and its other ids stay free.
func testBatchDuplicateRefusesAll(t *testing.T, s hub.Store) {
	needBatchAppender(t, s)
	AppendN(t, s, "old", 2)
	rec := newRecorder(1)
	stop, err := s.Subscribe(context.Background(), rec.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	us := batchOf("new", 4)
	us[2] = NewUpdate("old-1")
	err = hub.AppendBatch(context.Background(), s, us)
	var be *hub.BatchError
	if !errors.As(err, &be) || be.Index != 2 || !errors.Is(err, hub.ErrDuplicateID) {
		t.Fatalf("AppendBatch with a retained id at 2: got %v; want a *hub.BatchError at index 2 wrapping ErrDuplicateID", err)
	}
	if ids, _ := collectAfter(t, s, ""); !slices.Equal(ids, []string{"old-0", "old-1"}) {
		t.Errorf("history after a refused batch: got %v; want [old-0 old-1]", ids)
	}
	// The refused batch's other ids were not taken; the next delivery is
	// this update, not one of the batch.
	if err := s.Append(context.Background(), NewUpdate("new-0")); err != nil {
		t.Fatalf("Append of an id of the refused batch: %v", err)
	}
	waitClosed(t, rec.done, "the delivery after the refused batch")
	if got := idsOf(rec.updates()); !slices.Equal(got[:1], []string{"new-0"}) {
		t.Errorf("first delivery after a refused batch: got %v; want [new-0]", got)
	}
}

// testBatchNoID: an update without id refuses the batch, naming its index.
func testBatchNoID(t *testing.T, s hub.Store) {
	us := batchOf("n", 3)
	us[1].ID = ""
	err := hub.AppendBatch(context.Background(), s, us)
	var be *hub.BatchError
	if !errors.As(err, &be) || be.Index != 1 || !errors.Is(err, hub.ErrNoID) {
		t.Fatalf("AppendBatch with no id at 1: got %v; want a *hub.BatchError at index 1 wrapping ErrNoID", err)
	}
	if _, ok := s.(hub.BatchAppender); !ok {
		return
	}
	if ids, _ := collectAfter(t, s, ""); len(ids) != 0 {
		t.Errorf("history after a refused batch: %v; want empty", ids)
	}
}

// testBatchConcurrent: batches and single appends from several goroutines
// are all stored and delivered once, each batch in its own order.
func testBatchConcurrent(t *testing.T, s hub.Store) {
	const workers, batches, size = 4, 5, 10
	total := workers * batches * (size + 1)
	rec := newRecorder(total)
	stop, err := s.Subscribe(context.Background(), rec.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for b := range batches {
				if err := s.Append(context.Background(), NewUpdate(fmt.Sprintf("s%d-%d", w, b))); err != nil {
					errs <- err
					return
				}
				us := batchOf(fmt.Sprintf("c%d-%d", w, b), size)
				if err := hub.AppendBatch(context.Background(), s, us); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitClosed(t, rec.done, "every delivery")
	got := rec.updates()
	pos := make(map[string]int, len(got))
	for i, u := range got {
		if _, dup := pos[u.ID]; dup {
			t.Fatalf("%s delivered twice", u.ID)
		}
		pos[u.ID] = i
		if i > 0 && u.Seq <= got[i-1].Seq {
			t.Fatalf("delivery %d: Seq %d after %d; want increasing", i, u.Seq, got[i-1].Seq)
		}
	}
	for w := range workers {
		for b := range batches {
			for i := 1; i < size; i++ {
				a, c := fmt.Sprintf("c%d-%d-%d", w, b, i-1), fmt.Sprintf("c%d-%d-%d", w, b, i)
				if pos[a] >= pos[c] {
					t.Fatalf("%s delivered after %s; want the batch's order", a, c)
				}
			}
		}
	}
}
