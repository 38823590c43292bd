package hubtest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
)

// RunRetentionTests runs the per-topic retention contract
// (hub.RetentionStore) against stores made by open, as RunStoreTests
// does: a topic under a count rule keeps only its last updates while
// other topics keep the store's history, and a topic under an age rule
// loses its old updates. A store shared by several nodes may apply the
// rules shortly after Append (from its delivery path), so the suite waits
// for the history to show them.
func RunRetentionTests(t *testing.T, open func(t *testing.T) hub.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s hub.RetentionStore)
	}{
		{"Count", testRetentionCount},
		{"Age", testRetentionAge},
		{"Invalid", testRetentionInvalid},
		{"Rebuild", testRetentionRebuild},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { _ = s.Close(context.Background()) })
			rs, ok := s.(hub.RetentionStore)
			if !ok {
				t.Fatalf("%T does not implement hub.RetentionStore", s)
			}
			tt.fn(t, rs)
		})
	}
}

func topicIs(topic string) func(string) bool {
	return func(t string) bool { return t == topic }
}

// waitHistory waits until the whole history's ids are want.
func waitHistory(t *testing.T, s hub.Store, want []string) {
	t.Helper()
	var got []string
	until(t, fmt.Sprintf("history %q", want), waitTimeout, func() bool {
		got = got[:0]
		_, _, err := AfterAll(context.Background(), s, "", 0, func(u *hub.Update) bool {
			got = append(got, u.ID)
			return true
		})
		if err != nil {
			t.Fatalf("After: %v", err)
		}
		return slices.Equal(got, want)
	})
}

func appendTopic(t *testing.T, s hub.Store, id, topic string) {
	t.Helper()
	u := &hub.Update{ID: id, Topics: []string{topic, "https://example.com/alternate"}, Data: "data of " + id}
	if err := s.Append(context.Background(), u); err != nil {
		t.Fatalf("Append(%q): %v", id, err)
	}
}

func testRetentionCount(t *testing.T, s hub.RetentionStore) {
	const kept = "https://example.com/kept"
	err := s.SetRetention([]hub.RetentionRule{{Name: "two", Match: topicIs(kept), MaxUpdates: 2}})
	if err != nil {
		t.Fatal(err)
	}
	st := s.(hub.Store)
	for i := 1; i <= 5; i++ {
		appendTopic(t, st, fmt.Sprintf("k%d", i), kept)
		// The alternate topic is the kept one: only the canonical counts.
		u := &hub.Update{ID: fmt.Sprintf("o%d", i), Topics: []string{"https://example.com/other", kept}}
		if err := st.Append(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
	waitHistory(t, st, []string{"o1", "o2", "o3", "k4", "o4", "k5", "o5"})
	// A dropped id is no longer a cursor; a retained one is.
	if ids, found := collectAfter(t, st, "k2"); found || len(ids) != 7 {
		t.Errorf("After(k2) = %q, found %v; want the whole history, not found", ids, found)
	}
	if ids, found := collectAfter(t, st, "k4"); !found || !slices.Equal(ids, []string{"o4", "k5", "o5"}) {
		t.Errorf("After(k4) = %q, found %v; want o4 k5 o5, found", ids, found)
	}
	// Batches count each update.
	if err := hub.AppendBatch(context.Background(), st, []*hub.Update{
		{ID: "k6", Topics: []string{kept}}, {ID: "k7", Topics: []string{kept}}, {ID: "k8", Topics: []string{kept}},
	}); err != nil {
		t.Fatal(err)
	}
	waitHistory(t, st, []string{"o1", "o2", "o3", "o4", "o5", "k7", "k8"})
}

func testRetentionAge(t *testing.T, s hub.RetentionStore) {
	const brief = "https://example.com/brief"
	err := s.SetRetention([]hub.RetentionRule{{Name: "brief", Match: topicIs(brief), MaxAge: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	st := s.(hub.Store)
	appendTopic(t, st, "b1", brief)
	appendTopic(t, st, "o1", "https://example.com/other")
	// Gone once older than the rule allows, other topics kept.
	waitHistory(t, st, []string{"o1"})
	appendTopic(t, st, "b2", brief)
	appendTopic(t, st, "o2", "https://example.com/other")
	if ids, _ := collectAfter(t, st, ""); !slices.Contains(ids, "o2") {
		t.Errorf("history %q lacks o2", ids)
	}
	waitHistory(t, st, []string{"o1", "o2"})
	// Deleted, not only hidden: its id is no longer a cursor.
	until(t, "b2 deleted", waitTimeout, func() bool {
		_, found := collectAfter(t, st, "b2")
		return !found
	})
}

func testRetentionInvalid(t *testing.T, s hub.RetentionStore) {
	for _, r := range []hub.RetentionRule{
		{Name: "no matcher", MaxUpdates: 1},
		{Name: "nothing", Match: topicIs("x")},
		{Name: "negative", Match: topicIs("x"), MaxUpdates: -1},
	} {
		if err := s.SetRetention([]hub.RetentionRule{r}); err == nil {
			t.Errorf("SetRetention(%s): no error", r.Name)
		}
	}
}

// until checks cond every 10ms until it holds, failing t after
// waitTimeout. (hub's tests use hubtest, and hub imports only the standard
// library and its own module's public packages: internal/poll is not one.)
func until(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// Rules set on a store with history apply to it (a store reopened).
func testRetentionRebuild(t *testing.T, s hub.RetentionStore) {
	const kept = "https://example.com/kept"
	st := s.(hub.Store)
	for i := 1; i <= 4; i++ {
		appendTopic(t, st, fmt.Sprintf("k%d", i), kept)
		appendTopic(t, st, fmt.Sprintf("o%d", i), "https://example.com/other")
	}
	err := s.SetRetention([]hub.RetentionRule{{Name: "two", Match: topicIs(kept), MaxUpdates: 2}})
	if err != nil {
		t.Fatal(err)
	}
	waitHistory(t, st, []string{"o1", "o2", "k3", "o3", "k4", "o4"})
	appendTopic(t, st, "k5", kept)
	waitHistory(t, st, []string{"o1", "o2", "o3", "k4", "o4", "k5"})
}
