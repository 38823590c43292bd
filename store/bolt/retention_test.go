package bolt

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/hub/hubtest"
)

// A store reopened with a rule applies it to the history it kept.
func TestRetentionRebuiltAtOpen(t *testing.T) {
	path := tempPath(t)
	s, err := Open(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	const topic = "https://example.com/k"
	for i := range 5 {
		if err := s.Append(context.Background(), &hub.Update{ID: fmt.Sprint("k", i), Topics: []string{topic}}); err != nil {
			t.Fatal(err)
		}
	}
	hubtest.AppendN(t, s, "o", 2)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.SetRetention([]hub.RetentionRule{{Match: func(t string) bool { return t == topic }, MaxUpdates: 2}}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	if _, _, err := hubtest.AfterAll(context.Background(), s, "", 0, func(u *hub.Update) bool { ids = append(ids, u.ID); return true }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"k3", "k4", "o-0", "o-1"}; !slices.Equal(ids, want) {
		t.Fatalf("history %q; want %q", ids, want)
	}
}
