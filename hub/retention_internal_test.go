package hub

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestRetentionBounded: a flood of one kept topic leaves the memory
// store's ring within twice its history size, and a flood of distinct
// topics leaves the index within the window.
func TestRetentionBounded(t *testing.T) {
	s := NewMemoryStore(MemoryStoreConfig{MaxUpdates: 100})
	err := s.SetRetention([]RetentionRule{
		{Match: func(t string) bool { return t == "r" }, MaxUpdates: 1},
		{Match: func(string) bool { return true }, MaxUpdates: 2, MaxAge: time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Append(ctx, &Update{ID: "o", Topics: []string{"o"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 10_000 {
		if err := s.Append(ctx, &Update{ID: fmt.Sprint("r", i), Topics: []string{"r"}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.ring) - s.head; n > 2*100+1 {
		t.Errorf("ring holds %d slots; want at most %d", n, 2*100+1)
	}
	if s.Len() > 2 {
		t.Errorf("Len %d; want the last r and maybe o", s.Len())
	}
	for i := range 10_000 {
		if err := s.Append(ctx, &Update{ID: fmt.Sprint("t", i), Topics: []string{fmt.Sprint("t", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.ret.topics); n > 200 {
		t.Errorf("index holds %d topics after 10,000 distinct ones; want at most about the window (100)", n)
	}
	if n := len(s.ret.ages[1]) - s.ret.head[1]; n > 200 {
		t.Errorf("age queue holds %d; want at most about the window (100)", n)
	}
	if s.Len() > 100 {
		t.Errorf("Len %d; want at most 100", s.Len())
	}
}
