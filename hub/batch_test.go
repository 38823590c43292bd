package hub

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestPublishBatch: a batch is validated update by update (the first
// refused one named by index), ids named twice are refused, and on success
// every update gets its id, Seq and Time in order.
func TestPublishBatch(t *testing.T) {
	h := newHub(t, Config{})
	ctx := context.Background()
	refusals := []struct {
		name  string
		us    []*Update
		index int
		is    error
		says  string
	}{
		{"an invalid update", []*Update{{Topics: []string{"a"}}, {Topics: []string{"a"}, ID: "#x"}}, 1, ErrInvalidUpdate, "id starts with #"},
		{"no topic", []*Update{{}}, 0, ErrInvalidUpdate, "no topic"},
		{"an id twice", []*Update{{Topics: []string{"a"}, ID: "x"}, {Topics: []string{"a"}}, {Topics: []string{"a"}, ID: "x"}}, 2, ErrDuplicateID, "update 0 of the batch"},
	}
	for _, tt := range refusals {
		err := h.PublishBatch(ctx, tt.us)
		var be *BatchError
		if !errors.As(err, &be) || be.Index != tt.index || !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: %v; want a *BatchError at %d wrapping %v saying %q", tt.name, err, tt.index, tt.is, tt.says)
		}
	}
	if p, err := h.store.After(ctx, Cursor{}, DefaultPageBytes); err != nil || len(p.Updates) != 0 {
		t.Fatalf("history after refused batches: %d updates (%v); want none", len(p.Updates), err)
	}
	us := []*Update{{Topics: []string{"a"}, ID: "given"}, {Topics: []string{"a", "b"}}}
	if err := h.PublishBatch(ctx, us); err != nil {
		t.Fatal(err)
	}
	if us[0].ID != "given" || !strings.HasPrefix(us[1].ID, "urn:uuid:") || us[0].Seq == 0 || us[1].Seq <= us[0].Seq || us[1].Time.IsZero() {
		t.Errorf("after PublishBatch: %+v, %+v; want ids, increasing Seq and Time set", us[0], us[1])
	}
	if err := h.PublishBatch(ctx, make([]*Update, MaxBatchUpdates+1)); !errors.Is(err, ErrInvalidUpdate) {
		t.Errorf("a batch over MaxBatchUpdates: %v; want ErrInvalidUpdate", err)
	}
}
